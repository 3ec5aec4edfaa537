//! `cellwarden-sim socketcand-hub`: virtual CAN buses over TCP for programs on a machine
//! without kernel CAN.

use std::io::Write as _;
use std::net::SocketAddr;

use cellwarden_io::can::socketcand::HubLimits;
use cellwarden_io::can::{Frame, HubPort, SocketcandHub};
use cellwarden_sim::scenario::Span;

/// Serve virtual CAN buses to socketcand clients (python-can's `socketcand` interface, or
/// cellwarden's `socketcand:HOST:PORT/BUS` ports).
///
/// Every frame a client sends on a bus goes to every other client of that bus, never back to
/// the sender. The first line on stdout gives the address and the buses, e.g.
/// `socketcand on 127.0.0.1:29536, buses: can0`; with port 0 it shows the port picked. Runs
/// until Ctrl-C or `--for`. Exit code 0 after a clean stop, 2 when the address cannot be
/// used.
///
/// socketcand has no authentication: anyone who can reach the address can read and send
/// frames on every bus. The default address is loopback, this machine only; listen on another
/// address only on a network you trust. At most 64 connections are served at once; one that is
/// not in raw mode within 10 s, or idle (nothing sent by it or to it) for --idle-timeout, is
/// closed with an error message, so idle connections cannot keep a real client out.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    cellwarden-sim socketcand-hub\n  \
    cellwarden-sim socketcand-hub --listen 0.0.0.0:29536 --bus can0 --bus can1\n  \
    python3 -c \"import can; can.Bus(interface='socketcand', host='127.0.0.1', port=29536, \
    channel='can0')\"")]
pub struct SocketcandHubArgs {
    /// The address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:29536")]
    listen: SocketAddr,
    /// A bus to serve (repeat for more) [default: can0].
    #[arg(long = "bus", value_name = "NAME")]
    buses: Vec<String>,
    /// Stop after this long (e.g. 30s, 10m, 1h) instead of at Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = Span::parse)]
    run_for: Option<Span>,
    /// Close a raw-mode connection after this long with nothing sent by it or to it.
    #[arg(long, value_name = "DURATION", value_parser = Span::parse, default_value = "10m")]
    idle_timeout: Span,
}

/// Runs `socketcand-hub`; the error says why the hub cannot run.
pub fn socketcand_hub(args: &SocketcandHubArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    runtime.block_on(serve(args))
}

async fn serve(args: &SocketcandHubArgs) -> Result<(), String> {
    let default_buses = ["can0".to_owned()];
    let buses = if args.buses.is_empty() { &default_buses[..] } else { &args.buses[..] };
    let names: Vec<&str> = buses.iter().map(String::as_str).collect();
    let hub = SocketcandHub::bind_with(args.listen, &names, limits(args.idle_timeout)?)
        .await
        .map_err(|err| format!("socketcand hub on {}: {err}", args.listen))?;
    println!("socketcand on {}, buses: {}", hub.local_addr(), names.join(", "));
    // The address is what the user (or a test reading the pipe) waits for.
    let _ = std::io::stdout().flush();

    let limit = args.run_for.map(|span| std::time::Duration::from_micros(span.micros()));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = sleep_for(limit) => {}
    }
    let counters = hub.counters();
    eprintln!(
        "stopped: {} connections ({} refused, {} closed when idle), {} frames in, {} delivered, \
         {} dropped for slow clients, {} bad messages",
        counters.connections,
        counters.refused,
        counters.idle_closed,
        counters.frames_in,
        counters.delivered,
        counters.dropped,
        counters.bad_messages
    );
    Ok(())
}

/// The default limits with `idle` as the idle time.
fn limits(idle: Span) -> Result<HubLimits, String> {
    if idle.micros() == 0 {
        return Err("--idle-timeout 0s: must be longer than 0s".to_owned());
    }
    let idle_timeout = std::time::Duration::from_micros(idle.micros());
    Ok(HubLimits { idle_timeout, ..HubLimits::default() })
}

/// Sleeps for `limit`, or forever without one.
async fn sleep_for(limit: Option<std::time::Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// Run a parallel-system scenario in real time with its CAN buses on socketcand.
///
/// The scenario's system (packs, combiner, inverters) runs paced to the wall clock, `--speed`
/// times faster. Every frame on each of its buses (`pack0`, `pack1`, ... between the combiner
/// and each CAN rack; `inv0`, ... between our battery side and each inverter) goes to the
/// socketcand clients of that bus, and a frame a client sends goes onto the bus as if a device
/// there had sent it: a candump, python-can or another cellwarden process can listen, or act as
/// an extra inverter. The first line on stdout gives the address and the buses. Runs until the
/// scenario ends, `--for` passes, or Ctrl-C. Exit code 0 after a clean stop, 2 when the
/// scenario cannot be loaded or the address cannot be used.
///
/// socketcand has no authentication: anyone who can reach the address can read and send
/// frames on every bus, and so act as a device of the system. The default address is loopback,
/// this machine only; listen on another address only on a network you trust. Connections are
/// bounded as for `socketcand-hub`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    cellwarden-sim serve-can scenarios/can_three_pylontech_packs.toml\n  \
    cellwarden-sim serve-can scenarios/can_two_inverters.toml --listen 127.0.0.1:0 --speed 10")]
pub struct ServeCanArgs {
    /// A scenario with `[[can_packs]]` or `[[inverters]]`.
    #[arg(value_name = "SCENARIO")]
    scenario: std::path::PathBuf,
    /// The address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:29536")]
    listen: SocketAddr,
    /// Run this many times faster than real time.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    speed: f64,
    /// Stop after this long of wall-clock time (e.g. 30s, 10m) instead of at the scenario's end.
    #[arg(long = "for", value_name = "DURATION", value_parser = Span::parse)]
    run_for: Option<Span>,
    /// Close a raw-mode connection after this long with nothing sent by it or to it.
    #[arg(long, value_name = "DURATION", value_parser = Span::parse, default_value = "10m")]
    idle_timeout: Span,
}

/// How far the served system runs between looks at the clients: frames from clients reach the
/// system at most this late in virtual time.
const SERVE_STEP: cellwarden_core::Duration = cellwarden_core::Duration::from_millis(10);

/// Runs `serve-can`; the error says why it cannot run.
pub fn serve_can(args: &ServeCanArgs) -> Result<(), String> {
    if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 1000.0) {
        return Err(format!("--speed {}: must be above 0 and at most 1000", args.speed));
    }
    let scenario = cellwarden_sim::scenario::load(&args.scenario).map_err(|e| e.to_string())?;
    if scenario.parallel.is_none() {
        return Err(format!(
            "{}: not a parallel system (no [[can_packs]] or [[inverters]]), so it has no CAN \
             buses to serve; `serve-ring` serves a module-board ring",
            args.scenario.display()
        ));
    }
    let system = match cellwarden_sim::engine::Engine::tapped(&scenario) {
        Ok(engine) => engine,
        Err(report) => return Err(report.render()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    runtime.block_on(serve_system(args, system))
}

async fn serve_system(
    args: &ServeCanArgs,
    mut system: cellwarden_sim::engine::Engine<'_>,
) -> Result<(), String> {
    let names = system.bus_names();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let hub = SocketcandHub::bind_with(args.listen, &refs, limits(args.idle_timeout)?)
        .await
        .map_err(|err| format!("socketcand hub on {}: {err}", args.listen))?;
    let mut bridge = Bridge::new(&hub, names.clone())?;
    println!("socketcand on {}, buses: {}", hub.local_addr(), names.join(", "));
    let _ = std::io::stdout().flush();

    let pacer = cellwarden_sim::engine::Pacer::times(args.speed, cellwarden_core::Instant::ZERO);
    let limit = args.run_for.map(|span| std::time::Duration::from_micros(span.micros()));
    let run = async {
        while !system.done() {
            bridge.step(&mut system);
            if let Some(deadline) = pacer.wall_deadline(system.clock()) {
                tokio::time::sleep_until(deadline.into()).await;
            }
        }
    };
    tokio::select! {
        () = run => {}
        _ = tokio::signal::ctrl_c() => {}
        () = sleep_for(limit) => {}
    }
    eprintln!(
        "stopped at {} of simulated time: {} frames served, {} injected by clients",
        cellwarden_sim::report::clock(system.elapsed()),
        bridge.served,
        bridge.injected
    );
    Ok(())
}

/// The system's in-memory buses joined to the hub's buses of the same names, one step at a time.
///
/// The system sees a client's frame as if a device on its bus had sent it. The hub has already
/// handed that frame to every other member of the bus when it took it in, so when it shows up
/// in the system's traffic it must not be served again: served again, every other client would
/// get it twice and its sender once, which real socketcand never does (a client waiting for a
/// reply would take its own frame for one). Frames are told apart by content only: should a
/// device of the system send a frame identical to a client's one before the client's reaches
/// the system's bus, the device's copy is the one held back, and every member still sees that
/// frame exactly as often as it was sent.
#[derive(Debug)]
struct Bridge {
    names: Vec<String>,
    ports: Vec<HubPort>,
    /// Per bus, the frames clients sent that have not appeared in the system's traffic yet.
    /// Each appears at the step after the one that injected it, so this holds at most one
    /// step's intake: at most a port's queue
    /// ([`LOCAL_QUEUE`](cellwarden_io::can::socketcand::LOCAL_QUEUE)) per bus.
    held: Vec<Vec<Frame>>,
    /// Frames of the system served to the clients.
    served: u64,
    /// Frames from clients put onto the system's buses.
    injected: u64,
}

impl Bridge {
    /// A bridge with a local member of each of `names` (buses of `hub`).
    fn new(hub: &SocketcandHub, names: Vec<String>) -> Result<Bridge, String> {
        let mut ports = Vec::new();
        for name in &names {
            ports.push(hub.bus(name).map_err(|e| format!("bus {name}: {e}"))?);
        }
        let held = vec![Vec::new(); names.len()];
        Ok(Bridge { names, ports, held, served: 0, injected: 0 })
    }

    /// Steps the system once, serves the frames it sent to the clients and takes in what the
    /// clients sent since the last step. Never waits.
    fn step(&mut self, system: &mut cellwarden_sim::engine::Engine<'_>) {
        system.step_for(SERVE_STEP);
        for logged in system.take_frames() {
            let Some(bus) = self.names.iter().position(|n| *n == logged.bus) else { continue };
            let held = &mut self.held[bus];
            if let Some(k) = held.iter().position(|frame| *frame == logged.frame) {
                held.remove(k);
                continue;
            }
            self.ports[bus].send_now(&logged.frame);
            self.served += 1;
        }
        for (bus, (name, port)) in self.names.iter().zip(&mut self.ports).enumerate() {
            while let Some(frame) = port.try_recv() {
                system.inject_frame(name, frame);
                self.held[bus].push(frame);
                self.injected += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use cellwarden_io::can::SocketcandClient;

    use super::*;

    /// Far longer than anything here takes; only there to turn a hang into a failure.
    const LIMIT: StdDuration = StdDuration::from_secs(30);
    const CLIENTS: usize = 3;
    const ROUNDS: u8 = 4;
    /// Identifiers no device of the scenario uses: client `k` sends `MARKER + k`.
    const MARKER: u16 = 0x7E0;
    const FENCE: u16 = 0x7EF;

    async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(LIMIT, future).await.unwrap_or_else(|_| panic!("timed out: {what}"))
    }

    fn marker(client: usize, round: u8) -> Frame {
        Frame::standard(MARKER + client as u16, &[client as u8, round]).unwrap()
    }

    /// Which client sent `frame`, if it is a marker.
    fn sender(frame: &Frame) -> Option<usize> {
        let id = frame.id();
        (u32::from(MARKER)..u32::from(MARKER) + CLIENTS as u32)
            .contains(&id)
            .then(|| (id - u32::from(MARKER)) as usize)
    }

    /// Three clients on one bus of `serve-can`'s system, each sending markers: every marker
    /// reaches each other client once, through the hub and the system's bus together, and
    /// never comes back to its sender. The steps are driven by hand and a fence frame from a
    /// local member closes the count, so nothing here depends on timing.
    #[tokio::test]
    async fn three_clients_get_each_others_frames_once_and_never_their_own() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/can_two_inverters.toml");
        let scenario = cellwarden_sim::scenario::load(std::path::Path::new(path)).unwrap();
        assert!(scenario.parallel.is_some(), "a parallel system");
        let mut system = cellwarden_sim::engine::Engine::tapped(&scenario).unwrap();
        let names = system.bus_names();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let hub = SocketcandHub::bind("127.0.0.1:0".parse().unwrap(), &refs).await.unwrap();
        let mut bridge = Bridge::new(&hub, names.clone()).unwrap();
        let fence = hub.bus("inv0").unwrap();

        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let client = within("connect", SocketcandClient::connect(hub.local_addr(), "inv0"));
            clients.push(client.await.unwrap());
        }
        // The system runs a while first, so that its own traffic flows on the bus as well.
        for _ in 0..50 {
            bridge.step(&mut system);
        }
        for round in 0..ROUNDS {
            for (k, client) in clients.iter_mut().enumerate() {
                client.send(&marker(k, round)).await.unwrap();
            }
        }

        // seen[receiver][sender]: markers counted so far.
        let mut seen = [[0u32; CLIENTS]; CLIENTS];
        let others = u32::from(ROUNDS) * (CLIENTS as u32 - 1);
        // Once a client holds every other client's markers, the hub has taken them all in, and
        // the hub queues a frame for every member at once: the bridge's ports hold them too.
        for (me, client) in clients.iter_mut().enumerate() {
            while seen[me].iter().sum::<u32>() < others {
                let frame = within("the markers", client.recv()).await.unwrap();
                if let Some(from) = sender(&frame) {
                    seen[me][from] += 1;
                }
            }
        }
        // The system takes the markers in at one step and puts them on its bus at the next; a
        // few more steps leave room for either.
        for _ in 0..5 {
            bridge.step(&mut system);
        }
        // The fence reaches each client after everything the bridge has served.
        fence.send_now(&Frame::standard(FENCE, &[]).unwrap());
        for (me, client) in clients.iter_mut().enumerate() {
            loop {
                let frame = within("the fence", client.recv()).await.unwrap();
                if frame.id() == u32::from(FENCE) {
                    break;
                }
                if let Some(from) = sender(&frame) {
                    seen[me][from] += 1;
                }
            }
        }
        for (me, counts) in seen.iter().enumerate() {
            for (from, count) in counts.iter().enumerate() {
                let expected = if me == from { 0 } else { u32::from(ROUNDS) };
                assert_eq!(
                    *count, expected,
                    "client {me} got {count} of client {from}'s {ROUNDS} markers: {seen:?}"
                );
            }
        }
        assert_eq!(bridge.injected, u64::from(ROUNDS) * CLIENTS as u64);
    }
}
