//! CAN over the network: the socketcand client and hub over loopback TCP, the port
//! abstraction, and SocketCAN where the kernel has it.
//!
//! Time limits here only keep a broken build from hanging; nothing asserts how long anything
//! takes.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use cellwarden_io::can::{
    CanPort, ChannelPort, Frame, SocketCanPort, SocketcandClient, SocketcandHub,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Far longer than anything here takes; only there to turn a hang into a failure.
const LIMIT: StdDuration = StdDuration::from_secs(30);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn frame(id: u16, data: &[u8]) -> Frame {
    Frame::standard(id, data).unwrap()
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Reads exactly `n` bytes as text.
async fn read_text(stream: &mut TcpStream, n: usize) -> String {
    let mut buf = vec![0; n];
    within("reading from the hub", stream.read_exact(&mut buf)).await.unwrap();
    String::from_utf8(buf).unwrap()
}

/// Reads up to and including the next `>`.
async fn read_message(stream: &mut TcpStream) -> String {
    let mut text = Vec::new();
    loop {
        let byte = within("reading a message", stream.read_u8()).await.unwrap();
        text.push(byte);
        if byte == b'>' {
            return String::from_utf8(text).unwrap();
        }
    }
}

/// A raw TCP client that has done the handshake by hand, checking each reply byte for byte.
async fn raw_client(addr: SocketAddr, bus: &str) -> TcpStream {
    let mut stream = within("connecting", TcpStream::connect(addr)).await.unwrap();
    assert_eq!(read_text(&mut stream, 6).await, "< hi >");
    stream.write_all(format!("< open {bus} >").as_bytes()).await.unwrap();
    assert_eq!(read_text(&mut stream, 6).await, "< ok >");
    stream.write_all(b"< rawmode >").await.unwrap();
    assert_eq!(read_text(&mut stream, 6).await, "< ok >");
    stream
}

async fn recv(client: &mut SocketcandClient) -> Frame {
    within("a frame at a client", client.recv()).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// socketcand

#[tokio::test]
async fn socketcand_handshake_is_byte_exact_and_no_frame_precedes_the_rawmode_ok() {
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let local = hub.bus("can0").unwrap();
    // Frames flow on the bus during the whole handshake.
    let chatter = tokio::spawn(async move {
        for n in 0u32.. {
            local.send_now(&Frame::new(0x100, false, &n.to_le_bytes()).unwrap());
            tokio::time::sleep(StdDuration::from_millis(1)).await;
        }
    });
    let mut stream = within("connecting", TcpStream::connect(hub.local_addr())).await.unwrap();
    assert_eq!(read_text(&mut stream, 6).await, "< hi >");
    stream.write_all(b"< open can0 >").await.unwrap();
    assert_eq!(read_text(&mut stream, 6).await, "< ok >");
    stream.write_all(b"< rawmode >").await.unwrap();
    assert_eq!(read_text(&mut stream, 6).await, "< ok >");
    let first = read_message(&mut stream).await;
    assert!(first.starts_with("< frame 100 ") && first.ends_with(" >"), "{first}");
    chatter.abort();
}

#[tokio::test]
async fn socketcand_hub_relays_between_clients_and_the_local_port_without_self_echo() {
    let hub = SocketcandHub::bind(loopback(), &["can0", "can1"]).await.unwrap();
    let mut local = hub.bus("can0").unwrap();
    let mut other_bus = hub.bus("can1").unwrap();
    let mut a = within("a", SocketcandClient::connect(hub.local_addr(), "can0")).await.unwrap();
    let mut b = within("b", SocketcandClient::connect(hub.local_addr(), "can0")).await.unwrap();
    assert_eq!(a.bus(), "can0");

    let f1 = frame(0x351, &[0x33, 0x02, 0xB8, 0x0B]);
    a.send(&f1).await.unwrap();
    assert_eq!(recv(&mut b).await, f1);
    assert_eq!(within("local", local.recv()).await.unwrap(), f1);

    // B's reply is A's next frame: A did not get its own f1 back.
    let f2 = Frame::new(0x18FF_50E5, true, &[]).unwrap();
    b.send(&f2).await.unwrap();
    assert_eq!(recv(&mut a).await, f2);
    assert_eq!(within("local", local.recv()).await.unwrap(), f2);

    let f3 = frame(0x35A, &[0xAA; 8]);
    local.send(&f3).await.unwrap();
    assert_eq!(recv(&mut a).await, f3);
    assert_eq!(recv(&mut b).await, f3);

    // A's next frame is the local port's next one: neither client got f3 twice, and the local
    // port did not get f3 back.
    let f4 = frame(0x7FF, &[1]);
    a.send(&f4).await.unwrap();
    assert_eq!(within("local", local.recv()).await.unwrap(), f4);
    assert_eq!(local.try_recv(), None);
    assert_eq!(other_bus.try_recv(), None, "a frame crossed to another bus");
    assert_eq!(recv(&mut b).await, f4);

    let (_, stamp) = {
        local.send_now(&f1);
        within("stamped", a.recv_stamped()).await.unwrap()
    };
    assert!(stamp.sec > 1_600_000_000, "the frame carries the wall-clock time: {stamp:?}");
    let counters = hub.counters();
    assert_eq!((counters.clients, counters.dropped, counters.bad_messages), (2, 0, 0));
    assert_eq!(a.counters(), Default::default());
}

/// Three clients on one bus, each sending several frames: every frame reaches each other client
/// exactly once and never its sender, as with real socketcand. A fence frame from a local
/// member, queued for every client after all of theirs, closes the count without timing.
#[tokio::test]
async fn socketcand_hub_gives_three_clients_each_others_frames_once_and_never_their_own() {
    const CLIENTS: usize = 3;
    const ROUNDS: u8 = 4;
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let fence = hub.bus("can0").unwrap();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let client = within("connect", SocketcandClient::connect(hub.local_addr(), "can0")).await;
        clients.push(client.unwrap());
    }
    for round in 0..ROUNDS {
        for (k, client) in clients.iter_mut().enumerate() {
            client.send(&frame(0x300 + k as u16, &[k as u8, round])).await.unwrap();
        }
    }
    // Once a client holds every other client's frames, the hub has queued them all, so the
    // fence comes after them in every client's queue.
    let others = usize::from(ROUNDS) * (CLIENTS - 1);
    let mut seen = vec![vec![0usize; CLIENTS]; CLIENTS];
    for (me, client) in clients.iter_mut().enumerate() {
        while seen[me].iter().sum::<usize>() < others {
            let got = recv(client).await;
            seen[me][usize::from(got.data()[0])] += 1;
        }
    }
    fence.send_now(&frame(0x7FF, &[]));
    for (me, client) in clients.iter_mut().enumerate() {
        loop {
            let got = recv(client).await;
            if got.id() == 0x7FF {
                break;
            }
            seen[me][usize::from(got.data()[0])] += 1;
        }
    }
    for (me, counts) in seen.iter().enumerate() {
        for (from, count) in counts.iter().enumerate() {
            let expected = if me == from { 0 } else { usize::from(ROUNDS) };
            assert_eq!(*count, expected, "client {me} got {count} of client {from}'s frames");
        }
    }
}

#[tokio::test]
async fn socketcand_hub_accepts_python_can_sends_and_writes_socketcand_frames() {
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let mut local = hub.bus("can0").unwrap();
    let mut raw = raw_client(hub.local_addr(), "can0").await;

    raw.write_all(b"< send 351 6 33 2 b8 b b8 b >").await.unwrap();
    assert_eq!(
        within("local", local.recv()).await.unwrap(),
        frame(0x351, &[0x33, 0x02, 0xB8, 0x0B, 0xB8, 0x0B])
    );
    raw.write_all(b"< send 18ff50e5 0 >< send 00000001 1 Ff >").await.unwrap();
    assert_eq!(
        within("local", local.recv()).await.unwrap(),
        Frame::new(0x18FF_50E5, true, &[]).unwrap()
    );
    assert_eq!(within("local", local.recv()).await.unwrap(), Frame::new(1, true, &[0xFF]).unwrap());

    local.send_now(&frame(0x359, &[0, 0, 0, 0, 5, 0x50, 0x4E, 0]));
    let message = read_message(&mut raw).await;
    let fields: Vec<&str> = message.split(' ').collect();
    assert_eq!(fields.len(), 6, "{message}");
    assert_eq!(
        (fields[0], fields[1], fields[2], fields[4], fields[5]),
        ("<", "frame", "359", "0000000005504E00", ">")
    );
    let (sec, usec) = fields[3].split_once('.').unwrap();
    assert!(
        sec.parse::<u64>().is_ok() && usec.len() == 6 && usec.parse::<u32>().is_ok(),
        "{message}"
    );

    local.send_now(&frame(0x123, &[]));
    let message = read_message(&mut raw).await;
    assert!(message.starts_with("< frame 123 ") && message.ends_with("  >"), "{message:?}");
}

#[tokio::test]
async fn socketcand_hub_reassembles_messages_split_across_reads() {
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let mut local = hub.bus("can0").unwrap();
    let mut raw = raw_client(hub.local_addr(), "can0").await;
    raw.set_nodelay(true).unwrap();
    for piece in ["< se", "nd 12", "3 2 0", "1 02 >< send 1", "24 0 >"] {
        raw.write_all(piece.as_bytes()).await.unwrap();
        raw.flush().await.unwrap();
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    assert_eq!(within("local", local.recv()).await.unwrap(), frame(0x123, &[1, 2]));
    assert_eq!(within("local", local.recv()).await.unwrap(), frame(0x124, &[]));
}

#[tokio::test]
async fn socketcand_hub_skips_garbage_and_oversized_messages() {
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let mut local = hub.bus("can0").unwrap();
    let mut raw = raw_client(hub.local_addr(), "can0").await;

    let mut junk = b"garbage \x00\xff\x7f between messages".to_vec();
    junk.extend(b"< send ");
    junk.extend(std::iter::repeat_n(b'A', 100_000));
    junk.extend(b" >< send 123 1 \x01 >< send 123 1 >< cut short < send 800 0 >");
    junk.extend((0..=255u8).cycle().take(10_000));
    junk.extend(b"< send 0AB 1 cd >");
    raw.write_all(&junk).await.unwrap();
    assert_eq!(within("the valid frame", local.recv()).await.unwrap(), frame(0x0AB, &[0xCD]));
    assert_eq!(local.try_recv(), None);
    assert!(hub.counters().bad_messages >= 4, "{:?}", hub.counters());

    // Malformed sends are answered with an error; the connection stays usable.
    let mut replies = Vec::new();
    while replies.len() < 2 {
        replies.push(read_message(&mut raw).await);
    }
    assert!(replies.iter().all(|r| r.starts_with("< error ")), "{replies:?}");
    raw.write_all(b"< echo >").await.unwrap();
    loop {
        let reply = read_message(&mut raw).await;
        if reply == "< echo >" {
            break;
        }
        assert!(reply.starts_with("< error "), "{reply}");
    }
}

#[tokio::test]
async fn socketcand_hub_answers_echo_and_unknown_commands() {
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let mut stream = within("connecting", TcpStream::connect(hub.local_addr())).await.unwrap();
    assert_eq!(read_text(&mut stream, 6).await, "< hi >");
    stream.write_all(b"< echo >").await.unwrap();
    assert_eq!(read_text(&mut stream, 8).await, "< echo >");
    stream.write_all(b"< bcmmode >").await.unwrap();
    assert_eq!(read_message(&mut stream).await, "< error unknown command >");
    let mut raw = raw_client(hub.local_addr(), "can0").await;
    raw.write_all(b"< echo >< statistics 1000 >").await.unwrap();
    assert_eq!(read_message(&mut raw).await, "< echo >");
    assert_eq!(read_message(&mut raw).await, "< error unknown command >");
}

#[tokio::test]
async fn socketcand_hub_refuses_unknown_buses() {
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let err =
        within("connect", SocketcandClient::connect(hub.local_addr(), "can7")).await.unwrap_err();
    assert!(err.to_string().contains("no such bus can7"), "{err}");

    let mut stream = within("connecting", TcpStream::connect(hub.local_addr())).await.unwrap();
    assert_eq!(read_text(&mut stream, 6).await, "< hi >");
    stream.write_all(b"< open vcan9 >").await.unwrap();
    assert_eq!(read_message(&mut stream).await, "< error no such bus vcan9 >");
    let mut rest = Vec::new();
    within("the hub closes", stream.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
    assert_eq!(hub.counters().refused, 2);

    assert!(hub.bus("can7").unwrap_err().to_string().contains("no bus can7"));
    assert!(SocketcandHub::bind(loopback(), &[]).await.is_err());
    assert!(SocketcandHub::bind(loopback(), &["can0", "can0"]).await.is_err());
    assert!(SocketcandHub::bind(loopback(), &["has space"]).await.is_err());
    use cellwarden_io::can::socketcand::HubLimits;
    for limits in [
        HubLimits { max_clients: 0, ..HubLimits::default() },
        HubLimits { idle_timeout: StdDuration::ZERO, ..HubLimits::default() },
        HubLimits { handshake_timeout: StdDuration::ZERO, ..HubLimits::default() },
    ] {
        let err = SocketcandHub::bind_with(loopback(), &["can0"], limits).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{limits:?}: {err}");
    }
}

#[tokio::test]
async fn socketcand_hub_survives_connection_churn() {
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let mut local = hub.bus("can0").unwrap();
    for round in 0..50 {
        match round % 3 {
            // A full client that sends one frame and leaves.
            0 => {
                let mut client =
                    within("churn", SocketcandClient::connect(hub.local_addr(), "can0"))
                        .await
                        .unwrap();
                client.send(&frame(0x200, &[round as u8])).await.unwrap();
                assert_eq!(
                    within("local", local.recv()).await.unwrap(),
                    frame(0x200, &[round as u8])
                );
            }
            // Gone right after connecting.
            1 => drop(within("churn", TcpStream::connect(hub.local_addr())).await.unwrap()),
            // Gone in the middle of the handshake.
            _ => {
                let mut stream =
                    within("churn", TcpStream::connect(hub.local_addr())).await.unwrap();
                assert_eq!(read_text(&mut stream, 6).await, "< hi >");
                stream.write_all(b"< open can0 >").await.unwrap();
            }
        }
        // Frames on the bus while clients come and go.
        local.send_now(&frame(0x201, &[round as u8]));
    }

    let mut a = within("a", SocketcandClient::connect(hub.local_addr(), "can0")).await.unwrap();
    let mut b = within("b", SocketcandClient::connect(hub.local_addr(), "can0")).await.unwrap();
    a.send(&frame(0x300, &[1])).await.unwrap();
    assert_eq!(recv(&mut b).await, frame(0x300, &[1]));
    local.send_now(&frame(0x301, &[2]));
    assert_eq!(recv(&mut a).await, frame(0x301, &[2]));

    // Every departed client gives up its place.
    within("departures noticed", async {
        while hub.counters().clients != 2 {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    })
    .await;
    assert!(hub.counters().connections >= 52);
}

#[tokio::test]
async fn socketcand_hub_drops_for_a_stalled_client_without_slowing_the_others() {
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let local = hub.bus("can0").unwrap();
    // A client that completes the handshake and then never reads, with a small buffer.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = within("connect", socket.connect(hub.local_addr())).await.unwrap();
    assert_eq!(read_text(&mut stalled, 6).await, "< hi >");
    stalled.write_all(b"< open can0 >").await.unwrap();
    assert_eq!(read_text(&mut stalled, 6).await, "< ok >");
    stalled.write_all(b"< rawmode >").await.unwrap();
    assert_eq!(read_text(&mut stalled, 6).await, "< ok >");

    let mut reader =
        within("reader", SocketcandClient::connect(hub.local_addr(), "can0")).await.unwrap();
    const BATCH: u32 = 200;
    let mut sent = 0u32;
    // The stalled client's buffers and queue fill up within a few hundred batches.
    for _ in 0..20_000 {
        for _ in 0..BATCH {
            local.send_now(&Frame::new(0x100, false, &sent.to_le_bytes()).unwrap());
            sent += 1;
        }
        for expected in sent - BATCH..sent {
            let got = recv(&mut reader).await;
            assert_eq!(got.data(), expected.to_le_bytes(), "the active client lost frames");
        }
        if hub.counters().dropped > 0 {
            break;
        }
    }
    assert!(hub.counters().dropped > 0, "the stalled client's queue never filled");
    drop(stalled);
}

#[tokio::test]
async fn socketcand_hub_limits_its_clients_and_frees_their_places() {
    use cellwarden_io::can::socketcand::MAX_CLIENTS;

    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..MAX_CLIENTS {
        let mut stream = within("connecting", TcpStream::connect(hub.local_addr())).await.unwrap();
        assert_eq!(read_text(&mut stream, 6).await, "< hi >");
        held.push(stream);
    }
    let mut extra = within("connecting", TcpStream::connect(hub.local_addr())).await.unwrap();
    let mut reply = String::new();
    within("the refusal", extra.read_to_string(&mut reply)).await.unwrap();
    assert_eq!(reply, format!("< error too many clients: all {MAX_CLIENTS} places are taken >"));

    drop(held.pop());
    within("a place frees up", async {
        loop {
            let mut stream = TcpStream::connect(hub.local_addr()).await.unwrap();
            let mut first = [0u8; 6];
            if stream.read_exact(&mut first).await.is_ok() && &first == b"< hi >" {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    })
    .await;
    assert!(hub.counters().refused >= 1);
}

#[tokio::test]
async fn socketcand_hub_closes_idle_connections_so_a_real_client_gets_in() {
    use cellwarden_io::can::socketcand::HubLimits;

    // Short limits so that the test does not wait long; nothing here measures them.
    let limits = HubLimits {
        max_clients: 2,
        handshake_timeout: StdDuration::from_secs(1),
        idle_timeout: StdDuration::from_secs(1),
    };
    let hub = SocketcandHub::bind_with(loopback(), &["can0"], limits).await.unwrap();
    let mut local = hub.bus("can0").unwrap();
    // One connection that never gets past the greeting, one that enters raw mode and then
    // says nothing on a quiet bus: together they hold every place.
    let mut greeted = within("connecting", TcpStream::connect(hub.local_addr())).await.unwrap();
    assert_eq!(read_text(&mut greeted, 6).await, "< hi >");
    let mut silent = raw_client(hub.local_addr(), "can0").await;

    // A third is refused while they hold the places, and told why.
    let mut extra = within("connecting", TcpStream::connect(hub.local_addr())).await.unwrap();
    let mut reply = String::new();
    within("the refusal", extra.read_to_string(&mut reply)).await.unwrap();
    assert_eq!(reply, "< error too many clients: all 2 places are taken >");

    // Both idle connections are closed, each with the reason.
    let mut rest = String::new();
    within("the handshake timeout", greeted.read_to_string(&mut rest)).await.unwrap();
    assert_eq!(rest, "< error no rawmode within 1s: closing >");
    let mut rest = String::new();
    within("the idle timeout", silent.read_to_string(&mut rest)).await.unwrap();
    assert_eq!(rest, "< error idle for 1s: closing >");

    // A real client then gets in and exchanges frames.
    let mut client = within("a real client", async {
        loop {
            match SocketcandClient::connect(hub.local_addr(), "can0").await {
                Ok(client) => break client,
                // The places are given up when the closed sessions' tasks end.
                Err(_) => tokio::time::sleep(StdDuration::from_millis(10)).await,
            }
        }
    })
    .await;
    client.send(&frame(0x123, &[1, 2])).await.unwrap();
    assert_eq!(within("local", local.recv()).await.unwrap(), frame(0x123, &[1, 2]));
    let counters = hub.counters();
    assert!(counters.refused >= 2, "{counters:?}"); // the third connection and the greeted one
    assert_eq!(counters.idle_closed, 1, "{counters:?}");
}

#[tokio::test]
async fn socketcand_hub_counts_frames_to_a_listener_as_traffic() {
    use cellwarden_io::can::socketcand::HubLimits;

    // A listener that never sends stays as long as frames reach it: two idle times of frames.
    let idle = StdDuration::from_secs(1);
    let limits = HubLimits { idle_timeout: idle, ..HubLimits::default() };
    let hub = SocketcandHub::bind_with(loopback(), &["can0"], limits).await.unwrap();
    let local = hub.bus("can0").unwrap();
    let mut listener =
        within("listener", SocketcandClient::connect(hub.local_addr(), "can0")).await.unwrap();
    for i in 0..40u8 {
        local.send_now(&frame(0x100, &[i]));
        assert_eq!(recv(&mut listener).await, frame(0x100, &[i]));
        tokio::time::sleep(idle / 20).await;
    }
    assert_eq!(hub.counters().idle_closed, 0);
    assert_eq!(hub.counters().clients, 1);
}

#[tokio::test]
async fn socketcand_client_copes_with_a_server_that_splits_merges_and_chatters() {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(b"< h").await.unwrap();
        tokio::time::sleep(StdDuration::from_millis(5)).await;
        stream.write_all(b"i >").await.unwrap();
        assert_eq!(read_message(&mut stream).await, "< open vcan0 >");
        stream.write_all(b"< ok >").await.unwrap();
        assert_eq!(read_message(&mut stream).await, "< rawmode >");
        // The rawmode `< ok >` and frames in one write, then a frame split in two.
        stream
            .write_all(b"< ok >< frame 123 1.000000 01 >noise< error bus off >< frame 1")
            .await
            .unwrap();
        tokio::time::sleep(StdDuration::from_millis(5)).await;
        stream.write_all(b"8ff50e5 2.5 0102 >< frame 124 3.000000  >").await.unwrap();
        assert_eq!(read_message(&mut stream).await, "< send 351 2 01 02 >");
        assert_eq!(read_message(&mut stream).await, "< send 18FF50E5 0 >");
    });

    let mut client = within("connect", SocketcandClient::connect(addr, "vcan0")).await.unwrap();
    assert_eq!(recv(&mut client).await, frame(0x123, &[1]));
    let (second, stamp) = within("frame", client.recv_stamped()).await.unwrap();
    assert_eq!(second, Frame::new(0x18FF_50E5, true, &[1, 2]).unwrap());
    assert_eq!((stamp.sec, stamp.usec), (2, 500_000));
    assert_eq!(recv(&mut client).await, frame(0x124, &[]));
    let counters = client.counters();
    assert_eq!((counters.server_errors, counters.garbage_bytes), (1, 5));
    client.send(&frame(0x351, &[1, 2])).await.unwrap();
    client.send(&Frame::new(0x18FF_50E5, true, &[]).unwrap()).await.unwrap();
    within("server", server).await.unwrap();
    // The server has gone: the client says so.
    let err = within("eof", client.recv()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

// ---------------------------------------------------------------------------------------------
// Ports

#[tokio::test]
async fn can_ports_open_by_name_and_carry_frames() {
    let hub = SocketcandHub::bind(loopback(), &["can0"]).await.unwrap();
    let spec = format!("socketcand:{}/can0", hub.local_addr());
    let mut remote = within("open", CanPort::open(&spec)).await.unwrap();
    let mut local = CanPort::Hub(hub.bus("can0").unwrap());
    remote.send(&frame(0x351, &[9])).await.unwrap();
    assert_eq!(within("hub port", local.recv()).await.unwrap(), frame(0x351, &[9]));
    local.send(&frame(0x305, &[])).await.unwrap();
    assert_eq!(within("remote", remote.recv()).await.unwrap(), frame(0x305, &[]));

    for spec in ["can0", "socketcand:127.0.0.1/can0", "serial:/dev/ttyUSB0"] {
        let err = CanPort::open(spec).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("expected socketcand:HOST:PORT/BUS"), "{err}");
    }

    let (a, b) = ChannelPort::pair(4);
    let (mut a, mut b) = (CanPort::Channel(a), CanPort::Channel(b));
    a.send(&frame(1, &[1])).await.unwrap();
    a.send(&frame(2, &[2])).await.unwrap();
    assert_eq!(b.recv().await.unwrap(), frame(1, &[1]));
    b.send(&frame(3, &[])).await.unwrap();
    assert_eq!(a.recv().await.unwrap(), frame(3, &[]));
    drop(a);
    assert_eq!(b.recv().await.unwrap(), frame(2, &[2]));
    assert_eq!(b.recv().await.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(b.send(&frame(4, &[])).await.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
}

/// Exchanges frames between two sockets on a virtual CAN interface, when this kernel has one:
/// `vcan0`, or the interface named by `CELLWARDEN_VCAN`. Set one up with
/// `modprobe vcan; ip link add dev vcan0 type vcan; ip link set up vcan0`.
#[tokio::test]
async fn socketcan_exchanges_frames_on_a_virtual_interface_when_there_is_one() {
    let iface = std::env::var("CELLWARDEN_VCAN").unwrap_or_else(|_| "vcan0".to_owned());
    let (mut a, mut b) = match (SocketCanPort::open(&iface), SocketCanPort::open(&iface)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(err), _) | (_, Err(err)) => {
            println!("SocketCAN not exercised on this kernel: cannot open {iface}: {err}");
            return;
        }
    };
    assert_eq!(a.iface(), iface);
    let standard = frame(0x351, &[0x33, 0x02]);
    let extended = Frame::new(0x18FF_50E5, true, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    a.send(&standard).await.unwrap();
    a.send(&extended).await.unwrap();
    // Other traffic may share the interface: look for ours.
    within("frames on the interface", async {
        let mut seen = Vec::new();
        while !(seen.contains(&standard) && seen.contains(&extended)) {
            seen.push(b.recv().await.unwrap());
        }
    })
    .await;
    b.send(&frame(0x123, &[])).await.unwrap();
    within("the reply", async { while a.recv().await.unwrap() != frame(0x123, &[]) {} }).await;
}
