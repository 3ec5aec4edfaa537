//! The log format of can-utils' `candump -l`, written by the simulator and replayed from real
//! captures.
//!
//! One frame per line: `(1795257579.781249) can0 351#330209240924D501`, that is the Unix time in
//! seconds with exactly six decimals in parentheses, the interface name, and the frame as the
//! identifier (3 hex digits for an 11-bit one, 8 for a 29-bit one), `#`, and the data bytes as
//! two hex digits each (none for an empty frame: `123#`). Remote frames (`123#R`) and CAN FD
//! frames (`123##1...`) are refused with an error that says so: the simulator carries classic
//! data frames only.
//!
//! Parsing is strict and never panics: every error says what is wrong and quotes (a bounded
//! amount of) the offending text. Written hex is upper-case, as candump writes it; read hex may
//! be either case.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use cellwarden_core::proto::can::{Frame, MAX_EXTENDED_ID, MAX_STANDARD_ID};
use cellwarden_core::{Duration, Instant};

/// The longest line [`Replay`] reads; a candump line with an 8-byte extended frame and a
/// 15-character interface name is under 60 bytes.
pub const MAX_LINE_LEN: usize = 256;
/// The longest interface name (Linux's IFNAMSIZ less the terminating zero).
pub const MAX_IFACE_LEN: usize = 15;

/// One parsed log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Whole seconds of the timestamp.
    pub sec: u64,
    /// Microseconds of the timestamp (below one million).
    pub usec: u32,
    /// The interface name.
    pub iface: String,
    /// The frame.
    pub frame: Frame,
}

impl LogLine {
    /// The timestamp in microseconds (saturating).
    pub fn micros(&self) -> u64 {
        self.sec.saturating_mul(1_000_000).saturating_add(u64::from(self.usec))
    }
}

/// Why a line is not a candump log line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The line does not start with `(SECONDS.MICROSECONDS)`.
    Timestamp(String),
    /// No interface name after the timestamp, or not one separating space.
    MissingInterface,
    /// The interface name is too long or has characters an interface name cannot have.
    Interface(String),
    /// No frame after the interface name.
    MissingFrame,
    /// The frame has no `#` between identifier and data.
    MissingHash(String),
    /// The identifier is not 3 or 8 hex digits.
    Id(String),
    /// The identifier is out of range for its width.
    IdOutOfRange { id: u32, extended: bool },
    /// A remote transmission request (`#R`).
    RemoteFrame,
    /// A CAN FD frame (`##`).
    FdFrame,
    /// The data is not pairs of hex digits.
    Data(String),
    /// More than eight data bytes.
    TooManyBytes(usize),
    /// Something after the frame.
    Trailing(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Timestamp(text) => write!(
                f,
                "expected a timestamp `(SECONDS.MICROSECONDS)` with six decimals at the start, \
                 found `{text}`"
            ),
            ParseError::MissingInterface => {
                f.write_str("expected one space and an interface name after the timestamp")
            }
            ParseError::Interface(text) => write!(
                f,
                "interface name `{text}` is not 1 to {MAX_IFACE_LEN} printable characters \
                 without `#`"
            ),
            ParseError::MissingFrame => {
                f.write_str("expected one space and a frame `ID#DATA` after the interface name")
            }
            ParseError::MissingHash(text) => {
                write!(f, "frame `{text}` has no `#` between identifier and data")
            }
            ParseError::Id(text) => write!(
                f,
                "identifier `{text}` is not 3 hex digits (11-bit) or 8 hex digits (29-bit)"
            ),
            ParseError::IdOutOfRange { id, extended: false } => {
                write!(f, "identifier {id:03X} does not fit 11 bits (at most 7FF)")
            }
            ParseError::IdOutOfRange { id, extended: true } => {
                write!(f, "identifier {id:08X} does not fit 29 bits (at most 1FFFFFFF)")
            }
            ParseError::RemoteFrame => {
                f.write_str("remote frames (`#R`) are not supported: only data frames are")
            }
            ParseError::FdFrame => {
                f.write_str("CAN FD frames (`##`) are not supported: only classic CAN frames are")
            }
            ParseError::Data(text) => {
                write!(f, "data `{text}` is not pairs of hex digits")
            }
            ParseError::TooManyBytes(n) => {
                write!(f, "{n} data bytes; a classic CAN frame carries at most 8")
            }
            ParseError::Trailing(text) => write!(f, "unexpected text after the frame: `{text}`"),
        }
    }
}

impl std::error::Error for ParseError {}

/// One line, without a line ending: `(SEC.USEC) IFACE ID#DATA`.
pub fn format_line(at_sec: u64, at_usec: u32, iface: &str, frame: &Frame) -> String {
    let mut line = format!("({at_sec}.{at_usec:06}) {iface} ");
    push_frame(&mut line, frame);
    line
}

/// Parses one line; a trailing `\n` or `\r\n` is allowed, anything else extra is an error.
pub fn parse_line(line: &str) -> Result<LogLine, ParseError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);

    let (sec, usec, rest) = parse_timestamp(line)?;
    let rest = rest.strip_prefix(' ').ok_or(ParseError::MissingInterface)?;
    let (iface, rest) = rest.split_once(' ').ok_or(if rest.is_empty() {
        ParseError::MissingInterface
    } else {
        ParseError::MissingFrame
    })?;
    if iface.is_empty() {
        return Err(ParseError::MissingInterface);
    }
    let iface_ok = iface.len() <= MAX_IFACE_LEN
        && iface.bytes().all(|b| b.is_ascii_graphic() && b != b'#' && b != b'(' && b != b')');
    if !iface_ok {
        return Err(ParseError::Interface(quote(iface)));
    }
    if let Some(end) = rest.find(char::is_whitespace) {
        if end == 0 {
            return Err(ParseError::MissingFrame);
        }
        return Err(ParseError::Trailing(quote(&rest[end..])));
    }
    if rest.is_empty() {
        return Err(ParseError::MissingFrame);
    }
    let frame = parse_frame(rest)?;
    Ok(LogLine { sec, usec, iface: iface.to_owned(), frame })
}

/// Writes candump lines to any writer. Core time zero is `epoch` after the Unix epoch, so a
/// simulated run can be stamped as if it happened at a chosen date.
#[derive(Debug)]
pub struct LogWriter<W> {
    out: W,
    epoch_us: u64,
}

impl<W: Write> LogWriter<W> {
    /// A writer whose core time zero is `epoch` after 1970-01-01 00:00 UTC.
    pub fn new(out: W, epoch: std::time::Duration) -> LogWriter<W> {
        LogWriter { out, epoch_us: u64::try_from(epoch.as_micros()).unwrap_or(u64::MAX) }
    }

    /// Writes `frame`, seen on `iface` at core time `at`, as one line.
    pub fn write(&mut self, at: Instant, iface: &str, frame: &Frame) -> io::Result<()> {
        let micros = self.epoch_us.saturating_add(at.as_micros());
        // The remainder of a division by one million fits u32.
        let line = format_line(micros / 1_000_000, (micros % 1_000_000) as u32, iface, frame);
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One frame from a log, timed from the log's first frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// Time since the first frame of the log; a frame stamped earlier than the first counts as
    /// zero.
    pub offset: Duration,
    /// The interface it was logged on.
    pub iface: String,
    /// The frame.
    pub frame: Frame,
    /// Its line number (from 1).
    pub line: usize,
}

/// A line of a log that could not be read.
#[derive(Debug)]
pub enum ReplayError {
    /// Reading failed.
    Io(io::Error),
    /// Line `line` is not a candump line.
    Parse { line: usize, error: ParseError },
    /// Line `line` is longer than [`MAX_LINE_LEN`] bytes.
    TooLong { line: usize },
    /// Line `line` is not UTF-8.
    NotText { line: usize },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Io(err) => write!(f, "cannot read the log: {err}"),
            ReplayError::Parse { line, error } => write!(f, "line {line}: {error}"),
            ReplayError::TooLong { line } => {
                write!(f, "line {line}: longer than {MAX_LINE_LEN} bytes; not a candump log?")
            }
            ReplayError::NotText { line } => write!(f, "line {line}: not UTF-8 text"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// The frames of a candump log in file order, skipping blank lines and `#` comments. An error
/// names its line; iteration may continue past it with the next line.
#[derive(Debug)]
pub struct Replay<R> {
    reader: R,
    line: usize,
    first_us: Option<u64>,
    buf: Vec<u8>,
    done: bool,
}

impl Replay<BufReader<File>> {
    /// Opens the log at `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let file = File::open(path)
            .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
        Ok(Replay::from_reader(BufReader::new(file)))
    }
}

impl<R: BufRead> Replay<R> {
    /// Reads a log from `reader`.
    pub fn from_reader(reader: R) -> Replay<R> {
        Replay { reader, line: 0, first_us: None, buf: Vec::new(), done: false }
    }

    /// Reads the next line into `buf`; `false` at the end. A line longer than the limit is
    /// consumed to its end and reported.
    fn read_line(&mut self) -> Result<bool, ReplayError> {
        self.buf.clear();
        let limit = MAX_LINE_LEN as u64 + 1;
        let n = (&mut self.reader).take(limit).read_until(b'\n', &mut self.buf);
        let n = n.map_err(ReplayError::Io)?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.buf.len() > MAX_LINE_LEN && self.buf.last() != Some(&b'\n') {
            self.skip_rest()?;
            return Err(ReplayError::TooLong { line: self.line });
        }
        Ok(true)
    }

    /// Consumes the rest of an over-long line in bounded pieces.
    fn skip_rest(&mut self) -> Result<(), ReplayError> {
        loop {
            self.buf.clear();
            let n = (&mut self.reader)
                .take(4096)
                .read_until(b'\n', &mut self.buf)
                .map_err(ReplayError::Io)?;
            if n == 0 || self.buf.last() == Some(&b'\n') {
                return Ok(());
            }
        }
    }
}

impl<R: BufRead> Iterator for Replay<R> {
    type Item = Result<Replayed, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.read_line() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(err @ ReplayError::Io(_)) => {
                    self.done = true;
                    return Some(Err(err));
                }
                Err(err) => return Some(Err(err)),
            }
            let line = self.line;
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                return Some(Err(ReplayError::NotText { line }));
            };
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let parsed = match parse_line(text) {
                Ok(parsed) => parsed,
                Err(error) => return Some(Err(ReplayError::Parse { line, error })),
            };
            let at_us = parsed.micros();
            let first_us = *self.first_us.get_or_insert(at_us);
            return Some(Ok(Replayed {
                offset: Duration::from_micros(at_us.saturating_sub(first_us)),
                iface: parsed.iface,
                frame: parsed.frame,
                line,
            }));
        }
        None
    }
}

/// Appends `ID#DATA` in candump's spelling.
fn push_frame(out: &mut String, frame: &Frame) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = if frame.is_extended() {
        write!(out, "{:08X}#", frame.id())
    } else {
        write!(out, "{:03X}#", frame.id())
    };
    for byte in frame.data() {
        let _ = write!(out, "{byte:02X}");
    }
}

/// `(SEC.USEC)` at the start of `line`; returns the rest.
fn parse_timestamp(line: &str) -> Result<(u64, u32, &str), ParseError> {
    let bad = || ParseError::Timestamp(quote(line.split(' ').next().unwrap_or(line)));
    let inner = line.strip_prefix('(').ok_or_else(bad)?;
    let (stamp, rest) = inner.split_once(')').ok_or_else(bad)?;
    let (sec, usec) = stamp.split_once('.').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(sec) || sec.len() > 20 || !digits(usec) || usec.len() != 6 {
        return Err(bad());
    }
    let sec = sec.parse::<u64>().map_err(|_| bad())?;
    let usec = usec.parse::<u32>().map_err(|_| bad())?;
    Ok((sec, usec, rest))
}

/// `ID#DATA`.
fn parse_frame(text: &str) -> Result<Frame, ParseError> {
    let (id_text, data_text) =
        text.split_once('#').ok_or_else(|| ParseError::MissingHash(quote(text)))?;
    if data_text.starts_with('#') {
        return Err(ParseError::FdFrame);
    }
    if data_text.starts_with(['R', 'r']) {
        return Err(ParseError::RemoteFrame);
    }
    let extended = match id_text.len() {
        3 => false,
        8 => true,
        _ => return Err(ParseError::Id(quote(id_text))),
    };
    let id = parse_hex(id_text).ok_or_else(|| ParseError::Id(quote(id_text)))?;
    let max = if extended { MAX_EXTENDED_ID } else { MAX_STANDARD_ID };
    if id > max {
        return Err(ParseError::IdOutOfRange { id, extended });
    }
    if data_text.len() % 2 != 0 || !data_text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ParseError::Data(quote(data_text)));
    }
    let count = data_text.len() / 2;
    if count > 8 {
        return Err(ParseError::TooManyBytes(count));
    }
    let mut data = [0u8; 8];
    for (slot, pair) in data.iter_mut().zip(data_text.as_bytes().chunks_exact(2)) {
        *slot = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
    }
    // Identifier range and length were both checked above.
    Frame::new(id, extended, &data[..count]).map_err(|_| ParseError::IdOutOfRange { id, extended })
}

/// A string of 1 to 8 hex digits (no sign, no prefix).
fn parse_hex(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// The value of one hex digit already checked to be one.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// At most 40 characters of `text` for an error message.
fn quote(text: &str) -> String {
    const MAX: usize = 40;
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX).collect();
    if chars.next().is_some() { format!("{head}...") } else { head }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_line_parses_and_formats_back() {
        let text = "(1795257579.781249) can0 351#330209240924D501";
        let line = parse_line(text).unwrap();
        assert_eq!((line.sec, line.usec, line.iface.as_str()), (1_795_257_579, 781_249, "can0"));
        assert_eq!(line.frame.id(), 0x351);
        assert_eq!(format_line(line.sec, line.usec, &line.iface, &line.frame), text);
    }

    #[test]
    fn empty_and_extended_frames() {
        let line = parse_line("(1.000000) vcan0 123#").unwrap();
        assert!(line.frame.is_empty());
        let line = parse_line("(0.000001) can1 1fffffff#00\r\n").unwrap();
        assert!(line.frame.is_extended());
        assert_eq!(line.frame.id(), 0x1FFF_FFFF);
    }
}
