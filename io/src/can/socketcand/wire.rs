//! socketcand's messages on the wire, without IO: a [`Scanner`] that finds `< ... >` messages in
//! a byte stream, [`parse`] for one message's text and the `format_*` functions for the ones we
//! send.
//!
//! The scanner takes bytes one at a time, so a message split across reads and several messages
//! in one read come out the same. It holds at most [`MAX_MESSAGE_LEN`] bytes: anything longer,
//! anything with a byte that is not printable ASCII, and a message cut short by the next `<` is
//! discarded and reported, and bytes between messages are dropped and counted. Whatever the
//! peer sends, nothing here panics or grows.

use std::fmt;
use std::time::SystemTime;

use cellwarden_core::proto::can::{Frame, MAX_EXTENDED_ID, MAX_STANDARD_ID};

/// The longest message the scanner keeps, brackets included. The longest one we understand,
/// `< frame 1FFFFFFF 18446744073709551615.999999 0011223344556677 >`, has 65 bytes.
pub const MAX_MESSAGE_LEN: usize = 128;
/// The longest bus name `< open BUS >` may carry.
pub const MAX_BUS_NAME_LEN: usize = 16;

/// The server's greeting.
pub const HI: &str = "< hi >";
/// The server's acknowledgement of `open` and `rawmode`.
pub const OK: &str = "< ok >";
/// A client's request for raw mode.
pub const RAWMODE: &str = "< rawmode >";
/// The echo request, and its reply.
pub const ECHO: &str = "< echo >";
/// The reply to a command the server does not know.
pub const UNKNOWN_COMMAND: &str = "< error unknown command >";

/// A message received (by either side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `< hi >`
    Hi,
    /// `< ok >`
    Ok,
    /// `< echo >`
    Echo,
    /// `< rawmode >`
    RawMode,
    /// `< open BUS >`
    Open(String),
    /// `< send ID DLC B0 .. >`, from a client.
    Send(Frame),
    /// `< frame ID SEC.USEC DATA >`, from the server.
    Frame(Frame, Stamp),
    /// `< error TEXT >`; the text is everything after `error`, words joined by single spaces.
    Error(String),
    /// A well-formed message whose first word we do not know (e.g. `bcmmode`).
    Unknown(String),
}

/// A wall-clock timestamp as socketcand writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// Seconds since the Unix epoch.
    pub sec: u64,
    /// Microseconds (below one million).
    pub usec: u32,
}

impl Stamp {
    /// `at` as a stamp; moments before 1970 are zero.
    pub fn from_system(at: SystemTime) -> Stamp {
        let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        Stamp { sec: since.as_secs(), usec: since.subsec_micros() }
    }

    /// Now, by the wall clock.
    pub fn now() -> Stamp {
        Stamp::from_system(SystemTime::now())
    }
}

/// Why a message's text is not a message we understand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageError(&'static str);

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for MessageError {}

/// Why the scanner threw bytes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discard {
    /// A message longer than [`MAX_MESSAGE_LEN`].
    Oversized,
    /// A message with a byte that is not printable ASCII.
    NotText,
    /// A `<` before the previous message's `>`.
    Unterminated,
}

/// What the scanner has thrown away so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanCounters {
    /// Bytes outside any message (whitespace excepted).
    pub garbage_bytes: u64,
    /// Messages discarded (each reported once by [`Scanner::push`]).
    pub discarded: u64,
}

/// Finds `< ... >` messages in a byte stream (see the module documentation).
#[derive(Debug, Default)]
pub struct Scanner {
    buf: Vec<u8>,
    state: State,
    counters: ScanCounters,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Between messages.
    #[default]
    Between,
    /// After a `<`, collecting into `buf`.
    Inside,
    /// In a message already discarded, waiting for its `>` (or the next `<`).
    Skipping,
}

impl Scanner {
    /// A scanner between messages.
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// Takes one byte. Returns a message's text (between the brackets) when `byte` completes
    /// one, or the reason when it makes the scanner discard one.
    pub fn push(&mut self, byte: u8) -> Option<Result<&str, Discard>> {
        match (self.state, byte) {
            (State::Inside, b'<') => {
                self.begin();
                self.counters.discarded += 1;
                Some(Err(Discard::Unterminated))
            }
            (_, b'<') => {
                self.begin();
                None
            }
            (State::Inside, b'>') => {
                self.state = State::Between;
                // Only printable ASCII and whitespace get into `buf`, so this is UTF-8.
                match std::str::from_utf8(&self.buf) {
                    Ok(text) => Some(Ok(text)),
                    Err(_) => Some(Err(Discard::NotText)),
                }
            }
            (State::Inside, _) => {
                let text = byte.is_ascii_graphic() || byte.is_ascii_whitespace();
                // The brackets count toward the limit.
                if !text || self.buf.len() + 2 >= MAX_MESSAGE_LEN {
                    self.state = State::Skipping;
                    self.buf.clear();
                    self.counters.discarded += 1;
                    return Some(Err(if text { Discard::Oversized } else { Discard::NotText }));
                }
                self.buf.push(byte);
                None
            }
            (State::Skipping, b'>') => {
                self.state = State::Between;
                None
            }
            (State::Skipping, _) => None,
            (State::Between, _) => {
                if !byte.is_ascii_whitespace() {
                    self.counters.garbage_bytes += 1;
                }
                None
            }
        }
    }

    /// What has been thrown away so far.
    pub fn counters(&self) -> ScanCounters {
        self.counters
    }

    fn begin(&mut self) {
        self.buf.clear();
        self.state = State::Inside;
    }
}

/// Parses a message's text (what [`Scanner::push`] returns).
pub fn parse(text: &str) -> Result<Message, MessageError> {
    let mut words = text.split_ascii_whitespace();
    let command = words.next().ok_or(MessageError("empty message"))?;
    let message = match command {
        "hi" => Message::Hi,
        "ok" => Message::Ok,
        "echo" => Message::Echo,
        "rawmode" => Message::RawMode,
        "open" => {
            let bus = words.next().ok_or(MessageError("open: no bus name"))?;
            if bus.len() > MAX_BUS_NAME_LEN {
                return Err(MessageError("open: bus name longer than 16 characters"));
            }
            Message::Open(bus.to_owned())
        }
        "send" => return parse_send(words),
        "frame" => return parse_frame(words),
        "error" => return Ok(Message::Error(words.collect::<Vec<_>>().join(" "))),
        other => return Ok(Message::Unknown(other.to_owned())),
    };
    match words.next() {
        Some(_) => Err(MessageError("unexpected words after the command")),
        None => Ok(message),
    }
}

/// `< open BUS >`.
pub fn format_open(bus: &str) -> String {
    format!("< open {bus} >")
}

/// `< send ID DLC B0 .. >` with the identifier as 3 or 8 upper-case hex digits and the bytes as
/// two each.
pub fn format_send(frame: &Frame) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(48);
    // Writing to a String cannot fail.
    let _ = write!(out, "< send {} {:X} ", IdText(frame), frame.len());
    for byte in frame.data() {
        let _ = write!(out, "{byte:02X} ");
    }
    out.push('>');
    out
}

/// `< frame ID SEC.USEC DATA >` as socketcand writes it: the data concatenated, upper-case, and
/// for an empty frame nothing between the two spaces around it.
pub fn format_frame(frame: &Frame, at: Stamp) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64);
    // Writing to a String cannot fail.
    let _ = write!(out, "< frame {} {}.{:06} ", IdText(frame), at.sec, at.usec);
    for byte in frame.data() {
        let _ = write!(out, "{byte:02X}");
    }
    out.push_str(" >");
    out
}

/// `< error TEXT >`.
pub fn format_error(text: &str) -> String {
    format!("< error {text} >")
}

/// Whether `name` can be a bus name: 1 to 16 printable characters without brackets.
pub fn valid_bus_name(name: &str) -> bool {
    (1..=MAX_BUS_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// An identifier as socketcand spells it: `%03X` or `%08X`.
struct IdText<'a>(&'a Frame);

impl fmt::Display for IdText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_extended() {
            write!(f, "{:08X}", self.0.id())
        } else {
            write!(f, "{:03X}", self.0.id())
        }
    }
}

fn parse_send<'a>(mut words: impl Iterator<Item = &'a str>) -> Result<Message, MessageError> {
    let (id, extended) = parse_id(words.next())?;
    let dlc = words
        .next()
        .and_then(|w| parse_hex(w, 2))
        .ok_or(MessageError("send: the length is not a hex number"))?;
    if dlc > 8 {
        return Err(MessageError("send: more than 8 data bytes"));
    }
    let mut data = [0u8; 8];
    let mut count = 0usize;
    for word in words {
        if count == 8 {
            return Err(MessageError("send: more than 8 data bytes"));
        }
        // Two hex digits at most, so the value fits a byte.
        data[count] = parse_hex(word, 2)
            .ok_or(MessageError("send: a data byte is not 1 or 2 hex digits"))?
            as u8;
        count += 1;
    }
    if count != dlc as usize {
        return Err(MessageError("send: the number of data bytes differs from the length"));
    }
    frame(id, extended, &data[..count]).map(Message::Send)
}

fn parse_frame<'a>(mut words: impl Iterator<Item = &'a str>) -> Result<Message, MessageError> {
    let (id, extended) = parse_id(words.next())?;
    let stamp = parse_stamp(words.next())?;
    let data_text = words.next().unwrap_or("");
    if words.next().is_some() {
        return Err(MessageError("frame: unexpected words after the data"));
    }
    if data_text.len() % 2 != 0 || data_text.len() > 16 {
        return Err(MessageError("frame: the data is not 0 to 8 pairs of hex digits"));
    }
    let mut data = [0u8; 8];
    let count = data_text.len() / 2;
    for (index, slot) in data.iter_mut().take(count).enumerate() {
        let pair = data_text.get(index * 2..index * 2 + 2).unwrap_or("");
        // Two hex digits at most, so the value fits a byte.
        *slot = parse_hex(pair, 2)
            .ok_or(MessageError("frame: the data is not 0 to 8 pairs of hex digits"))?
            as u8;
    }
    frame(id, extended, &data[..count]).map(|frame| Message::Frame(frame, stamp))
}

/// An identifier of any width: up to 3 hex digits is an 11-bit identifier, 4 to 8 a 29-bit one
/// (socketcand and python-can write exactly 3 or 8).
fn parse_id(word: Option<&str>) -> Result<(u32, bool), MessageError> {
    let word = word.ok_or(MessageError("no identifier"))?;
    let id = parse_hex(word, 8).ok_or(MessageError("the identifier is not 1 to 8 hex digits"))?;
    let extended = word.len() > 3;
    let max = if extended { MAX_EXTENDED_ID } else { MAX_STANDARD_ID };
    if id > max {
        return Err(MessageError("the identifier is out of range for its width"));
    }
    Ok((id, extended))
}

/// `SEC.USEC` with 1 to 6 decimals.
fn parse_stamp(word: Option<&str>) -> Result<Stamp, MessageError> {
    const BAD: MessageError = MessageError("frame: the timestamp is not SECONDS.MICROSECONDS");
    let (sec, frac) = word.and_then(|w| w.split_once('.')).ok_or(BAD)?;
    let digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(sec, 20) || !digits(frac, 6) {
        return Err(BAD);
    }
    let sec = sec.parse::<u64>().map_err(|_| BAD)?;
    let mut usec = frac.parse::<u32>().map_err(|_| BAD)?;
    for _ in frac.len()..6 {
        usec *= 10;
    }
    Ok(Stamp { sec, usec })
}

/// 1 to `max_digits` hex digits, either case, no sign or prefix.
fn parse_hex(word: &str, max_digits: usize) -> Option<u32> {
    if word.is_empty() || word.len() > max_digits || !word.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(word, 16).ok()
}

fn frame(id: u32, extended: bool, data: &[u8]) -> Result<Frame, MessageError> {
    Frame::new(id, extended, data).map_err(|_| MessageError("not a valid CAN frame"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(bytes: &[u8]) -> (Vec<String>, Vec<Discard>) {
        let mut scanner = Scanner::new();
        let (mut found, mut discarded) = (Vec::new(), Vec::new());
        for &byte in bytes {
            match scanner.push(byte) {
                Some(Ok(text)) => found.push(text.to_owned()),
                Some(Err(why)) => discarded.push(why),
                None => {}
            }
        }
        (found, discarded)
    }

    #[test]
    fn messages_come_out_whatever_the_framing() {
        let (found, discarded) = scan_all(b"< hi >< ok >  junk< frame 123 1.000000  >");
        assert_eq!(found, [" hi ", " ok ", " frame 123 1.000000  "]);
        assert!(discarded.is_empty());
    }

    #[test]
    fn broken_messages_are_discarded_and_the_scanner_recovers() {
        let mut long = b"< send ".to_vec();
        long.extend(std::iter::repeat_n(b'A', 500));
        long.extend(b" >< ok >< bad\x00byte >< cut < echo >");
        let (found, discarded) = scan_all(&long);
        assert_eq!(found, [" ok ", " echo "]);
        assert_eq!(discarded, [Discard::Oversized, Discard::NotText, Discard::Unterminated]);
    }

    #[test]
    fn python_can_send_is_understood() {
        let message = parse(" send 351 6 33 2 b8 b b8 b ").unwrap();
        let expected = Frame::standard(0x351, &[0x33, 0x02, 0xB8, 0x0B, 0xB8, 0x0B]).unwrap();
        assert_eq!(message, Message::Send(expected));
        assert_eq!(format_send(&expected), "< send 351 6 33 02 B8 0B B8 0B >");
    }

    #[test]
    fn frames_parse_and_format() {
        let frame = Frame::standard(0x359, &[0, 0, 0, 0, 5, 0x50, 0x4E, 0]).unwrap();
        let at = Stamp { sec: 1_795_257_579, usec: 781_249 };
        let text = format_frame(&frame, at);
        assert_eq!(text, "< frame 359 1795257579.781249 0000000005504E00 >");
        assert_eq!(parse(&text[1..text.len() - 1]), Ok(Message::Frame(frame, at)));
        let empty = Frame::standard(0x123, &[]).unwrap();
        let text = format_frame(&empty, Stamp { sec: 1, usec: 0 });
        assert_eq!(text, "< frame 123 1.000000  >");
        let extended = Frame::new(0x18FF_50E5, true, &[1]).unwrap();
        assert_eq!(
            parse("frame 18ff50e5 2.5 01"),
            Ok(Message::Frame(extended, Stamp { sec: 2, usec: 500_000 }))
        );
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        for text in [
            "",
            "send",
            "send 800 0",
            "send 123 9 1 2 3 4 5 6 7 8 9",
            "send 123 2 1",
            "send 123 1 100",
            "send +12 0",
            "send 123456789 0",
            "frame 123",
            "frame 123 1.1234567",
            "frame 123 1.0 012",
            "open",
            "open abcdefghijklmnopq",
            "hi there",
        ] {
            assert!(parse(text).is_err(), "{text:?} parsed");
        }
        assert_eq!(parse("bcmmode"), Ok(Message::Unknown("bcmmode".into())));
        assert_eq!(parse("error  no  such bus"), Ok(Message::Error("no such bus".into())));
    }
}
