//! The core's Tesla bus master against the emulated ring of module boards over real
//! pseudo-terminals, in real time: first both in this process (each in its own task), then
//! against the `cellwarden-sim serve-ring` binary.
//!
//! Nothing here asserts how long anything takes. Every wait has a generous limit so that a
//! loaded two-core machine still passes, and a hung run fails with a message instead of
//! hanging the test suite.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cellwarden_core::proto::tesla::master::{Event, MasterConfig, Reading};
use cellwarden_core::proto::tesla::regs::status;
use cellwarden_io::{Clock, MasterDriver, MasterHandle, PTY_REPLY_MARGIN_US, Pty, open_tesla_port};
use cellwarden_sim::devices::tesla::{Ring, RingSpec};
use cellwarden_sim::plant::Plant;
use cellwarden_sim::ring_server::{FixedAnalog, RingServer};
use cellwarden_sim::scenario;
use tokio::sync::oneshot;
use tokio::time::timeout;

/// The limit on each whole test's bus traffic.
const OVERALL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_master_reads_and_balances_the_emulated_ring_over_a_pty() {
    const BOARDS: u8 = 4;
    let cell_v = |board: usize, cell: usize| 3.70 + 0.01 * (board * 6 + cell) as f64;
    let source = FixedAnalog::new(usize::from(BOARDS), cell_v, 25.0);
    let expected = source.clone();

    let pty = Pty::open().expect("open a pseudo-terminal pair");
    let ring = Ring::new(&RingSpec::new(usize::from(BOARDS)));
    let (stop_ring, ring_stopped) = oneshot::channel::<()>();
    let server = RingServer::new(ring, source, pty.controller);
    let server = tokio::spawn(server.run(Clock::start(), async {
        let _ = ring_stopped.await;
    }));

    let (driver, mut master) =
        MasterDriver::new(pty_config(BOARDS), pty.terminal).expect("a valid configuration");
    let driver = tokio::spawn(driver.run());

    let bus = async {
        enumerated(&mut master, BOARDS).await;
        let readings = cycles(&mut master, 3, BOARDS).await;
        for reading in &readings {
            let b = usize::from(reading.module);
            check_reading(reading, &expected.cells_v[b * 6..b * 6 + 6], &expected.temps_c[b * 2..]);
        }

        // Cells 1 and 3 of the second board. The master writes the mask at the end of a
        // cycle; a later reading of the board shows its balance timer running.
        master.set_balance(1, 0b0000_0101).await.expect("the driver runs");
        balancing(&mut master, 1).await;
    };
    timeout(OVERALL, bus).await.expect("the bus test finished in time");

    // The ring stops first and hands its side of the pty back still open, so that the
    // driver's port stays healthy until the driver has stopped too.
    let _ = stop_ring.send(());
    let served = server.await.expect("the server task").expect("the port stayed open");
    drop(master);
    let master = driver.await.expect("the driver task").expect("the port stayed open");
    drop(served.port);

    assert_eq!(master.board(1).map(|b| b.balance_sent), Some(0b0000_0101));
    let board = served.ring.board(1).expect("board 1");
    assert_eq!(board.balance_mask(), 0b0000_0101, "the balance outputs of board 1");
    assert!(served.ring.boards().iter().enumerate().all(|(i, b)| i == 1 || b.balance_mask() == 0));
    let mut bleed_a = vec![0.0; usize::from(BOARDS) * 6];
    served.ring.bleed_currents_a(&expected.cells_v, &mut bleed_a);
    let bleeding: Vec<usize> = (0..bleed_a.len()).filter(|&k| bleed_a[k] > 0.0).collect();
    assert_eq!(bleeding, [6, 8], "cells bleeding (cells 1 and 3 of board 1)");
    // Three checked cycles, then at least the one that wrote the balance mask.
    assert!(master.counters().cycles >= 4, "{:?}", master.counters());
}

#[tokio::test]
async fn the_master_reads_the_serve_ring_binary() {
    let path = workspace().join("scenarios/precharge_success.toml");
    let scenario = scenario::load(&path).expect("the scenario loads");
    let boards = u8::try_from(scenario.config.cell_count / 6).expect("a ring's worth of boards");
    // The plant at rest, as the server builds it: with its contactors open and no current the
    // cells hold their voltages over the few seconds of this test, far inside 1 mV.
    let plant = Plant::new(&scenario.plant, scenario.seed);
    let cells_v = plant.group_voltages().to_vec();
    let mut temps_c = Vec::new();
    plant.sensor_temps_c(&mut temps_c);

    // `--for` ends the server even if this test dies without killing it.
    let mut server = Server::start(&path, "2m");
    let line = server.first_line(OVERALL);
    let pts = line
        .strip_prefix("ring on ")
        .and_then(|rest| rest.split_once(' '))
        .map(|(pts, _)| pts.to_owned())
        .unwrap_or_else(|| panic!("not the line naming the pty: {line:?}"));
    assert!(line.ends_with(&format!("(612500 baud, {boards} boards)")), "{line}");

    let port = open_tesla_port(&pts).expect("open the server's pty");
    let (driver, mut master) =
        MasterDriver::new(pty_config(boards), port).expect("a valid configuration");
    let driver = tokio::spawn(driver.run());
    let bus = async {
        enumerated(&mut master, boards).await;
        for reading in cycles(&mut master, 3, boards).await {
            let b = usize::from(reading.module);
            check_reading(&reading, &cells_v[b * 6..b * 6 + 6], &temps_c[b * 2..]);
        }
    };
    timeout(OVERALL, bus).await.expect("the bus test finished in time");
    drop(master);
    let master = driver.await.expect("the driver task").expect("the port stayed open");
    assert!(master.counters().cycles >= 3);
    server.stop();
}

/// The preset master for `boards` boards with the reply margin a pty needs.
fn pty_config(boards: u8) -> MasterConfig {
    MasterConfig { reply_margin_us: PTY_REPLY_MARGIN_US, ..MasterConfig::tesla(boards) }
}

/// Waits for an enumeration that found `boards` boards. One that found fewer (possible only
/// when a busy machine delays replies past every retry) is repeated by the master after its
/// `rediscover_ms`.
async fn enumerated(master: &mut MasterHandle, boards: u8) {
    loop {
        if let Event::Enumerated { found, .. } = master.next_event().await.expect("the driver runs")
        {
            if found == boards {
                return;
            }
        }
    }
}

/// Waits for a reading of board `module` whose status shows its balance timer running.
async fn balancing(master: &mut MasterHandle, module: u8) {
    loop {
        match master.next_event().await.expect("the driver runs") {
            Event::Reading(r) if r.module == module && r.status & status::CBT != 0 => return,
            Event::Enumerated { found, .. } => panic!("re-enumerated ({found} found)"),
            _ => {}
        }
    }
}

/// The readings of the next `count` cycles in which every one of `boards` boards was measured.
/// Cycles in which a board missed (a reply later than the margin on a busy machine, retried
/// until the cycle gave up on it) are skipped rather than failed: this test checks values, not
/// timing.
async fn cycles(master: &mut MasterHandle, count: usize, boards: u8) -> Vec<Reading> {
    let mut readings = Vec::new();
    let mut cycle = Vec::new();
    let mut complete = 0;
    while complete < count {
        match master.next_event().await.expect("the driver runs") {
            Event::Reading(reading) => cycle.push(reading),
            Event::CycleDone { measured, .. } => {
                if measured == boards {
                    complete += 1;
                    readings.append(&mut cycle);
                }
                cycle.clear();
            }
            Event::Faults { .. } | Event::Lost { .. } | Event::Recovered { .. } => {}
            Event::Enumerated { found, .. } => panic!("re-enumerated ({found} found)"),
        }
    }
    readings
}

/// `reading` shows `cells_v` within 1 mV and the first two of `temps_c` within 0.2 °C.
fn check_reading(reading: &Reading, cells_v: &[f64], temps_c: &[f64]) {
    for (k, (got, want)) in reading.cells.iter().zip(cells_v).enumerate() {
        let want_mv = (want * 1000.0).round() as i32;
        assert!(
            (got.0 - want_mv).abs() <= 1,
            "board {} cell {}: {} mV instead of {want_mv} mV",
            reading.module,
            k + 1,
            got.0
        );
    }
    for (k, (got, want)) in reading.temperatures.iter().zip(temps_c).enumerate() {
        let want_dc = (want * 10.0).round() as i32;
        assert!(reading.temperature_valid[k], "board {} TS{} invalid", reading.module, k + 1);
        assert!(
            (got.0 - want_dc).abs() <= 2,
            "board {} TS{}: {} dC instead of {want_dc} dC",
            reading.module,
            k + 1,
            got.0
        );
    }
}

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A `cellwarden-sim serve-ring` process, killed when dropped.
struct Server {
    child: Child,
}

impl Server {
    fn start(scenario: &Path, run_for: &str) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_cellwarden-sim"))
            .arg("serve-ring")
            .arg(scenario)
            .args(["--for", run_for])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cellwarden-sim serve-ring");
        Server { child }
    }

    /// The first line the server prints, waited for up to `limit`.
    fn first_line(&mut self, limit: Duration) -> String {
        let stdout = self.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // A thread, because reading a pipe blocks and has no timeout of its own.
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        match rx.recv_timeout(limit) {
            Ok(Ok(line)) if !line.is_empty() => line.trim_end().to_owned(),
            outcome => panic!("no pty line from serve-ring ({outcome:?}); {}", self.stderr()),
        }
    }

    /// Ends the server and returns what it wrote on stderr.
    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        format!("stderr: {text:?}")
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
