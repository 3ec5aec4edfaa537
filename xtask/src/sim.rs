//! `cargo xtask sim` and `cargo xtask scenarios`: the simulator's command line, built in release
//! mode and run from the workspace root. `cargo xtask sim --pty` serves the scenario's battery as
//! emulated Tesla module boards on a pseudo-terminal instead of running it; `--socketcand` serves
//! a parallel system's CAN buses as socketcand on loopback.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd::{self, Result};

/// `cargo run` of the simulator; its own arguments follow.
const RUN_SIM: &[&str] = &["run", "--release", "-q", "-p", "cellwarden-sim", "--"];
/// The scenario directory, relative to the workspace root.
const SCENARIOS: &str = "scenarios";

/// Whether `cargo xtask sim` runs the scenario or serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serve {
    /// Run it and report.
    No,
    /// Its module boards on a pseudo-terminal (`serve-ring`).
    Pty,
    /// Its CAN buses as socketcand (`serve-can`).
    Socketcand,
}

/// Runs one scenario, `cellwarden-sim run <scenario> <extra...>`, or serves it:
/// `serve-ring` for an outside BMS on a pty, `serve-can` for CAN clients over socketcand.
pub fn sim(scenario: &str, serve: Serve, extra: &[String]) -> Result {
    let root = cmd::root();
    let cwd = std::env::current_dir().unwrap_or_else(|_| root.clone());
    let path = resolve(&root, &cwd, scenario)?;
    let (command, label) = match serve {
        Serve::No => ("run", "sim"),
        Serve::Pty => ("serve-ring", "sim --pty"),
        Serve::Socketcand => ("serve-can", "sim --socketcand"),
    };
    let mut args = strings(RUN_SIM);
    args.push(command.to_owned());
    args.push(path);
    args.extend_from_slice(extra);
    cmd::cargo(label, &args)
}

/// Runs every scenario: `cellwarden-sim all scenarios/ <extra...>`.
pub fn scenarios(extra: &[String]) -> Result {
    let mut args = strings(RUN_SIM);
    args.push("all".to_owned());
    args.push(format!("{SCENARIOS}/"));
    args.extend_from_slice(extra);
    cmd::cargo("scenarios", &args)
}

/// The scenario argument as a path for the simulator, which runs from `root`: an existing file
/// (relative to `cwd` or to `root`) becomes relative to `root` where it can be; a bare name such
/// as `precharge_success` (or `precharge_success.toml`) stands for a file in `scenarios/`.
/// Otherwise the error lists the scenarios there are.
fn resolve(root: &Path, cwd: &Path, scenario: &str) -> std::result::Result<String, String> {
    let given = Path::new(scenario);
    let from_cwd = cwd.join(given);
    if from_cwd.is_file() {
        return Ok(relative_to_root(root, &from_cwd));
    }
    if root.join(given).is_file() {
        return Ok(scenario.to_owned());
    }
    let bare = given.components().count() == 1;
    if bare {
        let file_name = if scenario.ends_with(".toml") {
            scenario.to_owned()
        } else {
            format!("{scenario}.toml")
        };
        if root.join(SCENARIOS).join(&file_name).is_file() {
            return Ok(format!("{SCENARIOS}/{file_name}"));
        }
    }
    Err(not_found(root, scenario))
}

/// `path` relative to `root` when it lies below it (its `source` in the report then stays
/// short), else as it is.
fn relative_to_root(root: &Path, path: &Path) -> String {
    let canonical = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (root, path) = (canonical(root), canonical(path));
    let shown: PathBuf = path.strip_prefix(&root).map_or(path.clone(), Path::to_path_buf);
    shown.to_string_lossy().into_owned()
}

/// The message for a scenario that does not exist, with the list of those that do.
fn not_found(root: &Path, scenario: &str) -> String {
    let names = scenario_names(&root.join(SCENARIOS));
    if names.is_empty() {
        return format!("no scenario `{scenario}`, and there are no *.toml files in {SCENARIOS}/");
    }
    let mut message = format!("no scenario `{scenario}`; the scenarios in {SCENARIOS}/ are:");
    for name in names {
        message.push_str("\n  ");
        message.push_str(&name);
    }
    message
}

/// The stems of the *.toml files in `dir`, sorted.
fn scenario_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "toml"))
        .filter_map(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&arg| arg.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A fresh workspace-like directory with `scenarios/{a,b}.toml` and `other/c.toml`.
    fn fixture() -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "xtask-sim-resolve-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(root.join(SCENARIOS)).expect("create fixture");
        fs::create_dir_all(root.join("other")).expect("create fixture");
        for file in ["scenarios/b.toml", "scenarios/a.toml", "scenarios/README.md", "other/c.toml"]
        {
            fs::write(root.join(file), "").expect("write fixture");
        }
        root
    }

    #[test]
    fn options_after_the_scenario_pass_through() {
        use clap::Parser;

        use crate::{Cli, Task};

        let cli = Cli::try_parse_from(["cargo xtask", "sim", "a", "--quiet", "--out", "x"])
            .expect("parses");
        let Task::Sim { scenario, pty, socketcand, args } = cli.task else {
            panic!("not the sim task")
        };
        assert_eq!(scenario, "a");
        assert!(!pty && !socketcand);
        assert_eq!(args, ["--quiet", "--out", "x"]);

        let cli = Cli::try_parse_from(["cargo xtask", "sim", "--socketcand", "b", "--speed", "5"])
            .expect("parses");
        let Task::Sim { scenario, socketcand, args, .. } = cli.task else {
            panic!("not the sim task")
        };
        assert_eq!(scenario, "b");
        assert!(socketcand);
        assert_eq!(args, ["--speed", "5"]);
        assert!(Cli::try_parse_from(["cargo xtask", "sim", "--pty", "--socketcand", "b"]).is_err());

        for order in [["--pty", "a", "--for", "10m"], ["a", "--pty", "--for", "10m"]] {
            let cli = Cli::try_parse_from(["cargo xtask", "sim"].into_iter().chain(order))
                .expect("parses");
            let Task::Sim { scenario, pty, args, .. } = cli.task else {
                panic!("not the sim task")
            };
            assert_eq!(scenario, "a");
            assert!(pty, "{order:?}");
            assert_eq!(args, ["--for", "10m"]);
        }

        let cli = Cli::try_parse_from(["cargo xtask", "scenarios", "--no-plot"]).expect("parses");
        let Task::Scenarios { args } = cli.task else { panic!("not the scenarios task") };
        assert_eq!(args, ["--no-plot"]);
    }

    #[test]
    fn bare_names_resolve_into_the_scenario_directory() {
        let root = fixture();
        assert_eq!(resolve(&root, &root, "a").as_deref(), Ok("scenarios/a.toml"));
        assert_eq!(resolve(&root, &root, "b.toml").as_deref(), Ok("scenarios/b.toml"));
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn paths_resolve_from_the_current_directory_or_the_root() {
        let root = fixture();
        assert_eq!(resolve(&root, &root, "other/c.toml").as_deref(), Ok("other/c.toml"));
        let other = root.join("other");
        assert_eq!(resolve(&root, &other, "c.toml").as_deref(), Ok("other/c.toml"));
        assert_eq!(
            resolve(&root, &other, "../scenarios/a.toml").as_deref(),
            Ok("scenarios/a.toml")
        );
        assert_eq!(resolve(&root, &other, "scenarios/b.toml").as_deref(), Ok("scenarios/b.toml"));
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn an_unknown_scenario_lists_the_available_ones() {
        let root = fixture();
        let err = resolve(&root, &root, "nope").expect_err("no such scenario");
        assert_eq!(err, "no scenario `nope`; the scenarios in scenarios/ are:\n  a\n  b");
        let _ = fs::remove_dir_all(&root);
        let err = resolve(&root, &root, "nope").expect_err("no such scenario");
        assert!(err.contains("there are no *.toml files"), "{err}");
    }
}
