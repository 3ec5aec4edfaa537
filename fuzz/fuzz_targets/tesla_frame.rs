//! Feeds arbitrary bytes to the Tesla module-board frame decoders, both as a board sees them
//! (`Request::decode`) and as the master sees what comes back (`Request::decode_reply`), and
//! checks that whatever decodes encodes back to the same bytes.
//!
//! The first four bytes choose the request whose reply is being decoded; all of the input, as
//! well as what follows those four bytes, is offered to the decoders.

#![no_main]

use cellwarden_core::proto::tesla::frame::{MARKER, MAX_REPLY_LEN, encode_reply};
use cellwarden_core::proto::tesla::{Reply, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    board_side(data);
    if let Some((choice, rest)) = data.split_first_chunk::<4>() {
        master_side(request_from(choice), rest);
    }
});

/// Decodes `data` as a stream of requests, as a board would, and checks each one against its
/// encoding.
fn board_side(mut data: &[u8]) {
    while !data.is_empty() {
        match Request::decode(data) {
            Ok((request, n)) => {
                assert!(n >= 3 && n <= data.len(), "{request:?} took {n} of {} bytes", data.len());
                assert_eq!(n, request.wire_len());
                // The frame is its own encoding, except for the marker, which the CRC and the
                // request ignore.
                let mut seen = [0; 4];
                seen[..n].copy_from_slice(&data[..n]);
                seen[0] &= !MARKER;
                assert_eq!(&request.encode()[..n], &seen[..n], "{request:?}");
                data = &data[n..];
            }
            // A board that cannot decode skips one byte and tries again, which exercises every
            // offset of the input.
            Err(_) => data = &data[1..],
        }
    }
}

/// Any request the type can hold, valid or not, from four bytes: a write, or a read with or
/// without CRC.
fn request_from(choice: &[u8; 4]) -> Request {
    let [kind, address, register, third] = *choice;
    match kind % 3 {
        0 => Request::Write { address, register, value: third },
        1 => Request::Read { address, register, len: third, crc: false },
        _ => Request::Read { address, register, len: third, crc: true },
    }
}

/// Decodes `bytes` as what came back for `request`; if that succeeds, checks that a board's
/// encoding of the same reply gives the same bytes back.
fn master_side(request: Request, bytes: &[u8]) {
    let Ok(Reply { marked, data }) = request.decode_reply(bytes) else {
        return;
    };
    assert_eq!(bytes.len(), request.reply_len(), "{request:?}");
    assert_eq!(marked, bytes[0] & MARKER != 0);
    match request {
        Request::Write { address, register, value } => {
            assert_eq!(data, [value]);
            // A write comes back as its own echo, possibly marked.
            let mut echo = Request::write(address, register, value).encode();
            echo[0] |= bytes[0] & MARKER;
            assert_eq!(&echo[..], bytes, "{request:?}");
        }
        Request::Read { len, .. } => {
            assert_eq!(data.len(), usize::from(len));
            let mut out = [0; MAX_REPLY_LEN];
            // A read of 0 or of more than MAX_READ_LEN bytes is not a valid request; its
            // "reply" may decode, but a board would never build one.
            if let Some(n) = encode_reply(bytes[0], bytes[1], data, &mut out) {
                assert_eq!(&out[..n], bytes, "{request:?}");
            }
        }
    }
}
