//! One socketcand TCP connection as a stream of messages, shared by the client and the hub.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::wire::{self, Message, MessageError, ScanCounters, Scanner};

/// Bytes taken from the socket at once.
const READ_CHUNK: usize = 4096;

/// What [`Conn::next`] found.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A message we understand.
    Message(Message),
    /// A complete `< ... >` whose contents we do not understand.
    Malformed(MessageError),
    /// A message the scanner threw away (see [`wire::Discard`]).
    Discarded,
}

/// A byte stream read as socketcand messages and written one message per write.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    io: S,
    scanner: Scanner,
    buf: Box<[u8; READ_CHUNK]>,
    start: usize,
    end: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(crate) fn new(io: S) -> Conn<S> {
        Conn { io, scanner: Scanner::new(), buf: Box::new([0; READ_CHUNK]), start: 0, end: 0 }
    }

    /// The next message or discard; `None` when the peer closed the connection.
    ///
    /// Cancel safe: the only wait is a read into the buffer, and bytes already read stay in
    /// it for the next call.
    pub(crate) async fn next(&mut self) -> io::Result<Option<Incoming>> {
        loop {
            while self.start < self.end {
                let byte = self.buf[self.start];
                self.start += 1;
                match self.scanner.push(byte) {
                    None => {}
                    Some(Ok(text)) => {
                        return Ok(Some(match wire::parse(text) {
                            Ok(message) => Incoming::Message(message),
                            Err(err) => Incoming::Malformed(err),
                        }));
                    }
                    Some(Err(_)) => return Ok(Some(Incoming::Discarded)),
                }
            }
            let n = self.io.read(&mut self.buf[..]).await?;
            if n == 0 {
                return Ok(None);
            }
            self.start = 0;
            self.end = n;
        }
    }

    /// Writes one message as one write and flushes it.
    pub(crate) async fn write(&mut self, message: &str) -> io::Result<()> {
        self.io.write_all(message.as_bytes()).await?;
        self.io.flush().await
    }

    /// What the scanner has thrown away so far.
    pub(crate) fn scan_counters(&self) -> ScanCounters {
        self.scanner.counters()
    }

    /// The underlying stream.
    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }
}
