use super::*;
use crate::{CloseCode, Frame};

const LIMIT: usize = 64 * 1024;

/// A client frame: masked, as a browser sends it.
fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    client_frame_with_length(first_byte, payload, payload.len() as u64)
}

fn client_frame_with_length(first_byte: u8, payload: &[u8], declared: u64) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first_byte];
    match declared {
        0..=125 => out.push(0x80 | declared as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(declared as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&declared.to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn text(payload: &str) -> Vec<u8> {
    client_frame(0x81, payload.as_bytes())
}

fn read_all(bytes: &[u8]) -> Result<Vec<Incoming>, Violation> {
    let mut reader = MessageReader::new(LIMIT);
    reader.feed(bytes);
    drain(&mut reader)
}

fn drain(reader: &mut MessageReader) -> Result<Vec<Incoming>, Violation> {
    let mut out = Vec::new();
    while let Some(message) = reader.next_message()? {
        out.push(message);
    }
    Ok(out)
}

#[test]
fn a_masked_text_frame_is_one_message() {
    assert_eq!(read_all(&text("hello")).unwrap(), [Incoming::Text("hello".into())]);
}

#[test]
fn every_length_encoding_round_trips() {
    for len in [0, 1, 125, 126, 127, 65_535, 65_536] {
        let payload = "x".repeat(len);
        let messages = read_all(&text(&payload)).unwrap();
        assert_eq!(messages, [Incoming::Text(payload)], "length {len}");
    }
}

#[test]
fn split_at_every_byte_boundary_gives_the_same_messages() {
    let mut bytes = text("first");
    bytes.extend(client_frame(0x01, "sec".as_bytes()));
    bytes.extend(client_frame(0x89, b"p"));
    bytes.extend(client_frame(0x80, "ond ✓".as_bytes()));
    bytes.extend(text(&"long".repeat(100)));
    let expected = read_all(&bytes).unwrap();
    assert_eq!(expected.len(), 4);
    for split in 0..bytes.len() {
        let mut reader = MessageReader::new(LIMIT);
        reader.feed(&bytes[..split]);
        let mut got = drain(&mut reader).unwrap();
        reader.feed(&bytes[split..]);
        got.extend(drain(&mut reader).unwrap());
        assert_eq!(got, expected, "split at {split}");
        assert!(!reader.is_mid_frame());
    }
}

#[test]
fn byte_by_byte_feeding_gives_the_same_messages() {
    let mut bytes = text("a");
    bytes.extend(client_frame(0x82, &[0, 1, 2, 255]));
    bytes.extend(client_frame(0x88, &[0x03, 0xe8, b'b', b'y', b'e']));
    let mut reader = MessageReader::new(LIMIT);
    let mut got = Vec::new();
    for byte in &bytes {
        reader.feed(std::slice::from_ref(byte));
        got.extend(drain(&mut reader).unwrap());
    }
    assert_eq!(
        got,
        [Incoming::Text("a".into()), Incoming::Binary(vec![0, 1, 2, 255]), Incoming::Close(Some(1000))]
    );
}

#[test]
fn an_idle_reader_holds_no_buffer() {
    let mut reader = MessageReader::new(LIMIT);
    reader.feed(&text("hello"));
    drain(&mut reader).unwrap();
    assert_eq!(reader.unparsed.capacity(), 0);
    reader.feed(&text("hello")[..3]);
    drain(&mut reader).unwrap();
    assert!(reader.is_mid_frame());
}

#[test]
fn control_frames_may_arrive_between_fragments() {
    let mut bytes = client_frame(0x01, b"he");
    bytes.extend(client_frame(0x89, b"ping!"));
    bytes.extend(client_frame(0x8A, b""));
    bytes.extend(client_frame(0x80, b"llo"));
    let messages = read_all(&bytes).unwrap();
    assert_eq!(
        messages,
        [Incoming::Ping(b"ping!".to_vec()), Incoming::Pong(Vec::new()), Incoming::Text("hello".into())]
    );
}

#[test]
fn framing_violations_are_protocol_errors() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reserved bit", client_frame(0xC1, b"x")),
        ("unknown data opcode", client_frame(0x83, b"x")),
        ("unknown control opcode", client_frame(0x8B, b"")),
        ("fragmented ping", client_frame(0x09, b"")),
        ("ping over 125 bytes", client_frame(0x89, &[0; 126])),
        ("continuation with nothing open", client_frame(0x80, b"x")),
        ("new message inside a fragmented one", [client_frame(0x01, b"a"), text("b")].concat()),
        ("one-byte close body", client_frame(0x88, &[3])),
        ("close code 1005", client_frame(0x88, &1005u16.to_be_bytes())),
        ("close code 999", client_frame(0x88, &999u16.to_be_bytes())),
        ("close code 5000", client_frame(0x88, &5000u16.to_be_bytes())),
        ("unmasked frame", vec![0x81, 0x01, b'x']),
        ("64-bit length with the top bit", client_frame_with_length(0x82, b"", 1 << 63)),
    ];
    for (name, bytes) in cases {
        match read_all(&bytes) {
            Err(Violation::Protocol(_)) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(Violation::Protocol("x").close_code(), CloseCode::ProtocolError);
    assert_eq!(Violation::Protocol("x").close_code().code(), 1002);
}

#[test]
fn invalid_utf8_fails_with_1007_even_before_the_message_ends() {
    assert_eq!(read_all(&client_frame(0x81, &[0xff])), Err(Violation::InvalidUtf8));
    assert_eq!(read_all(&client_frame(0x88, &[0x03, 0xe8, 0xff])), Err(Violation::InvalidUtf8));
    // The first fragment alone is already invalid: fail without waiting for FIN.
    assert_eq!(read_all(&client_frame(0x01, &[b'a', 0xc0, 0x80])), Err(Violation::InvalidUtf8));
    // A character split across fragments is fine.
    let check = "✓".as_bytes();
    let bytes = [client_frame(0x01, &check[..1]), client_frame(0x80, &check[1..])].concat();
    assert_eq!(read_all(&bytes).unwrap(), [Incoming::Text("✓".into())]);
    assert_eq!(Violation::InvalidUtf8.close_code().code(), 1007);
}

#[test]
fn a_frame_over_the_limit_fails_from_its_header_alone() {
    let mut reader = MessageReader::new(1000);
    let full = client_frame(0x81, &[b'x'; 1001]);
    reader.feed(&full[..8]);
    assert_eq!(reader.next_message(), Err(Violation::TooBig(1000)));
    assert_eq!(Violation::TooBig(1).close_code().code(), 1009);
}

#[test]
fn fragments_adding_up_past_the_limit_fail() {
    let mut reader = MessageReader::new(1000);
    reader.feed(&client_frame(0x01, &[b'x'; 600]));
    assert_eq!(reader.next_message(), Ok(None));
    reader.feed(&client_frame(0x80, &[b'x'; 600]));
    assert_eq!(reader.next_message(), Err(Violation::TooBig(1000)));
}

#[test]
fn a_message_at_the_limit_passes() {
    let mut reader = MessageReader::new(1000);
    reader.feed(&client_frame(0x82, &[7; 1000]));
    assert_eq!(reader.next_message(), Ok(Some(Incoming::Binary(vec![7; 1000]))));
}

#[test]
fn valid_close_frames() {
    assert_eq!(read_all(&client_frame(0x88, b"")).unwrap(), [Incoming::Close(None)]);
    for code in [1000u16, 1001, 1003, 1007, 1011, 3000, 4999] {
        let got = read_all(&client_frame(0x88, &code.to_be_bytes())).unwrap();
        assert_eq!(got, [Incoming::Close(Some(code))]);
    }
}

/// Parses a server frame as a client would (unmasked).
fn parse_server_frame(wire: &[u8]) -> (u8, Vec<u8>) {
    assert_eq!(wire[0] & 0x70, 0);
    assert!(wire[0] & 0x80 != 0, "final");
    assert!(wire[1] & 0x80 == 0, "server frames are never masked");
    let (header, len) = match wire[1] & 0x7f {
        126 => (4, u16::from_be_bytes([wire[2], wire[3]]) as usize),
        127 => (10, u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize),
        n => (2, n as usize),
    };
    assert_eq!(wire.len(), header + len);
    (wire[0] & 0x0f, wire[header..].to_vec())
}

#[test]
fn server_frames_are_well_formed() {
    for len in [0, 125, 126, 65_535, 65_536, 100_000] {
        let frame = Frame::from_string("y".repeat(len));
        let (opcode, payload) = parse_server_frame(frame.wire());
        assert_eq!((opcode, payload.len()), (1, len));
        assert_eq!(frame.len(), len);
        assert_eq!(frame.as_str().len(), len);
    }
    assert_eq!(parse_server_frame(ping_frame().wire()), (9, vec![]));
    assert_eq!(parse_server_frame(ping_frame_with(b"17").wire()), (9, b"17".to_vec()));
    assert_eq!(parse_server_frame(pong_frame(b"abc").wire()), (10, b"abc".to_vec()));
    let (opcode, payload) = parse_server_frame(close_frame(4501, "slow consumer").wire());
    assert_eq!(opcode, 8);
    assert_eq!(&payload[..2], &4501u16.to_be_bytes());
    assert_eq!(&payload[2..], b"slow consumer");
}

#[test]
fn a_long_close_reason_is_cut_on_a_character_boundary() {
    let reason = "é".repeat(100);
    let (_, payload) = parse_server_frame(close_frame(1000, &reason).wire());
    assert!(payload.len() <= 125);
    assert!(std::str::from_utf8(&payload[2..]).is_ok());
}

/// Random frames cut at random places: the reader never panics, and
/// whatever it accepts is exactly what was sent.
#[test]
fn random_splits_of_random_messages() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..(next() % 6 + 1) {
            let len = (next() % 300) as usize;
            let payload: String =
                (0..len).map(|i| char::from(b'a' + ((i as u64 + next()) % 26) as u8)).collect();
            bytes.extend(text(&payload));
            expected.push(Incoming::Text(payload));
        }
        let mut reader = MessageReader::new(LIMIT);
        let mut got = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let take = ((next() % 64) as usize + 1).min(rest.len());
            reader.feed(&rest[..take]);
            rest = &rest[take..];
            got.extend(drain(&mut reader).unwrap());
        }
        assert_eq!(got, expected);
    }
    // Garbage never panics.
    for _ in 0..2000 {
        let garbage: Vec<u8> = (0..(next() % 40)).map(|_| next() as u8).collect();
        let mut reader = MessageReader::new(1024);
        reader.feed(&garbage);
        let _ = drain(&mut reader);
    }
}
