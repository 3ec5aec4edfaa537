//! `cellwarden-sim serve-ring`: a scenario's battery behind emulated Tesla module boards on a
//! pseudo-terminal, in real time, for a BMS program outside the simulator.
//!
//! The scenario gives the plant (cells, spread, temperatures, seed) and the number of boards;
//! its timeline and expectations are not used, and the core is not involved: the outside
//! program is the BMS. The plant runs in real time with its contactors open and the inverter at
//! zero current, so the cells change only by self-discharge and by the boards' balance
//! resistors.

use std::path::PathBuf;

use cellwarden_core::proto::tesla::MAX_MODULES;
use cellwarden_io::TESLA_BAUD;
use cellwarden_sim::devices::tesla::{Ring, RingSpec};
use cellwarden_sim::plant::Plant;
use cellwarden_sim::scenario::{self, Span};

/// Expose a scenario's battery as a ring of Tesla module boards on a pseudo-terminal.
///
/// Loads the scenario, builds its plant and emulates one module board (bq76PL536A) per six
/// cells, register by register, on a new pseudo-terminal (with the balance resistors of the
/// scenario's `[boards]` section, if it has one). The first line on stdout names the
/// terminal, e.g. `ring on /dev/pts/5 (612500 baud, 16 boards)`: point an external BMS at that
/// path as its serial port. Replies are paced as on the real 612500-baud wire.
///
/// The external program is the bus master and the BMS; cellwarden's core is not involved. The
/// plant runs in real time with its contactors open and the inverter at zero current; the
/// scenario's timeline and expectations are ignored. Runs until Ctrl-C or `--for`. Exit code 0
/// after a clean stop, 2 when the scenario cannot be loaded or served.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    cellwarden-sim serve-ring scenarios/precharge_success.toml\n  \
    cellwarden-sim serve-ring scenarios/home_day.toml --for 10m")]
pub struct ServeRingArgs {
    /// The scenario file; its cell count must be a whole number of six-cell modules.
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,
    /// Stop after this long (e.g. 30s, 10m, 1h) instead of at Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_span)]
    run_for: Option<Span>,
}

/// Cells per Tesla module board.
const CELLS_PER_BOARD: u16 = cellwarden_core::proto::tesla::regs::CELLS as u16;
/// How often the plant steps: far finer than anything that changes with the contactors open.
const PLANT_STEP_MS: u64 = 100;

/// Runs `serve-ring`; the error says why the scenario cannot be served.
pub fn serve_ring(args: &ServeRingArgs) -> Result<(), String> {
    let scenario = scenario::load(&args.scenario).map_err(|err| err.to_string())?;
    let boards = boards(scenario.config.cell_count)
        .map_err(|why| format!("{}: {why}", args.scenario.display()))?;
    let plant = Plant::new(&scenario.plant, scenario.seed);
    let mut spec = RingSpec::new(usize::from(boards));
    if let Some(section) = &scenario.boards {
        spec.bleed_ohm = section.balance_ohm;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    runtime.block_on(serve(plant, spec, args.run_for))
}

/// The number of boards for `cells` cells.
fn boards(cells: u16) -> Result<u8, String> {
    if cells % CELLS_PER_BOARD != 0 {
        return Err(format!(
            "the scenario supervises {cells} cells, which is not a whole number of Tesla modules \
             (six cells each); serve-ring emulates Tesla module boards only"
        ));
    }
    match u8::try_from(cells / CELLS_PER_BOARD) {
        Ok(n) if (1..=MAX_MODULES).contains(&n) => Ok(n),
        _ => Err(format!(
            "the scenario needs {} boards; one ring addresses 1 to {MAX_MODULES}",
            cells / CELLS_PER_BOARD
        )),
    }
}

#[cfg(unix)]
async fn serve(plant: Plant, spec: RingSpec, run_for: Option<Span>) -> Result<(), String> {
    use std::io::Write as _;

    use cellwarden_core::Duration;
    use cellwarden_io::{Clock, Pty};
    use cellwarden_sim::ring_server::{PlantAnalog, RingServer};

    let pty = Pty::open().map_err(|err| format!("cannot open a pseudo-terminal: {err}"))?;
    let Pty { controller, terminal, path } = pty;
    println!("ring on {path} ({TESLA_BAUD} baud, {} boards)", spec.boards);
    // The path is what the user (or a test reading the pipe) waits for.
    let _ = std::io::stdout().flush();

    let clock = Clock::start();
    let source = PlantAnalog::new(plant, Duration::from_millis(PLANT_STEP_MS), clock.now());
    let ring = Ring::new(&spec);
    // This runtime serves the ring alone, so it may block its thread for precise timing.
    let server = RingServer::new(ring, source, controller).fine_timing(true);
    let stop = async {
        let limit = run_for.map(|span| std::time::Duration::from_micros(span.micros()));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = sleep_for(limit) => {}
        }
    };
    let served = server.run(clock, stop).await.map_err(|err| format!("{path}: {err}"))?;
    // The terminal side stays open until here, so that the outside program may close and
    // reopen the port without ending the server.
    drop(terminal);
    eprintln!(
        "stopped after {:.1} s: {} bytes from the master, {} bytes to it",
        clock.now().as_micros() as f64 / 1e6,
        served.counters.bytes_in,
        served.counters.bytes_out
    );
    Ok(())
}

#[cfg(not(unix))]
async fn serve(_plant: Plant, _spec: RingSpec, _run_for: Option<Span>) -> Result<(), String> {
    Err("serve-ring needs pseudo-terminals, which this platform does not have".to_owned())
}

/// Sleeps for `limit`, or forever without one.
async fn sleep_for(limit: Option<std::time::Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

fn parse_span(text: &str) -> Result<Span, String> {
    Span::parse(text)
}

#[cfg(test)]
mod tests {
    use super::boards;

    #[test]
    fn cell_counts_map_to_whole_boards_only() {
        assert_eq!(boards(96), Ok(16));
        assert_eq!(boards(6), Ok(1));
        assert!(boards(16).is_err_and(|why| why.contains("not a whole number")));
        assert!(boards(0).is_err());
        assert!(boards(6 * 63).is_err());
    }
}
