//! CAN without a network: the in-memory bus, the candump log format, and the socketcand wire
//! format's scanner and parser on any bytes.

use std::io::Cursor;
use std::time::Duration as StdDuration;

use cellwarden_core::{Duration, Instant};
use cellwarden_io::can::candump::{ParseError, ReplayError};
use cellwarden_io::can::socketcand::wire::{self, Scanner};
use cellwarden_io::can::{Frame, LogWriter, MemoryBus, Replay, format_line, parse_line};
use proptest::prelude::*;

fn frame(id: u16, data: &[u8]) -> Frame {
    Frame::standard(id, data).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The in-memory bus

#[test]
fn memory_bus_fans_out_in_order_without_self_echo() {
    let mut bus = MemoryBus::new();
    let bms = bus.attach("bms");
    let inverter = bus.attach("inverter");
    let logger = bus.attach("logger");
    let (a, b, c) = (frame(0x351, &[1]), frame(0x355, &[2]), frame(0x305, &[]));
    bus.send(bms, Instant::from_millis(1), a);
    bus.send(bms, Instant::from_millis(2), b);
    bus.send(inverter, Instant::from_millis(3), c);

    assert_eq!(bus.recv(inverter), Some((Instant::from_millis(1), a)));
    assert_eq!(bus.recv(inverter), Some((Instant::from_millis(2), b)));
    assert_eq!(bus.recv(inverter), None, "the inverter got its own frame back");
    assert_eq!(bus.pending(logger), 3);
    let seen: Vec<Frame> = std::iter::from_fn(|| bus.recv(logger)).map(|(_, f)| f).collect();
    assert_eq!(seen, [a, b, c]);
    assert_eq!(bus.recv(bms), Some((Instant::from_millis(3), c)));
    assert_eq!(bus.recv(bms), None);
    assert!(bus.nodes().all(|node| bus.dropped(node) == 0));
}

#[test]
fn memory_bus_queues_are_bounded_and_drop_the_oldest() {
    let mut bus = MemoryBus::with_capacity(4);
    let sender = bus.attach("sender");
    let idle = bus.attach("idle");
    for n in 0..10u8 {
        bus.send(sender, Instant::from_millis(u64::from(n)), frame(0x100, &[n]));
    }
    assert_eq!(bus.pending(idle), 4);
    assert_eq!(bus.dropped(idle), 6);
    let kept: Vec<u8> = std::iter::from_fn(|| bus.recv(idle)).map(|(_, f)| f.data()[0]).collect();
    assert_eq!(kept, [6, 7, 8, 9]);
    assert_eq!(bus.dropped(sender), 0);
}

#[test]
fn memory_bus_tap_becomes_a_candump_log() {
    let mut bus = MemoryBus::new();
    bus.enable_tap(16);
    let bms = bus.attach("bms");
    let inverter = bus.attach("inverter");
    bus.send(bms, Instant::from_micros(1_500), frame(0x351, &[0x33, 0x02]));
    bus.send(
        inverter,
        Instant::from_micros(2_000_000),
        Frame::new(0x18FF_50E5, true, &[]).unwrap(),
    );

    let mut log = LogWriter::new(Vec::new(), StdDuration::from_secs(1_795_257_579));
    for record in bus.tap() {
        log.write(record.at, "can0", &record.frame).unwrap();
    }
    assert!(bus.tap().is_empty(), "the tap is drained");
    let text = String::from_utf8(log.into_inner()).unwrap();
    assert_eq!(text, "(1795257579.001500) can0 351#3302\n(1795257581.000000) can0 18FF50E5#\n");
}

#[test]
fn memory_bus_tap_is_bounded() {
    let mut bus = MemoryBus::new();
    bus.enable_tap(2);
    let node = bus.attach("n");
    for n in 0..5u8 {
        bus.send(node, Instant::ZERO, frame(0x1, &[n]));
    }
    assert_eq!(bus.tap_dropped(), 3);
    let kept: Vec<u8> = bus.tap().iter().map(|r| r.frame.data()[0]).collect();
    assert_eq!(kept, [3, 4]);
}

// ---------------------------------------------------------------------------------------------
// candump logs

#[test]
fn candump_lines_round_trip() {
    for (text, id, extended, data) in [
        (
            "(1795257579.781249) can0 351#330209240924D501",
            0x351,
            false,
            &[0x33, 2, 9, 0x24, 9, 0x24, 0xD5, 1][..],
        ),
        ("(0.000000) vcan0 123#", 0x123, false, &[][..]),
        (
            "(12.000001) can1 18FF50E5#0102030405060708",
            0x18FF_50E5,
            true,
            &[1, 2, 3, 4, 5, 6, 7, 8][..],
        ),
        ("(1.100000) can0 000#00", 0, false, &[0][..]),
    ] {
        let line = parse_line(text).unwrap();
        assert_eq!(
            (line.frame.id(), line.frame.is_extended(), line.frame.data()),
            (id, extended, data)
        );
        assert_eq!(format_line(line.sec, line.usec, &line.iface, &line.frame), text);
    }
    // Lower-case hex and a CRLF ending are read; the output is canonical.
    let line = parse_line("(5.000010) can0 35a#aa0a\r\n").unwrap();
    assert_eq!(
        format_line(line.sec, line.usec, &line.iface, &line.frame),
        "(5.000010) can0 35A#AA0A"
    );
}

#[test]
fn candump_parsing_is_strict_and_says_what_is_wrong() {
    let cases: &[(&str, ParseError, &str)] = &[
        ("can0 123#00", ParseError::Timestamp("can0".into()), "timestamp"),
        ("(1.5) can0 123#00", ParseError::Timestamp("(1.5)".into()), "six decimals"),
        ("(1.000000)can0 123#00", ParseError::MissingInterface, "interface"),
        ("(1.000000) can0", ParseError::MissingFrame, "frame"),
        ("(1.000000) can0 ", ParseError::MissingFrame, "frame"),
        ("(1.000000) can0 12300", ParseError::MissingHash("12300".into()), "no `#`"),
        ("(1.000000) can0 1234#00", ParseError::Id("1234".into()), "3 hex digits"),
        ("(1.000000) can0 12G#00", ParseError::Id("12G".into()), "3 hex digits"),
        (
            "(1.000000) can0 800#00",
            ParseError::IdOutOfRange { id: 0x800, extended: false },
            "11 bits",
        ),
        (
            "(1.000000) can0 20000000#",
            ParseError::IdOutOfRange { id: 0x2000_0000, extended: true },
            "29 bits",
        ),
        ("(1.000000) can0 123#R", ParseError::RemoteFrame, "remote frames"),
        ("(1.000000) can0 123#R4", ParseError::RemoteFrame, "remote frames"),
        ("(1.000000) can0 123##1001122", ParseError::FdFrame, "CAN FD"),
        ("(1.000000) can0 123#0", ParseError::Data("0".into()), "pairs of hex"),
        ("(1.000000) can0 123#0x11", ParseError::Data("0x11".into()), "pairs of hex"),
        ("(1.000000) can0 123#11.22", ParseError::Data("11.22".into()), "pairs of hex"),
        ("(1.000000) can0 123#001122334455667788", ParseError::TooManyBytes(9), "at most 8"),
        ("(1.000000) can0 123#00 T", ParseError::Trailing(" T".into()), "after the frame"),
        (
            "(1.000000) averyveryverylongname 123#00",
            ParseError::Interface("averyveryverylongname".into()),
            "interface name",
        ),
    ];
    for (text, expected, words) in cases {
        let err = parse_line(text).unwrap_err();
        assert_eq!(&err, expected, "{text}");
        assert!(err.to_string().contains(words), "{text}: {err}");
    }
}

#[test]
fn replay_times_frames_from_the_first_and_names_bad_lines() {
    let log = "# captured on the bench\n\
               \n\
               (100.250000) can0 351#01\n\
               (100.260000) can0 355#\n\
               (100.2600) can0 356#\n\
               (101.250000) can1 18FF50E5#AABB\n";
    let items: Vec<_> = Replay::from_reader(Cursor::new(log)).collect();
    assert_eq!(items.len(), 4);
    let ok = |i: usize| items[i].as_ref().unwrap();
    assert_eq!((ok(0).offset, ok(0).iface.as_str(), ok(0).line), (Duration::ZERO, "can0", 3));
    assert_eq!(ok(0).frame, frame(0x351, &[1]));
    assert_eq!((ok(1).offset, ok(1).line), (Duration::from_millis(10), 4));
    match &items[2] {
        Err(err @ ReplayError::Parse { line: 5, error: ParseError::Timestamp(_) }) => {
            assert!(err.to_string().starts_with("line 5: "), "{err}");
        }
        other => panic!("line 5: {other:?}"),
    }
    assert_eq!((ok(3).offset, ok(3).iface.as_str()), (Duration::from_secs(1), "can1"));
}

#[test]
fn replay_survives_overlong_and_binary_lines() {
    let mut log = b"(1.000000) can0 001#01\n".to_vec();
    log.extend(std::iter::repeat_n(b'x', 10_000));
    log.extend(b"\n\xff\xfe\n(2.000000) can0 002#02\n");
    let items: Vec<_> = Replay::from_reader(Cursor::new(log)).collect();
    assert_eq!(items.len(), 4);
    assert!(matches!(items[1], Err(ReplayError::TooLong { line: 2 })), "{:?}", items[1]);
    assert!(matches!(items[2], Err(ReplayError::NotText { line: 3 })), "{:?}", items[2]);
    let last = items[3].as_ref().unwrap();
    assert_eq!((last.line, last.offset, last.frame), (4, Duration::from_secs(1), frame(2, &[2])));
}

#[test]
fn replay_opens_files_and_names_missing_ones() {
    let dir = std::env::temp_dir().join(format!("cellwarden-candump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench.log");
    std::fs::write(&path, "(3.000000) can0 123#\n").unwrap();
    let frames: Vec<_> = Replay::open(&path).unwrap().map(Result::unwrap).collect();
    assert_eq!(frames.len(), 1);
    let err = Replay::open(dir.join("missing.log")).unwrap_err();
    assert!(err.to_string().contains("missing.log"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn any_frame() -> impl Strategy<Value = Frame> {
    (any::<bool>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..=8)).prop_map(
        |(extended, id, data)| {
            let id = if extended { id & 0x1FFF_FFFF } else { id & 0x7FF };
            Frame::new(id, extended, &data).unwrap()
        },
    )
}

proptest! {
    #[test]
    fn candump_parse_never_panics(text in ".*") {
        let _ = parse_line(&text);
    }

    #[test]
    fn candump_parse_never_panics_near_the_format(
        text in r"\(?[0-9]{0,22}\.?[0-9]{0,8}\)? ?[a-z0-9#]{0,17} ?[0-9A-Fa-fRr#]{0,24} ?.{0,3}"
    ) {
        let _ = parse_line(&text);
    }

    #[test]
    fn candump_format_then_parse_round_trips(
        sec in any::<u64>(), usec in 0u32..1_000_000, iface in "[a-z]{1,5}[0-9]{0,3}", f in any_frame()
    ) {
        let line = parse_line(&format_line(sec, usec, &iface, &f)).unwrap();
        prop_assert_eq!((line.sec, line.usec, line.iface.as_str(), line.frame), (sec, usec, iface.as_str(), f));
    }

    #[test]
    fn socketcand_scanner_and_parser_never_panic_and_stay_bounded(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048)
    ) {
        let mut scanner = Scanner::new();
        for byte in bytes {
            if let Some(Ok(text)) = scanner.push(byte) {
                prop_assert!(text.len() + 2 <= wire::MAX_MESSAGE_LEN);
                let _ = wire::parse(text);
            }
        }
    }

    #[test]
    fn socketcand_frames_and_sends_round_trip(f in any_frame(), sec in any::<u64>(), usec in 0u32..1_000_000) {
        let stamp = wire::Stamp { sec, usec };
        let text = wire::format_frame(&f, stamp);
        prop_assert_eq!(wire::parse(&text[1..text.len() - 1]), Ok(wire::Message::Frame(f, stamp)));
        let text = wire::format_send(&f);
        prop_assert_eq!(wire::parse(&text[1..text.len() - 1]), Ok(wire::Message::Send(f)));
    }
}
