//! The WebSocket layer of the real server, byte by byte: frames a
//! WebSocket library would never send (unmasked, bad UTF-8, reserved bits)
//! get the standard close codes, and what browsers legitimately do
//! (fragmented messages, pings between fragments, bytes right behind the
//! handshake) works.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestServer;

const WAIT: Duration = Duration::from_secs(10);

/// A WebSocket client on a bare TCP stream.
struct Wire {
    stream: TcpStream,
    /// Bytes received and not yet parsed.
    received: Vec<u8>,
}

/// A frame from the server (never masked).
#[derive(Debug, PartialEq)]
struct ServerFrame {
    opcode: u8,
    payload: Vec<u8>,
}

impl Wire {
    /// Connects and upgrades; `early` is sent in the same write as the
    /// handshake request, as a client may.
    async fn open(server: &TestServer, path: &str, early: &[u8]) -> Self {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            server.addr
        );
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(early);
        stream.write_all(&bytes).await.unwrap();
        let mut wire = Wire { stream, received: Vec::new() };
        let end = loop {
            if let Some(end) = wire.received.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            wire.fill().await;
        };
        let head = String::from_utf8_lossy(&wire.received[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        wire.received.drain(..end);
        wire
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("the server answers")
            .unwrap();
        self.received.extend_from_slice(&chunk[..n]);
        n
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame, `None` once the server has closed the TCP stream.
    async fn next(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some((frame, used)) = parse(&self.received) {
                self.received.drain(..used);
                return Some(frame);
            }
            if self.fill().await == 0 {
                return None;
            }
        }
    }

    /// Reads until the close frame; returns its code.
    async fn close_code(&mut self) -> u16 {
        loop {
            let frame = self.next().await.expect("a close frame before the end");
            if frame.opcode == 8 {
                return u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
            }
        }
    }

    /// The next text frame as JSON, skipping pings.
    async fn next_json(&mut self) -> Value {
        loop {
            let frame = self.next().await.expect("a frame");
            if frame.opcode == 1 {
                return serde_json::from_slice(&frame.payload).unwrap();
            }
        }
    }
}

fn parse(bytes: &[u8]) -> Option<(ServerFrame, usize)> {
    if bytes.len() < 2 {
        return None;
    }
    assert_eq!(bytes[1] & 0x80, 0, "server frames are not masked");
    let (header, len) = match bytes[1] & 0x7f {
        126 if bytes.len() >= 4 => (4, u16::from_be_bytes([bytes[2], bytes[3]]) as usize),
        127 if bytes.len() >= 10 => (10, u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize),
        126 | 127 => return None,
        n => (2, n as usize),
    };
    if bytes.len() < header + len {
        return None;
    }
    Some((
        ServerFrame { opcode: bytes[0] & 0x0f, payload: bytes[header..header + len].to_vec() },
        header + len,
    ))
}

/// A client frame: `first` is FIN/RSV/opcode; masked unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [9u8, 200, 17, 66];
    let mut out = vec![first, payload.len() as u8 | if masked { 0x80 } else { 0 }];
    if masked {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn text(payload: &str) -> Vec<u8> {
    frame(0x81, payload.as_bytes(), true)
}

/// The close code a fresh native connection gets for sending `bytes`.
async fn close_code_after(bytes: &[u8]) -> u16 {
    let server = TestServer::start().await;
    let mut wire = Wire::open(&server, "/connection/websocket", &[]).await;
    wire.send(bytes).await;
    wire.close_code().await
}

#[tokio::test]
async fn an_unmasked_frame_closes_with_1002() {
    assert_eq!(close_code_after(&frame(0x81, br#"{"id":1,"type":"ping"}"#, false)).await, 1002);
}

#[tokio::test]
async fn a_reserved_bit_closes_with_1002() {
    assert_eq!(close_code_after(&frame(0xC1, br#"{"id":1,"type":"ping"}"#, true)).await, 1002);
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    assert_eq!(close_code_after(&frame(0x81, &[b'{', 0xff, b'}'], true)).await, 1007);
}

#[tokio::test]
async fn a_pusher_connection_gets_the_same_framing_codes() {
    let app = "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\n";
    let server = TestServer::with_config(app).await;
    let mut wire = Wire::open(&server, "/app/key-1?protocol=7", &[]).await;
    assert_eq!(wire.next_json().await["event"], "pusher:connection_established");
    wire.send(&frame(0x81, &[0xc0, 0x80], true)).await;
    assert_eq!(wire.close_code().await, 1007);
}

#[tokio::test]
async fn a_fragmented_command_with_a_ping_between_fragments_is_answered() {
    let server = TestServer::start().await;
    let mut wire = Wire::open(&server, "/connection/websocket", &[]).await;
    let command = br#"{"id":7,"type":"connect"}"#;
    let mut bytes = frame(0x01, &command[..5], true);
    bytes.extend(frame(0x89, b"are you there", true));
    bytes.extend(frame(0x00, &command[5..12], true));
    bytes.extend(frame(0x80, &command[12..], true));
    wire.send(&bytes).await;
    let pong = wire.next().await.unwrap();
    assert_eq!(pong, ServerFrame { opcode: 0xA, payload: b"are you there".to_vec() });
    let reply = wire.next_json().await;
    assert_eq!(reply["id"], 7);
    assert!(reply.get("result").is_some(), "{reply}");
}

#[tokio::test]
async fn a_command_sent_with_the_handshake_is_not_lost() {
    let server = TestServer::start().await;
    let early = text(&json!({"id": 3, "type": "connect"}).to_string());
    let mut wire = Wire::open(&server, "/connection/websocket", &early).await;
    let reply = wire.next_json().await;
    assert_eq!(reply["id"], 3);
    assert!(reply.get("result").is_some(), "{reply}");
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code_and_the_server_hangs_up() {
    let server = TestServer::start().await;
    let mut wire = Wire::open(&server, "/connection/websocket", &[]).await;
    wire.send(&frame(0x88, &4321u16.to_be_bytes(), true)).await;
    assert_eq!(wire.close_code().await, 4321);
    assert_eq!(wire.next().await, None, "the server closes the TCP stream after the handshake");
}
