//! The server side: a hub that serves named virtual buses to socketcand clients and lets the
//! simulator take part in each bus through a [`HubPort`].
//!
//! Each bus has members: raw-mode TCP clients and local ports. A frame one member sends goes
//! into every other member's queue of the same bus, never back to the sender. Queues are
//! bounded and filled without waiting: when a member does not keep up (a stalled client, a
//! local port nobody reads), its newest frames are dropped and counted, and nobody else slows
//! down. A bus has no flow control either.
//!
//! The hub has no authentication: anyone who reaches its address can read and send on every
//! bus. Its places are bounded ([`HubLimits`]): a connection that is not in raw mode within the
//! handshake time, or that goes idle (nothing from the client and nothing to it) for the idle
//! time, is closed with an `< error ... >` saying why, so that idle connections cannot keep a
//! real client out; a connection that finds every place taken is refused the same way.
//!
//! One task accepts connections; each connection is a task of its own that does the handshake,
//! then relays between its socket and its queue. The member table is shared behind a mutex
//! that is never held across a wait. Dropping the hub stops the accept task and with it every
//! connection; local ports stay usable among themselves.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration as StdDuration;

use cellwarden_core::proto::can::Frame;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::conn::{Conn, Incoming};
use super::wire::{self, Message, Stamp};

/// Connections served at once by default; more are closed at once with an error message.
pub const MAX_CLIENTS: usize = 64;
/// Frames waiting for one TCP client before its newest are dropped.
pub const CLIENT_QUEUE: usize = 256;
/// Frames waiting for one local port before its newest are dropped.
pub const LOCAL_QUEUE: usize = 1024;
/// How long a client may take by default from connecting to raw mode before it is disconnected.
pub const HUB_HANDSHAKE_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// How long by default a raw-mode client may go with nothing sent by it or to it before it is
/// disconnected. A listener on a live bus is never idle: every frame it receives counts.
pub const HUB_IDLE_TIMEOUT: StdDuration = StdDuration::from_secs(600);
/// How long one write to a client may block before the client counts as gone.
pub const WRITE_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// The pause between the rawmode `< ok >` and the first frame to a client. python-can reads
/// the `< ok >` with one `recv` and compares it with the exact string, so a frame must not
/// arrive in the same read; the pause gives the client time to take the `< ok >` alone.
/// Frames that arrive meanwhile wait in the client's queue.
pub const RAWMODE_SETTLE: StdDuration = StdDuration::from_millis(100);
/// The pause after a failed accept (e.g. out of file descriptors), so as not to spin.
const ACCEPT_BACKOFF: StdDuration = StdDuration::from_millis(50);

/// The bounds a hub keeps its connections in (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubLimits {
    /// Connections served at once, in the handshake or in raw mode.
    pub max_clients: usize,
    /// How long a connection may take from its first byte to raw mode.
    pub handshake_timeout: StdDuration,
    /// How long a raw-mode connection may go with no message from the client and no frame to
    /// it.
    pub idle_timeout: StdDuration,
}

impl Default for HubLimits {
    fn default() -> HubLimits {
        HubLimits {
            max_clients: MAX_CLIENTS,
            handshake_timeout: HUB_HANDSHAKE_TIMEOUT,
            idle_timeout: HUB_IDLE_TIMEOUT,
        }
    }
}

/// A socketcand server for virtual buses (see the module documentation).
#[derive(Debug)]
pub struct SocketcandHub {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// The simulator's own place on one bus of a hub.
#[derive(Debug)]
pub struct HubPort {
    name: String,
    member: Membership,
    rx: mpsc::Receiver<Delivery>,
}

/// What a hub has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubCounters {
    /// TCP connections accepted.
    pub connections: u64,
    /// Connections refused: unknown bus, too many clients, or no handshake in time.
    pub refused: u64,
    /// Raw-mode connections closed because they were idle for the idle time.
    pub idle_closed: u64,
    /// Clients in raw mode now.
    pub clients: usize,
    /// Frames sent by members (clients and local ports).
    pub frames_in: u64,
    /// Frames put into members' queues.
    pub delivered: u64,
    /// Frames dropped because a member's queue was full.
    pub dropped: u64,
    /// Messages from clients that were malformed, oversized or not text.
    pub bad_messages: u64,
    /// Bytes from clients outside any message (counted when a connection ends).
    pub garbage_bytes: u64,
}

impl SocketcandHub {
    /// Listens on `addr` (port 0 picks a free port) and serves `buses` with the default
    /// [`HubLimits`]. Must be called inside a tokio runtime; the hub runs in tasks of that
    /// runtime until dropped.
    pub async fn bind(addr: SocketAddr, buses: &[&str]) -> io::Result<SocketcandHub> {
        SocketcandHub::bind_with(addr, buses, HubLimits::default()).await
    }

    /// [`bind`](Self::bind) with other limits.
    pub async fn bind_with(
        addr: SocketAddr,
        buses: &[&str],
        limits: HubLimits,
    ) -> io::Result<SocketcandHub> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        if limits.max_clients == 0 {
            return Err(invalid("a socketcand hub needs room for at least one client".to_owned()));
        }
        if limits.handshake_timeout.is_zero() || limits.idle_timeout.is_zero() {
            return Err(invalid("a socketcand hub's timeouts must be longer than 0s".to_owned()));
        }
        if buses.is_empty() {
            return Err(invalid("a socketcand hub needs at least one bus".to_owned()));
        }
        for (index, bus) in buses.iter().enumerate() {
            if !wire::valid_bus_name(bus) {
                return Err(invalid(format!(
                    "bus name `{bus}`: expected 1 to {} printable characters without spaces \
                     or angle brackets",
                    wire::MAX_BUS_NAME_LEN
                )));
            }
            if buses[..index].contains(bus) {
                return Err(invalid(format!("bus {bus} is named twice")));
            }
        }
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let table = Table {
            buses: buses
                .iter()
                .map(|name| Bus { name: (*name).to_owned(), members: vec![] })
                .collect(),
            next_id: 0,
            counters: HubCounters::default(),
        };
        let shared = Arc::new(Shared { table: Mutex::new(table), limits });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(SocketcandHub { local_addr, shared, accept })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bus names, in the order given to [`bind`](Self::bind).
    pub fn buses(&self) -> Vec<String> {
        self.shared.table().buses.iter().map(|bus| bus.name.clone()).collect()
    }

    /// A new local member of bus `name`: it receives every frame the other members send from
    /// now on, and what it sends reaches all of them. Each call makes another member.
    pub fn bus(&self, name: &str) -> io::Result<HubPort> {
        let index = self.shared.bus_index(name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("the hub has no bus {name}; it serves {}", self.buses().join(", ")),
            )
        })?;
        let (member, rx) = Shared::join(&self.shared, index, false, LOCAL_QUEUE);
        Ok(HubPort { name: name.to_owned(), member, rx })
    }

    /// What the hub has done so far.
    pub fn counters(&self) -> HubCounters {
        self.shared.table().counters()
    }
}

impl Drop for SocketcandHub {
    fn drop(&mut self) {
        // The accept task owns the connection tasks: aborting it drops and aborts them too.
        self.accept.abort();
    }
}

impl HubPort {
    /// The bus this port is on.
    pub fn bus(&self) -> &str {
        &self.name
    }

    /// Sends `frame` to every other member of the bus. Never waits: members that do not keep
    /// up lose it (see the module documentation). Does not fail; async and fallible only to
    /// match the other ports.
    pub async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.send_now(frame);
        Ok(())
    }

    /// [`send`](Self::send) outside async code.
    pub fn send_now(&self, frame: &Frame) {
        self.member.shared.fan_out(self.member.bus, self.member.id, *frame);
    }

    /// The next frame another member sent. Cancel safe.
    pub async fn recv(&mut self) -> io::Result<Frame> {
        self.recv_stamped().await.map(|(frame, _)| frame)
    }

    /// The next frame with the wall-clock time the hub took it in.
    pub async fn recv_stamped(&mut self) -> io::Result<(Frame, Stamp)> {
        // The table holds the sending side until this port is dropped, so the channel stays
        // open; the error is for completeness.
        let delivery = self.rx.recv().await.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "the hub port was closed")
        })?;
        Ok((delivery.frame, delivery.at))
    }

    /// A frame if one is waiting now.
    pub fn try_recv(&mut self) -> Option<Frame> {
        self.rx.try_recv().ok().map(|delivery| delivery.frame)
    }

    /// Frames this port lost because its queue was full.
    pub fn dropped(&self) -> u64 {
        let table = self.member.shared.table();
        table.buses[self.member.bus]
            .members
            .iter()
            .find(|member| member.id == self.member.id)
            .map_or(0, |member| member.dropped)
    }
}

/// A frame in a member's queue, with the wall-clock time the hub took it in.
#[derive(Clone, Copy, Debug)]
struct Delivery {
    frame: Frame,
    at: Stamp,
}

#[derive(Debug)]
struct Shared {
    table: Mutex<Table>,
    limits: HubLimits,
}

#[derive(Debug)]
struct Table {
    buses: Vec<Bus>,
    next_id: u64,
    counters: HubCounters,
}

#[derive(Debug)]
struct Bus {
    name: String,
    members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    id: u64,
    remote: bool,
    tx: mpsc::Sender<Delivery>,
    dropped: u64,
}

/// A place in the member table, given up on drop (also when a connection task is aborted).
#[derive(Debug)]
struct Membership {
    shared: Arc<Shared>,
    bus: usize,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut table = self.shared.table();
        table.buses[self.bus].members.retain(|member| member.id != self.id);
    }
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // Nothing panics while holding the lock; should it ever, the table is still
        // consistent (every change is a single push, retain or counter update).
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bus_index(&self, name: &str) -> Option<usize> {
        self.table().buses.iter().position(|bus| bus.name == name)
    }

    fn join(
        shared: &Arc<Shared>,
        bus: usize,
        remote: bool,
        capacity: usize,
    ) -> (Membership, mpsc::Receiver<Delivery>) {
        let (tx, rx) = mpsc::channel(capacity);
        let mut table = shared.table();
        let id = table.next_id;
        table.next_id += 1;
        table.buses[bus].members.push(Member { id, remote, tx, dropped: 0 });
        (Membership { shared: Arc::clone(shared), bus, id }, rx)
    }

    fn fan_out(&self, bus: usize, from: u64, frame: Frame) {
        let delivery = Delivery { frame, at: Stamp::now() };
        let mut table = self.table();
        let Table { buses, counters, .. } = &mut *table;
        counters.frames_in += 1;
        for member in buses[bus].members.iter_mut().filter(|member| member.id != from) {
            match member.tx.try_send(delivery) {
                Ok(()) => counters.delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    member.dropped += 1;
                    counters.dropped += 1;
                }
                // A member whose task has ended but whose membership is not dropped yet.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    fn count(&self, update: impl FnOnce(&mut HubCounters)) {
        update(&mut self.table().counters);
    }
}

impl Table {
    fn counters(&self) -> HubCounters {
        let clients = self.buses.iter().flat_map(|bus| &bus.members).filter(|m| m.remote).count();
        HubCounters { clients, ..self.counters }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    shared.count(|c| c.connections += 1);
                    let max = shared.limits.max_clients;
                    if sessions.len() >= max {
                        shared.count(|c| c.refused += 1);
                        let why = format!("too many clients: all {max} places are taken");
                        // Best effort, without waiting: the client may not be reading.
                        let _ = stream.try_write(wire::format_error(&why).as_bytes());
                        continue;
                    }
                    sessions.spawn(session(stream, Arc::clone(&shared)));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// One client from greeting to goodbye.
async fn session(stream: TcpStream, shared: Arc<Shared>) {
    // Frames are small and periodic: send each at once rather than batching.
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream);
    let limit = shared.limits.handshake_timeout;
    let joined = tokio::time::timeout(limit, handshake(&mut conn, &shared)).await;
    if let Ok(Ok(Some(joined))) = joined {
        let _ = relay(&mut conn, &shared, joined).await;
    } else if joined.is_err() {
        shared.count(|c| c.refused += 1);
        let why = format!("no rawmode within {}: closing", seconds(limit));
        let _ = conn.get_ref().try_write(wire::format_error(&why).as_bytes());
    }
    let garbage = conn.scan_counters().garbage_bytes;
    shared.count(|c| c.garbage_bytes += garbage);
}

/// Greets, opens a bus and enters raw mode; `None` when the client leaves or is refused first.
async fn handshake(
    conn: &mut Conn<TcpStream>,
    shared: &Arc<Shared>,
) -> io::Result<Option<(Membership, mpsc::Receiver<Delivery>)>> {
    write(conn, wire::HI).await?;
    let mut bus = None;
    loop {
        let Some(incoming) = conn.next().await? else { return Ok(None) };
        let message = match incoming {
            Incoming::Message(message) => message,
            Incoming::Malformed(err) => {
                shared.count(|c| c.bad_messages += 1);
                write(conn, &wire::format_error(&err.to_string())).await?;
                continue;
            }
            Incoming::Discarded => {
                shared.count(|c| c.bad_messages += 1);
                continue;
            }
        };
        match (message, bus) {
            (Message::Open(name), None) => match shared.bus_index(&name) {
                Some(index) => {
                    write(conn, wire::OK).await?;
                    bus = Some(index);
                }
                None => {
                    shared.count(|c| c.refused += 1);
                    write(conn, &wire::format_error(&format!("no such bus {name}"))).await?;
                    return Ok(None);
                }
            },
            (Message::RawMode, Some(index)) => {
                // Join before the `< ok >`, so that no frame sent after it is missed; the
                // relay writes nothing before the `< ok >` is out.
                let joined = Shared::join(shared, index, true, CLIENT_QUEUE);
                write(conn, wire::OK).await?;
                return Ok(Some(joined));
            }
            (Message::Echo, _) => write(conn, wire::ECHO).await?,
            (Message::Open(_), Some(_)) => {
                write(conn, &wire::format_error("a bus is already open")).await?;
            }
            (Message::RawMode | Message::Send(_), None) => {
                write(conn, &wire::format_error("open a bus first")).await?;
            }
            (Message::Send(_), Some(_)) => {
                write(conn, &wire::format_error("switch to rawmode first")).await?;
            }
            _ => write(conn, wire::UNKNOWN_COMMAND).await?,
        }
    }
}

/// Relays between a raw-mode client and its bus until the client leaves or stalls.
async fn relay(
    conn: &mut Conn<TcpStream>,
    shared: &Arc<Shared>,
    (member, mut rx): (Membership, mpsc::Receiver<Delivery>),
) -> io::Result<()> {
    let settle = tokio::time::sleep(RAWMODE_SETTLE);
    tokio::pin!(settle);
    let mut settled = false;
    let idle_limit = shared.limits.idle_timeout;
    let idle = tokio::time::sleep(idle_limit);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            incoming = conn.next() => match incoming? {
                None => return Ok(()),
                Some(Incoming::Message(Message::Send(frame))) => {
                    shared.fan_out(member.bus, member.id, frame);
                }
                Some(Incoming::Message(Message::Echo)) => write(conn, wire::ECHO).await?,
                Some(Incoming::Message(Message::Open(_) | Message::RawMode)) => {
                    write(conn, &wire::format_error("already in rawmode")).await?;
                }
                Some(Incoming::Message(_)) => write(conn, wire::UNKNOWN_COMMAND).await?,
                Some(Incoming::Malformed(err)) => {
                    shared.count(|c| c.bad_messages += 1);
                    write(conn, &wire::format_error(&err.to_string())).await?;
                }
                Some(Incoming::Discarded) => shared.count(|c| c.bad_messages += 1),
            },
            () = &mut settle, if !settled => settled = true,
            delivery = rx.recv(), if settled => {
                // The table holds the sender while `member` lives, so this is always `Some`.
                let Some(delivery) = delivery else { return Ok(()) };
                write(conn, &wire::format_frame(&delivery.frame, delivery.at)).await?;
            }
            () = &mut idle => {
                shared.count(|c| c.idle_closed += 1);
                let why = format!("idle for {}: closing", seconds(idle_limit));
                // Best effort, without waiting: an idle client may not be reading either.
                let _ = conn.get_ref().try_write(wire::format_error(&why).as_bytes());
                return Ok(());
            }
        }
        // Whatever happened above was traffic (the settle pause ends once).
        idle.as_mut().reset(tokio::time::Instant::now() + idle_limit);
    }
}

/// `10s`, `0.2s`: a timeout in an error message.
fn seconds(d: StdDuration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// One message as one write, given up after [`WRITE_TIMEOUT`].
async fn write(conn: &mut Conn<TcpStream>, message: &str) -> io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, conn.write(message)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")),
    }
}
