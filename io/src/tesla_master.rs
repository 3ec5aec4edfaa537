//! The core's Tesla bus master ([`Master`]) driven over a real byte stream: a serial port at
//! 612500 baud, or a pseudo-terminal.
//!
//! [`MasterDriver::run`] is the whole adapter: one task owns the master and the port and waits
//! for whichever comes first, bytes from the port, the master's next deadline or a command from
//! the caller; it hands that to the master, writes every frame the master wants sent and
//! forwards every event. It decides nothing about the battery: what to balance comes in through
//! [`MasterHandle::set_balance`], readings go out through [`MasterHandle::next_event`].
//!
//! The reply margin. The master gives up on a reply `reply_margin_us` after the wire time of
//! request and reply. A UART wired to the ring needs little (the preset's 2 ms). A USB serial
//! adapter batches received bytes for up to a few milliseconds before the host sees them, and
//! a pseudo-terminal to an emulated ring adds two trips through the kernel and the scheduler of
//! both programs; on a busy machine that is occasionally tens of milliseconds. Use a few
//! milliseconds for a USB adapter and about 20 ms for a pty ([`PTY_REPLY_MARGIN_US`]); a reply
//! that is later still only costs a retry.

use std::io;

use cellwarden_core::proto::tesla::master::{Event, Master, MasterConfig, MasterConfigError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::time::{Clock, sleep_until_some};

/// A reply margin for a ring behind a pseudo-terminal (see the module documentation).
pub const PTY_REPLY_MARGIN_US: u32 = 20_000;
/// A reply margin for a ring behind a USB serial adapter, whose driver delivers received bytes
/// in batches a few milliseconds apart.
pub const USB_REPLY_MARGIN_US: u32 = 5_000;

/// Owns a [`Master`] and a port; run it in a task of its own.
#[derive(Debug)]
pub struct MasterDriver<P> {
    config: MasterConfig,
    port: P,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
}

/// The caller's side of a running [`MasterDriver`]. Dropping it stops the driver.
#[derive(Debug)]
pub struct MasterHandle {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<Event>,
}

/// The driver has stopped (its task ended or failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the bus master driver has stopped")
    }
}

impl std::error::Error for Stopped {}

impl<P: AsyncRead + AsyncWrite + Unpin> MasterDriver<P> {
    /// A driver for a master with `config` on `port`. The master is built, and starts
    /// enumerating, when [`run`](Self::run) starts: its first deadline must not pass while the
    /// task waits to be spawned.
    pub fn new(
        config: MasterConfig,
        port: P,
    ) -> Result<(MasterDriver<P>, MasterHandle), MasterConfigError> {
        config.validate()?;
        let (command_tx, command_rx) = mpsc::channel(COMMAND_CHANNEL);
        let (event_tx, event_rx) = mpsc::channel(EVENT_CHANNEL);
        let driver = MasterDriver { config, port, commands: command_rx, events: event_tx };
        Ok((driver, MasterHandle { commands: command_tx, events: event_rx }))
    }

    /// Runs the bus until the [`MasterHandle`] is dropped, then returns the master (for its
    /// counters and board states). Core time zero is the start of the run. Fails when the
    /// port fails or closes.
    pub async fn run(self) -> io::Result<Master> {
        let MasterDriver { config, mut port, mut commands, events } = self;
        let clock = Clock::start();
        // `new` validated the settings, so this does not fail.
        let mut master = Master::new(config, clock.now())
            .map_err(|err| io::Error::other(format!("bus master settings: {err:?}")))?;
        let mut buf = [0u8; READ_CHUNK];
        // The new master already has its first frame and deadline waiting.
        loop {
            if !drain(&mut master, &mut port, &events).await? {
                return Ok(master);
            }
            let deadline = master.poll_timeout().map(|at| clock.to_runtime(at));
            tokio::select! {
                // Received bytes first: a reply that came in before its deadline was noticed
                // still counts.
                biased;
                read = port.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the port closed"));
                    }
                    master.handle_received(clock.now(), &buf[..n]);
                }
                command = commands.recv() => match command {
                    Some(Command::SetBalance { module, mask }) => master.set_balance(module, mask),
                    None => return Ok(master),
                },
                () = sleep_until_some(deadline) => {}
            }
            // Checked after every wake-up, not only when the sleep wins: a port that never
            // falls silent must not hold the master's deadlines off.
            let now = clock.now();
            if master.poll_timeout().is_some_and(|at| at <= now) {
                master.handle_timeout(now);
            }
        }
    }
}

impl MasterHandle {
    /// Asks the master to balance the cells in `mask` (bit k = cell k + 1) of board `module`
    /// (0 = nearest the master); see [`Master::set_balance`].
    pub async fn set_balance(&self, module: u8, mask: u8) -> Result<(), Stopped> {
        self.commands.send(Command::SetBalance { module, mask }).await.map_err(|_| Stopped)
    }

    /// The next event; `None` once the driver has stopped and every event has been taken.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// An event if one is waiting now.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }
}

/// What the caller asks of the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    SetBalance { module: u8, mask: u8 },
}

/// Events waiting for the caller. A caller that stops draining them pauses the driver (and so
/// the bus) rather than losing readings.
const EVENT_CHANNEL: usize = 256;
/// Commands waiting for the driver.
const COMMAND_CHANNEL: usize = 64;
/// Bytes taken from the port at once; the longest reply is 84.
const READ_CHUNK: usize = 256;

/// Writes everything the master wants sent and forwards its events; `false` when the caller
/// has gone.
async fn drain<P: AsyncWrite + Unpin>(
    master: &mut Master,
    port: &mut P,
    events: &mpsc::Sender<Event>,
) -> io::Result<bool> {
    let mut frame = [0u8; 4];
    let mut wrote = false;
    // The master keeps at most one frame ready, but the loop is bounded all the same.
    for _ in 0..8 {
        let Some(len) = master.poll_transmit(&mut frame) else { break };
        port.write_all(&frame[..len]).await?;
        wrote = true;
    }
    if wrote {
        port.flush().await?;
    }
    while let Some(event) = master.poll_event() {
        if events.send(event).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}
