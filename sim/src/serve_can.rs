//! `cellwarden-sim socketcand-hub`: virtual CAN buses over TCP for programs on a machine
//! without kernel CAN.

use std::io::Write as _;
use std::net::SocketAddr;

use cellwarden_sim::scenario::Span;
use cellwarden_io::can::SocketcandHub;
use cellwarden_io::can::socketcand::HubLimits;

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

/// Runs `serve-can`; the error says why it cannot run.
pub fn serve_can(args: &ServeCanArgs) -> Result<(), String> {
    if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 1000.0) {
        return Err(format!("--speed {}: must be above 0 and at most 1000", args.speed));
    }
    let scenario = cellwarden_sim::scenario::load(&args.scenario).map_err(|e| e.to_string())?;
    let Some(parallel) = &scenario.parallel else {
        return Err(format!(
            "{}: not a parallel system (no [[can_packs]] or [[inverters]]), so it has no CAN \
             buses to serve; `serve-ring` serves a module-board ring",
            args.scenario.display()
        ));
    };
    let system = cellwarden_sim::system::System::new(&scenario, parallel, true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    runtime.block_on(serve_system(args, system))
}

async fn serve_system(
    args: &ServeCanArgs,
    mut system: cellwarden_sim::system::System<'_>,
) -> Result<(), String> {
    let names = system.bus_names();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let hub = SocketcandHub::bind_with(args.listen, &refs, limits(args.idle_timeout)?)
        .await
        .map_err(|err| format!("socketcand hub on {}: {err}", args.listen))?;
    let mut ports = Vec::new();
    for name in &names {
        ports.push(hub.bus(name).map_err(|e| format!("bus {name}: {e}"))?);
    }
    println!("socketcand on {}, buses: {}", hub.local_addr(), names.join(", "));
    let _ = std::io::stdout().flush();

    let start = tokio::time::Instant::now();
    let limit = args.run_for.map(|span| std::time::Duration::from_micros(span.micros()));
    let mut frames = 0u64;
    let mut injected = 0u64;
    let run = async {
        while !system.done() {
            system.step();
            for logged in system.take_frames() {
                if let Some(i) = names.iter().position(|n| *n == logged.bus) {
                    ports[i].send_now(&logged.frame);
                    frames += 1;
                }
            }
            for (name, port) in names.iter().zip(&mut ports) {
                while let Some(frame) = port.try_recv() {
                    system.inject(name, frame);
                    injected += 1;
                }
            }
            let virtual_us =
                system.now.saturating_since(cellwarden_core::Instant::ZERO).as_micros();
            let wall = std::time::Duration::from_micros((virtual_us as f64 / args.speed) as u64);
            tokio::time::sleep_until(start + wall).await;
        }
    };
    tokio::select! {
        () = run => {}
        _ = tokio::signal::ctrl_c() => {}
        () = sleep_for(limit) => {}
    }
    eprintln!(
        "stopped at {} of simulated time: {frames} frames served, {injected} injected by clients",
        cellwarden_sim::report::clock(system.now.saturating_since(cellwarden_core::Instant::ZERO))
    );
    Ok(())
}
