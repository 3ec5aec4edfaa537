//! The Tesla module-board ring emulator against the sequences of both master families
//! (`shared/protocols.md` §1.9, §1.11): enumeration, discovery, measurement, alert and fault
//! clearing, balancing, the hardware protector, sleep, bad CRCs, injected faults, timing and
//! garbage on the wire.

use cellwarden_core::Instant;
use cellwarden_core::proto::tesla::frame::{DecodeError, Request, frame_crc};
use cellwarden_sim::devices::tesla::{Analog, Ring, RingFault, RingSpec, wire_time_us};
use cellwarden_sim::plant::{BusParams, CellParams, Plant, PlantSpec, Spread};
use cellwarden_sim::rng::SimRng;

/// A ring, a clock and the analogue values the boards see.
struct Bench {
    ring: Ring,
    now_us: u64,
    cells: Vec<f64>,
    temps: Vec<f64>,
    bricks: Vec<f64>,
}

impl Bench {
    fn new(boards: usize) -> Bench {
        Bench::with_spec(RingSpec::new(boards))
    }

    fn with_spec(spec: RingSpec) -> Bench {
        let cells = vec![3.7; spec.boards * 6];
        let temps = vec![25.0; spec.boards * 2];
        Bench { ring: Ring::new(&spec), now_us: 1_000, cells, temps, bricks: Vec::new() }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.now_us)
    }

    /// Moves the clock on by `us` and lets the boards observe their inputs.
    fn advance(&mut self, us: u64) {
        self.now_us += us;
        let analog = Analog { cells_v: &self.cells, temps_c: &self.temps, bricks_v: &self.bricks };
        self.ring.observe(Instant::from_micros(self.now_us), &analog);
    }

    /// Sends `bytes` now, waits 20 ms (as a collin80 discovery does) and returns what came back.
    fn xfer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let analog = Analog { cells_v: &self.cells, temps_c: &self.temps, bricks_v: &self.bricks };
        self.ring.receive(self.now(), bytes, &analog);
        // No observation in between: what the master sees must not depend on one.
        self.now_us += 20_000;
        let mut out = Vec::new();
        self.ring.take_output(self.now(), &mut out);
        out
    }

    fn write(&mut self, address: u8, register: u8, value: u8) -> Vec<u8> {
        self.xfer(&Request::write(address, register, value).encode())
    }

    /// A read in collin80's style (3 bytes) or pyBMS's (with CRC); returns the data bytes.
    fn read(&mut self, address: u8, register: u8, len: u8, crc: bool) -> Vec<u8> {
        let request = Request::Read { address, register, len, crc };
        let reply = self.xfer(&request.encode()[..request.wire_len()]);
        request.decode_reply(&reply).map(|r| r.data.to_vec()).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// Broadcast reset and collin80's renumbering; returns the number of boards found.
    fn enumerate(&mut self) -> u8 {
        assert_eq!(self.xfer(&[0x7F, 0x3C, 0xA5, 0x57]), [0x7F, 0x3C, 0xA5, 0x57]);
        let mut next = 0;
        loop {
            let reply = self.xfer(&[0x00, 0x00, 0x01]);
            if reply == [0x00, 0x00, 0x01] {
                return next;
            }
            assert_eq!(&reply[..3], &[0x80, 0x00, 0x01], "{reply:02X?}");
            next += 1;
            let request = Request::write(0, 0x3B, next | 0x80).encode();
            let mut echo = request;
            echo[0] |= 0x80;
            assert_eq!(self.xfer(&request), echo);
        }
    }

    /// collin80's broadcast clearing of alerts and faults.
    fn clear_all(&mut self) {
        for frame in [[0x7F, 0x20, 0xFF, 0x7D], [0x7F, 0x20, 0x00, 0x8E]] {
            assert_eq!(self.xfer(&frame), frame);
        }
        for frame in [[0x7F, 0x21, 0xFF, 0x68], [0x7F, 0x21, 0x00, 0x9B]] {
            assert_eq!(self.xfer(&frame), frame);
        }
    }

    /// ADC_CONTROL, IO_CONTROL, ADC_CONVERT to board 1 (the frames of §1.11).
    fn convert(&mut self) {
        for frame in [[0x03, 0x30, 0x3D, 0xF7], [0x03, 0x31, 0x03, 0x58], [0x03, 0x34, 0x01, 0x17]]
        {
            assert_eq!(self.xfer(&frame), frame);
        }
    }

    /// The same as broadcasts, converting on every addressed board.
    fn convert_all(&mut self) {
        for frame in [[0x7F, 0x30, 0x3D, 0x6A], [0x7F, 0x31, 0x03, 0xC5], [0x7F, 0x34, 0x01, 0x8A]]
        {
            assert_eq!(self.xfer(&frame), frame);
        }
    }
}

#[test]
fn collin80_enumeration_gives_the_bytes_of_the_real_log() {
    let mut b = Bench::new(1);
    assert_eq!(b.xfer(&[0x7F, 0x3C, 0xA5, 0x57]), [0x7F, 0x3C, 0xA5, 0x57]);
    assert_eq!(b.xfer(&[0x00, 0x00, 0x01]), [0x80, 0x00, 0x01, 0x61, 0x35]);
    assert_eq!(b.xfer(&[0x01, 0x3B, 0x81, 0x8B]), [0x81, 0x3B, 0x81, 0x8B]);
    assert_eq!(b.xfer(&[0x00, 0x00, 0x01]), [0x00, 0x00, 0x01]);
    b.clear_all();
    assert_eq!(b.xfer(&[0x03, 0x32, 0x00, 0x6E]), [0x03, 0x32, 0x00, 0x6E]);
    assert_eq!(b.xfer(&[0x02, 0x20, 0x04]), [0x02, 0x20, 0x04, 0, 0, 0, 0, 0x0D]);
    assert_eq!(b.ring.board(0).unwrap().address(), 1);
}

#[test]
fn sixteen_boards_are_numbered_in_physical_order() {
    let mut b = Bench::new(16);
    assert_eq!(b.enumerate(), 16);
    let addresses: Vec<u8> = b.ring.boards().iter().map(|board| board.address()).collect();
    assert_eq!(addresses, (1..=16).collect::<Vec<u8>>());
}

#[test]
fn pybms_enumeration_reads_with_crc_and_reads_the_address_back() {
    let mut b = Bench::new(3);
    assert_eq!(b.xfer(&[0x7F, 0x3C, 0xA5, 0x57]), [0x7F, 0x3C, 0xA5, 0x57]);
    let probe = Request::read_with_crc(0, 0x00, 1).encode();
    let mut n = 0;
    loop {
        let reply = b.xfer(&probe);
        if reply == probe {
            break;
        }
        assert_eq!(reply, [0x80, 0x00, 0x01, 0x61, 0x35], "the CRC byte belongs to the request");
        n += 1;
        let set = Request::write(0, 0x3B, n | 0x80).encode();
        assert_eq!(b.xfer(&set), [set[0] | 0x80, set[1], set[2], set[3]]);
        assert_eq!(b.read(n, 0x3B, 1, true), [n | 0x80]);
    }
    assert_eq!(n, 3);
    assert_eq!(b.read(1, 0x3B, 1, true), [0x81]);
}

#[test]
fn discovery_finds_present_addresses_and_gets_absent_ones_back_unchanged() {
    let mut b = Bench::new(3);
    b.enumerate();
    for x in 1..=62u8 {
        let request = [x << 1, 0x00, 0x01];
        let reply = b.xfer(&request);
        if x <= 3 {
            assert_eq!(reply.len(), 5, "address {x}");
            assert_eq!(&reply[..3], &request);
            assert_eq!(reply[4], frame_crc(&reply[..4]));
        } else {
            assert_eq!(reply, request, "address {x}");
        }
    }
}

/// §1.11: cells 3.350 V, brick 20.295 V, both thermistors 25.34 °C.
fn measurement_bench() -> Bench {
    let mut b = Bench::new(1);
    b.enumerate();
    b.clear_all();
    b.cells.fill(3.350);
    b.bricks = vec![20.295];
    b.temps.fill(25.34);
    b.convert();
    b
}

const VALUES: [u8; 18] = [
    0x26, 0xF7, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x22, 0x4D, 0x11, 0x16,
    0x11, 0x16,
];

#[test]
fn collin80_measurement_read_gives_the_worked_example() {
    let mut b = measurement_bench();
    let mut expected = vec![0x02, 0x01, 0x12];
    expected.extend(VALUES);
    expected.push(0x93);
    assert_eq!(b.xfer(&[0x02, 0x01, 0x12]), expected);
}

#[test]
fn pybms_measurement_read_gives_the_worked_example_values() {
    let mut b = measurement_bench();
    let reply = b.xfer(&[0x02, 0x00, 0x13, 0xAF]);
    // The worked example shows status 0x00; an addressed board with data ready reports
    // ADDR_RQST and DRDY (§1.7, §1.12.3), which changes the status byte and the CRC.
    assert_eq!(reply.len(), 23);
    assert_eq!(&reply[..4], &[0x02, 0x00, 0x13, 0x81]);
    assert_eq!(&reply[4..22], &VALUES);
    assert_eq!(reply[22], frame_crc(&reply[..22]));
}

#[test]
fn collin80_ts2_constants_change_only_ts2() {
    let mut spec = RingSpec::new(1);
    spec.ts2 = cellwarden_sim::devices::tesla::ThermistorConstants::Collin80;
    let mut b = Bench::with_spec(spec);
    b.enumerate();
    b.temps.fill(25.34);
    b.convert();
    assert_eq!(b.read(1, 0x0F, 4, false), [0x11, 0x16, 0x11, 0x12]);
}

#[test]
fn alerts_and_faults_clear_in_both_masters_styles() {
    let mut b = Bench::new(2);
    b.enumerate();
    assert!(b.ring.fault_line(), "POR is latched after the reset");
    for a in 1..=2 {
        assert_eq!(b.read(a, 0x20, 4, false), [0x80, 0x08, 0, 0]);
    }
    // pyBMS, module 2 only: ALERT 0x80, 0, 0 and FAULT 0x08, 0, 0.
    for (register, value) in
        [(0x20, 0x80), (0x20, 0), (0x20, 0), (0x21, 0x08), (0x21, 0), (0x21, 0)]
    {
        b.write(2, register, value);
    }
    assert_eq!(b.read(2, 0x20, 4, true), [0, 0, 0, 0]);
    assert_eq!(b.read(1, 0x20, 4, true), [0x80, 0x08, 0, 0]);
    assert!(b.ring.fault_line());
    b.clear_all();
    assert_eq!(b.read(1, 0x20, 4, false), [0, 0, 0, 0]);
    assert_eq!(b.read(1, 0x00, 1, false), [0x81]);
    assert!(!b.ring.fault_line());
}

#[test]
fn a_condition_still_present_sets_its_bit_again_at_once() {
    let mut b = Bench::new(1);
    b.xfer(&[0x7F, 0x3C, 0xA5, 0x57]);
    // Unaddressed, the address request cannot be cleared.
    b.write(0, 0x20, 0xFF);
    b.write(0, 0x21, 0xFF);
    assert_eq!(b.read(0, 0x20, 2, false), [0x80, 0x00]);
}

#[test]
fn balancing_bleeds_the_selected_cells_until_the_timer_ends() {
    let mut b = Bench::new(2);
    b.enumerate();
    b.clear_all();
    b.cells.fill(4.0);
    assert_eq!(b.xfer(&[0x03, 0x33, 0x82, 0xFC]), [0x03, 0x33, 0x82, 0xFC]);
    let started = b.now();
    assert_eq!(b.xfer(&[0x03, 0x32, 0x05, 0x75]), [0x03, 0x32, 0x05, 0x75]);
    b.advance(0);
    let mut amps = vec![f64::NAN; 12];
    b.ring.bleed_currents_a(&b.cells, &mut amps);
    let on = 4.0 / 47.0;
    assert_eq!(amps, [on, 0.0, on, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(b.read(1, 0x00, 1, false), [0x83], "CBT while the timer runs");
    assert_eq!(b.read(1, 0x32, 2, false), [0x05, 0x82]);

    let deadline = b.ring.board(0).unwrap().balance_deadline().expect("running");
    // Two minutes from the end of the CB_CTRL write.
    assert_eq!(deadline.as_micros() - started.as_micros(), wire_time_us(4) + 120_000_000);
    assert_eq!(b.ring.poll_timeout(), Some(deadline));
    b.advance(deadline.as_micros() - b.now_us - 1);
    assert_eq!(b.ring.board(0).unwrap().balance_mask(), 0x05);
    let rise = b.ring.board(0).unwrap().temperature_rise_k(b.now());
    // Two cells at 4 V over 47 Ω: 0.68 W, 5.4 K in the steady state, 1.8 K after 2 min.
    assert!((1.6..2.0).contains(&rise), "{rise}");
    b.advance(1);
    b.ring.bleed_currents_a(&b.cells, &mut amps);
    assert!(amps.iter().all(|a| *a == 0.0));
    assert_eq!(b.read(1, 0x00, 1, false), [0x81]);
    assert_eq!(b.read(1, 0x32, 1, false), [0x00]);

    // The warm board reads warmer; a write of 0 stops a running timer.
    b.convert_all();
    let ts1 = b.read(1, 0x0F, 2, false);
    let cold = b.read(2, 0x0F, 2, false);
    assert!(u16::from_be_bytes([ts1[0], ts1[1]]) > u16::from_be_bytes([cold[0], cold[1]]) + 20);
    b.write(1, 0x32, 0x3F);
    assert_eq!(b.ring.board(0).unwrap().balance_mask(), 0x3F);
    b.write(1, 0x32, 0x00);
    assert_eq!(b.ring.board(0).unwrap().balance_deadline(), None);
    assert_eq!(b.read(1, 0x00, 1, false), [0x81]);
}

#[test]
fn bleed_and_leak_add_up_in_the_plant() {
    let spec = PlantSpec {
        cell: CellParams::tesla_group(),
        series_per_module: 6,
        modules: 1,
        strings: 1,
        sensors_per_module: 2,
        initial_soc: 0.5,
        initial_temp_c: 25.0,
        ambient_c: 25.0,
        spread: Spread::default(),
        bus: BusParams {
            capacitance_f: 2e-3,
            precharge_ohm: 50.0,
            bleed_ohm: 100e3,
            short_ohm: None,
            source: None,
        },
    };
    let (mut both, mut leak) = (Plant::new(&spec, 1), Plant::new(&spec, 1));
    both.set_group_leak_a(2, 0.1);
    both.set_group_bleed_a(2, 0.1);
    both.set_group_leak_a(2, 0.1); // setting one leaves the other
    leak.set_group_leak_a(2, 0.2);
    for _ in 0..3600 {
        both.step(1.0, 0.0);
        leak.step(1.0, 0.0);
    }
    assert!((both.group_socs()[2] - leak.group_socs()[2]).abs() < 1e-12);
    assert!(both.group_socs()[2] < both.group_socs()[1]);
}

#[test]
fn group3_writes_need_the_shadow_unlock_right_before() {
    let mut b = Bench::new(1);
    b.enumerate();
    assert_eq!(b.xfer(&[0x03, 0x42, 0x2B, 0x1D]), [0x03, 0x42, 0x2B, 0x1D]);
    assert_eq!(b.read(1, 0x42, 1, false), [0x31], "ignored without the unlock");
    b.xfer(&[0x03, 0x3A, 0x35, 0x4D]);
    b.write(1, 0x30, 0x3D);
    b.xfer(&[0x03, 0x42, 0x2B, 0x1D]);
    assert_eq!(b.read(1, 0x42, 1, false), [0x31], "the unlock covers the next write only");
    b.xfer(&[0x03, 0x3A, 0x35, 0x4D]);
    b.xfer(&[0x03, 0x42, 0x2B, 0x1D]);
    assert_eq!(b.read(1, 0x40, 8, false), [0x10, 0x80, 0x2B, 0x81, 0x08, 0x81, 0x66, 0xFF]);
    // 4.2 V is over the new 4.15 V threshold, not the old 4.45 V.
    b.clear_all();
    b.cells[5] = 4.2;
    b.advance(0);
    b.advance(200_000);
    assert_eq!(b.read(1, 0x21, 2, false), [0x01, 0x20]);
}

#[test]
fn cov_trips_after_its_delay_asserts_the_fault_line_and_clears_once_gone() {
    let mut b = Bench::new(2);
    b.enumerate();
    b.clear_all();
    b.cells[7] = 4.5; // board 2, cell 2
    b.advance(0);
    let t0 = b.now();
    assert_eq!(b.ring.poll_timeout(), Some(Instant::from_micros(t0.as_micros() + 100_000)));
    b.advance(99_999);
    assert!(!b.ring.fault_line());
    let analog = Analog::new(&b.cells, &b.temps);
    b.ring.handle_timeout(Instant::from_micros(t0.as_micros() + 100_000), &analog);
    assert!(b.ring.fault_line());
    assert_eq!(b.read(2, 0x00, 1, false), [0xC1]);
    assert_eq!(b.read(2, 0x20, 4, false), [0x00, 0x01, 0x02, 0x00]);
    b.clear_all();
    assert_eq!(b.read(2, 0x20, 4, false), [0x00, 0x01, 0x02, 0x00], "still over");
    b.cells[7] = 4.0;
    b.advance(1_000);
    b.clear_all();
    assert_eq!(b.read(2, 0x20, 4, false), [0, 0, 0, 0]);
    assert!(!b.ring.fault_line());

    // Under-voltage and over-temperature work the same way (OT as an alert, 2.55 s).
    b.cells[0] = 1.2;
    b.temps[1] = 70.0;
    b.advance(0);
    b.advance(2_550_000);
    assert_eq!(b.read(1, 0x20, 4, false), [0x02, 0x02, 0x00, 0x01]);
}

#[test]
fn sleep_stops_conversions_and_balancing_until_wake() {
    let mut b = Bench::new(1);
    b.enumerate();
    b.clear_all();
    b.convert();
    b.write(1, 0x33, 0x10);
    b.write(1, 0x32, 0x01);
    assert_eq!(b.xfer(&[0x7F, 0x31, 0x04, 0xD0]), [0x7F, 0x31, 0x04, 0xD0]);
    assert_eq!(b.read(1, 0x20, 1, false), [0x04]);
    let mut amps = vec![1.0; 6];
    b.ring.bleed_currents_a(&b.cells, &mut amps);
    assert_eq!(amps, [0.0; 6]);
    let before = b.read(1, 0x03, 2, false);
    b.cells[0] = 3.9;
    b.write(1, 0x34, 0x01);
    assert_eq!(b.read(1, 0x03, 2, false), before, "no conversion while asleep");
    for frame in [[0x7F, 0x31, 0x00, 0xCC], [0x7F, 0x20, 0x04, 0x92], [0x7F, 0x20, 0x00, 0x8E]] {
        assert_eq!(b.xfer(&frame), frame);
    }
    assert_eq!(b.read(1, 0x20, 1, false), [0x00]);
    b.convert();
    assert_ne!(b.read(1, 0x03, 2, false), before);
}

#[test]
fn a_write_with_a_bad_crc_is_flagged_not_executed_and_forwarded() {
    let mut b = Bench::new(2);
    b.enumerate();
    b.clear_all();
    assert_eq!(b.xfer(&[0x03, 0x32, 0x05, 0x00]), [0x03, 0x32, 0x05, 0x00]);
    assert_eq!(b.read(1, 0x32, 1, false), [0x00]);
    assert_eq!(b.read(1, 0x21, 1, false), [0x04]);
    assert_eq!(b.read(2, 0x21, 1, false), [0x00]);
    assert!(b.ring.fault_line());
}

#[test]
fn every_injected_fault_is_visible_to_the_master() {
    let mut b = Bench::new(2);
    b.enumerate();
    let read = Request::read(2, 0x00, 1);
    let inject = |b: &mut Bench, fault| b.ring.inject(b.now(), fault);

    inject(&mut b, RingFault::Corrupt { board: 1, count: 1, byte: 3, bit: 0 });
    let reply = b.xfer(&read.encode()[..3]);
    assert!(matches!(read.decode_reply(&reply), Err(DecodeError::Crc { .. })), "{reply:02X?}");
    assert!(read.decode_reply(&b.xfer(&read.encode()[..3])).is_ok(), "one frame only");

    inject(&mut b, RingFault::Drop { board: 1, count: 1 });
    assert_eq!(b.xfer(&read.encode()[..3]), []);
    assert!(b.read(1, 0x00, 1, false) == [0xE1], "the other board is unaffected");

    inject(&mut b, RingFault::Delay { board: 1, count: 1, us: 5_000 });
    let analog = Analog::new(&b.cells, &b.temps);
    b.ring.receive(b.now(), &read.encode()[..3], &analog);
    let mut out = Vec::new();
    b.ring.take_output(Instant::from_micros(b.now_us + 2_000), &mut out);
    assert_eq!(out, []);
    b.ring.take_output(Instant::from_micros(b.now_us + 6_000), &mut out);
    assert_eq!(out.len(), 5);
    b.advance(20_000);

    inject(&mut b, RingFault::Silent { board: 1, silent: true });
    assert_eq!(b.xfer(&read.encode()[..3]), read.encode()[..3]);
    inject(&mut b, RingFault::Silent { board: 1, silent: false });

    inject(&mut b, RingFault::Frozen { board: 0, frozen: true });
    b.convert();
    let frozen = b.read(1, 0x03, 2, false);
    b.cells[0] = 4.1;
    b.convert();
    assert_eq!(b.read(1, 0x03, 2, false), frozen);
    inject(&mut b, RingFault::Frozen { board: 0, frozen: false });
    b.convert();
    assert_eq!(b.read(1, 0x03, 2, false), 10_747u16.to_be_bytes());
}

#[test]
fn replies_arrive_on_time_and_in_order() {
    let mut b = Bench::new(16);
    b.enumerate();
    let t = b.now_us;
    let analog = Analog::new(&b.cells, &b.temps);
    // A 3-byte read for board 16 and a 4-byte read for board 1, back to back.
    let mut bytes = vec![0x20, 0x00, 0x13];
    bytes.extend(Request::read_with_crc(1, 0x00, 0x13).encode());
    b.ring.receive(b.now(), &bytes, &analog);
    let first = t + wire_time_us(3 + 23) + 16 * 33;
    let mut out = Vec::new();
    b.ring.take_output(Instant::from_micros(first - 1), &mut out);
    assert_eq!(out.len(), 22, "the last byte is still on the wire");
    b.ring.take_output(Instant::from_micros(first), &mut out);
    assert_eq!(out.len(), 23);
    assert!(first - t < 2_000, "inside the collin80 masters' 2 ms wait");
    b.ring.take_output(Instant::from_micros(t + 10_000), &mut out);
    assert_eq!(out.len(), 46);
    assert_eq!(&out[..3], &[0x20, 0x00, 0x13]);
    assert_eq!(&out[23..26], &[0x02, 0x00, 0x13]);
    assert_eq!(b.ring.poll_timeout(), None);
}

#[test]
fn arbitrary_bytes_in_arbitrary_chunks_never_stop_the_ring() {
    for case in 0..300 {
        let mut rng = SimRng::stream(case, "tesla_ring.fuzz");
        let mut draw = |n: f64| (rng.unit() * n) as u64;
        let mut b = Bench::new(1 + draw(4.0) as usize);
        let mut out = Vec::new();
        for _ in 0..draw(30.0) {
            let chunk: Vec<u8> = (0..draw(12.0)).map(|_| draw(256.0) as u8).collect();
            // Mostly forward in time, sometimes backwards.
            b.now_us = (b.now_us + draw(1_500.0)).saturating_sub(draw(1.05) * 5_000);
            let analog = Analog::new(&b.cells, &b.temps);
            b.ring.receive(b.now(), &chunk, &analog);
            if draw(2.0) == 0 {
                b.ring.take_output(b.now(), &mut out);
                let _ = b.ring.poll_timeout();
                b.ring.handle_timeout(b.now(), &analog);
            }
        }
        b.advance(1_000_000);
        b.ring.take_output(b.now(), &mut out);
        let probe = Request::read_with_crc(0, 0x00, 1).encode();
        let reset = [0x7F, 0x3C, 0xA5, 0x57];
        assert_eq!(b.xfer(&reset), reset, "case {case}");
        let reply = b.xfer(&probe);
        assert_eq!(reply, [0x80, 0x00, 0x01, 0x61, 0x35], "case {case}");
    }
}
