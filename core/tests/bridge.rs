//! The Tesla board bridge: one input batch per measurement cycle, the balance set split into
//! per-board masks, a tripped board protector reported as a hardware fault, and board events
//! reported once while they persist.
//!
//! The end-to-end tests drive the bridge's own master against a small scripted ring (below) that
//! answers each request at once from a register file per board, so what the bridge decides is
//! checked on the bytes a real ring would send.

use cellwarden_core::proto::tesla::bridge::{BATCH_CAPACITY, BoardBridge, BridgeEvent, board_mask};
use cellwarden_core::proto::tesla::frame::{
    BROADCAST, MARKER, Request, UNASSIGNED, encode_reply, frame_crc,
};
use cellwarden_core::proto::tesla::master::{Event, MasterConfig, Reading};
use cellwarden_core::proto::tesla::regs::{self, fault, status};
use cellwarden_core::proto::tesla::scale::{self, Thermistor};
use cellwarden_core::{Bms, CellMask, Config, DeciCelsius, Input, Instant, MilliVolts};

// ------------------------------------------------------------------------------------------------
// A scripted ring
// ------------------------------------------------------------------------------------------------

struct Board {
    address: u8,
    regs: [u8; regs::REGISTER_COUNT],
}

impl Board {
    fn new(cells_mv: [i32; regs::CELLS], temperature_dc: i32) -> Board {
        let mut regs = [0u8; regs::REGISTER_COUNT];
        regs[usize::from(regs::DEVICE_STATUS)] = status::DRDY;
        let mut word = |at: u8, value: u16| {
            regs[usize::from(at)..usize::from(at) + 2].copy_from_slice(&value.to_be_bytes());
        };
        word(regs::GPAI, scale::brick_raw(MilliVolts(cells_mv.iter().sum())));
        for (k, mv) in cells_mv.iter().enumerate() {
            word(regs::VCELL1 + 2 * k as u8, scale::cell_raw(MilliVolts(*mv)));
        }
        let t = scale::temperature_raw(DeciCelsius(temperature_dc), Thermistor::PYBMS);
        word(regs::TEMPERATURE1, t);
        word(regs::TEMPERATURE2, t);
        Board { address: UNASSIGNED, regs }
    }

    /// A latched cell over-voltage on cell 1 that persists: clearing it sets it again.
    fn trip_over_voltage(&mut self) {
        self.regs[usize::from(regs::DEVICE_STATUS)] |= status::FAULT;
        self.regs[usize::from(regs::FAULT_STATUS)] = fault::COV;
        self.regs[usize::from(regs::COV_FAULT)] = 0x01;
    }

    fn clear(&mut self) {
        self.regs[usize::from(regs::DEVICE_STATUS)] = status::DRDY;
        self.regs[usize::from(regs::FAULT_STATUS)] = 0;
        self.regs[usize::from(regs::COV_FAULT)] = 0;
    }
}

struct Ring {
    boards: Vec<Board>,
}

impl Ring {
    /// What comes back to the master for `frame`: a board's answer, or the frame itself.
    fn answer(&mut self, frame: &[u8]) -> Vec<u8> {
        let Ok((request, _)) = Request::decode(frame) else { return frame.to_vec() };
        match request {
            Request::Write { address, register, value } => {
                let mut marked = false;
                if address == BROADCAST {
                    for b in &mut self.boards {
                        if register == regs::RESET && value == regs::RESET_MAGIC {
                            b.address = UNASSIGNED;
                        }
                    }
                } else if address == UNASSIGNED {
                    if let Some(b) = self.boards.iter_mut().find(|b| b.address == UNASSIGNED) {
                        if register == regs::ADDRESS_CONTROL {
                            b.address = value & 0x3F;
                            marked = true;
                        }
                    }
                } else if let Some(b) = self.boards.iter_mut().find(|b| b.address == address) {
                    // Latched bits stay set (the condition persists); other writes are kept.
                    if !(regs::ALERT_STATUS..=regs::CUV_FAULT).contains(&register) {
                        b.regs[usize::from(register)] = value;
                    }
                }
                let head = [frame[0] | if marked { MARKER } else { 0 }, frame[1], frame[2]];
                vec![head[0], head[1], head[2], frame_crc(&head)]
            }
            Request::Read { address, register, len, .. } => {
                let board = self.boards.iter().find(|b| b.address == address);
                let Some(board) = board else { return frame.to_vec() };
                let marker = if address == UNASSIGNED { MARKER } else { 0 };
                let start = usize::from(register);
                let data = &board.regs[start..start + usize::from(len)];
                let mut out = [0u8; 32];
                let n = encode_reply(frame[0] | marker, register, data, &mut out).expect("fits");
                out[..n].to_vec()
            }
        }
    }
}

/// Runs bridge and ring until `until`; returns the bridge's events, with the batch of each
/// finished cycle copied out as (first cell or sensor, values) pairs.
fn run(
    bridge: &mut BoardBridge,
    ring: &mut Ring,
    now: &mut Instant,
    until: Instant,
) -> Vec<Logged> {
    let mut out = Vec::new();
    loop {
        let mut tx = [0u8; 4];
        while let Some(n) = bridge.poll_transmit(&mut tx) {
            let reply = ring.answer(&tx[..n]);
            bridge.handle_received(*now, &reply);
        }
        while let Some(event) = bridge.poll_event() {
            let inputs = bridge.inputs().map(leak).collect();
            out.push((event, inputs));
        }
        match bridge.poll_timeout() {
            Some(t) if t <= until => {
                *now = (*now).max(t);
                bridge.handle_timeout(*now);
            }
            _ => break,
        }
    }
    *now = until;
    out
}

/// An input with its slice copied out, so the test can keep it past the next poll.
fn leak(input: Input<'_>) -> Input<'static> {
    match input {
        Input::CellVoltages { sampled_at, first, mv } => {
            Input::CellVoltages { sampled_at, first, mv: Vec::leak(mv.to_vec()) }
        }
        Input::Temperatures { sampled_at, first, dc } => {
            Input::Temperatures { sampled_at, first, dc: Vec::leak(dc.to_vec()) }
        }
        other => panic!("a bridge batch holds cells and temperatures only, not {other:?}"),
    }
}

fn config(modules: u8) -> MasterConfig {
    let mut config = MasterConfig::tesla(modules);
    config.ts2 = Thermistor::PYBMS;
    config
}

fn ring(modules: usize) -> Ring {
    let boards =
        (0..modules).map(|m| Board::new([3_800 + m as i32 * 10; regs::CELLS], 250)).collect();
    Ring { boards }
}

type Logged = (BridgeEvent, Vec<Input<'static>>);

fn cycles(events: &[Logged]) -> Vec<&Logged> {
    events.iter().filter(|(e, _)| matches!(e, BridgeEvent::CycleDone { .. })).collect()
}

// ------------------------------------------------------------------------------------------------
// One batch per cycle
// ------------------------------------------------------------------------------------------------

#[test]
fn each_cycle_gives_one_batch_of_every_board_and_it_feeds_the_pack_controller_at_once() {
    let (mut now, until) = (Instant::ZERO, Instant::from_micros(3_500_000));
    let mut bridge = BoardBridge::new(config(4), now).expect("valid settings");
    let mut ring = ring(4);
    let events = run(&mut bridge, &mut ring, &mut now, until);
    assert!(
        events
            .iter()
            .any(|(e, _)| *e == BridgeEvent::Board(Event::Enumerated { found: 4, expected: 4 })),
        "{events:?}"
    );
    let cycles = cycles(&events);
    assert!(cycles.len() >= 2, "a cycle per scan period: {events:?}");
    for (event, inputs) in &cycles {
        assert!(matches!(
            event,
            BridgeEvent::CycleDone { measured: 4, missed: 0, readings: 4, .. }
        ));
        // Per board: its six cells, then its two thermistors.
        assert_eq!(inputs.len(), 4 * 3);
        assert!(inputs.len() <= BATCH_CAPACITY);
        for (m, chunk) in inputs.chunks(3).enumerate() {
            let Input::CellVoltages { first, mv, .. } = chunk[0] else { panic!("{chunk:?}") };
            assert_eq!(first, 6 * m as u16);
            assert!(mv.iter().all(|v| (v.0 - (3_800 + 10 * m as i32)).abs() <= 2), "{mv:?}");
            for (k, input) in chunk[1..].iter().enumerate() {
                let Input::Temperatures { first, dc, .. } = *input else { panic!("{input:?}") };
                assert_eq!(first, 2 * m as u16 + k as u16);
                assert!((dc[0].0 - 250).abs() <= 5, "{dc:?}");
            }
        }
    }
    // Outside the cycle that was just reported there is no batch.
    assert_eq!(bridge.inputs().count(), 0);

    // One batch brings a pack controller every cell and sensor of the string in one call.
    let mut bms = Bms::new(Config::tesla_model_s(4), Instant::ZERO).expect("valid preset");
    let (_, inputs) = cycles.last().expect("a cycle");
    bms.handle_batch(now, inputs.iter().copied());
    let summary = bms.status().summary;
    assert_eq!(summary.cell_missing, None);
    assert_eq!(summary.temperature_missing, None);
    let (min, max) = (summary.cell_min.expect("cells"), summary.cell_max.expect("cells"));
    assert!((min.value - 3_800).abs() <= 2 && (max.value - 3_830).abs() <= 2, "{summary:?}");
}

#[test]
fn readings_wait_for_the_end_of_their_cycle_and_a_missed_board_is_left_out() {
    let mut bridge = BoardBridge::new(config(3), Instant::ZERO).expect("valid settings");
    let reading = |module: u8, status: u8, valid: [bool; 2]| {
        Event::Reading(Reading {
            module,
            sampled_at: Instant::from_micros(1_000),
            cells: [MilliVolts(3_700); regs::CELLS],
            temperatures: [DeciCelsius(200), DeciCelsius(210)],
            temperature_valid: valid,
            module_mv: MilliVolts(22_200),
            status,
        })
    };
    assert_eq!(bridge.handle_event(reading(0, status::DRDY, [true, true])), None);
    assert_eq!(bridge.inputs().count(), 0, "no batch before the cycle ends");
    // Board 1 missed the cycle; board 2's second thermistor reads nothing plausible.
    assert_eq!(bridge.handle_event(reading(2, status::DRDY, [true, false])), None);
    let done = Event::CycleDone {
        started: Instant::from_micros(1_000),
        finished: Instant::from_micros(9_000),
        measured: 2,
        missed: 1,
    };
    assert_eq!(
        bridge.handle_event(done),
        Some(BridgeEvent::CycleDone {
            started: Instant::from_micros(1_000),
            finished: Instant::from_micros(9_000),
            measured: 2,
            missed: 1,
            readings: 2,
        })
    );
    let firsts: Vec<(bool, u16)> = bridge
        .inputs()
        .map(|i| match i {
            Input::CellVoltages { first, .. } => (true, first),
            Input::Temperatures { first, .. } => (false, first),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(firsts, [(true, 0), (false, 0), (false, 1), (true, 12), (false, 4)]);

    // The next cycle starts empty: the old readings are not delivered twice.
    let empty = Event::CycleDone {
        started: Instant::from_micros(9_000),
        finished: Instant::from_micros(17_000),
        measured: 0,
        missed: 3,
    };
    assert!(matches!(bridge.handle_event(empty), Some(BridgeEvent::CycleDone { readings: 0, .. })));
    assert_eq!(bridge.inputs().count(), 0);
}

// ------------------------------------------------------------------------------------------------
// Balance masks per board
// ------------------------------------------------------------------------------------------------

#[test]
fn the_balance_set_is_split_into_each_boards_six_cells() {
    let mut bridge = BoardBridge::new(config(3), Instant::ZERO).expect("valid settings");
    // Cell 18 would be the first cell of a fourth board, which this string does not have.
    let cells: CellMask = [0, 5, 6, 13, 17, 18].into_iter().collect();
    bridge.set_balance(&cells);
    let wanted: Vec<u8> =
        (0..4).map(|m| bridge.master().board(m).expect("board").balance_wanted).collect();
    assert_eq!(wanted, [0b10_0001, 0b00_0001, 0b10_0010, 0]);
    assert_eq!(board_mask(&cells, 3), 0b1);

    bridge.set_balance(&CellMask::EMPTY);
    assert!((0..3).all(|m| bridge.master().board(m).expect("board").balance_wanted == 0));
}

#[test]
fn the_masks_reach_the_boards_over_the_ring() {
    let (mut now, until) = (Instant::ZERO, Instant::from_micros(2_500_000));
    let mut bridge = BoardBridge::new(config(2), now).expect("valid settings");
    let mut ring = ring(2);
    run(&mut bridge, &mut ring, &mut now, Instant::from_micros(1_200_000));
    bridge.set_balance(&[1, 2, 10].into_iter().collect());
    run(&mut bridge, &mut ring, &mut now, until);
    let cb: Vec<u8> = ring.boards.iter().map(|b| b.regs[usize::from(regs::CB_CTRL)]).collect();
    assert_eq!(cb, [0b0110, 0b1_0000]);
}

// ------------------------------------------------------------------------------------------------
// The protector as a hardware fault, and reports once while a condition persists
// ------------------------------------------------------------------------------------------------

#[test]
fn a_tripped_protector_is_a_hardware_fault_and_is_reported_once_while_it_persists() {
    let mut now = Instant::ZERO;
    let mut bridge = BoardBridge::new(config(3), now).expect("valid settings");
    let mut ring = ring(3);
    run(&mut bridge, &mut ring, &mut now, Instant::from_micros(1_500_000));
    assert!(!bridge.hardware_fault(false), "no protector tripped, no fault line");
    assert!(bridge.hardware_fault(true), "the fault line alone is a hardware fault");

    ring.boards[1].trip_over_voltage();
    let events = run(&mut bridge, &mut ring, &mut now, Instant::from_micros(6_500_000));
    assert!(cycles(&events).len() >= 4, "several cycles re-read the latched bits");
    assert!(bridge.hardware_fault(false), "a tripped protector is a hardware fault");
    let reports: Vec<_> = events
        .iter()
        .filter(|(e, _)| matches!(e, BridgeEvent::Board(Event::Faults { .. })))
        .collect();
    assert_eq!(reports.len(), 1, "the persisting condition is reported once: {reports:?}");
    assert!(matches!(
        reports[0].0,
        BridgeEvent::Board(Event::Faults { module: 1, fault: fault::COV, cov: 0x01, .. })
    ));

    // Cleared: a clean status releases the fault and re-arms the report.
    ring.boards[1].clear();
    run(&mut bridge, &mut ring, &mut now, Instant::from_micros(8_500_000));
    assert!(!bridge.hardware_fault(false));
    ring.boards[1].trip_over_voltage();
    let events = run(&mut bridge, &mut ring, &mut now, Instant::from_micros(10_500_000));
    let again =
        events.iter().filter(|(e, _)| matches!(e, BridgeEvent::Board(Event::Faults { .. })));
    assert_eq!(again.count(), 1, "a new trip after a clean status is reported again");
    assert!(bridge.hardware_fault(false));
}

#[test]
fn fault_bits_that_change_are_reported_each_time() {
    let mut bridge = BoardBridge::new(config(2), Instant::ZERO).expect("valid settings");
    let faults = |alert: u8, fault: u8| Event::Faults { module: 0, alert, fault, cov: 0, cuv: 0 };
    let reported = |bridge: &mut BoardBridge, e: Event| bridge.handle_event(e).is_some();
    assert!(reported(&mut bridge, faults(0, fault::COV)));
    assert!(!reported(&mut bridge, faults(0, fault::COV)));
    assert!(reported(&mut bridge, faults(0, fault::COV | fault::CUV)), "a new bit is news");
    assert!(!reported(&mut bridge, faults(0, fault::COV | fault::CUV)));
    // Board 1 keeps its own record.
    let other = Event::Faults { module: 1, alert: 0, fault: fault::COV, cov: 0, cuv: 0 };
    assert!(reported(&mut bridge, other));
    // Lost and recovered boards are always worth reporting.
    assert!(reported(&mut bridge, Event::Lost { module: 0 }));
    assert!(reported(&mut bridge, Event::Lost { module: 0 }));
    // A module number beyond any board is never reported (nor panics).
    let stray = Event::Faults { module: 200, alert: 1, fault: 1, cov: 0, cuv: 0 };
    assert!(!reported(&mut bridge, stray));
}
