//! The bus master against hostile input: any bytes, in any chunks, at any times, with early
//! and late timeouts and balance requests in between. The fuzz target `tesla_master` does the
//! same with coverage guidance; this property test keeps it in every test run.

use cellwarden_core::proto::tesla::master::{Event, Master, MasterConfig};
use cellwarden_core::{Duration, Instant};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Bytes(Vec<u8>),
    Wait(u32),
    Balance(u8, u8),
    Sleep(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Op::Bytes),
        3 => (0u32..200_000).prop_map(Op::Wait),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(m, k)| Op::Balance(m, k)),
        1 => any::<bool>().prop_map(Op::Sleep),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn never_panics_never_invents_boards_one_request_at_a_time(
        modules in 1u8..=16,
        read_crc in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        let mut config = MasterConfig::tesla(modules);
        config.read_crc = read_crc;
        let mut now = Instant::ZERO;
        let mut master = Master::new(config, now).expect("valid settings");
        let mut tx = [0u8; 4];
        for op in ops {
            match op {
                Op::Bytes(bytes) => master.handle_received(now, &bytes),
                Op::Wait(us) => {
                    now += Duration::from_micros(u64::from(us));
                    master.handle_timeout(now);
                }
                Op::Balance(m, k) => master.set_balance(m, k),
                Op::Sleep(true) => master.sleep(now),
                Op::Sleep(false) => master.wake(now),
            }
            let mut sent = 0;
            while let Some(n) = master.poll_transmit(&mut tx) {
                prop_assert!(n == 3 || n == 4);
                sent += 1;
            }
            prop_assert!(sent <= 1, "one request on the wire at a time");
            while let Some(event) = master.poll_event() {
                match event {
                    Event::Reading(r) => prop_assert!(r.module < modules),
                    Event::Lost { module } | Event::Recovered { module } => {
                        prop_assert!(module < modules)
                    }
                    Event::Faults { module, .. } => prop_assert!(module < modules),
                    Event::Enumerated { found, .. } => prop_assert!(found <= 62),
                    Event::CycleDone { started, finished, .. } => prop_assert!(started <= finished),
                }
            }
        }
    }
}

/// Random bytes never make a reading: the CRC and the header stand in the way, so a master fed
/// only noise reports no board at all.
#[test]
fn noise_alone_never_produces_a_reading() {
    let mut master = Master::new(MasterConfig::tesla(4), Instant::ZERO).expect("valid settings");
    let mut now = Instant::ZERO;
    let mut x: u32 = 0x1234_5678;
    let mut tx = [0u8; 4];
    for _ in 0..20_000 {
        // xorshift: reproducible noise without a dependency.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        master.handle_received(now, &x.to_le_bytes());
        now += Duration::from_micros(u64::from(x % 3_000));
        master.handle_timeout(now);
        while master.poll_transmit(&mut tx).is_some() {}
        while let Some(event) = master.poll_event() {
            assert!(!matches!(event, Event::Reading(_)), "a reading from noise: {event:?}");
        }
    }
}
