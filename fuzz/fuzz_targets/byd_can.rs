//! The BYD HVS CAN codec and both of its state machines on arbitrary frames at arbitrary times.
//!
//! The first 36 bytes make the battery's view (any values the type holds, sane or not) and its
//! capacity; the rest is a program of up to 256 operations: frames with any identifier (mostly
//! those of the protocol), any length and any bytes, and steps of the clock. Every frame goes to
//! `decode`, to an inverter-side `Reader` and to a battery-side `Publisher`; what the publisher
//! sends goes to a second reader, as on a bus. Whatever decodes must encode back, nothing may
//! panic, and both sides must keep their invariants.

#![no_main]

use cellwarden_core::proto::byd_can::{
    self, COLDEST, DecodeError, Field, MODEL_NAME, Message, Publisher, Reader, decode, id,
};
use cellwarden_core::proto::can::Frame;
use cellwarden_core::{
    BatteryView, DeciCelsius, Duration, Instant, MilliAmps, MilliVolts, Permille,
};
use libfuzzer_sys::fuzz_target;

/// Every identifier of the protocol; a frame picks one of them most of the time.
const IDS: [u16; 14] = id::ALL;

/// Operations per input: enough for hours of bus time (a clock step is up to 65 s), few enough
/// to keep every run short.
const MOST_OPERATIONS: usize = 256;

/// Frames the publisher may send in one drain: the burst and the five cyclic frames.
const MOST_PER_DRAIN: usize = 12;

fuzz_target!(|data: &[u8]| {
    let Some((head, mut program)) = data.split_first_chunk::<36>() else { return };
    let (view, capacity_wh) = view_from(head);
    let mut publisher = Publisher::new(capacity_wh);
    let mut reader = Reader::new();
    let mut bus = Reader::new();
    let mut handed = 0_u32;
    let mut now = Instant::ZERO;
    for _ in 0..MOST_OPERATIONS {
        let Some((&op, rest)) = program.split_first() else { break };
        program = rest;
        if op & 0x03 == 0x03 {
            // Up to about 65 s, in uneven steps.
            now += Duration::from_micros(u64::from(op) * u64::from(op) * 1_000);
        } else if let Some((header, rest)) = program.split_first_chunk::<3>() {
            let (frame, used) = frame_from(op, header, rest);
            program = rest.get(used..).unwrap_or_default();
            check_decode(&frame);
            reader.handle_frame(now, &frame);
            handed += 1;
            let counters = reader.counters();
            let total = counters.accepted + counters.rejected + counters.ignored;
            assert_eq!(total, handed, "every frame is counted once");
            let heard_before = publisher.heard();
            let message = publisher.handle_frame(now, &frame);
            let expected = decode(&frame).ok().filter(Message::is_from_inverter);
            assert_eq!(message, expected);
            if byd_can::is_inverter_frame(&frame) {
                assert_eq!(publisher.heard(), Some(now));
            } else {
                assert_eq!(publisher.heard(), heard_before);
            }
        } else {
            break;
        }
        drain(&mut publisher, &mut bus, now, &view);
        check_reader(&reader, now);
        check_reader(&bus, now);
    }
});

/// A view and a capacity from 36 bytes: nine little-endian words.
fn view_from(head: &[u8; 36]) -> (BatteryView, u32) {
    let mut words = [0_u32; 9];
    for (word, chunk) in words.iter_mut().zip(head.chunks_exact(4)) {
        *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    let [cvl, dvl, ccl, dcl, states, capacity, v, i, t] = words;
    let signed = |w: u32| i32::from_le_bytes(w.to_le_bytes());
    let [soc0, soc1, soh0, soh1] = states.to_le_bytes();
    let [t0, t1, t2, t3] = t.to_le_bytes();
    let view = BatteryView {
        charge_voltage_mv: MilliVolts(signed(cvl)),
        discharge_voltage_mv: MilliVolts(signed(dvl)),
        charge_limit_ma: MilliAmps(signed(ccl)),
        discharge_limit_ma: MilliAmps(signed(dcl)),
        // The low bits of the SoC word double as the enable flags.
        charge_enable: soc0 & 1 == 1,
        discharge_enable: soc0 & 2 == 2,
        soc: Permille(u16::from_le_bytes([soc0, soc1])),
        soh: Permille(u16::from_le_bytes([soh0, soh1])),
        capacity_mah: capacity,
        voltage_mv: MilliVolts(signed(v)),
        current_ma: MilliAmps(signed(i)),
        temperature_dc: DeciCelsius(signed(t)),
        cell_dc: (t0 & 1 == 1).then(|| {
            let a = i32::from(i16::from_le_bytes([t0, t1]));
            let b = i32::from(i16::from_le_bytes([t2, t3]));
            (DeciCelsius(a), DeciCelsius(b))
        }),
        ..BatteryView::default()
    };
    (view, capacity.rotate_left(16))
}

/// A frame from an operation byte, a 3-byte header and the bytes after it; also how many of
/// those bytes it took as data.
fn frame_from(op: u8, header: &[u8; 3], rest: &[u8]) -> (Frame, usize) {
    let [shape, select, raw] = *header;
    let extended = shape & 0x80 != 0 && op & 0x80 != 0;
    // Mostly 8 bytes, as on the real bus.
    let len = match shape & 0x0F {
        n @ 0..=7 => usize::from(n),
        _ => 8,
    }
    .min(rest.len());
    let id = match IDS.get(usize::from(select % 16)) {
        Some(&id) => u32::from(id),
        None => (u32::from(raw) << 3 | u32::from(select >> 5)) & 0x7FF,
    };
    let frame = Frame::new(id, extended, &rest[..len]).expect("an 11-bit id and at most 8 bytes");
    (frame, len)
}

/// What decodes is a standard 8-byte frame of the protocol, and encodes back to itself (or,
/// for the frames whose decoding ignores bytes, to a frame that decodes the same).
fn check_decode(frame: &Frame) {
    let message = match decode(frame) {
        Ok(message) => message,
        Err(DecodeError::Extended) => return assert!(frame.is_extended()),
        Err(DecodeError::UnknownId(id)) => return assert!(!IDS.contains(&id)),
        Err(DecodeError::WrongLength { len, .. }) => {
            return assert!(usize::from(len) == frame.len() && len != 8);
        }
        Err(DecodeError::OutOfRange { id, .. }) => return assert_eq!(u32::from(id), frame.id()),
    };
    assert!(!frame.is_extended());
    assert_eq!(frame.len(), 8);
    assert_eq!(u32::from(message.id()), frame.id());
    assert_eq!(byd_can::is_inverter_frame(frame), message.is_from_inverter());
    let again = message.encode();
    assert_eq!(decode(&again), Ok(message));
    let lossy = matches!(
        message,
        Message::IdentifyRequest
            | Message::InverterBattery { .. }
            | Message::InverterSoc(_)
            | Message::InverterTime(_)
    );
    if !lossy {
        assert_eq!(again, *frame, "{message:?}");
    }
}

/// Drains the publisher into the bus reader and checks what it sent.
fn drain(publisher: &mut Publisher, bus: &mut Reader, now: Instant, view: &BatteryView) {
    let mut sent = 0;
    let was_silent = publisher.heard().is_none();
    while let Some(frame) = publisher.poll_transmit(now, view) {
        sent += 1;
        assert!(sent <= MOST_PER_DRAIN, "the publisher does not stop");
        assert!(!byd_can::is_inverter_frame(&frame));
        match decode(&frame) {
            Ok(message) => assert!(!message.is_from_inverter()),
            // The one frame an encoder may produce that a careful inverter refuses: limits as
            // inverted as the view's own.
            Err(error) => {
                assert_eq!(
                    error,
                    DecodeError::OutOfRange { id: 0x110, field: Field::VoltageLimits }
                );
                let (cvl, dvl) = (view.charge_voltage_mv.0, view.discharge_voltage_mv.0);
                assert!(i64::from(cvl) < i64::from(dvl) + 100, "a sane view gave {frame:?}");
            }
        }
        bus.handle_frame(now, &frame);
    }
    match publisher.heard() {
        None => {
            assert!(was_silent && sent == 0, "silent until it hears the inverter");
            assert_eq!(publisher.poll_timeout(), None);
        }
        Some(_) => {
            assert!(publisher.poll_timeout().is_some_and(|t| t > now), "nothing overdue");
            // Every burst is sent whole before anything else goes out, and the first one
            // started the moment the inverter was heard.
            assert_eq!(bus.model(), Some(MODEL_NAME));
            assert!(bus.identified());
        }
    }
}

/// Whatever a reader shows is physically possible.
fn check_reader(reader: &Reader, now: Instant) {
    let Some(view) = reader.view(now, Duration::from_secs(3_600)) else { return };
    assert!(view.soc.0 <= 1000 && view.soh.0 <= 1000);
    assert!(view.charge_voltage_mv >= view.discharge_voltage_mv);
    assert!(view.charge_limit_ma.0 >= 0 && view.discharge_limit_ma.0 >= 0);
    assert_eq!(view.charge_enable, view.charge_limit_ma.0 > 0);
    assert_eq!(view.discharge_enable, view.discharge_limit_ma.0 > 0);
    assert!(view.temperature_dc >= COLDEST);
    if let Some((low, high)) = view.cell_dc {
        assert!(COLDEST <= low && low <= high);
    }
}
