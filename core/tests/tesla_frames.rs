//! The worked examples of `shared/protocols.md` §1.11 (and the check value of §0), byte for byte
//! and in both directions: what the master encodes, what a board decodes, and what the master
//! makes of the bytes that come back round the ring. Then strictness (a corrupted or mis-sized
//! reply is always an error) and properties over arbitrary bytes.

use cellwarden_core::proto::tesla::frame::{
    MARKER, UNASSIGNED, address_byte, encode_reply, frame_crc,
};
use cellwarden_core::proto::tesla::scale::{self, Thermistor};
use cellwarden_core::proto::tesla::{
    Address, BROADCAST, DecodeError, MAX_READ_LEN, MAX_REPLY_LEN, Reply, Request, crc8, regs,
};
use cellwarden_core::{DeciCelsius, MilliVolts};
use proptest::prelude::*;

/// A write as the master sends it and as it comes back unchanged: the encoded bytes, the board's
/// decoding and the master's decoding of the echo all agree with `wire`.
fn check_write(request: Request, wire: [u8; 4]) {
    let Request::Write { value, .. } = request else {
        panic!("{request:?} is not a write");
    };
    assert_eq!(request.wire_len(), 4);
    assert_eq!(request.encode(), wire, "{request:?}");
    assert_eq!(Request::decode(&wire), Ok((request, 4)), "{wire:02X?}");
    assert_eq!(request.decode_reply(&wire), Ok(Reply { marked: false, data: &[value] }));
}

/// A read as the master sends it: the encoded bytes and the board's decoding agree with `wire`,
/// which is 3 bytes without a CRC and 4 with one.
fn check_read(request: Request, wire: &[u8]) {
    assert_eq!(request.wire_len(), wire.len(), "{request:?}");
    assert_eq!(&request.encode()[..wire.len()], wire, "{request:?}");
    assert_eq!(Request::decode(wire), Ok((request, wire.len())), "{wire:02X?}");
}

/// The reply a board builds for `data` is `reply`, and the master decodes `reply` back to `data`.
fn check_read_reply(request: Request, reply: &[u8], data: &[u8]) {
    let mut out = [0; MAX_REPLY_LEN];
    let n = encode_reply(reply[0], reply[1], data, &mut out).expect("the reply fits");
    assert_eq!(&out[..n], reply, "{request:?}");
    assert_eq!(request.reply_len(), reply.len());
    let marked = reply[0] & MARKER != 0;
    assert_eq!(request.decode_reply(reply), Ok(Reply { marked, data }), "{reply:02X?}");
}

// §0 ----------------------------------------------------------------------------------------

#[test]
fn crc8_check_value() {
    assert_eq!(crc8(b"123456789"), 0xF4);
    assert_eq!(crc8(&[]), 0);
}

// §1.11, the real log ---------------------------------------------------------------------------

#[test]
fn log_broadcast_reset() {
    check_write(
        Request::write(BROADCAST, regs::RESET, regs::RESET_MAGIC),
        [0x7F, 0x3C, 0xA5, 0x57],
    );
}

#[test]
fn log_address_zero_status_read() {
    let request = Request::read(UNASSIGNED, regs::DEVICE_STATUS, 1);
    check_read(request, &[0x00, 0x00, 0x01]);
    // The first unaddressed board answers and sets the marker; the CRC is over `00 00 01 61`.
    check_read_reply(request, &[0x80, 0x00, 0x01, 0x61, 0x35], &[0x61]);
    assert_eq!(crc8(&[0x00, 0x00, 0x01, 0x61]), 0x35);
    // Status 0x61 right after a reset: fault, alert, data ready.
    assert_eq!(0x61, regs::status::FAULT | regs::status::ALERT | regs::status::DRDY);
    // The log shows only the first four bytes; that much is not a reply yet.
    assert_eq!(
        request.decode_reply(&[0x80, 0x00, 0x01, 0x61]),
        Err(DecodeError::Incomplete { need: 5 })
    );
}

#[test]
fn log_address_assignment() {
    let request = Request::write(UNASSIGNED, regs::ADDRESS_CONTROL, 0x81);
    check_write(request, [0x01, 0x3B, 0x81, 0x8B]);
    // The board that took the address marks the echo and leaves the CRC as it was.
    assert_eq!(
        request.decode_reply(&[0x81, 0x3B, 0x81, 0x8B]),
        Ok(Reply { marked: true, data: &[0x81] })
    );
}

#[test]
fn log_read_that_nobody_answers_returns_unchanged() {
    let request = Request::read(UNASSIGNED, regs::DEVICE_STATUS, 1);
    assert_eq!(request.decode_reply(&[0x00, 0x00, 0x01]), Err(DecodeError::Unanswered));
    // The same holds for a pyBMS-style read: it comes back with its own CRC.
    let with_crc = Request::read_with_crc(UNASSIGNED, regs::DEVICE_STATUS, 1);
    let sent = with_crc.encode();
    assert_eq!(with_crc.decode_reply(&sent), Err(DecodeError::Unanswered));
    // Discovery of a module that does not exist sees the same thing.
    let probe = Request::read(0x05, regs::DEVICE_STATUS, 1);
    assert_eq!(probe.decode_reply(&[0x0A, 0x00, 0x01]), Err(DecodeError::Unanswered));
}

#[test]
fn log_fault_clearing_and_balance_writes() {
    check_write(Request::write(BROADCAST, regs::ALERT_STATUS, 0xFF), [0x7F, 0x20, 0xFF, 0x7D]);
    check_write(Request::write(BROADCAST, regs::ALERT_STATUS, 0x00), [0x7F, 0x20, 0x00, 0x8E]);
    check_write(Request::write(BROADCAST, regs::FAULT_STATUS, 0xFF), [0x7F, 0x21, 0xFF, 0x68]);
    check_write(Request::write(BROADCAST, regs::FAULT_STATUS, 0x00), [0x7F, 0x21, 0x00, 0x9B]);
    check_write(Request::write(1, regs::CB_CTRL, 0x00), [0x03, 0x32, 0x00, 0x6E]);
}

#[test]
fn log_alert_and_fault_read() {
    let request = Request::read(1, regs::ALERT_STATUS, 4);
    check_read(request, &[0x02, 0x20, 0x04]);
    check_read_reply(request, &[0x02, 0x20, 0x04, 0x00, 0x00, 0x00, 0x00, 0x0D], &[0; 4]);
    assert_eq!(
        request.decode_reply(&[0x02, 0x20, 0x04, 0x00, 0x00, 0x00, 0x00]),
        Err(DecodeError::Incomplete { need: 8 })
    );
}

// §1.3–1.4, the marker -------------------------------------------------------------------------

#[test]
fn address_bytes() {
    assert_eq!(address_byte(BROADCAST, true), 0x7F);
    assert_eq!(address_byte(1, false), 0x02);
    assert_eq!(address_byte(1, true), 0x03);
    assert_eq!(address_byte(0, false), 0x00);
    assert_eq!(address_byte(0, true), 0x01);
    let cases = [
        (0x7F, BROADCAST, true, false),
        (0x02, 1, false, false),
        (0x03, 1, true, false),
        (0x00, 0, false, false),
        (0x01, 0, true, false),
        (0x80, 0, false, true),
        (0x81, 0, true, true),
    ];
    for (byte, address, write, marked) in cases {
        assert_eq!(Address::from_byte(byte), Address { address, write, marked }, "{byte:02X}");
    }
}

#[test]
fn marker_is_outside_the_crc() {
    assert_eq!(frame_crc(&[0x01, 0x3B, 0x81]), 0x8B);
    assert_eq!(frame_crc(&[0x81, 0x3B, 0x81]), 0x8B);
    // A plain CRC over the marked byte would differ: the rule is what makes the echo check.
    assert_ne!(crc8(&[0x81, 0x3B, 0x81]), 0x8B);
    assert_eq!(frame_crc(&[0x80, 0x00, 0x01, 0x61]), 0x35);
    assert_eq!(frame_crc(&[]), 0);
}

// §1.11, pyBMS's conventions -------------------------------------------------------------------

#[test]
fn pybms_write_and_read_requests() {
    check_write(Request::write(9, 10, 11), [0x13, 0x0A, 0x0B, 0xAC]);
    check_read(Request::read_with_crc(9, 10, 4), &[0x12, 0x0A, 0x04, 0xEA]);
}

#[test]
fn pybms_synthetic_reply_crc_is_computed_with_the_marker_cleared() {
    // pyBMS's test reply `92 0A 04 01 02 03 04 1B` sets the marker for a board at address 9,
    // which real hardware does not do; what holds is that its CRC is the CRC with bit 7 cleared.
    let synthetic = [0x92, 0x0A, 0x04, 0x01, 0x02, 0x03, 0x04];
    assert_eq!(frame_crc(&synthetic), 0x1B);
    assert_eq!(crc8(&[0x12, 0x0A, 0x04, 0x01, 0x02, 0x03, 0x04]), 0x1B);
    assert_ne!(crc8(&synthetic), 0x1B);
    // The hardware-exact reply to the same read.
    let request = Request::read_with_crc(9, 10, 4);
    check_read_reply(request, &[0x12, 0x0A, 0x04, 0x01, 0x02, 0x03, 0x04, 0x1B], &[1, 2, 3, 4]);
}

#[test]
fn pybms_emulator_examples() {
    check_write(
        Request::write(BROADCAST, regs::RESET, regs::RESET_MAGIC),
        [0x7F, 0x3C, 0xA5, 0x57],
    );
    let set_address = Request::write(UNASSIGNED, regs::ADDRESS_CONTROL, 0x01);
    check_write(set_address, [0x01, 0x3B, 0x01, 0x02]);
    assert_eq!(
        set_address.decode_reply(&[0x81, 0x3B, 0x01, 0x02]),
        Ok(Reply { marked: true, data: &[0x01] })
    );
    check_write(Request::write(1, regs::CB_CTRL, 0x33), [0x03, 0x32, 0x33, 0xF7]);
    let read_back = Request::read_with_crc(1, regs::CB_CTRL, 1);
    check_read(read_back, &[0x02, 0x32, 0x01, 0x02]);
    check_read_reply(read_back, &[0x02, 0x32, 0x01, 0x44, 0xD5], &[0x44]);
}

// §1.11, the full measurement read -------------------------------------------------------------

const BRICK_RAW: u16 = 0x26F7;
const CELL_RAW: u16 = 0x224D;
const TS_RAW: u16 = 0x1116;

/// GPAI, six cells, TS1 and TS2, big-endian, as a board holds them from register 0x01 on.
fn values() -> [u8; 18] {
    let words = [BRICK_RAW, CELL_RAW, CELL_RAW, CELL_RAW, CELL_RAW, CELL_RAW, CELL_RAW, TS_RAW];
    let mut out = [0; 18];
    for (chunk, word) in out.chunks_mut(2).zip(words.iter().chain([&TS_RAW])) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Scales the 18 value bytes and checks them against the document's physical values.
fn check_values(data: &[u8]) {
    assert_eq!(data.len(), 18);
    let word = |i: usize| u16::from_be_bytes([data[2 * i], data[2 * i + 1]]);
    let brick = scale::brick_mv(word(0));
    assert!((brick.get() - 20_295).abs() <= 1, "brick {brick:?}");
    for cell in 1..=regs::CELLS {
        let mv = scale::cell_mv(word(cell));
        assert!((mv.get() - 3_350).abs() <= 1, "cell {cell}: {mv:?}");
    }
    let (ts1, ts2) = (word(7), word(8));
    assert_eq!(scale::temperature_dc(ts1, Thermistor::PYBMS), Some(DeciCelsius(253)));
    assert_eq!(scale::temperature_dc(ts2, Thermistor::PYBMS), Some(DeciCelsius(253)));
    // collin80's TS2 constants read the same raw value 0.03 °C warmer (25.377 °C).
    assert_eq!(scale::temperature_dc(ts2, Thermistor::COLLIN_TS2), Some(DeciCelsius(254)));
}

#[test]
fn measurement_read_teslabms_style() {
    let request = Request::read(1, regs::GPAI, regs::VALUES_LEN);
    check_read(request, &[0x02, 0x01, 0x12]);
    let reply = [
        0x02, 0x01, 0x12, 0x26, 0xF7, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D,
        0x22, 0x4D, 0x11, 0x16, 0x11, 0x16, 0x93,
    ];
    assert_eq!(reply.len(), 22);
    check_read_reply(request, &reply, &values());
    let data = request.decode_reply(&reply).unwrap().data;
    check_values(data);
}

#[test]
fn measurement_read_pybms_style() {
    let request = Request::read_with_crc(1, regs::DEVICE_STATUS, regs::MEASUREMENT_LEN);
    check_read(request, &[0x02, 0x00, 0x13, 0xAF]);
    let reply = [
        0x02, 0x00, 0x13, 0x00, 0x26, 0xF7, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x22,
        0x4D, 0x22, 0x4D, 0x11, 0x16, 0x11, 0x16, 0xC6,
    ];
    assert_eq!(reply.len(), 23);
    let mut data = [0; 19];
    data[1..].copy_from_slice(&values());
    check_read_reply(request, &reply, &data);
    let data = request.decode_reply(&reply).unwrap().data;
    assert_eq!(data[0], 0x00, "status");
    check_values(&data[1..]);
}

#[test]
fn measurement_values_encode_back_to_the_same_raw_values() {
    // The simulator's direction: physical values to the raw words of the example.
    assert_eq!(scale::brick_raw(MilliVolts(20_295)), BRICK_RAW);
    assert_eq!(scale::cell_raw(MilliVolts(3_350)), CELL_RAW);
    let ts = scale::temperature_raw(DeciCelsius(253), Thermistor::PYBMS);
    assert!(ts.abs_diff(TS_RAW) <= 5, "{ts:#06X}");
}

// §1.11, other writes (C) ---------------------------------------------------------------------

#[test]
fn other_writes() {
    let cases = [
        (regs::ADC_CONTROL, regs::ADC_CONTROL_ALL, [0x03, 0x30, 0x3D, 0xF7]),
        (regs::IO_CONTROL, regs::IO_CONTROL_BIAS, [0x03, 0x31, 0x03, 0x58]),
        (regs::ADC_CONVERT, 0x01, [0x03, 0x34, 0x01, 0x17]),
        (regs::CB_TIME, regs::CB_TIME_MINUTES | 2, [0x03, 0x33, 0x82, 0xFC]),
        (regs::CB_CTRL, 0b0000_0101, [0x03, 0x32, 0x05, 0x75]),
        (regs::SHDW_CTRL, regs::SHADOW_UNLOCK, [0x03, 0x3A, 0x35, 0x4D]),
        (regs::CONFIG_COV, 0x2B, [0x03, 0x42, 0x2B, 0x1D]),
    ];
    for (register, value, wire) in cases {
        check_write(Request::write(1, register, value), wire);
    }
    // COV 0x2B is 2.0 V + 43 × 50 mV.
    assert_eq!(scale::cov_code(MilliVolts(4_150)), Some(0x2B));
    assert_eq!(scale::cov_mv(0x2B), Some(MilliVolts(4_150)));
}

#[test]
fn sleep_and_wake_writes() {
    check_write(
        Request::write(BROADCAST, regs::IO_CONTROL, regs::IO_CONTROL_SLEEP),
        [0x7F, 0x31, 0x04, 0xD0],
    );
    check_write(Request::write(BROADCAST, regs::IO_CONTROL, 0x00), [0x7F, 0x31, 0x00, 0xCC]);
    check_write(
        Request::write(BROADCAST, regs::ALERT_STATUS, regs::alert::SLEEP),
        [0x7F, 0x20, 0x04, 0x92],
    );
}

// Strictness -----------------------------------------------------------------------------------

/// Replies that decode, with the requests they answer.
fn good_replies() -> [(Request, &'static [u8]); 5] {
    [
        (Request::write(BROADCAST, regs::RESET, regs::RESET_MAGIC), &[0x7F, 0x3C, 0xA5, 0x57]),
        (Request::write(UNASSIGNED, regs::ADDRESS_CONTROL, 0x81), &[0x81, 0x3B, 0x81, 0x8B]),
        (Request::read(UNASSIGNED, regs::DEVICE_STATUS, 1), &[0x80, 0x00, 0x01, 0x61, 0x35]),
        (Request::read_with_crc(1, regs::CB_CTRL, 1), &[0x02, 0x32, 0x01, 0x44, 0xD5]),
        (
            Request::read(1, regs::GPAI, regs::VALUES_LEN),
            &[
                0x02, 0x01, 0x12, 0x26, 0xF7, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x22,
                0x4D, 0x22, 0x4D, 0x11, 0x16, 0x11, 0x16, 0x93,
            ],
        ),
    ]
}

#[test]
fn every_flipped_bit_is_an_error_except_the_marker() {
    for (request, reply) in good_replies() {
        let original = request.decode_reply(reply).expect("the good reply decodes");
        for byte in 0..reply.len() {
            for bit in 0..8 {
                let mut bad = reply.to_vec();
                bad[byte] ^= 1 << bit;
                let result = request.decode_reply(&bad);
                if byte == 0 && bit == 7 && request.address() == 0 {
                    // The marker is outside the CRC by design (§1.4); for a request to address
                    // 0, flipping it only changes what the reply says about who answered. For
                    // any other address a marked reply is refused (a `Header` error below).
                    let reply = result.expect("the marker alone does not break a reply");
                    assert_eq!(reply.marked, !original.marked);
                    assert_eq!(reply.data, original.data);
                    continue;
                }
                assert!(
                    matches!(result, Err(DecodeError::Crc { .. } | DecodeError::Header)),
                    "{request:?}: byte {byte} bit {bit} gave {result:?}"
                );
            }
        }
    }
}

#[test]
fn wrong_lengths_are_errors() {
    for (request, reply) in good_replies() {
        let expected = reply.len();
        for n in 0..expected {
            let result = request.decode_reply(&reply[..n]);
            let unanswered = request.encode()[..request.wire_len()] == reply[..n];
            if unanswered {
                // A prefix that happens to be the request itself reads as "nobody answered".
                assert_eq!(result, Err(DecodeError::Unanswered));
            } else {
                assert_eq!(result, Err(DecodeError::Incomplete { need: expected }), "{n}");
            }
        }
        for extra in [0x00, 0xFF] {
            let mut long = reply.to_vec();
            long.push(extra);
            assert_eq!(
                request.decode_reply(&long),
                Err(DecodeError::TooLong { expected, got: expected + 1 })
            );
        }
    }
}

#[test]
fn replies_to_another_request_are_header_errors() {
    let request = Request::read(1, regs::CB_CTRL, 1);
    // Another module, register and length, each with a CRC that is right for what it carries.
    for (byte0, register, data) in [
        (0x04, regs::CB_CTRL, &[0x44][..]),
        (0x02, regs::CB_TIME, &[0x44][..]),
        (0x03, regs::CB_CTRL, &[0x44][..]),
    ] {
        let mut out = [0; MAX_REPLY_LEN];
        let n = encode_reply(byte0, register, data, &mut out).unwrap();
        assert_eq!(request.decode_reply(&out[..n]), Err(DecodeError::Header));
    }
    // A write echo whose value differs from the value sent.
    let write = Request::write(1, regs::CB_CTRL, 0x05);
    let other = Request::write(1, regs::CB_CTRL, 0x06).encode();
    assert_eq!(write.decode_reply(&other), Err(DecodeError::Header));
}

#[test]
fn board_side_decoding_of_partial_and_bad_requests() {
    assert_eq!(Request::decode(&[]), Err(DecodeError::Incomplete { need: 3 }));
    assert_eq!(Request::decode(&[0x02, 0x00]), Err(DecodeError::Incomplete { need: 3 }));
    assert_eq!(Request::decode(&[0x03, 0x32]), Err(DecodeError::Incomplete { need: 4 }));
    assert_eq!(Request::decode(&[0x03, 0x32, 0x00]), Err(DecodeError::Incomplete { need: 4 }));
    assert_eq!(
        Request::decode(&[0x03, 0x32, 0x00, 0x6F]),
        Err(DecodeError::Crc { computed: 0x6E, received: 0x6F })
    );
    assert_eq!(Request::decode(&[0x02, 0x00, 0x00]), Err(DecodeError::BadLength(0)));
    assert_eq!(
        Request::decode(&[0x02, 0x00, MAX_READ_LEN + 1]),
        Err(DecodeError::BadLength(MAX_READ_LEN + 1))
    );
    // A 3-byte read followed by the next frame takes only its own 3 bytes.
    let stream = [0x02, 0x20, 0x04, 0x03, 0x32, 0x00, 0x6E];
    assert_eq!(Request::decode(&stream), Ok((Request::read(1, regs::ALERT_STATUS, 4), 3)));
    assert_eq!(Request::decode(&stream[3..]), Ok((Request::write(1, regs::CB_CTRL, 0), 4)));
}

// Properties ------------------------------------------------------------------------------------

/// Every request a master can legitimately send.
fn valid_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (0..=BROADCAST, any::<u8>(), any::<u8>())
            .prop_map(|(address, register, value)| Request::write(address, register, value)),
        (0..=BROADCAST, any::<u8>(), 1..=MAX_READ_LEN, any::<bool>()).prop_map(
            |(address, register, len, crc)| Request::Read { address, register, len, crc }
        ),
    ]
}

/// Any value of the type, including addresses above 0x3F and read lengths of 0 or above
/// [`MAX_READ_LEN`].
fn any_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        any::<(u8, u8, u8)>().prop_map(|(address, register, value)| Request::Write {
            address,
            register,
            value
        }),
        any::<(u8, u8, u8, bool)>().prop_map(|(address, register, len, crc)| Request::Read {
            address,
            register,
            len,
            crc
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_048, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics_and_agrees_with_encode(
        bytes in proptest::collection::vec(any::<u8>(), 0..=MAX_REPLY_LEN + 2),
    ) {
        if let Ok((request, n)) = Request::decode(&bytes) {
            prop_assert!(n <= bytes.len());
            prop_assert_eq!(n, request.wire_len());
            // What was decoded is exactly what encoding it gives, up to the marker bit.
            let mut seen = bytes[..n].to_vec();
            seen[0] &= !MARKER;
            prop_assert_eq!(&request.encode()[..n], &seen[..]);
        }
    }

    #[test]
    fn decode_reply_never_panics(
        request in any_request(),
        bytes in proptest::collection::vec(any::<u8>(), 0..=MAX_REPLY_LEN + 2),
    ) {
        if let Ok(reply) = request.decode_reply(&bytes) {
            prop_assert_eq!(bytes.len(), request.reply_len());
            let data_len = match request {
                Request::Write { .. } => 1,
                Request::Read { len, .. } => usize::from(len),
            };
            prop_assert_eq!(reply.data.len(), data_len);
        }
    }

    #[test]
    fn decode_reply_never_panics_on_near_misses(
        (request, data) in request_and_data(),
        flip in any::<(usize, u8)>(),
        cut in any::<usize>(),
    ) {
        // Start from a good reply so the checks after the length are reached, then damage it.
        let mut reply = good_reply(&request, &data);
        let index = flip.0 % reply.len();
        reply[index] ^= flip.1;
        let _ = request.decode_reply(&reply);
        let _ = request.decode_reply(&reply[..cut % (reply.len() + 1)]);
    }

    #[test]
    fn requests_round_trip(request in valid_request(), next in any::<u8>()) {
        let wire = request.encode();
        let n = request.wire_len();
        prop_assert_eq!(Request::decode(&wire[..n]), Ok((request, n)));
        // A board still frames the request right when the next frame's first byte follows,
        // unless a 3-byte read is followed by a byte that happens to equal its CRC.
        let mut stream = wire[..n].to_vec();
        stream.push(next);
        let decoded = Request::decode(&stream);
        match request {
            Request::Read { address, register, len, crc: false } if next == wire[3] => {
                let with_crc = Request::read_with_crc(address, register, len);
                prop_assert_eq!(decoded, Ok((with_crc, 4)));
            }
            _ => prop_assert_eq!(decoded, Ok((request, n))),
        }
    }

    #[test]
    fn replies_round_trip(
        (request, data) in request_and_data(),
        marked in any::<bool>(),
    ) {
        let mut reply = good_reply(&request, &data);
        if marked {
            reply[0] |= MARKER;
        }
        let decoded = request.decode_reply(&reply);
        if marked && request.address() != 0 {
            // Only a board at address 0 marks its answer.
            prop_assert_eq!(decoded, Err(DecodeError::Header));
        } else {
            prop_assert_eq!(decoded, Ok(Reply { marked, data: &data[..] }));
        }
    }
}

/// A valid request and the register bytes of its reply: the value of a write, or `len` bytes
/// for a read.
fn request_and_data() -> impl Strategy<Value = (Request, Vec<u8>)> {
    valid_request().prop_flat_map(|request| match request {
        Request::Write { value, .. } => (Just(request), Just(vec![value]).boxed()),
        Request::Read { len, .. } => {
            (Just(request), proptest::collection::vec(any::<u8>(), usize::from(len)).boxed())
        }
    })
}

/// The reply a board gives to `request` with `data` from [`request_and_data`]: the write's
/// echo, or the read's header, `data` and CRC.
fn good_reply(request: &Request, data: &[u8]) -> Vec<u8> {
    let wire = request.encode();
    match request {
        Request::Write { .. } => wire.to_vec(),
        Request::Read { .. } => {
            let mut out = [0; MAX_REPLY_LEN];
            let n = encode_reply(wire[0], wire[1], data, &mut out).expect("a valid read's reply");
            out[..n].to_vec()
        }
    }
}
