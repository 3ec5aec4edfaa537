//! The cargo-driven tasks: `ci` and the single steps that can also run on their own.

use std::time::{Duration, Instant};

use crate::cmd::{self, Result};
use crate::tidy;

const CORE: &str = "cellwarden-core";
/// The RP2040's target: building core for it proves that core stays `no_std` without alloc.
const NO_STD_TARGET: &str = "thumbv6m-none-eabi";
const DEMO: &[&str] = &["run", "-p", CORE, "--example", "demo"];
/// Every scenario through the simulator's command line, as users run them: this also draws
/// every plot and writes every trace.
const SCENARIOS: &[&str] = &[
    "run",
    "--release",
    "-q",
    "-p",
    "cellwarden-sim",
    "--",
    "all",
    "scenarios",
    "--out",
    "sim-out",
];

const FUZZ_CHECK: &[&str] = &["check", "--manifest-path", "fuzz/Cargo.toml", "--bins", "-q"];

/// Runs every check in order and stops at the first failure.
pub fn ci() -> Result {
    let started = Instant::now();
    ensure_no_std_target()?;
    let runner = TestRunner::detect();
    let mut steps: Vec<(&str, Vec<String>)> = vec![
        ("fmt", strings(&["fmt", "--all", "--", "--check"])),
        (
            "clippy",
            strings(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        ("no_std build", strings(&["build", "-p", CORE, "--target", NO_STD_TARGET])),
        (
            "no_std build with serde",
            strings(&["build", "-p", CORE, "--target", NO_STD_TARGET, "--features", "serde"]),
        ),
        ("test", runner.test_args(&[])),
    ];
    if let Some(args) = runner.doctest_args(&[]) {
        steps.push(("doctest", args));
    }
    // Every benchmark once, in criterion's test mode: a setup that no longer reaches the state
    // it measures fails here, not on the day someone wants the figures.
    steps.push(("bench smoke", strings(&["bench", "--workspace", "--", "--test"])));
    // The fuzz targets live outside the workspace (cargo-fuzz builds them with nightly
    // sanitizer flags); checking them on stable keeps them compiling with the code they fuzz.
    // Running them is `cargo fuzz run` (fuzz/README.md).
    steps.push(("fuzz targets check", strings(FUZZ_CHECK)));
    steps.push(("demo", strings(DEMO)));
    steps.push(("scenarios", strings(SCENARIOS)));

    // Tidy runs in-process and first: it is the fastest step and its findings are the cheapest
    // to fix.
    let total = steps.len() + 1;
    let mut timings = Vec::with_capacity(total);
    announce(1, total, "tidy");
    let step_started = Instant::now();
    tidy::tidy().map_err(|err| format!("step `tidy` failed: {err}"))?;
    timings.push(("tidy", step_started.elapsed()));
    for (index, (name, args)) in steps.iter().enumerate() {
        announce(index + 2, total, name);
        let step_started = Instant::now();
        cmd::cargo(name, args)?;
        timings.push((name, step_started.elapsed()));
    }

    eprintln!();
    for (name, elapsed) in &timings {
        eprintln!("  {:>8}  {name}", seconds(*elapsed));
    }
    eprintln!("ci: all {total} steps passed in {}", seconds(started.elapsed()));
    Ok(())
}

/// Runs the workspace tests, then the doctests, with `extra` passed to both runs.
pub fn test(extra: &[String]) -> Result {
    let runner = TestRunner::detect();
    cmd::cargo("test", &runner.test_args(extra))?;
    match runner.doctest_args(extra) {
        Some(args) => cmd::cargo("doctest", &args),
        None => Ok(()),
    }
}

/// Runs every criterion benchmark of the workspace with `extra` passed to criterion; each prints
/// its own figures.
pub fn bench(extra: &[String]) -> Result {
    // Only the bench targets: the libraries' libtest harness would reject criterion's options.
    let mut args = strings(&["bench", "--workspace", "--bench", "*"]);
    if !extra.is_empty() {
        args.push("--".to_owned());
        args.extend_from_slice(extra);
    }
    cmd::cargo("bench", &args)
}

/// Runs the demo example of core.
pub fn demo() -> Result {
    cmd::cargo("demo", DEMO)
}

/// Installs the RP2040 target through rustup when it is missing, so `cargo xtask ci` works on a
/// fresh machine. Without rustup the no_std build step reports the missing target itself.
fn ensure_no_std_target() -> Result {
    let Ok(output) =
        std::process::Command::new("rustup").args(["target", "list", "--installed"]).output()
    else {
        eprintln!("xtask: rustup not found; assuming {NO_STD_TARGET} is installed");
        return Ok(());
    };
    if String::from_utf8_lossy(&output.stdout).lines().any(|line| line.trim() == NO_STD_TARGET) {
        return Ok(());
    }
    eprintln!("$ rustup target add {NO_STD_TARGET}");
    let status = std::process::Command::new("rustup")
        .args(["target", "add", NO_STD_TARGET])
        .status()
        .map_err(|err| format!("could not run rustup: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`rustup target add {NO_STD_TARGET}` failed with {status}"))
    }
}

/// Which program runs the tests.
#[derive(Clone, Copy)]
enum TestRunner {
    Nextest,
    CargoTest,
}

impl TestRunner {
    fn detect() -> TestRunner {
        if cmd::cargo_succeeds(&["nextest", "--version"]) {
            eprintln!("xtask: running tests with cargo-nextest");
            TestRunner::Nextest
        } else {
            eprintln!("xtask: cargo-nextest not found, running tests with cargo test");
            TestRunner::CargoTest
        }
    }

    fn test_args(self, extra: &[String]) -> Vec<String> {
        let mut args = match self {
            TestRunner::Nextest => strings(&["nextest", "run", "--workspace", "--all-features"]),
            TestRunner::CargoTest => strings(&["test", "--workspace", "--all-features"]),
        };
        args.extend_from_slice(extra);
        args
    }

    /// Nextest does not run doctests, so they need their own run; `cargo test` already ran them.
    fn doctest_args(self, extra: &[String]) -> Option<Vec<String>> {
        match self {
            TestRunner::Nextest => {
                let mut args = strings(&["test", "--workspace", "--all-features", "--doc"]);
                args.extend_from_slice(extra);
                Some(args)
            }
            TestRunner::CargoTest => None,
        }
    }
}

fn announce(number: usize, total: usize, name: &str) {
    eprintln!("\n==> ci step {number}/{total}: {name}");
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}
