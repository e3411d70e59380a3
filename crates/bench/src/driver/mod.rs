//! The protocol drivers: how a subscriber opens a socket, subscribes
//! (resuming from a position where the protocol can), and reads what a
//! frame carries. Both drive raw WebSockets (tokio-tungstenite with small
//! buffers) rather than the full `fanfare-client`: a benchmark holds
//! thousands of connections on one or two cores, and one task per
//! connection that decodes frames in place, with borrowed JSON fields,
//! costs a few KiB of memory and no channel hops per frame.
//!
//! - `native.rs`: `/connection/websocket`, `connect` + `subscribe` with
//!   `since`, publications carry `(epoch, offset)`.
//! - `pusher.rs`: `/app/{key}`, `pusher:subscribe`, events carry only
//!   their data, so order comes from the payload's `seq`.
//! - `nats.rs`: NATS over WebSocket (the fan-out reference), `SUB` and
//!   `MSG` in a byte stream, order from the payload's `seq`; its own
//!   publishing connections.
//! - `api.rs`: publishing through the servers' HTTP APIs.
//! - `ws_publisher.rs`: publishing with `publish` commands over WebSockets.

pub(crate) mod api;
pub(crate) mod native;
pub(crate) mod nats;
pub(crate) mod pusher;
pub(crate) mod ws_publisher;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::options::{Plan, Protocol};
use crate::payload::Payload;

pub(crate) type WebSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why opening or keeping a session failed. Counted in the report by
/// [`SessionError::kind`], never fatal to the run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("tcp connect: {0}")]
    Tcp(#[source] std::io::Error),
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("refused: {0}")]
    Refused(String),
    #[error("closed by the server ({code}{})", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    Closed { code: u16, reason: String },
    #[error("unexpected frame: {0}")]
    Unexpected(String),
}

impl SessionError {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            SessionError::Tcp(_) | SessionError::WebSocket(_) | SessionError::Timeout(_) => "connect",
            SessionError::Refused(_) => "refused",
            SessionError::Closed { .. } => "closed by server",
            SessionError::Unexpected(_) => "protocol",
        }
    }
}

/// A subscription just opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opened {
    /// Deliveries are expected from `after + 1` on.
    pub after: u64,
    /// Native: the channel's epoch.
    pub epoch: Option<String>,
    /// Native, with a position: whether the server replays the gap.
    pub recovered: Option<bool>,
    /// Native: the channel's top offset when it answered.
    pub top: u64,
    /// NATS: bytes read during the handshake that belong to the stream
    /// after it (messages that arrived with the confirming `PONG`).
    pub pending: Vec<u8>,
}

/// Where a native subscriber resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    pub epoch: String,
    pub offset: u64,
}

/// What a shaped namespace's server says of a delivery (native only;
/// all zero elsewhere).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shaping {
    /// `skipped`: publications of the channel sampled out since the
    /// previous one this subscription received.
    pub skipped: u64,
    /// `"priority":true`: the server put it in the priority lane.
    pub flagged_priority: bool,
    /// Its event is the benchmark's priority event: the tool sent it
    /// through the priority lane (whether or not shaping is on).
    pub priority_event: bool,
}

/// The event name of the `live` scenario's priority publications.
pub(crate) const PRIORITY_EVENT: &str = "fanfare-bench-priority";
/// The event of a shaped namespace's reaction aggregates.
pub(crate) const REACTIONS_EVENT: &str = "fanfare:reactions";
/// The event of a feed's notices.
pub(crate) const NOTICE_EVENT: &str = "fanfare:notice";

/// What a feed notice says of the message it is about.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Notice<'a> {
    /// The direct (or members) channel of the message, its epoch and offset.
    pub channel: std::borrow::Cow<'a, str>,
    pub epoch: &'a str,
    pub offset: u64,
    /// The benchmark payload the message's text carried, from `preview`.
    pub payload: Option<Payload>,
}

/// What one frame means to a subscriber.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// A publication of the benchmark: `key` is its offset (native) or
    /// its payload's `seq` (Pusher).
    Delivery {
        key: u64,
        epoch: Option<&'a str>,
        payload: Option<Payload>,
        shaping: Shaping,
    },
    /// A feed notice: `key` is its offset in the feed.
    Notice {
        key: u64,
        epoch: &'a str,
        about: Notice<'a>,
    },
    /// A reaction aggregate: the sum of its counts.
    Reactions {
        total: u64,
    },
    /// The reply to a command of this connection (native), with its
    /// error when it is one.
    Reply {
        id: u64,
        error: Option<&'a str>,
        /// The JSON of its result, when it is not an error.
        result: Option<&'a str>,
    },
    /// Send this frame back (a Pusher `pusher:ping`).
    Answer(&'static str),
    /// The server says it is about to close.
    Disconnect {
        code: u16,
    },
    Ignore,
    Unreadable,
}

/// How the subscribers of a run speak.
#[derive(Debug, Clone)]
pub(crate) struct Driver {
    pub protocol: Protocol,
    /// Per node: its WebSocket URL and address.
    pub targets: Vec<(String, SocketAddr)>,
    /// For `wss://` targets.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// For the tokens: `--token`, or `--jwt-secret` to sign one each.
    pub options: Arc<crate::options::BenchOptions>,
    pub timeout: Duration,
}

impl Driver {
    pub(crate) fn new(plan: &Plan) -> Self {
        Self {
            protocol: plan.options.protocol,
            targets: (0..plan.nodes.len()).map(|node| (plan.ws_url_of(node), plan.nodes[node].1)).collect(),
            tls: plan.tls.clone(),
            options: Arc::new(plan.options.clone()),
            timeout: plan.options.connect_timeout,
        }
    }

    /// Opens a socket to node `node` (taken round the nodes) and
    /// subscribes to `channel` as subscriber `index`, within the timeout.
    pub(crate) async fn open(
        &self,
        source: Option<IpAddr>,
        channel: &str,
        resume: Option<Resume>,
        (index, node): (usize, usize),
    ) -> Result<(WebSocket, Opened), SessionError> {
        let (url, server) = &self.targets[node % self.targets.len()];
        let attempt = async {
            let mut ws = dial(url, *server, source, self.tls.as_ref()).await?;
            let opened = match self.protocol {
                Protocol::Native => {
                    let token = crate::tokens::token_for(&self.options, crate::tokens::Role::Viewer(index));
                    native::subscribe(&mut ws, token.as_deref(), channel, resume).await
                }
                Protocol::Pusher => pusher::subscribe(&mut ws, channel).await,
                Protocol::Nats => nats::subscribe(&mut ws, channel).await,
            }?;
            Ok((ws, opened))
        };
        tokio::time::timeout(self.timeout, attempt).await.map_err(|_| SessionError::Timeout(self.timeout))?
    }

    /// What one text frame means (native and Pusher; NATS is a byte
    /// stream, read with [`nats::StreamBuffer`]).
    pub(crate) fn decode<'a>(&self, text: &'a str) -> Incoming<'a> {
        match self.protocol {
            Protocol::Native => native::decode(text),
            Protocol::Pusher => pusher::decode(text),
            Protocol::Nats => Incoming::Unreadable,
        }
    }

    /// Whether frames are pieces of a byte stream rather than one message each.
    pub(crate) fn is_stream(&self) -> bool {
        self.protocol == Protocol::Nats
    }
}

/// Small buffers: the defaults (128 KiB read buffer, touched on first
/// read) would cost more per connection than the whole rest of it.
pub(crate) fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(4096).max_write_buffer_size(1 << 20)
}

/// TCP (from `source` when given), TLS for a `wss://` URL (with `tls`),
/// then the WebSocket handshake.
pub(crate) async fn dial(
    url: &str,
    server: SocketAddr,
    source: Option<IpAddr>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<WebSocket, SessionError> {
    let socket = if server.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() };
    let socket = socket.map_err(SessionError::Tcp)?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(SessionError::Tcp)?;
    }
    let stream = socket.connect(server).await.map_err(SessionError::Tcp)?;
    stream.set_nodelay(true).map_err(SessionError::Tcp)?;
    let connector = tls.map(|tls| Connector::Rustls(tls.clone()));
    let (ws, _response) =
        tokio_tungstenite::client_async_tls_with_config(url, stream, Some(socket_config()), connector)
            .await?;
    Ok(ws)
}

/// The next text frame, answering nothing (pings are answered by
/// tungstenite itself); an error when the socket closes.
pub(crate) async fn next_text(ws: &mut WebSocket) -> Result<tungstenite::Utf8Bytes, SessionError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(error.into()),
            None => return Err(SessionError::Closed { code: 1006, reason: String::new() }),
        }
    }
}

pub(crate) fn closed(frame: Option<tungstenite::protocol::CloseFrame>) -> SessionError {
    match frame {
        Some(frame) => SessionError::Closed { code: frame.code.into(), reason: frame.reason.to_string() },
        None => SessionError::Closed { code: 1005, reason: String::new() },
    }
}

pub(crate) async fn send_text(ws: &mut WebSocket, text: String) -> Result<(), SessionError> {
    ws.send(Message::text(text)).await.map_err(SessionError::from)
}

/// Closes politely: a close frame, then the server's answer (never
/// waited for long). Then this side closes the TCP connection rather than
/// wait for the server to.
pub(crate) async fn close(mut ws: WebSocket) {
    let polite = async {
        if ws.close(None).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = ws.next().await {
            if message.is_close() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), polite).await;
}

/// Drops the connection the hard way: no close frame, and a TCP reset
/// instead of a FIN, as when a network path dies.
pub(crate) fn abort(ws: WebSocket) {
    let tcp = match ws.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp,
        MaybeTlsStream::Rustls(tls) => tls.get_ref().0,
        _ => return,
    };
    let _ = tcp.set_zero_linger();
    drop(ws);
}
