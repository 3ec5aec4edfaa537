//! The core's bus master against the register-level ring emulator, in virtual time: the two
//! halves of the Tesla module-board protocol checked against each other.

use cellwarden_core::proto::tesla::master::{Event, Master, MasterConfig, Phase};
use cellwarden_core::proto::tesla::{regs, scale};
use cellwarden_core::{Duration, Instant, MilliVolts};
use cellwarden_sim::devices::tesla::{Analog, Ring, RingFault, RingSpec};

/// A master, a ring and the analogue values the boards see.
struct Pair {
    master: Master,
    ring: Ring,
    now: Instant,
    cells: Vec<f64>,
    temps: Vec<f64>,
    events: Vec<(Instant, Event)>,
    sent: Vec<Vec<u8>>,
    /// A fault injected the moment the master sends this frame.
    trap: Option<(Vec<u8>, RingFault)>,
}

impl Pair {
    fn new(boards: u8, config: impl FnOnce(&mut MasterConfig)) -> Pair {
        let mut c = MasterConfig::tesla(boards);
        config(&mut c);
        let n = usize::from(boards);
        Pair {
            master: Master::new(c, Instant::ZERO).expect("valid settings"),
            ring: Ring::new(&RingSpec::new(n)),
            now: Instant::ZERO,
            cells: (0..n * 6).map(|i| 3.600 + 0.002 * i as f64).collect(),
            temps: (0..n * 2).map(|i| 20.0 + 0.5 * i as f64).collect(),
            events: Vec::new(),
            sent: Vec::new(),
            trap: None,
        }
    }

    /// Runs in virtual time until `until`, jumping from deadline to deadline.
    fn run_until(&mut self, until: Instant) {
        let mut rx = Vec::new();
        let mut tx = [0u8; 4];
        for _ in 0..10_000_000 {
            let analog = Analog::new(&self.cells, &self.temps);
            self.ring.observe(self.now, &analog);
            self.ring.take_output(self.now, &mut rx);
            if !rx.is_empty() {
                self.master.handle_received(self.now, &rx);
                rx.clear();
            }
            if self.ring.poll_timeout().is_some_and(|t| t <= self.now) {
                self.ring.handle_timeout(self.now, &analog);
            }
            if self.master.poll_timeout().is_some_and(|t| t <= self.now) {
                self.master.handle_timeout(self.now);
            }
            while let Some(n) = self.master.poll_transmit(&mut tx) {
                self.sent.push(tx[..n].to_vec());
                if self.trap.as_ref().is_some_and(|(frame, _)| frame[..] == tx[..n]) {
                    let (_, fault) = self.trap.take().unwrap();
                    self.ring.inject(self.now, fault);
                }
                self.ring.receive(self.now, &tx[..n], &analog);
            }
            while let Some(event) = self.master.poll_event() {
                self.events.push((self.now, event));
            }
            let next = [self.master.poll_timeout(), self.ring.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t > self.now)
                .min();
            match next {
                Some(t) if t <= until => self.now = t,
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        panic!("runaway loop at {:?}", self.now);
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn cycles(&self) -> Vec<(Instant, Instant, u8, u8)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::CycleDone { started, finished, measured, missed } => {
                    Some((*started, *finished, *measured, *missed))
                }
                _ => None,
            })
            .collect()
    }

    fn last_reading(&self, module: u8) -> Option<cellwarden_core::proto::tesla::master::Reading> {
        self.events.iter().rev().find_map(|(_, e)| match e {
            Event::Reading(r) if r.module == module => Some(*r),
            _ => None,
        })
    }
}

#[test]
fn sixteen_boards_are_enumerated_in_order_and_measured() {
    let mut p = Pair::new(16, |_| {});
    p.run_for(Duration::from_millis(500));
    assert!(
        p.events.iter().any(|(_, e)| *e == Event::Enumerated { found: 16, expected: 16 }),
        "events: {:?}",
        &p.events[..p.events.len().min(5)]
    );
    for (i, board) in p.ring.boards().iter().enumerate() {
        assert_eq!(usize::from(board.address()), i + 1, "physical order");
    }
    let cycles = p.cycles();
    assert!(cycles.len() >= 4, "{} cycles in 500 ms at a 100 ms scan period", cycles.len());
    assert!(cycles.iter().all(|c| c.2 == 16 && c.3 == 0));
    for m in 0..16u8 {
        let r = p.last_reading(m).expect("every board read");
        for (k, mv) in r.cells.iter().enumerate() {
            let truth = p.cells[usize::from(m) * 6 + k] * 1000.0;
            assert!(
                (f64::from(mv.0) - truth).abs() <= 1.0,
                "board {m} cell {k}: {mv:?} vs {truth}"
            );
        }
        for (k, dc) in r.temperatures.iter().enumerate() {
            let truth = p.temps[usize::from(m) * 2 + k] * 10.0;
            assert!((f64::from(dc.0) - truth).abs() <= 2.0, "board {m} ts{k}: {dc:?} vs {truth}");
        }
        assert!(r.temperature_valid.iter().all(|v| *v));
    }
}

#[test]
fn the_protector_thresholds_reach_every_board() {
    let mut p = Pair::new(3, |_| {});
    p.run_for(Duration::from_millis(200));
    let expected = MasterConfig::tesla(3).protector.unwrap().codes().unwrap();
    for board in p.ring.boards() {
        for (reg, value) in expected {
            assert_eq!(board.register(reg), value, "register {reg:#04x}");
        }
        assert_eq!(board.register(regs::FAULT_STATUS), 0, "POR cleared after set-up");
    }
    assert_eq!(scale::cov_mv(expected[0].1), Some(MilliVolts(4_300)));
}

#[test]
fn a_burst_of_corrupted_replies_is_ridden_out_by_retries() {
    let mut p = Pair::new(4, |_| {});
    p.run_for(Duration::from_millis(300));
    let before = p.master.counters();
    p.ring.inject(p.now, RingFault::Corrupt { board: 2, count: 2, byte: 5, bit: 3 });
    p.run_for(Duration::from_millis(300));
    let after = p.master.counters();
    assert_eq!(after.crc_errors - before.crc_errors, 2, "both corrupted replies detected");
    assert!(after.retries - before.retries >= 2);
    let since: Vec<_> = p.cycles().into_iter().filter(|c| c.0 > before_time(&p, 300)).collect();
    assert!(since.iter().all(|c| c.2 == 4 && c.3 == 0), "no board missed a cycle: {since:?}");
    assert!(!p.master.board(2).unwrap().lost);
}

/// The instant `ms` milliseconds before now.
fn before_time(p: &Pair, ms: u64) -> Instant {
    Instant::from_micros(p.now.as_micros().saturating_sub(ms * 1000))
}

#[test]
fn more_corruption_than_retries_misses_a_cycle_but_keeps_the_good_data() {
    let mut p = Pair::new(4, |_| {});
    p.run_for(Duration::from_millis(300));
    let good = p.last_reading(1).unwrap();
    // Three attempts per request (two retries), all corrupted: board 1 misses one cycle.
    p.ring.inject(p.now, RingFault::Corrupt { board: 1, count: 3, byte: 4, bit: 0 });
    let mark = p.events.len();
    p.run_for(Duration::from_millis(100));
    let missed: u8 = p.events[mark..]
        .iter()
        .filter_map(|(_, e)| match e {
            Event::CycleDone { missed, .. } => Some(*missed),
            _ => None,
        })
        .sum();
    assert_eq!(missed, 1);
    let readings_of_1 = p.events[mark..]
        .iter()
        .filter(|(_, e)| matches!(e, Event::Reading(r) if r.module == 1))
        .count();
    assert_eq!(readings_of_1, 0, "no reading is made up from a bad frame");
    assert_eq!(p.master.board(1).unwrap().last_good, Some(good.sampled_at));
    assert!(!p.master.board(1).unwrap().lost, "one missed cycle is not a lost board");
    p.run_for(Duration::from_millis(200));
    assert!(p.last_reading(1).unwrap().sampled_at > good.sampled_at, "board 1 back");
}

#[test]
fn a_silent_board_is_lost_after_three_cycles_and_found_again() {
    let mut p = Pair::new(4, |c| c.rediscover_ms = 1_000);
    p.run_for(Duration::from_millis(300));
    p.ring.inject(p.now, RingFault::Silent { board: 3, silent: true });
    let silenced = p.now;
    p.run_for(Duration::from_millis(500));
    let lost_at = p
        .events
        .iter()
        .find_map(|(t, e)| (*e == Event::Lost { module: 3 }).then_some(*t))
        .expect("board 3 reported lost");
    let cycles_between = p.cycles().iter().filter(|c| c.0 >= silenced && c.1 <= lost_at).count();
    assert_eq!(cycles_between, 3, "lost after exactly lost_after failed cycles");
    assert!(p.master.board(3).unwrap().lost);
    assert!(p.cycles().last().unwrap().2 == 3, "the other boards are still measured");
    p.ring.inject(p.now, RingFault::Silent { board: 3, silent: false });
    p.run_for(Duration::from_millis(2_000));
    assert!(p.events.iter().any(|(_, e)| *e == Event::Recovered { module: 3 }));
    assert!(!p.master.board(3).unwrap().lost);
    assert_eq!(p.cycles().last().unwrap().2, 4);
}

#[test]
fn dropped_and_late_replies_are_retried_and_late_bytes_do_not_confuse_the_next_request() {
    let mut p = Pair::new(4, |_| {});
    p.run_for(Duration::from_millis(300));
    p.ring.inject(p.now, RingFault::Drop { board: 0, count: 1 });
    p.ring.inject(p.now, RingFault::Delay { board: 2, count: 1, us: 5_000 });
    let mark = p.events.len();
    p.run_for(Duration::from_millis(500));
    let c = p.master.counters();
    assert!(c.timeouts >= 2, "the dropped and the late reply both time out: {c:?}");
    for (_, e) in &p.events[mark..] {
        if let Event::CycleDone { measured, missed, .. } = e {
            assert_eq!((*measured, *missed), (4, 0), "every board still measured every cycle");
        }
    }
    for m in 0..4u8 {
        let r = p.last_reading(m).unwrap();
        let truth = p.cells[usize::from(m) * 6] * 1000.0;
        assert!((f64::from(r.cells[0].0) - truth).abs() <= 1.0);
    }
}

#[test]
fn balance_masks_reach_the_boards_and_are_refreshed_before_their_timer_ends() {
    let mut p = Pair::new(2, |c| c.balance_time_s = 10);
    p.run_for(Duration::from_millis(300));
    p.master.set_balance(1, 0b000101);
    p.run_for(Duration::from_millis(200));
    assert_eq!(p.ring.board(1).unwrap().balance_mask(), 0b000101);
    assert_eq!(p.ring.board(0).unwrap().balance_mask(), 0);
    assert!(p.sent.iter().any(|f| f.len() == 4 && f[..3] == [0x05, regs::CB_TIME, 10]));
    let mut bleed = vec![0.0; 12];
    p.ring.bleed_currents_a(&p.cells, &mut bleed);
    let on: Vec<usize> = (0..12).filter(|&i| bleed[i] > 0.0).collect();
    assert_eq!(on, vec![6, 8], "cells 1 and 3 of board 1");
    // Well past the boards' own 10 s timer: the master keeps it running.
    p.run_for(Duration::from_secs(30));
    assert_eq!(p.ring.board(1).unwrap().balance_mask(), 0b000101);
    p.master.set_balance(1, 0);
    p.run_for(Duration::from_millis(200));
    assert_eq!(p.ring.board(1).unwrap().balance_mask(), 0);
}

#[test]
fn a_tripped_protector_is_read_reported_and_cleared() {
    let mut p = Pair::new(2, |_| {});
    p.run_for(Duration::from_millis(300));
    assert!(!p.master.protector_tripped());
    p.cells[7] = 4.35; // above the 4.30 V hardware threshold
    p.run_for(Duration::from_millis(1_500));
    assert!(p.master.protector_tripped());
    let faults = p.events.iter().find_map(|(_, e)| match e {
        Event::Faults { module: 1, fault, cov, .. } => Some((*fault, *cov)),
        _ => None,
    });
    assert_eq!(faults, Some((regs::fault::COV, 0b10)), "board 1, cell 2 over voltage");
    p.cells[7] = 4.10;
    p.run_for(Duration::from_millis(500));
    assert!(!p.master.protector_tripped(), "cleared once the condition is gone");
    assert_eq!(p.ring.board(1).unwrap().register(regs::FAULT_STATUS), 0);
}

#[test]
fn a_missing_board_is_reported_and_rediscovered_when_it_appears() {
    // The master expects 4 boards; the ring has 3 until a fourth is "connected".
    let mut p = Pair::new(4, |c| c.rediscover_ms = 500);
    p.ring = Ring::new(&RingSpec::new(3));
    p.run_for(Duration::from_millis(300));
    assert!(p.events.iter().any(|(_, e)| *e == Event::Enumerated { found: 3, expected: 4 }));
    assert_eq!(p.cycles().last().unwrap().2, 3, "the three present boards are measured");
    assert_ne!(p.master.phase(), Phase::NoRing);
    // The fourth board is connected: the next rediscovery finds it.
    let mut grown = Ring::new(&RingSpec::new(4));
    std::mem::swap(&mut p.ring, &mut grown);
    p.run_for(Duration::from_millis(800));
    assert!(p.events.iter().any(|(_, e)| *e == Event::Enumerated { found: 4, expected: 4 }));
    assert_eq!(p.cycles().last().unwrap().2, 4);
}

#[test]
fn a_lost_address_echo_restarts_enumeration_instead_of_giving_two_boards_one_address() {
    let mut p = Pair::new(3, |_| {});
    for board in 0..3 {
        for k in 0..6 {
            p.cells[board * 6 + k] = [3.6, 3.7, 3.8][board];
        }
    }
    // The echo of the first address assignment comes back corrupted.
    let assign = cellwarden_core::proto::tesla::Request::write(0, regs::ADDRESS_CONTROL, 0x81);
    p.trap = Some((
        assign.encode().to_vec(),
        RingFault::Corrupt { board: 0, count: 1, byte: 2, bit: 0 },
    ));
    p.run_for(Duration::from_millis(300));
    assert!(p.trap.is_none(), "the assignment was sent");
    // A corrupted echo no longer matches the request: it is dropped and the wait times out.
    assert_eq!(p.master.counters().timeouts, 1);
    assert_eq!(p.master.counters().enumerations, 2, "the corrupted echo restarted enumeration");
    let addresses: Vec<u8> = p.ring.boards().iter().map(|b| b.address()).collect();
    assert_eq!(addresses, vec![1, 2, 3], "every board has its own address");
    for m in 0..3u8 {
        let r = p.last_reading(m).unwrap();
        assert_eq!(r.cells[0], MilliVolts([3_600, 3_700, 3_800][usize::from(m)]), "board {m}");
    }
}

#[test]
fn a_silent_board_in_the_middle_never_shifts_the_others_addresses() {
    let mut p = Pair::new(6, |c| c.rediscover_ms = 500);
    for board in 0..6 {
        for k in 0..6 {
            p.cells[board * 6 + k] = 3.5 + 0.05 * board as f64;
        }
    }
    p.run_for(Duration::from_millis(300));
    p.ring.inject(p.now, RingFault::Silent { board: 2, silent: true });
    // Several rediscovery periods with board 2 lost.
    p.run_for(Duration::from_secs(3));
    assert!(p.master.board(2).unwrap().lost);
    let addresses: Vec<u8> = p.ring.boards().iter().map(|b| b.address()).collect();
    assert_eq!(addresses, vec![1, 2, 3, 4, 5, 6], "nobody was renumbered");
    assert_eq!(p.master.counters().enumerations, 1, "the ring was never reset");
    for m in [0u8, 1, 3, 4, 5] {
        let r = p.last_reading(m).unwrap();
        let truth = 3_500 + 50 * i32::from(m);
        assert_eq!(r.cells[0], MilliVolts(truth), "board {m} reads its own cells");
    }
    assert!(
        !p.events.iter().any(|(_, e)| *e == Event::Recovered { module: 2 }),
        "a silent board is not reported back"
    );
    p.ring.inject(p.now, RingFault::Silent { board: 2, silent: false });
    p.run_for(Duration::from_millis(500));
    assert!(p.events.iter().any(|(_, e)| *e == Event::Recovered { module: 2 }));
    assert_eq!(p.last_reading(2).unwrap().cells[0], MilliVolts(3_600));
}

#[test]
fn sleep_stops_measuring_and_wake_resumes_with_the_sleep_alert_cleared() {
    let mut p = Pair::new(3, |_| {});
    p.run_for(Duration::from_millis(300));
    p.master.set_balance(0, 0b1);
    p.run_for(Duration::from_millis(200));
    assert_eq!(p.ring.board(0).unwrap().balance_mask(), 0b1);
    p.master.sleep(p.now);
    p.run_for(Duration::from_millis(200));
    assert_eq!(p.master.phase(), Phase::Asleep);
    assert!(p.ring.boards().iter().all(|b| b.asleep()));
    let mut bleed = vec![0.0; 18];
    p.ring.bleed_currents_a(&p.cells, &mut bleed);
    assert!(bleed.iter().all(|a| *a == 0.0), "sleeping boards do not bleed");
    let cycles = p.cycles().len();
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.cycles().len(), cycles, "no cycle while asleep");
    p.master.wake(p.now);
    p.run_for(Duration::from_millis(350));
    assert!(p.ring.boards().iter().all(|b| !b.asleep()));
    assert!(p.cycles().len() >= cycles + 3, "measuring again");
    for board in p.ring.boards() {
        assert_eq!(board.register(regs::ALERT_STATUS) & regs::alert::SLEEP, 0);
    }
    assert_eq!(p.ring.board(0).unwrap().balance_mask(), 0b1, "balancing written again");
}

#[test]
fn a_board_whose_conversion_never_finishes_is_not_reported_as_fresh() {
    // The master reads DEVICE_STATUS with every measurement: with DRDY clear the results are
    // those of an older conversion, so the board fails the cycle rather than report them with
    // this cycle's sample time.
    let mut p = Pair::new(4, |_| {});
    p.run_for(Duration::from_millis(500));
    let before = p.last_reading(2).expect("board 2 measured");
    p.ring.inject(p.now, RingFault::Stalled { board: 2, stalled: true });
    let stalled_at = p.now;
    p.run_for(Duration::from_millis(1_000));
    let latest = p.last_reading(2).expect("still its old reading");
    assert!(latest.sampled_at <= stalled_at + Duration::from_millis(100), "{latest:?}");
    assert!(latest.sampled_at >= before.sampled_at);
    assert!(
        p.events.iter().any(|(_, e)| matches!(e, Event::Lost { module: 2 })),
        "three failed cycles make it lost"
    );
    for module in [0, 1, 3] {
        let r = p.last_reading(module).expect("the others are measured");
        assert!(r.sampled_at > stalled_at + Duration::from_millis(800), "{r:?}");
    }
    p.ring.inject(p.now, RingFault::Stalled { board: 2, stalled: false });
    p.run_for(Duration::from_millis(500));
    let again = p.last_reading(2).expect("measured again");
    assert!(again.sampled_at + Duration::from_millis(200) > p.now, "{again:?}");
    assert_eq!(again.status & regs::status::DRDY, regs::status::DRDY);
}
