//! The client side: one bus of a socketcand server (or of [`super::SocketcandHub`]) in raw
//! mode.

use std::io;
use std::time::Duration as StdDuration;

use cellwarden_core::proto::can::Frame;
use tokio::net::{TcpStream, ToSocketAddrs};

use super::conn::{Conn, Incoming};
use super::wire::{self, Message, Stamp};

/// How long the server may take over the whole handshake.
pub const HANDSHAKE_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// One bus of a socketcand server, in raw mode.
#[derive(Debug)]
pub struct SocketcandClient {
    conn: Conn<TcpStream>,
    bus: String,
    counters: ClientCounters,
}

/// What a client has skipped so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// `< error ... >` messages from the server.
    pub server_errors: u64,
    /// Well-formed messages other than frames (e.g. an unexpected `< ok >`).
    pub other_messages: u64,
    /// Complete messages that could not be parsed.
    pub malformed: u64,
    /// Messages the scanner discarded (oversized, not text, cut short).
    pub discarded: u64,
    /// Bytes outside any message.
    pub garbage_bytes: u64,
}

impl SocketcandClient {
    /// Connects to the server at `addr`, opens `bus` and switches to raw mode. Fails with the
    /// server's own words when it refuses, and after [`HANDSHAKE_TIMEOUT`] when it stalls.
    pub async fn connect(addr: impl ToSocketAddrs, bus: &str) -> io::Result<SocketcandClient> {
        if !wire::valid_bus_name(bus) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "socketcand bus name `{bus}`: expected 1 to {} printable characters \
                     without spaces or angle brackets",
                    wire::MAX_BUS_NAME_LEN
                ),
            ));
        }
        let stream = TcpStream::connect(addr).await?;
        // Frames are small and periodic: send each at once rather than batching.
        stream.set_nodelay(true)?;
        let mut client = SocketcandClient {
            conn: Conn::new(stream),
            bus: bus.to_owned(),
            counters: ClientCounters::default(),
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, client.handshake()).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("socketcand: no complete handshake for bus {bus} in time"),
                ));
            }
        }
        Ok(client)
    }

    /// Sends a frame to the bus.
    pub async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.conn.write(&wire::format_send(frame)).await
    }

    /// The next frame from the bus. Error messages and anything else that is not a frame are
    /// skipped and counted. Fails when the connection fails or closes. Cancel safe.
    pub async fn recv(&mut self) -> io::Result<Frame> {
        self.recv_stamped().await.map(|(frame, _)| frame)
    }

    /// The next frame with the server's timestamp; see [`recv`](Self::recv).
    pub async fn recv_stamped(&mut self) -> io::Result<(Frame, Stamp)> {
        loop {
            match self.next().await? {
                Message::Frame(frame, stamp) => return Ok((frame, stamp)),
                Message::Error(_) => self.counters.server_errors += 1,
                _ => self.counters.other_messages += 1,
            }
        }
    }

    /// The bus this client opened.
    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// What has been skipped so far.
    pub fn counters(&self) -> ClientCounters {
        let scan = self.conn.scan_counters();
        ClientCounters { garbage_bytes: scan.garbage_bytes, ..self.counters }
    }

    /// The server's address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.conn.get_ref().peer_addr()
    }

    async fn handshake(&mut self) -> io::Result<()> {
        self.expect_ok("the greeting", Message::Hi).await?;
        self.conn.write(&wire::format_open(&self.bus)).await?;
        self.expect_ok("open", Message::Ok).await?;
        self.conn.write(wire::RAWMODE).await?;
        self.expect_ok("rawmode", Message::Ok).await
    }

    /// Waits for `expected`; anything else is a failed handshake.
    async fn expect_ok(&mut self, step: &str, expected: Message) -> io::Result<()> {
        let message = self.next().await?;
        if message == expected {
            return Ok(());
        }
        let detail = match message {
            Message::Error(text) => format!("the server refused: {text}"),
            other => format!("unexpected reply {other:?}"),
        };
        Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("socketcand handshake for bus {} at {step}: {detail}", self.bus),
        ))
    }

    /// The next well-formed message; malformed and discarded ones are counted and skipped.
    async fn next(&mut self) -> io::Result<Message> {
        loop {
            match self.conn.next().await? {
                Some(Incoming::Message(message)) => return Ok(message),
                Some(Incoming::Malformed(_)) => self.counters.malformed += 1,
                Some(Incoming::Discarded) => self.counters.discarded += 1,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("socketcand: the server closed the connection (bus {})", self.bus),
                    ));
                }
            }
        }
    }
}
