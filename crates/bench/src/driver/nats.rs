//! NATS over WebSocket (`--protocol nats`): the fan-out reference. A
//! `nats-server` with a `websocket { … }` block speaks its text protocol
//! in binary WebSocket frames, and a frame may hold several operations or
//! part of one, so everything read goes through [`StreamBuffer`].
//!
//! - Subscribers: read `INFO`, send `CONNECT`, `SUB <channel> 1` and
//!   `PING`; the `PONG` says the subscription is in place. Then `MSG`s,
//!   keyed by their payload's `seq` (NATS has no positions, so, as for
//!   Pusher, a reconnect cannot recover what it missed), and a `PONG` for
//!   every `PING`.
//! - Publishers ([`NatsPublishers`]): a few separate connections, each
//!   owned by one task; a publish writes `PUB <channel> <n>` and a `PING`,
//!   and is acknowledged by the `PONG`: NATS handles a connection's
//!   operations in order, so the `PONG` means the server has taken the
//!   publication and queued it to every subscriber, as an HTTP answer does.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::api::ApiError;
use super::{Incoming, Opened, SessionError, Shaping, WebSocket, closed, dial};
use crate::options::Plan;
use crate::payload;

/// Longest control line accepted (an `INFO` is well under 4 KiB).
const MAX_CONTROL_LINE: usize = 64 * 1024;
/// A subscriber's buffer is given back when it grew past this and is empty.
const KEEP_BUFFER: usize = 64 * 1024;
/// The subscription id of a subscriber's one subscription.
const SID: &str = "1";
const CONNECT: &str = "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"fanfare-bench\",\"lang\":\"rust\",\"version\":\"0.1\",\"protocol\":1}\r\n";
pub(crate) const PONG: &str = "PONG\r\n";

/// One operation from the server.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Info,
    Msg {
        subject: &'a str,
        payload: &'a [u8],
    },
    Ping,
    Pong,
    Ok,
    Err(&'a str),
    /// Anything else (`HMSG`, which we never subscribe for, future ops).
    Other,
}

/// Why the byte stream cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("control line longer than {MAX_CONTROL_LINE} bytes")]
    LineTooLong,
    #[error("malformed MSG line: {0}")]
    BadMsg(String),
    #[error("MSG payload not followed by CRLF")]
    BadTerminator,
}

/// The first complete operation in `buf` and the bytes it takes; `None`
/// when `buf` holds only part of one.
pub(crate) fn next_op(buf: &[u8]) -> Result<Option<(Op<'_>, usize)>, ParseError> {
    let Some(line_end) = find_crlf(buf) else {
        return if buf.len() > MAX_CONTROL_LINE { Err(ParseError::LineTooLong) } else { Ok(None) };
    };
    let line = &buf[..line_end];
    let after_line = line_end + 2;
    let (verb, rest) = match line.iter().position(|b| *b == b' ' || *b == b'\t') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &line[line.len()..]),
    };
    let op = match verb {
        b"MSG" | b"msg" => return msg(rest, buf, after_line),
        b"PING" | b"ping" => Op::Ping,
        b"PONG" | b"pong" => Op::Pong,
        b"+OK" | b"+ok" => Op::Ok,
        b"-ERR" | b"-err" => Op::Err(std::str::from_utf8(rest).unwrap_or("(not UTF-8)").trim()),
        b"INFO" | b"info" => Op::Info,
        _ => Op::Other,
    };
    Ok(Some((op, after_line)))
}

/// `MSG <subject> <sid> [reply-to] <#bytes>` then the payload and CRLF.
fn msg<'a>(args: &'a [u8], buf: &'a [u8], start: usize) -> Result<Option<(Op<'a>, usize)>, ParseError> {
    let bad = || ParseError::BadMsg(String::from_utf8_lossy(args).chars().take(120).collect());
    let args = std::str::from_utf8(args).map_err(|_| bad())?;
    let fields: Vec<&str> = args.split_ascii_whitespace().collect();
    if !(3..=4).contains(&fields.len()) {
        return Err(bad());
    }
    let size: usize = fields[fields.len() - 1].parse().map_err(|_| bad())?;
    let end = start + size;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ParseError::BadTerminator);
    }
    Ok(Some((Op::Msg { subject: fields[0], payload: &buf[start..end] }, end + 2)))
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|pair| pair == b"\r\n")
}

/// Bytes read but not yet a whole operation. Empty between frames in the
/// common case, where a frame ends on an operation's end; then a frame is
/// parsed where it lies, without a copy.
#[derive(Debug, Default)]
pub(crate) struct StreamBuffer(Vec<u8>);

impl StreamBuffer {
    /// Calls `each` for every complete operation of what was kept plus
    /// `bytes`, and keeps the incomplete rest.
    pub(crate) fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(Op<'_>)) -> Result<(), ParseError> {
        if self.0.is_empty() {
            let used = parse_all(bytes, &mut each)?;
            self.0.extend_from_slice(&bytes[used..]);
        } else {
            self.0.extend_from_slice(bytes);
            let used = parse_all(&self.0, &mut each)?;
            self.0.drain(..used);
        }
        if self.0.is_empty() && self.0.capacity() > KEEP_BUFFER {
            self.0 = Vec::new();
        }
        Ok(())
    }
}

fn parse_all(buf: &[u8], each: &mut impl FnMut(Op<'_>)) -> Result<usize, ParseError> {
    let mut used = 0;
    while let Some((op, len)) = next_op(&buf[used..])? {
        each(op);
        used += len;
    }
    Ok(used)
}

/// What a `MSG` payload means to a subscriber: a benchmark payload is keyed
/// by its `seq`; anything else is not ours.
pub(crate) fn delivery(payload: &[u8]) -> Incoming<'static> {
    match std::str::from_utf8(payload).ok().and_then(payload::decode) {
        Some(payload) => Incoming::Delivery {
            key: payload.seq,
            epoch: None,
            payload: Some(payload),
            shaping: Shaping::default(),
        },
        None => Incoming::Ignore,
    }
}

pub(crate) async fn send_bytes(ws: &mut WebSocket, bytes: impl Into<Vec<u8>>) -> Result<(), SessionError> {
    ws.send(Message::binary(bytes.into())).await.map_err(SessionError::from)
}

/// The next frame's bytes (NATS sends binary frames; text is read the
/// same way); an error when the socket closes.
async fn next_bytes(ws: &mut WebSocket) -> Result<Vec<u8>, SessionError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(bytes))) => return Ok(bytes.into()),
            Some(Ok(Message::Text(text))) => return Ok(text.as_bytes().to_vec()),
            Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(error.into()),
            None => return Err(SessionError::Closed { code: 1006, reason: String::new() }),
        }
    }
}

/// Waits for the server's `INFO`, then sends `CONNECT` and `extra`
/// followed by a `PING`, and waits for the `PONG`. Returns what arrived
/// after the `INFO` and before the `PONG` that was not a control
/// operation (`MSG`s), followed by whatever came after the `PONG`.
async fn handshake(ws: &mut WebSocket, extra: &str) -> Result<Vec<u8>, SessionError> {
    let mut buf = Vec::new();
    let mut info = false;
    loop {
        let mut used = 0;
        while let Some((op, len)) =
            next_op(&buf[used..]).map_err(|e| SessionError::Unexpected(e.to_string()))?
        {
            used += len;
            if matches!(op, Op::Info) {
                info = true;
                break;
            }
        }
        buf.drain(..used);
        if info {
            break;
        }
        buf.extend_from_slice(&next_bytes(ws).await?);
    }
    send_bytes(ws, format!("{CONNECT}{extra}PING\r\n")).await?;
    let mut pending = Vec::new();
    loop {
        let mut used = 0;
        let mut ponged = false;
        while let Some((op, len)) =
            next_op(&buf[used..]).map_err(|e| SessionError::Unexpected(e.to_string()))?
        {
            match op {
                Op::Pong => ponged = true,
                Op::Ping => send_bytes(ws, PONG).await?,
                Op::Err(error) => return Err(SessionError::Refused(format!("-ERR {error}"))),
                Op::Msg { .. } => pending.extend_from_slice(&buf[used..used + len]),
                Op::Info | Op::Ok | Op::Other => {}
            }
            used += len;
            if ponged {
                break;
            }
        }
        buf.drain(..used);
        if ponged {
            pending.extend_from_slice(&buf);
            return Ok(pending);
        }
        buf.extend_from_slice(&next_bytes(ws).await?);
    }
}

/// Subscribes to `channel` (the NATS subject) and waits until the server
/// has the subscription.
pub(crate) async fn subscribe(ws: &mut WebSocket, channel: &str) -> Result<Opened, SessionError> {
    let pending = handshake(ws, &format!("SUB {channel} {SID}\r\n")).await?;
    Ok(Opened { after: 0, epoch: None, recovered: None, top: 0, pending })
}

type Answer = Result<Option<u64>, ApiError>;

struct Request {
    frame: Vec<u8>,
    answer: oneshot::Sender<Answer>,
}

/// Handles to the publishing connections; lanes go round them, so one
/// channel's publications always use one connection, in order.
#[derive(Clone)]
pub(crate) struct NatsPublishers {
    connections: Arc<[mpsc::Sender<Request>]>,
}

impl NatsPublishers {
    /// Starts `count` connection tasks; they connect on first use.
    pub(crate) fn start(plan: &Plan, count: usize) -> Self {
        let connections = (0..count.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(64);
                tokio::spawn(run(plan.clone(), rx));
                tx
            })
            .collect();
        Self { connections }
    }

    /// Publishes `payload` (its bytes as they are) to the subject `channel`
    /// and waits until the server has taken it.
    pub(crate) async fn publish(&self, lane: usize, channel: &str, payload: &str) -> Answer {
        let mut frame = format!("PUB {channel} {}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload.as_bytes());
        frame.extend_from_slice(b"\r\nPING\r\n");
        let (answer, rx) = oneshot::channel();
        let connection = &self.connections[lane % self.connections.len()];
        let stopped = || ApiError::Unexpected("publishing connection stopped".into());
        connection.send(Request { frame, answer }).await.map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The task owning one publishing socket. Ends when every handle is gone.
async fn run(plan: Plan, mut requests: mpsc::Receiver<Request>) {
    'connection: loop {
        let Some(first) = requests.recv().await else { return };
        let mut ws = match open(&plan).await {
            Ok(ws) => ws,
            Err(error) => {
                let _ = first.answer.send(Err(error.into()));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Waiting for their PONG, oldest first.
        let mut waiting: VecDeque<oneshot::Sender<Answer>> = VecDeque::new();
        let mut stream = StreamBuffer::default();
        let mut queued = Some(first);
        loop {
            if let Some(request) = queued.take() {
                if let Err(error) = send_bytes(&mut ws, request.frame).await {
                    let _ = request.answer.send(Err(error.into()));
                    fail_all(&mut waiting, "publishing connection lost; outcome unknown");
                    continue 'connection;
                }
                waiting.push_back(request.answer);
            }
            tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => queued = Some(request),
                    None => {
                        super::close(ws).await;
                        return;
                    }
                },
                frame = next_bytes(&mut ws) => {
                    let Ok(bytes) = frame else {
                        fail_all(&mut waiting, "publishing connection lost; outcome unknown");
                        continue 'connection;
                    };
                    let (mut ping, mut refused) = (false, None);
                    let parsed = stream.feed(&bytes, |op| match op {
                        Op::Pong => {
                            if let Some(waiter) = waiting.pop_front() {
                                let _ = waiter.send(Ok(None));
                            }
                        }
                        Op::Ping => ping = true,
                        Op::Err(error) => refused = Some(format!("-ERR {error}")),
                        _ => {}
                    });
                    if let Some(error) = refused.or(parsed.err().map(|e| e.to_string())) {
                        fail_all(&mut waiting, &error);
                        continue 'connection;
                    }
                    if ping && send_bytes(&mut ws, PONG).await.is_err() {
                        fail_all(&mut waiting, "publishing connection lost; outcome unknown");
                        continue 'connection;
                    }
                }
            }
        }
    }
}

async fn open(plan: &Plan) -> Result<WebSocket, SessionError> {
    let attempt = async {
        let mut ws = dial(&plan.ws_url(), plan.server, None, plan.tls.as_ref()).await?;
        handshake(&mut ws, "").await?;
        Ok(ws)
    };
    let limit = plan.options.connect_timeout;
    tokio::time::timeout(limit, attempt).await.map_err(|_| SessionError::Timeout(limit))?
}

fn fail_all(waiting: &mut VecDeque<oneshot::Sender<Answer>>, why: &str) {
    for waiter in waiting.drain(..) {
        let _ = waiter.send(Err(ApiError::Unexpected(why.to_string())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    fn ops(bytes: &[u8]) -> Vec<String> {
        let mut seen = Vec::new();
        let mut stream = StreamBuffer::default();
        stream.feed(bytes, |op| seen.push(format!("{op:?}"))).unwrap();
        seen
    }

    #[test]
    fn control_operations_and_messages_are_read_in_order() {
        let bytes = b"INFO {\"server_id\":\"x\"}\r\n+OK\r\nMSG fb-1-0 1 5\r\nhello\r\nPING\r\nPONG\r\n-ERR 'Slow Consumer'\r\n";
        assert_eq!(
            ops(bytes),
            [
                "Info",
                "Ok",
                r#"Msg { subject: "fb-1-0", payload: [104, 101, 108, 108, 111] }"#,
                "Ping",
                "Pong",
                r#"Err("'Slow Consumer'")"#,
            ]
        );
    }

    #[test]
    fn a_message_with_a_reply_subject_and_an_empty_payload() {
        assert_eq!(
            next_op(b"MSG a 1 inbox.1 2\r\nhi\r\n").unwrap(),
            Some((Op::Msg { subject: "a", payload: b"hi" }, 23))
        );
        assert_eq!(
            next_op(b"MSG a 1 0\r\n\r\n").unwrap(),
            Some((Op::Msg { subject: "a", payload: b"" }, 13))
        );
    }

    #[test]
    fn operations_split_across_frames_are_joined() {
        let whole = b"MSG subj 1 11\r\nhello world\r\nPING\r\n";
        for cut in 1..whole.len() {
            let mut seen = Vec::new();
            let mut stream = StreamBuffer::default();
            stream.feed(&whole[..cut], |op| seen.push(format!("{op:?}"))).unwrap();
            stream.feed(&whole[cut..], |op| seen.push(format!("{op:?}"))).unwrap();
            assert_eq!(seen.len(), 2, "cut at {cut}: {seen:?}");
            assert!(seen[0].starts_with("Msg"), "cut at {cut}: {seen:?}");
            assert_eq!(seen[1], "Ping");
        }
    }

    #[test]
    fn a_payload_holding_crlf_is_taken_by_its_length() {
        assert_eq!(
            next_op(b"MSG s 1 4\r\n\r\n\r\n\r\n").unwrap(),
            Some((Op::Msg { subject: "s", payload: b"\r\n\r\n" }, 17))
        );
    }

    #[test]
    fn broken_streams_are_errors() {
        assert!(matches!(next_op(b"MSG s 1 x\r\n"), Err(ParseError::BadMsg(_))));
        assert!(matches!(next_op(b"MSG s\r\n"), Err(ParseError::BadMsg(_))));
        assert_eq!(next_op(b"MSG s 1 2\r\nabcd\r\n"), Err(ParseError::BadTerminator));
        assert_eq!(next_op(&vec![b'x'; MAX_CONTROL_LINE + 1]), Err(ParseError::LineTooLong));
        assert_eq!(next_op(b"PIN").unwrap(), None);
    }

    #[test]
    fn a_benchmark_payload_is_keyed_by_its_seq() {
        let data = payload::encode(12, 34, 60);
        assert_eq!(
            delivery(data.as_bytes()),
            Incoming::Delivery {
                key: 12,
                epoch: None,
                payload: Some(Payload { seq: 12, sent_us: 34 }),
                shaping: Shaping::default()
            }
        );
        assert_eq!(delivery(b"{\"a\":1}"), Incoming::Ignore);
        assert_eq!(delivery(&[0xff, 0xfe]), Incoming::Ignore);
    }
}
