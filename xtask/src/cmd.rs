//! Running cargo as a sub-process: echo the command, run it from the workspace root, and turn a
//! failure into a message that names the step.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The outcome of a task; the error is the full message printed to the user.
pub type Result = std::result::Result<(), String>;

/// The workspace root: the directory above this crate.
pub fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The xtask crate always sits one level below the workspace root.
    manifest_dir.parent().expect("xtask has a parent directory").to_path_buf()
}

/// Runs `cargo <args>` from the workspace root, with its output going straight to the terminal.
pub fn cargo<S: AsRef<str>>(step: &str, args: &[S]) -> Result {
    eprintln!("$ cargo {}", display_args(args));
    let status = cargo_command(args)
        .status()
        .map_err(|err| format!("step `{step}` failed: could not start `{}`: {err}", program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("step `{step}` failed: `cargo {}` failed with {status}", display_args(args)))
    }
}

/// Runs `cargo <args>` silently and reports whether it succeeded; used to probe for tools.
pub fn cargo_succeeds(args: &[&str]) -> bool {
    cargo_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn cargo_command<S: AsRef<str>>(args: &[S]) -> Command {
    let mut command = Command::new(program());
    command.args(args.iter().map(AsRef::as_ref)).current_dir(root());
    command
}

/// The cargo that started us (set by cargo for `cargo run`), so the same toolchain runs every
/// step.
fn program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Joins arguments for display, quoting the ones a shell would split or expand.
fn display_args<S: AsRef<str>>(args: &[S]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|arg| {
            let arg = arg.as_ref();
            let plain = |c: char| c.is_ascii_alphanumeric() || "-_=.,/:+@%".contains(c);
            if arg.is_empty() || !arg.chars().all(plain) {
                format!("'{arg}'")
            } else {
                arg.to_owned()
            }
        })
        .collect();
    quoted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::display_args;

    #[test]
    fn display_args_quotes_only_when_needed() {
        assert_eq!(display_args(&["test", "--workspace"]), "test --workspace");
        assert_eq!(display_args(&["run", "a b", "", "*"]), "run 'a b' '' '*'");
    }
}
