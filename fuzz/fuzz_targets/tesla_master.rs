//! The bus master's byte input: any bytes, in any chunks, at any times, interleaved with
//! timeouts, balance requests, sleep and wake. The master must never panic, never report a
//! board it does not have, and keep at most one request on the wire.

#![no_main]

use cellwarden_core::Instant;
use cellwarden_core::proto::tesla::master::{Event, Master, MasterConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else { return };
    let modules = first % 8 + 1;
    let mut config = MasterConfig::tesla(modules);
    config.read_crc = first & 0x80 != 0;
    let mut now = Instant::ZERO;
    let Ok(mut master) = Master::new(config, now) else { return };
    let mut tx = [0u8; 4];
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op % 4 {
            0 | 1 => {
                // A chunk of received bytes, 1..=32 long.
                let n = usize::from(op >> 3).min(rest.len()).max(1).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                master.handle_received(now, chunk);
            }
            2 => {
                // Time passes, up to about 4 s in uneven steps, then the deadline is honoured.
                now = now + cellwarden_core::Duration::from_micros(u64::from(op) * u64::from(op) * 61);
                if master.poll_timeout().is_some_and(|t| t <= now) {
                    master.handle_timeout(now);
                } else {
                    // Early calls must be harmless too.
                    master.handle_timeout(now);
                }
            }
            _ if op & 0xF0 == 0xF0 => master.sleep(now),
            _ if op & 0xF0 == 0xE0 => master.wake(now),
            _ => master.set_balance(op >> 2 & 0x3F, op),
        }
        let mut sent = 0;
        while master.poll_transmit(&mut tx).is_some() {
            sent += 1;
        }
        assert!(sent <= 1, "more than one request on the wire at once");
        while let Some(event) = master.poll_event() {
            match event {
                Event::Reading(r) => assert!(r.module < modules),
                Event::Lost { module } | Event::Recovered { module } => assert!(module < modules),
                Event::Faults { module, .. } => assert!(module < modules),
                Event::Enumerated { .. } | Event::CycleDone { .. } => {}
            }
        }
    }
});
