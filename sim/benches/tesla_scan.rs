//! One full measurement cycle of 16 Tesla module boards: the core's bus master against the
//! register-level ring emulator, in virtual time.
//!
//! Two kinds of figure:
//! - **Simulated time** (printed first): how long one cycle takes on the wire at 612500 baud,
//!   with the boards' forwarding delay and the master's waits, next to the wire's physical
//!   minimum for the same bytes (every request and its reply back to back, nothing else), and
//!   the scans per second that gives. This is what decides how fresh the pack controller's
//!   data is; it does not depend on the machine.
//! - **CPU time** (criterion): what simulating one cycle costs on this machine.

use std::hint::black_box;

use cellwarden_core::proto::tesla::master::{Event, Master, MasterConfig};
use cellwarden_core::proto::tesla::wire_time;
use cellwarden_core::{Duration, Instant};
use cellwarden_sim::devices::tesla::{Analog, Ring, RingSpec};
use criterion::Criterion;

const BOARDS: u8 = 16;

/// A master and its ring, enumerated and set up, between two cycles.
struct Bench {
    master: Master,
    ring: Ring,
    now: Instant,
    cells: Vec<f64>,
    temps: Vec<f64>,
    rx: Vec<u8>,
    /// Bytes sent and received in the last cycle, and the wire time of each exchange.
    sent: usize,
    received: usize,
    exchanges: Duration,
}

impl Bench {
    fn new(read_crc: bool) -> Bench {
        let mut config = MasterConfig::tesla(BOARDS);
        config.read_crc = read_crc;
        // Back-to-back cycles: the scan period never holds a cycle back.
        config.scan_period_ms = 1;
        let now = Instant::ZERO;
        let mut bench = Bench {
            master: Master::new(config, now).expect("valid settings"),
            ring: Ring::new(&RingSpec::new(usize::from(BOARDS))),
            now,
            cells: (0..usize::from(BOARDS) * 6).map(|i| 3.7 + 0.001 * i as f64).collect(),
            temps: vec![25.0; usize::from(BOARDS) * 2],
            rx: Vec::with_capacity(64),
            sent: 0,
            received: 0,
            exchanges: Duration::ZERO,
        };
        // Enumeration, set-up and a first cycle.
        bench.cycle();
        bench.cycle();
        bench
    }

    /// Runs until the next cycle is done; returns its start and end.
    fn cycle(&mut self) -> (Instant, Instant) {
        self.sent = 0;
        self.received = 0;
        self.exchanges = Duration::ZERO;
        let mut tx = [0u8; 4];
        for _ in 0..100_000 {
            let analog = Analog::new(&self.cells, &self.temps);
            self.ring.take_output(self.now, &mut self.rx);
            if !self.rx.is_empty() {
                self.received += self.rx.len();
                self.master.handle_received(self.now, &self.rx);
                self.rx.clear();
            }
            if self.master.poll_timeout().is_some_and(|t| t <= self.now) {
                self.master.handle_timeout(self.now);
            }
            while let Some(n) = self.master.poll_transmit(&mut tx) {
                self.sent += n;
                let reply = reply_len(&tx[..n]);
                self.exchanges = self.exchanges.saturating_add(wire_time(n + reply));
                self.ring.receive(self.now, &tx[..n], &analog);
            }
            while let Some(event) = self.master.poll_event() {
                if let Event::CycleDone { started, finished, measured, .. } = event {
                    assert_eq!(measured, BOARDS, "every board measured");
                    return (started, finished);
                }
            }
            let next = [self.master.poll_timeout(), self.ring.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("something is always pending");
            self.now = next.max(self.now);
        }
        panic!("no cycle finished");
    }
}

/// Bytes that come back for a request (its reply or echo).
fn reply_len(request: &[u8]) -> usize {
    match cellwarden_core::proto::tesla::Request::decode(request) {
        Ok((r, _)) => r.reply_len(),
        Err(_) => request.len(),
    }
}

fn main() {
    for (style, read_crc) in
        [("TeslaBMS-style reads (3 bytes)", false), ("pyBMS-style reads (4 bytes)", true)]
    {
        let mut bench = Bench::new(read_crc);
        let (started, finished) = bench.cycle();
        let took = finished.saturating_since(started);
        let minimum = bench.exchanges;
        let scans = 1e6 / took.as_micros() as f64;
        println!(
            "tesla_scan/{style}: one cycle of {BOARDS} boards takes {:.2} ms simulated \
             ({scans:.0} scans/s); {} bytes out, {} back; the wire's minimum for the same \
             exchanges is {:.2} ms ({:.0} scans/s)",
            took.as_micros() as f64 / 1e3,
            bench.sent,
            bench.received,
            minimum.as_micros() as f64 / 1e3,
            1e6 / minimum.as_micros() as f64,
        );
    }

    let mut c = Criterion::default().configure_from_args();
    let mut bench = Bench::new(false);
    c.bench_function("tesla_scan/cpu time per simulated 16-board cycle", |b| {
        b.iter(|| black_box(bench.cycle()))
    });
    c.final_summary();
}
