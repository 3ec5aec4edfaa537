//! Two processes on one virtual CAN bus: the real `cellwarden-sim socketcand-hub` binary serves
//! the bus, and clients in this test process talk through it over TCP; and the real
//! `cellwarden-sim serve-can`, which runs a scenario's whole system with its buses on socketcand,
//! talking to this process acting as an inverter.
//!
//! Time limits here only keep a broken build from hanging; nothing asserts how long anything
//! takes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use cellwarden_core::proto::{byd_can, lv};
use cellwarden_core::{Duration, Instant, MilliVolts};
use cellwarden_io::can::{CanPort, Frame, SocketcandClient};

const LIMIT: StdDuration = StdDuration::from_secs(30);

/// Kills the child process when dropped, also when the test panics.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the hub on a free port and returns it with the address from its first line.
fn start_hub(buses: &[&str]) -> (KillOnDrop, SocketAddr) {
    let mut args = vec!["socketcand-hub", "--listen", "127.0.0.1:0"];
    for bus in buses {
        args.extend(["--bus", bus]);
    }
    start(&args, buses)
}

/// Starts `cellwarden-sim ARGS` and returns it with the address from its first line, which
/// must name `buses`.
fn start(args: &[&str], buses: &[&str]) -> (KillOnDrop, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cellwarden-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start cellwarden-sim");
    let stdout = child.stdout.take().expect("stdout is piped");
    let guard = KillOnDrop(child);

    // Read the first line on a thread, so that a hub that never prints fails the test instead
    // of hanging it.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(LIMIT).expect("the hub printed no address");
    let expected_tail = format!(", buses: {}", buses.join(", "));
    let addr = line
        .trim_end()
        .strip_prefix("socketcand on ")
        .and_then(|rest| rest.strip_suffix(&expected_tail))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (guard, addr.parse().unwrap_or_else(|_| panic!("not an address in {line:?}")))
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test]
async fn frames_cross_the_hub_process_both_ways() {
    let (_hub, addr) = start_hub(&["can0", "can1"]);
    assert_ne!(addr.port(), 0, "the hub printed the port it picked");

    let mut bms = within("bms", SocketcandClient::connect(addr, "can0")).await.unwrap();
    let spec = format!("socketcand:{addr}/can0");
    let mut inverter = within("inverter", CanPort::open(&spec)).await.unwrap();
    let mut elsewhere = within("can1", SocketcandClient::connect(addr, "can1")).await.unwrap();

    let limits = Frame::standard(0x351, &[0x33, 0x02, 0xB8, 0x0B, 0xB8, 0x0B, 0x24, 0x02]).unwrap();
    let request = Frame::new(0x18FF_50E5, true, &[]).unwrap();
    for round in 0..20u8 {
        bms.send(&limits).await.unwrap();
        assert_eq!(within("at the inverter", inverter.recv()).await.unwrap(), limits);
        let reply = Frame::standard(0x305, &[round]).unwrap();
        inverter.send(&reply).await.unwrap();
        inverter.send(&request).await.unwrap();
        assert_eq!(within("at the bms", bms.recv()).await.unwrap(), reply);
        assert_eq!(within("at the bms", bms.recv()).await.unwrap(), request);
    }

    // can1 is a bus of its own: its client sees only its own bus's traffic.
    let marker = Frame::standard(0x7FF, &[0xEE]).unwrap();
    let mut other = within("can1 peer", SocketcandClient::connect(addr, "can1")).await.unwrap();
    other.send(&marker).await.unwrap();
    assert_eq!(within("at can1", elsewhere.recv()).await.unwrap(), marker);

    // The hub refuses a bus it does not serve.
    let err = within("refused", SocketcandClient::connect(addr, "can9")).await.unwrap_err();
    assert!(err.to_string().contains("no such bus can9"), "{err}");
}

/// The simulator runs three racks, the combiner and two inverters; this process plays a
/// BYD-protocol inverter on `inv1` before the scenario's own one starts (at 30 s). Our battery
/// side stays silent on that bus until it hears an inverter, then answers the identify request
/// with the identification burst and sends the limits the combiner computed.
#[tokio::test]
async fn a_scenario_system_talks_to_an_inverter_in_another_process() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/can_two_inverters.toml");
    let args = ["serve-can", scenario, "--listen", "127.0.0.1:0", "--speed", "2", "--for", "60s"];
    let (_sim, addr) = start(&args, &["pack0", "pack1", "pack2", "inv0", "inv1"]);

    // The Victron bus already carries the combined limits, decoded here byte for byte.
    let mut victron_bus = within("inv0", SocketcandClient::connect(addr, "inv0")).await.unwrap();
    let mut reader = lv::Reader::new();
    let view = within("a complete frame set on inv0", async {
        let mut t = 0u64;
        loop {
            let frame = victron_bus.recv().await.unwrap();
            t += 1;
            reader.handle_frame(Instant::from_millis(t), &frame);
            if let Some(view) = reader.view(Instant::from_millis(t), Duration::from_secs(3600)) {
                // The combiner's limits ramp from zero after the joins: the first frame sets
                // with all three racks may still carry 0 A.
                let limits = view.charge_limit_ma.0 > 0 && view.discharge_limit_ma.0 > 0;
                if view.modules == 3 && limits {
                    return view;
                }
            }
        }
    })
    .await;
    // Three 15-cell racks at 3.55 V per cell; half of the combined limits each.
    assert_eq!(view.charge_voltage_mv, MilliVolts(53_200));

    // Nothing from the battery side on inv1 before an inverter speaks; then an identify request
    // brings the burst.
    let mut byd_bus = within("inv1", SocketcandClient::connect(addr, "inv1")).await.unwrap();
    let quiet = tokio::time::timeout(StdDuration::from_millis(500), byd_bus.recv()).await;
    assert!(quiet.is_err(), "the battery side spoke first on inv1: {quiet:?}");
    byd_bus.send(&byd_can::encode_identify_request()).await.unwrap();
    let mut byd = byd_can::Reader::new();
    within("the identification burst and the limits", async {
        let mut t = 0u64;
        loop {
            let frame = byd_bus.recv().await.unwrap();
            t += 1;
            byd.handle_frame(Instant::from_millis(t), &frame);
            if byd.identified()
                && byd.view(Instant::from_millis(t), Duration::from_secs(3600)).is_some()
            {
                break;
            }
        }
    })
    .await;
    assert_eq!(byd.model(), Some("Battery-Box Premium HVS"));
}
