//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo runs.
//!
//! Every task runs cargo as a sub-process from the workspace root and prints each command before
//! it runs it, so a CI log can be replayed by hand. A failing task names the step that failed.

mod ci;
mod cmd;
mod cycles;
mod sim;
mod tidy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Automation for the cellwarden workspace.
///
/// `cargo xtask ci` is the one command that CI and developers run before pushing.
#[derive(Parser)]
#[command(bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run every check CI runs, stopping at the first failing step.
    ///
    /// Installs the thumbv6m-none-eabi target through rustup first when it is missing. The
    /// steps, in order: tidy; cargo fmt --check; clippy with warnings denied; a build of
    /// cellwarden-core for thumbv6m-none-eabi without and with the serde feature (the no_std
    /// check); the tests (cargo-nextest when installed, else cargo test) and the doctests, which
    /// include every scenario's snapshot; every benchmark run once (criterion's test mode); a check of the fuzz
    /// targets; the core demo; every scenario through the simulator's command line (outputs in
    /// sim-out/).
    Ci,
    /// Run the workspace tests and doctests.
    ///
    /// The tests run under cargo-nextest when it is installed, else under cargo test; nextest
    /// does not run doctests, so `cargo test --doc` runs them after it.
    Test {
        /// Extra arguments for both test runs, e.g. a test name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run every criterion benchmark (core cycle, plant, closed loop, Tesla scan, parallel system)
    /// and print their figures.
    Bench {
        /// Arguments for criterion, e.g. a benchmark name filter or `--save-baseline main`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the core demo: precharge, charge and a cell over-voltage trip, printing the event log.
    Demo,
    /// Run one scenario in the simulator: print its report, write its trace and plot.
    ///
    /// Runs `cargo run --release -q -p cellwarden-sim -- run <SCENARIO> [ARGS...]` from the
    /// workspace root. SCENARIO is a file or a bare name: `precharge_success` stands for
    /// scenarios/precharge_success.toml; an unknown name lists the scenarios there are. The
    /// report, trace.csv and plot.svg go to sim-out/<name>/ under the workspace root unless
    /// `--out DIR` says otherwise. Fails when an expectation fails or the file is invalid.
    ///
    /// With `--pty` it runs `cellwarden-sim serve-ring <SCENARIO> [ARGS...]` instead: the
    /// scenario's battery as emulated Tesla module boards on a pseudo-terminal, in real time, for
    /// an outside BMS (the pty's path is printed first); until Ctrl-C or `--for DURATION`.
    ///
    /// With `--socketcand` it runs `cellwarden-sim serve-can <SCENARIO> [ARGS...]`: a parallel
    /// system (`[[can_packs]]`, `[[inverters]]`) in real time with its CAN buses served as
    /// socketcand on loopback (127.0.0.1:29536 unless `--listen ADDR`), for candump, python-can
    /// or another process; `--speed FACTOR` runs it faster.
    ///
    /// Examples: `cargo xtask sim over_voltage_charging --no-plot`,
    /// `cargo xtask sim --pty home_day --for 10m`,
    /// `cargo xtask sim --socketcand can_two_inverters --speed 10`
    Sim {
        /// Serve the scenario's Tesla module boards on a pseudo-terminal instead of running it.
        #[arg(long, conflicts_with = "socketcand")]
        pty: bool,
        /// Serve the scenario's CAN buses as socketcand on loopback instead of running it.
        #[arg(long)]
        socketcand: bool,
        /// The scenario: a name in scenarios/ or a path to a .toml file.
        scenario: String,
        /// Options for `cellwarden-sim run`: `--out DIR`, `--quiet`, `--no-plot`; with `--pty`,
        /// for `cellwarden-sim serve-ring`: `--for DURATION`; with `--socketcand`, for
        /// `cellwarden-sim serve-can`: `--listen ADDR`, `--speed FACTOR`, `--for DURATION`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run every scenario in scenarios/ and print one summary line each, then a total.
    ///
    /// Runs `cargo run --release -q -p cellwarden-sim -- all scenarios/ [ARGS...]` from the
    /// workspace root; each scenario's outputs go to sim-out/<name>/. Fails when any
    /// expectation fails or any file is invalid.
    ///
    /// Example: `cargo xtask scenarios --no-plot`
    Scenarios {
        /// Options for `cellwarden-sim all`: `--out DIR`, `--no-plot`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check the repository rules that rustc and clippy cannot.
    ///
    /// No f32/f64, unsafe or std:: paths in the code of core/src; no ignored tests in any .rs
    /// file; README.md names `cargo xtask ci` (on a line of its own) and `cargo xtask sim`; no
    /// file in core/src longer than 800 lines; only *.toml, README.md, data/*.csv and
    /// data/*.candump in scenarios/.
    Tidy,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Ci => ci::ci(),
        Task::Test { args } => ci::test(&args),
        Task::Bench { args } => ci::bench(&args),
        Task::Demo => ci::demo(),
        Task::Sim { scenario, pty, socketcand, args } => {
            let serve = if pty {
                sim::Serve::Pty
            } else if socketcand {
                sim::Serve::Socketcand
            } else {
                sim::Serve::No
            };
            sim::sim(&scenario, serve, &args)
        }
        Task::Scenarios { args } => sim::scenarios(&args),
        Task::Tidy => tidy::tidy(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
