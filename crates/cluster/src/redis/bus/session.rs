//! One pub/sub connection: connecting, sending requests, reading
//! replies, and what counts as silence.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use super::link::Waiter;
use super::resp::{Reply, RespError, command, take_reply};
use super::{BACKEND, RedisBusOptions};
use crate::{BusEvent, ClusterError};

/// The read buffer grows by this much when less than `READ_MIN` is free.
const READ_BLOCK: usize = 64 * 1024;
const READ_MIN: usize = 4 * 1024;

/// Why a link is dead (or never came up).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("Redis closed the connection")]
    Closed,
    #[error("connection to Redis failed")]
    Io(#[from] std::io::Error),
    #[error("nothing heard from Redis for {0:?} while waiting for a reply")]
    Silent(Duration),
    #[error(transparent)]
    Malformed(#[from] RespError),
    #[error("reply out of step with the requests: {0}")]
    OutOfStep(&'static str),
    #[error("Redis refused: {0}")]
    Refused(String),
    #[error("no confirmation from Redis within {0:?}")]
    NotConfirmed(Duration),
}

impl LinkError {
    /// A refusal (`NOAUTH`, `WRONGPASS`, ACLs) stays a refusal; the rest
    /// is the engine being out of reach.
    pub(super) fn into_cluster_error(self) -> ClusterError {
        match self {
            LinkError::Refused(_) => ClusterError::Refused { backend: BACKEND, source: Arc::new(self) },
            _ => self.unavailable(),
        }
    }

    pub(super) fn unavailable(self) -> ClusterError {
        ClusterError::Unavailable { backend: BACKEND, source: Arc::new(self) }
    }
}

/// Where the pub/sub connection goes and how it introduces itself.
pub(super) struct Target {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_name: String,
}

/// A request sent and not yet answered, in sending order.
pub(super) enum Expect {
    /// One channel of a `SUBSCRIBE`: each is confirmed on its own, but a
    /// refusal is one error for the whole command, so each knows how many
    /// channels of its command follow it (`then`). `opening`: part of the
    /// subscriptions a connection opens with.
    Subscribe {
        name: String,
        generation: u64,
        opening: bool,
        then: usize,
    },
    Unsubscribe {
        name: String,
        reply: Waiter,
    },
    Pong,
}

/// A reply, sorted.
pub(super) enum Incoming {
    Message { channel: Bytes, payload: Bytes },
    Subscribed(Bytes),
    Unsubscribed(Bytes),
    Pong,
    Error(String),
}

/// One connection.
pub(super) struct Session {
    pub(super) reader: OwnedReadHalf,
    pub(super) writer: OwnedWriteHalf,
    pub(super) buf: BytesMut,
    pub(super) in_flight: VecDeque<Expect>,
    /// Opening subscriptions not confirmed yet.
    pub(super) opening: usize,
    /// Events read but not yet queued, because the queue is full; while
    /// there are any, the task does not read.
    pub(super) held: VecDeque<BusEvent>,
    pub(super) last_heard: Instant,
    /// When the oldest unanswered request was sent.
    pub(super) waiting_since: Instant,
    pub(super) pong_due: bool,
    pub(super) next_ping: Instant,
}

impl Session {
    /// Connects and introduces itself (step 1 of `link.rs`), within
    /// `ping_timeout`.
    pub(super) async fn connect(target: &Target, options: &RedisBusOptions) -> Result<Self, LinkError> {
        let limit = options.ping_timeout;
        let handshake = async {
            let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
            stream.set_nodelay(true)?;
            let (reader, writer) = stream.into_split();
            let mut session = Session::new(reader, writer, options);
            if let Some(password) = &target.password {
                let auth = match &target.username {
                    Some(user) => command(&[b"AUTH", user.as_bytes(), password.as_bytes()]),
                    None => command(&[b"AUTH", password.as_bytes()]),
                };
                session.writer.write_all(&auth).await?;
                if let Reply::Error(text) = session.reply().await? {
                    return Err(LinkError::Refused(String::from_utf8_lossy(&text).into_owned()));
                }
            }
            // A name for `CLIENT LIST` and `CLIENT KILL`; a refusal is harmless.
            let name = command(&[b"CLIENT", b"SETNAME", target.client_name.as_bytes()]);
            session.writer.write_all(&name).await?;
            session.reply().await?;
            Ok(session)
        };
        timeout(limit, handshake).await.map_err(|_| LinkError::Silent(limit))?
    }

    fn new(reader: OwnedReadHalf, writer: OwnedWriteHalf, options: &RedisBusOptions) -> Self {
        let now = Instant::now();
        Self {
            reader,
            writer,
            buf: BytesMut::with_capacity(READ_BLOCK),
            in_flight: VecDeque::new(),
            opening: 0,
            held: VecDeque::new(),
            last_heard: now,
            waiting_since: now,
            pong_due: false,
            next_ping: now + options.ping_interval,
        }
    }

    /// Reads what is there; cancel-safe.
    pub(super) async fn read(&mut self) -> std::io::Result<usize> {
        // Frames handed out share this buffer's memory; a fresh block
        // when it runs low keeps reads large.
        if self.buf.capacity() - self.buf.len() < READ_MIN {
            self.buf.reserve(READ_BLOCK);
        }
        self.reader.read_buf(&mut self.buf).await
    }

    /// The next reply, during the handshake.
    async fn reply(&mut self) -> Result<Reply, LinkError> {
        loop {
            if let Some(reply) = take_reply(&mut self.buf)? {
                return Ok(reply);
            }
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return Err(LinkError::Closed);
            }
        }
    }

    pub(super) async fn send(
        &mut self,
        bytes: &[u8],
        expects: impl IntoIterator<Item = Expect>,
        limit: Duration,
    ) -> Result<(), LinkError> {
        if self.in_flight.is_empty() {
            self.waiting_since = Instant::now();
        }
        self.in_flight.extend(expects);
        match timeout(limit, self.writer.write_all(bytes)).await {
            Ok(written) => Ok(written?),
            Err(_) => Err(LinkError::Silent(limit)),
        }
    }

    pub(super) fn pop(&mut self) -> Option<Expect> {
        self.in_flight.pop_front()
    }

    /// When silence makes the link dead: only while a reply is awaited and
    /// the task is reading (a full event queue is not the link's fault).
    pub(super) fn silence_deadline(&self, limit: Duration) -> Option<Instant> {
        if self.in_flight.is_empty() || !self.held.is_empty() {
            return None;
        }
        Some(self.last_heard.max(self.waiting_since) + limit)
    }

    /// Queues held events into the room `reserve` found (only the link
    /// task sends, so the room is still there); `room` false: the
    /// receiver is gone and so are they.
    pub(super) fn release_held(&mut self, events: &mpsc::Sender<BusEvent>, room: bool) {
        while let Some(event) = self.held.pop_front() {
            if !room {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(event)) = events.try_send(event) {
                self.held.push_front(event);
                break;
            }
        }
        if self.held.is_empty() {
            // Time stalled is not silence.
            self.last_heard = Instant::now();
        }
    }
}

pub(super) fn sort(reply: Reply) -> Result<Incoming, LinkError> {
    let items = match reply {
        Reply::Error(text) => return Ok(Incoming::Error(String::from_utf8_lossy(&text).into_owned())),
        Reply::Array(Some(items)) => items,
        _ => return Err(LinkError::OutOfStep("a reply that is not a pub/sub array")),
    };
    let mut items = items.into_iter();
    let kind = match items.next() {
        Some(Reply::Bulk(Some(kind))) => kind,
        _ => return Err(LinkError::OutOfStep("a pub/sub array without a kind")),
    };
    let mut bulk = || match items.next() {
        Some(Reply::Bulk(Some(bytes))) => Ok(bytes),
        _ => Err(LinkError::OutOfStep("a pub/sub array without its strings")),
    };
    match &kind[..] {
        b"message" => Ok(Incoming::Message { channel: bulk()?, payload: bulk()? }),
        b"subscribe" => Ok(Incoming::Subscribed(bulk()?)),
        b"unsubscribe" => Ok(Incoming::Unsubscribed(bulk()?)),
        b"pong" => Ok(Incoming::Pong),
        _ => Err(LinkError::OutOfStep("an unknown pub/sub kind")),
    }
}
