//! The WebSocket message reader on arbitrary bytes, cut into arbitrary
//! pieces: it never panics, and how the bytes are cut never changes what
//! it reads (the same messages, then the same error or none).

#![no_main]

use fanfare_protocol::websocket::{Incoming, MessageReader, Violation};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 4096;

fn read(pieces: &[&[u8]]) -> (Vec<Incoming>, Option<Violation>) {
    let mut reader = MessageReader::new(LIMIT);
    let mut messages = Vec::new();
    for piece in pieces {
        reader.feed(piece);
        loop {
            match reader.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(violation) => return (messages, Some(violation)),
            }
        }
    }
    (messages, None)
}

fuzz_target!(|input: &[u8]| {
    // The first byte chooses where to cut the rest.
    let Some((&cut, bytes)) = input.split_first() else { return };
    let whole = read(&[bytes]);
    let step = usize::from(cut % 17) + 1;
    let pieces: Vec<&[u8]> = bytes.chunks(step).collect();
    let split = read(&pieces);
    assert_eq!(whole, split, "cut every {step} bytes");
    for message in &whole.0 {
        if let Incoming::Text(text) = message {
            assert!(text.len() <= LIMIT);
        }
    }
});
