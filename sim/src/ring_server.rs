//! The emulated ring of Tesla module boards ([`Ring`]) served on a byte stream in real time,
//! usually the controlling side of a pseudo-terminal whose other side a BMS opens as its
//! serial port.
//!
//! [`RingServer::run`] feeds every byte it reads to the ring at the moment it read it, sleeps
//! until the ring's next deadline and writes back what the ring's model of the 612500-baud
//! wire says has reached the master by then; a pty itself has no baud rate, so this pacing is
//! what makes replies take as long as they would on the real wire (plus the scheduler's
//! wake-up latency, about a millisecond). The boards' analogue inputs come from an
//! [`AnalogSource`]: fixed values ([`FixedAnalog`]) or a plant stepped in real time
//! ([`PlantAnalog`]), which the boards' balance resistors discharge.

use std::future::Future;
use std::io;

use cellwarden_core::proto::tesla::regs::{CELLS, THERMISTORS};
use cellwarden_core::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::devices::tesla::{Analog, Ring};
use crate::plant::Plant;
use cellwarden_io::time::{Clock, sleep_until_some};

/// Deadlines at most this far off are waited for by sleeping the thread when
/// [`RingServer::fine_timing`] is on.
pub const FINE_WAIT: Duration = Duration::from_millis(2);

/// What the boards' inputs see, as time passes.
pub trait AnalogSource {
    /// Brings the values to `now`. `bleed_a` holds the boards' balance current of every cell
    /// (six per board, board 0 first) from now on.
    fn advance(&mut self, now: Instant, bleed_a: &[f64]);
    /// The values as of the last [`advance`](Self::advance).
    fn analog(&self) -> Analog<'_>;
    /// When [`advance`](Self::advance) is next wanted, if ever.
    fn next_step(&self) -> Option<Instant>;
}

/// Cell voltages and temperatures that never change; balancing does not discharge them.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedAnalog {
    /// Six cell voltages per board, V, board 0 first.
    pub cells_v: Vec<f64>,
    /// Two thermistor temperatures per board, °C.
    pub temps_c: Vec<f64>,
}

/// A plant stepped in real time with the inverter at zero current (its contactors stay open),
/// discharged only by the boards' balance resistors.
#[derive(Debug)]
pub struct PlantAnalog {
    plant: Plant,
    step: Duration,
    last: Instant,
    cells_v: Vec<f64>,
    temps_c: Vec<f64>,
    /// The bleed currents last given to the plant, to touch it only on a change.
    bleed_a: Vec<f64>,
}

/// Bytes that crossed the port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// From the master.
    pub bytes_in: u64,
    /// To the master.
    pub bytes_out: u64,
}

/// Serves a [`Ring`] on a port; run it in a task of its own.
#[derive(Debug)]
pub struct RingServer<P, A> {
    ring: Ring,
    source: A,
    port: P,
    fine_timing: bool,
}

/// What a stopped [`RingServer`] hands back.
#[derive(Debug)]
pub struct Served<P, A> {
    /// The ring as the master left it.
    pub ring: Ring,
    /// The analogue source.
    pub source: A,
    /// The port, still open: closing the controlling side of a pty ends the other side's
    /// reads with an error, so the caller chooses when.
    pub port: P,
    /// Bytes that crossed the port.
    pub counters: ServerCounters,
}

impl<P: AsyncRead + AsyncWrite + Unpin, A: AnalogSource> RingServer<P, A> {
    /// A server for `ring` on `port` with inputs from `source`.
    pub fn new(ring: Ring, source: A, port: P) -> RingServer<P, A> {
        RingServer { ring, source, port, fine_timing: false }
    }

    /// Waits for deadlines nearer than [`FINE_WAIT`] by sleeping the thread instead of with
    /// tokio's timer. That timer counts whole milliseconds, so replies otherwise reach the
    /// master one to two milliseconds after their due time, which is as long as the
    /// collin80-style masters wait for a whole reply; the thread's own sleep is precise to
    /// about a tenth of a millisecond. It blocks the runtime's thread for up to [`FINE_WAIT`]
    /// at a time: use it only on a runtime of its own, as `serve-ring` does.
    pub fn fine_timing(mut self, on: bool) -> RingServer<P, A> {
        self.fine_timing = on;
        self
    }

    /// Serves until `stop` completes, then hands the ring, the source and the port back. `clock` is the
    /// source's time line (its epoch is core time zero for the ring too). Fails when the port
    /// fails or closes.
    pub async fn run(
        self,
        clock: Clock,
        stop: impl Future<Output = ()>,
    ) -> io::Result<Served<P, A>> {
        let RingServer { mut ring, mut source, mut port, fine_timing } = self;
        let mut counters = ServerCounters::default();
        let mut buf = [0u8; READ_CHUNK];
        let mut out = Vec::new();
        let mut bleed_a = vec![0.0; ring.board_count() * CELLS];
        let mut stop = std::pin::pin!(stop);
        loop {
            let now = clock.now();
            if source.next_step().is_some_and(|at| at <= now) {
                ring.bleed_currents_a(source.analog().cells_v, &mut bleed_a);
                source.advance(now, &bleed_a);
                ring.observe(now, &source.analog());
            }
            if ring.poll_timeout().is_some_and(|at| at <= now) {
                ring.handle_timeout(now, &source.analog());
            }
            out.clear();
            ring.take_output(now, &mut out);
            if !out.is_empty() {
                port.write_all(&out).await?;
                port.flush().await?;
                counters.bytes_out += out.len() as u64;
            }
            // Everything due by `now` is done: a deadline not after it would only spin.
            let soonest = now + Duration::from_micros(1);
            let next = [ring.poll_timeout(), source.next_step()].into_iter().flatten().min();
            let next = next.map(|at| at.max(soonest));
            let near = next.map(|at| at.saturating_since(now)).filter(|wait| *wait <= FINE_WAIT);
            if let Some(wait) = near.filter(|_| fine_timing) {
                std::thread::sleep(std::time::Duration::from_micros(wait.as_micros()));
                continue;
            }
            let deadline = next.map(|at| clock.to_runtime(at));
            tokio::select! {
                biased;
                () = &mut stop => return Ok(Served { ring, source, port, counters }),
                read = port.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the port closed"));
                    }
                    counters.bytes_in += n as u64;
                    ring.receive(clock.now(), &buf[..n], &source.analog());
                }
                () = sleep_until_some(deadline) => {}
            }
        }
    }
}

impl FixedAnalog {
    /// `boards` boards whose cells read `cell_v(board, cell)` and whose two thermistors read
    /// `temp_c`.
    pub fn new(boards: usize, cell_v: impl Fn(usize, usize) -> f64, temp_c: f64) -> FixedAnalog {
        let cells_v =
            (0..boards).flat_map(|b| (0..CELLS).map(move |c| (b, c))).map(|(b, c)| cell_v(b, c));
        FixedAnalog { cells_v: cells_v.collect(), temps_c: vec![temp_c; boards * THERMISTORS] }
    }
}

impl AnalogSource for FixedAnalog {
    fn advance(&mut self, _now: Instant, _bleed_a: &[f64]) {}

    fn analog(&self) -> Analog<'_> {
        Analog::new(&self.cells_v, &self.temps_c)
    }

    fn next_step(&self) -> Option<Instant> {
        None
    }
}

impl PlantAnalog {
    /// Steps `plant` every `step` from `now` on.
    pub fn new(plant: Plant, step: Duration, now: Instant) -> PlantAnalog {
        let mut source = PlantAnalog {
            plant,
            // A zero step would never let time pass.
            step: step.max(Duration::from_millis(1)),
            last: now,
            cells_v: Vec::new(),
            temps_c: Vec::new(),
            bleed_a: Vec::new(),
        };
        source.refresh();
        source
    }

    /// The plant.
    pub fn plant(&self) -> &Plant {
        &self.plant
    }

    fn refresh(&mut self) {
        self.cells_v.clear();
        self.cells_v.extend_from_slice(self.plant.group_voltages());
        self.plant.sensor_temps_c(&mut self.temps_c);
    }
}

impl AnalogSource for PlantAnalog {
    fn advance(&mut self, now: Instant, bleed_a: &[f64]) {
        let dt = now.saturating_since(self.last);
        self.last = now;
        // The bleed set at the previous step applied over the interval that ends now.
        self.plant.step(dt.as_micros() as f64 / 1e6, 0.0);
        if self.bleed_a != bleed_a {
            for (group, amps) in bleed_a.iter().enumerate() {
                self.plant.set_group_bleed_a(group, *amps);
            }
            self.bleed_a.clear();
            self.bleed_a.extend_from_slice(bleed_a);
        }
        self.refresh();
    }

    fn analog(&self) -> Analog<'_> {
        Analog::new(&self.cells_v, &self.temps_c)
    }

    fn next_step(&self) -> Option<Instant> {
        Some(self.last + self.step)
    }
}

/// Bytes taken from the port at once.
const READ_CHUNK: usize = 256;
