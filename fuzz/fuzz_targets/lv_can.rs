//! The low-voltage CAN BMS protocol (`proto::lv`): arbitrary frames at arbitrary times, and
//! arbitrary battery views to encode.
//!
//! The first bytes make a `BatteryView` (any values, sense or nonsense) and choose the profile,
//! frame lengths, publisher mode and spacing. Every profile's cycle for that view must decode,
//! keep its limits on the safe side of the view's and never give a Victron CVL 0. The rest of
//! the input is a stream of frames, each `[kind, id_lo, id_hi, misc]` followed by its data
//! (`misc & 0x0F` bytes, at most 8); `kind` picks a protocol identifier (0x300..=0x3FF), any
//! 11-bit one or an extended one, and `kind` and `misc` advance the clock. Each frame goes to
//! `decode`, a `Reader` and a `Publisher`:
//!
//! - whatever decodes encodes back to a frame that decodes to the same message, with the same
//!   bytes wherever the layout keeps every bit;
//! - a frame that does not decode changes nothing the reader holds;
//! - the reader's view stays within physical ranges;
//! - the publisher sends only frames that decode, in its profile's order, nothing in sync mode
//!   before the first 0x305, at most one cycle per instant, and once drained its deadline lies
//!   in the future.

#![no_main]

use cellwarden_core::proto::can::Frame;
use cellwarden_core::proto::lv::{
    self, Dlc, KeepAlive, MAX_CELL_MV, MAX_TEMPERATURE, MIN_TEMPERATURE, Message, Mode, Profile,
    Publisher, Reader, decode, encode_cycle,
};
use cellwarden_core::{
    AlarmSet, BatteryView, DeciCelsius, Duration, Instant, MilliAmps, MilliVolts, Permille,
};
use libfuzzer_sys::fuzz_target;

/// Bytes that make the view and the configuration.
const HEAD: usize = 52;

fuzz_target!(|data: &[u8]| {
    let Some((head, mut rest)) = data.split_first_chunk::<HEAD>() else { return };
    let (view, profile, dlc, mode, spacing) = setup(head);
    for profile in Profile::ALL {
        for dlc in [Dlc::Full, Dlc::Short] {
            check_cycle(profile, dlc, &view);
        }
    }

    let mut reader = Reader::new();
    let mut publisher = Publisher::new(profile, dlc, *b"PYLON\0\0\0", mode, spacing);
    let mut now = Instant::ZERO;
    let mut acked = false;
    let mut handled = 0u32;
    while let Some((record, tail)) = rest.split_first_chunk::<4>() {
        let [kind, lo, hi, misc] = *record;
        let (bytes, tail) = tail.split_at(usize::from(misc & 0x0F).min(8).min(tail.len()));
        rest = tail;
        now += Duration::from_micros(u64::from(misc >> 4) * u64::from(kind) * 977);
        let frame = match kind & 0x03 {
            0 | 1 => Frame::standard(0x300 | u16::from(lo), bytes),
            2 => Frame::standard(u16::from_le_bytes([lo, hi]) & 0x7FF, bytes),
            _ => Frame::new(u32::from_le_bytes([lo, hi, misc, kind]) & 0x1FFF_FFFF, true, bytes),
        };
        let frame = frame.expect("identifier masked to its width and at most 8 bytes");
        let decoded = decode(&frame);
        check_reencode(&frame, decoded);

        let before = reader.clone();
        reader.handle_frame(now, &frame);
        handled += 1;
        assert_eq!(reader.counters().frames, handled);
        if decoded.is_err() {
            for age in [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(3_600)] {
                assert_eq!(
                    reader.view(now, age),
                    before.view(now, age),
                    "{frame:?} changed the view"
                );
            }
            assert_eq!(reader.last_heard(), before.last_heard());
        }
        if let Some(view) = reader.view(now, Duration::from_secs(2)) {
            check_view(&view);
        }

        let keepalive = publisher.handle_frame(now, &frame);
        assert_eq!(keepalive.is_some(), matches!(decoded, Ok(Message::KeepAlive(_))));
        acked |= keepalive == Some(KeepAlive::Ack305);
        let mut sent = 0;
        while let Some(out) = publisher.poll_transmit(now, &view) {
            assert!(mode != Mode::Sync || acked, "sync mode sent {out:?} before any 0x305");
            let message = decode(&out).unwrap_or_else(|e| panic!("sent {out:?}: {e:?}"));
            check_victron_cvl(profile, message);
            assert!(profile.cycle_ids().contains(&message.id()));
            sent += 1;
            assert!(sent <= profile.cycle_ids().len(), "more than one cycle at {now:?}");
        }
        if let Some(deadline) = publisher.poll_timeout() {
            assert!(deadline > now, "deadline {deadline:?} not after {now:?} once drained");
        }
    }
});

/// A view with any values from `head`, and the publisher's configuration.
fn setup(head: &[u8; HEAD]) -> (BatteryView, Profile, Dlc, Mode, Duration) {
    let mut at = 0;
    let mut take = |n: usize| {
        let mut out = [0u8; 4];
        out[..n].copy_from_slice(&head[at..at + n]);
        at += n;
        out
    };
    let mut i32_ = || i32::from_le_bytes(take(4));
    let [cvl, dvl, ccl, dcl, mv, ma, dc, c0, c1, t0, t1] = [(); 11].map(|()| i32_());
    let [soc0, soc1, soh0, soh1] = take(4);
    let [a0, a1, w0, w1] = take(4);
    let view = BatteryView {
        charge_voltage_mv: MilliVolts(cvl),
        discharge_voltage_mv: MilliVolts(dvl),
        charge_limit_ma: MilliAmps(ccl),
        discharge_limit_ma: MilliAmps(dcl),
        soc: Permille(u16::from_le_bytes([soc0, soc1])),
        soh: Permille(u16::from_le_bytes([soh0, soh1])),
        voltage_mv: MilliVolts(mv),
        current_ma: MilliAmps(ma),
        temperature_dc: DeciCelsius(dc),
        cell_mv: (a0 & 0x80 == 0).then_some((MilliVolts(c0), MilliVolts(c1))),
        cell_dc: (w0 & 0x80 == 0).then_some((DeciCelsius(t0), DeciCelsius(t1))),
        capacity_mah: u32::from_le_bytes([a1, w1, soc0, soh1]).wrapping_mul(97),
        alarms: AlarmSet(u16::from_le_bytes([a0, a1])),
        warnings: AlarmSet(u16::from_le_bytes([w0, w1])),
        charge_enable: cvl & 1 != 0,
        discharge_enable: dvl & 1 != 0,
        force_charge: ccl & 1 != 0,
        full_charge: dcl & 1 != 0,
        modules: a1 ^ w1,
    };
    let profile = Profile::ALL[usize::from(soc0 % 4)];
    let dlc = if soh0 & 1 == 0 { Dlc::Full } else { Dlc::Short };
    let mode = match soh0 & 2 {
        0 => Mode::Sync,
        _ => Mode::Push { period: Duration::from_millis(u64::from(soc1) * 8) },
    };
    let spacing = Duration::from_millis(u64::from(w1 % 128));
    (view, profile, dlc, mode, spacing)
}

/// One cycle for `view`: every frame decodes, in profile order, with its DLC, and the limits
/// sit on the safe side of the view's.
fn check_cycle(profile: Profile, dlc: Dlc, view: &BatteryView) {
    // The fuzz crate does not depend on heapless; the type comes from `encode_cycle`.
    let mut out = Default::default();
    encode_cycle(profile, dlc, b"PYLON\0\0\0", view, &mut out);
    let mut order = profile.cycle_ids().iter();
    for frame in &out {
        let message = decode(frame).unwrap_or_else(|e| panic!("{frame:?} from {view:?}: {e:?}"));
        assert!(order.any(|id| *id == message.id()), "{frame:?} out of order");
        assert_eq!(frame.len(), dlc.len(profile, message.id()), "{frame:?}");
        check_victron_cvl(profile, message);
        if let Message::Limits(got) = message {
            let held = profile == Profile::Victron && view.charge_voltage_mv.0 < 100;
            if !held {
                assert!(got.charge_voltage_mv.0 <= view.charge_voltage_mv.0.max(0), "{frame:?}");
            }
            let ccl = if view.charge_enable { view.charge_limit_ma.0.max(0) } else { 0 };
            let dcl = if view.discharge_enable { view.discharge_limit_ma.0.max(0) } else { 0 };
            assert!(got.charge_limit_ma.0 <= ccl, "{frame:?}");
            assert!(got.discharge_limit_ma.0 <= dcl, "{frame:?}");
            let dvl = got.discharge_voltage_mv.expect("the cycle sends a DVL");
            assert!(dvl.0 >= view.discharge_voltage_mv.0.min(6_553_500), "{frame:?}");
        }
    }
}

/// A Victron never gets CVL 0.
fn check_victron_cvl(profile: Profile, message: Message) {
    if let (Profile::Victron, Message::Limits(limits)) = (profile, message) {
        assert!(limits.charge_voltage_mv.0 > 0, "CVL 0 to a Victron");
    }
}

/// What decodes encodes back to the same message, and to the same bytes where the layout keeps
/// every bit of them.
fn check_reencode(frame: &Frame, decoded: Result<Message, lv::DecodeError>) {
    let Ok(message) = decoded else { return };
    assert_eq!(u32::from(message.id()), frame.id());
    let again = message.encode(frame.len());
    assert_eq!(again.id(), frame.id());
    assert_eq!(decode(&again), Ok(message), "{frame:?} re-encoded as {again:?}");
    let exact = match message {
        Message::Limits(m) => m.discharge_voltage_mv.map_or(6, |_| 8),
        Message::Soc(m) if !m.high_resolution => 4,
        Message::Measurements(_) => 6,
        Message::ModuleCounts(_) | Message::CellExtremes(_) | Message::Energy(_) => 8,
        Message::Info(_) => frame.len().min(8),
        Message::Capacity(_) => 2,
        Message::Events(_) => frame.len(),
        Message::Name(name) | Message::Text(_, name) => name.as_bytes().len(),
        _ => 0,
    };
    assert_eq!(again.data().get(..exact), frame.data().get(..exact), "{frame:?} vs {again:?}");
}

/// A view read from the bus holds only physical values.
fn check_view(view: &BatteryView) {
    assert!(view.soc.0 <= 1000 && view.soh.0 <= 1000, "{view:?}");
    assert!(view.voltage_mv.0 >= 0 && view.charge_voltage_mv.0 >= 0, "{view:?}");
    assert!(view.charge_limit_ma.0 >= 0 && view.discharge_limit_ma.0 >= 0, "{view:?}");
    let temperatures = MIN_TEMPERATURE..=MAX_TEMPERATURE;
    assert!(temperatures.contains(&view.temperature_dc), "{view:?}");
    if let Some((min, max)) = view.cell_mv {
        assert!(min <= max && max <= MAX_CELL_MV, "{view:?}");
    }
    if let Some((min, max)) = view.cell_dc {
        assert!(min <= max && temperatures.contains(&min) && temperatures.contains(&max));
    }
}
