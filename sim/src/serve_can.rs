//! `cellwarden-sim socketcand-hub`: virtual CAN buses over TCP for programs on a machine
//! without kernel CAN.

use std::io::Write as _;
use std::net::SocketAddr;

use cellwarden_sim::scenario::Span;
use cellwarden_sim::transport::can::SocketcandHub;

/// Serve virtual CAN buses to socketcand clients (python-can's `socketcand` interface, or
/// cellwarden's `socketcand:HOST:PORT/BUS` ports).
///
/// Every frame a client sends on a bus goes to every other client of that bus, never back to
/// the sender. The first line on stdout gives the address and the buses, e.g.
/// `socketcand on 127.0.0.1:29536, buses: can0`; with port 0 it shows the port picked. Runs
/// until Ctrl-C or `--for`. Exit code 0 after a clean stop, 2 when the address cannot be
/// used.
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
    let hub = SocketcandHub::bind(args.listen, &names)
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
        "stopped: {} connections ({} refused), {} frames in, {} delivered, {} dropped for slow \
         clients, {} bad messages",
        counters.connections,
        counters.refused,
        counters.frames_in,
        counters.delivered,
        counters.dropped,
        counters.bad_messages
    );
    Ok(())
}

/// Sleeps for `limit`, or forever without one.
async fn sleep_for(limit: Option<std::time::Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}
