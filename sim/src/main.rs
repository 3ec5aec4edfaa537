//! `cellwarden-sim`: runs scenario files against the real core in virtual time and writes the
//! report, the CSV trace and the plot.
//!
//! Exit codes: 0 when every expectation holds, 1 when one fails, 2 when a scenario cannot be
//! loaded or an output cannot be written.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cellwarden_core::Duration;
use cellwarden_sim::engine;
use cellwarden_sim::report::csv::write_trace_csv;
use cellwarden_sim::report::plot::write_plot_svg;
use cellwarden_sim::report::{Report, clock};
use cellwarden_sim::scenario::{self, Scenario};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

mod can_decode;
mod can_log;
mod serve;
mod serve_can;

use can_log::CanLog;

/// Where `run` and `all` write their outputs unless told otherwise, relative to the current
/// directory.
const DEFAULT_OUT: &str = "sim-out";
/// What `all` runs when given no paths.
const DEFAULT_SCENARIOS: &str = "scenarios";

/// Runs cellwarden scenarios: a simulated battery plant driven by the real core in virtual time.
///
/// A scenario file names the system, a timeline (loads, faults, commands) and expectations. A run
/// prints an event log, the expectation verdicts and a summary, and writes report.txt, trace.csv
/// and plot.svg. The same file gives the same report and trace, byte for byte.
///
/// Exit codes: 0 all expectations hold, 1 an expectation failed, 2 a scenario could not be
/// loaded or an output could not be written.
#[derive(Parser, Debug)]
#[command(name = "cellwarden-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one scenario, print its report and write report.txt, trace.csv and plot.svg.
    ///
    /// The report goes to stdout, the progress bar (only when stderr is a terminal) and the
    /// paths of the written files to stderr. With --candump, a parallel system (one with
    /// [[can_packs]] or [[inverters]]) also writes every frame of its CAN buses to can.log;
    /// `can-decode` reads it. Exit code 0 when every expectation holds, 1 when one fails, 2
    /// when the scenario cannot be loaded or an output cannot be written.
    #[command(after_help = "Examples:\n  \
        cellwarden-sim run scenarios/precharge_success.toml\n  \
        cellwarden-sim run scenarios/over_voltage_charging.toml --out /tmp/ov --no-plot\n  \
        cellwarden-sim run scenarios/can_three_pylontech_packs.toml --candump")]
    Run {
        /// The scenario file.
        #[arg(value_name = "SCENARIO")]
        scenario: PathBuf,
        /// Directory for the outputs [default: sim-out/<file stem>].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print only the verdict line instead of the whole report, and no progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Do not draw plot.svg.
        #[arg(long)]
        no_plot: bool,
        #[arg(long, help = CANDUMP_HELP)]
        candump: bool,
    },
    /// Run many scenarios and print one summary line each, then a total.
    ///
    /// Each path is a scenario file or a directory whose *.toml files run in sorted order.
    /// Each scenario's outputs go to <DIR>/<file stem>/. Exit code 0 when every expectation of
    /// every scenario holds, 1 when one fails, 2 when a scenario cannot be loaded or an output
    /// cannot be written.
    #[command(after_help = "Examples:\n  \
        cellwarden-sim all\n  \
        cellwarden-sim all scenarios/ extra/my_pack.toml --out /tmp/runs\n  \
        cellwarden-sim all scenarios/can_*.toml --candump")]
    All {
        /// Scenario files and directories [default: scenarios/].
        #[arg(value_name = "DIR_OR_FILES")]
        paths: Vec<PathBuf>,
        /// Directory for the outputs.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
        out: PathBuf,
        /// Do not draw the plots.
        #[arg(long)]
        no_plot: bool,
        #[arg(long, help = CANDUMP_HELP)]
        candump: bool,
    },
    /// Load and check scenario files without running them; print each error.
    ///
    /// A directory stands for its *.toml files. Exit code 0 when every file is valid, 2 when
    /// one is not.
    #[command(after_help = "Examples:\n  \
        cellwarden-sim check scenarios/\n  \
        cellwarden-sim check scenarios/precharge_success.toml scenarios/over_voltage_charging.toml")]
    Check {
        /// Scenario files and directories.
        #[arg(value_name = "FILES", required = true)]
        paths: Vec<PathBuf>,
    },
    ServeRing(serve::ServeRingArgs),
    SocketcandHub(serve_can::SocketcandHubArgs),
    ServeCan(serve_can::ServeCanArgs),
    CanDecode(can_decode::CanDecodeArgs),
}

/// The help of `--candump`, the same for `run` and `all`.
const CANDUMP_HELP: &str = "Also write every frame of every CAN bus to can.log next to the \
    report, in candump format stamped with virtual time from 0 (parallel systems only; the \
    report stays the same)";

/// How a command ended; the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Passed = 0,
    Failed = 1,
    Unusable = 2,
}

/// The verdict of a serving command: its error, if any, goes to stderr.
fn served(result: Result<(), String>) -> Verdict {
    match result {
        Ok(()) => Verdict::Passed,
        Err(err) => {
            eprintln!("error: {err}");
            Verdict::Unusable
        }
    }
}

fn main() -> ExitCode {
    let verdict = match Cli::parse().command {
        Command::Run { scenario, out, quiet, no_plot, candump } => {
            run(&scenario, out, quiet, !no_plot, candump)
        }
        Command::All { paths, out, no_plot, candump } => all(&paths, &out, !no_plot, candump),
        Command::Check { paths } => check(&paths),
        Command::ServeRing(args) => served(serve::serve_ring(&args)),
        Command::ServeCan(args) => served(serve_can::serve_can(&args)),
        Command::SocketcandHub(args) => served(serve_can::socketcand_hub(&args)),
        Command::CanDecode(args) => served(can_decode::can_decode(&args)),
    };
    ExitCode::from(verdict as u8)
}

fn run(path: &Path, out: Option<PathBuf>, quiet: bool, plot: bool, candump: bool) -> Verdict {
    let scenario = match scenario::load(path) {
        Ok(scenario) => scenario,
        Err(err) => {
            eprintln!("error: {err}");
            return Verdict::Unusable;
        }
    };
    let out = out.unwrap_or_else(|| Path::new(DEFAULT_OUT).join(stem(path)));
    let mut can_log = None;
    if candump {
        match CanLog::create(scenario.parallel.is_some(), &out, &stem(path)) {
            Ok(log) => can_log = log,
            Err(err) => {
                eprintln!("error: {err}");
                return Verdict::Unusable;
            }
        }
    }
    let report = run_with_progress(&scenario, &stem(path), !quiet, can_log.as_mut());

    if quiet {
        println!("{}", report.verdict());
    } else {
        print!("{}", report.render());
    }
    let _ = std::io::stdout().flush();

    let written = write_outputs(&report, &out, plot).and_then(|written| {
        let mut lines: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        if let Some((path, frames)) = finish_can_log(can_log)? {
            lines.push(format!("{} ({})", path.display(), plural_u64(frames, "frame", "frames")));
        }
        Ok(lines)
    });
    match written {
        Ok(written) => {
            eprintln!();
            for (index, file) in written.iter().enumerate() {
                let lead = if index == 0 { "wrote" } else { "     " };
                eprintln!("{lead} {file}");
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            return Verdict::Unusable;
        }
    }
    if report.passed() { Verdict::Passed } else { Verdict::Failed }
}

fn all(paths: &[PathBuf], out: &Path, plot: bool, candump: bool) -> Verdict {
    let default = [PathBuf::from(DEFAULT_SCENARIOS)];
    let paths = if paths.is_empty() { &default[..] } else { paths };
    let files = match scenario_files(paths) {
        Ok(files) => files,
        Err(err) => {
            eprintln!("error: {err}");
            return Verdict::Unusable;
        }
    };

    let (mut passed, mut failed, mut unusable) = (0usize, 0usize, 0usize);
    let mut seen_stems = Vec::new();
    for file in &files {
        let stem = stem(file);
        if seen_stems.contains(&stem) {
            eprintln!("warning: a second scenario named {stem}: its outputs replace the first's");
        } else {
            seen_stems.push(stem.clone());
        }
        let scenario = match scenario::load(file) {
            Ok(scenario) => scenario,
            Err(err) => {
                println!("LOAD  {}", file.display());
                println!("{}", indent(&err.to_string(), "      "));
                unusable += 1;
                continue;
            }
        };
        let dir = out.join(&stem);
        let (mut can_log, mut can_error) = (None, None);
        if candump {
            match CanLog::create(scenario.parallel.is_some(), &dir, &stem) {
                Ok(log) => can_log = log,
                Err(err) => can_error = Some(err),
            }
        }
        let report = run_with_progress(&scenario, &stem, true, can_log.as_mut());
        println!("{}", report.render_summary_line());
        for outcome in report.outcomes.iter().filter(|o| !o.passed) {
            println!("      FAIL  {}  (line {})", outcome.label, outcome.line);
            if !outcome.detail.trim().is_empty() {
                println!("{}", indent(outcome.detail.trim_end(), "            "));
            }
        }
        let written = write_outputs(&report, &dir, plot)
            .and_then(|_| can_error.map_or(Ok(()), Err))
            .and_then(|()| finish_can_log(can_log));
        if let Err(err) = written {
            println!("      error: {err}");
            unusable += 1;
        } else if report.passed() {
            passed += 1;
        } else {
            failed += 1;
        }
    }

    let total = files.len();
    let mut line = format!(
        "\n{total} {}: {passed} passed, {failed} failed",
        if total == 1 { "scenario" } else { "scenarios" }
    );
    if unusable > 0 {
        let _ = write!(line, ", {unusable} could not be loaded or written");
    }
    println!("{line}");
    eprintln!("outputs in {}", out.display());

    if unusable > 0 {
        Verdict::Unusable
    } else if failed > 0 {
        Verdict::Failed
    } else {
        Verdict::Passed
    }
}

fn check(paths: &[PathBuf]) -> Verdict {
    let files = match scenario_files(paths) {
        Ok(files) => files,
        Err(err) => {
            eprintln!("error: {err}");
            return Verdict::Unusable;
        }
    };
    let mut bad = 0usize;
    for file in &files {
        match scenario::load(file) {
            Ok(scenario) => println!("ok    {}  ({})", file.display(), scenario.name),
            Err(err) => {
                println!("error {}", indent(&err.to_string(), "      ").trim_start());
                bad += 1;
            }
        }
    }
    if bad == 0 {
        println!("{} valid", plural(files.len(), "file", "files"));
        Verdict::Passed
    } else {
        println!("{bad} of {} invalid", plural(files.len(), "file", "files"));
        Verdict::Unusable
    }
}

/// Runs the engine with a progress bar on stderr when `show` and stderr is a terminal; every
/// CAN frame goes to `can_log` when there is one (it exists only for parallel systems).
fn run_with_progress(
    scenario: &Scenario,
    label: &str,
    show: bool,
    can_log: Option<&mut CanLog>,
) -> Report {
    let bar = if show && std::io::stderr().is_terminal() {
        progress_bar(label)
    } else {
        ProgressBar::hidden()
    };
    let mut progress = |done: Duration, total: Duration| {
        bar.set_length(total.as_millis());
        bar.set_position(done.as_millis());
    };
    let report = match can_log {
        Some(log) => engine::run_logged(scenario, &mut progress, &mut |frame| log.write(frame)),
        None => engine::run(scenario, &mut progress),
    };
    bar.finish_and_clear();
    report
}

/// A bar counting simulated milliseconds and showing them as clock times.
fn progress_bar(label: &str) -> ProgressBar {
    let sim_done = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = w.write_str(&whole_seconds(state.pos()));
    };
    let sim_total = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = w.write_str(&whole_seconds(state.len().unwrap_or(0)));
    };
    let style = ProgressStyle::with_template(
        "{prefix} [{wide_bar}] {sim_done} / {sim_total} simulated ({elapsed} wall)",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key("sim_done", sim_done)
    .with_key("sim_total", sim_total)
    .progress_chars("=> ");
    ProgressBar::new(0).with_style(style).with_prefix(label.to_owned())
}

/// A clock time to the second, from milliseconds.
fn whole_seconds(millis: u64) -> String {
    let time = clock(Duration::from_millis(millis));
    time.rsplit_once('.').map_or(time.clone(), |(seconds, _)| seconds.to_owned())
}

/// Writes report.txt, trace.csv and (when `plot`) plot.svg into `dir`; returns their paths.
fn write_outputs(report: &Report, dir: &Path, plot: bool) -> Result<Vec<PathBuf>, String> {
    fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;

    let text_path = dir.join("report.txt");
    fs::write(&text_path, report.render())
        .map_err(|err| format!("{}: {err}", text_path.display()))?;

    let csv_path = dir.join("trace.csv");
    let write_csv = || -> std::io::Result<()> {
        let mut out = BufWriter::new(fs::File::create(&csv_path)?);
        write_trace_csv(report, &mut out)?;
        out.flush()
    };
    write_csv().map_err(|err| format!("{}: {err}", csv_path.display()))?;

    let mut written = vec![text_path, csv_path];
    if plot {
        let plot_path = dir.join("plot.svg");
        write_plot_svg(report, &plot_path)?;
        written.push(plot_path);
    }
    Ok(written)
}

/// Flushes the CAN log, if any: its path and frame count, or why it could not be written.
fn finish_can_log(can_log: Option<CanLog>) -> Result<Option<(PathBuf, u64)>, String> {
    can_log.map(CanLog::finish).transpose()
}

/// The scenario files named by `paths`: files as given, directories as their *.toml files in
/// sorted order.
fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = fs::read_dir(path).map_err(|err| format!("{}: {err}", path.display()))?;
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|err| format!("{}: {err}", path.display()))?;
                let file = entry.path();
                if file.is_file() && file.extension().is_some_and(|ext| ext == "toml") {
                    found.push(file);
                }
            }
            if found.is_empty() {
                return Err(format!(
                    "{}: no *.toml scenario files in this directory",
                    path.display()
                ));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// The file name without directory and extension.
fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| "scenario".to_owned(), |s| s.to_string_lossy().into_owned())
}

/// `text` with `prefix` before every line.
fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|line| format!("{prefix}{line}")).collect::<Vec<_>>().join("\n")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    plural_u64(n as u64, one, many)
}

fn plural_u64(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
