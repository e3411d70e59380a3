//! The end of a connection: what is still queued, the reason told to the
//! client, and the close handshake.

use std::future::poll_fn;
use std::task::{Poll, ready};
use std::time::Duration;

use fanfare_hub::{CloseReason, Outbox, Protocol};
use fanfare_protocol::pusher::PusherCloseCode;
use fanfare_protocol::websocket::{self, Incoming};
use fanfare_protocol::{CloseCode, native};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::gateway::socket::{ReadEnd, WebSocket};
use crate::gateway::upgrade::Io;

/// How long each step of a close may take: writing what is left, then
/// waiting for the client's side of the handshake.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// How a connection ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Closing {
    /// The server closes, for this reason.
    Server(CloseReason),
    /// The client sent a close frame, with this code.
    Client(Option<u16>),
    /// The connection failed or the client went away without a close.
    Gone,
}

impl Closing {
    /// The `reason` label of `fanfare_connections_closed_total`: one per
    /// close code the server sends, and two for the client's side.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Closing::Client(_) => "client_closed",
            Closing::Gone => "client_gone",
            Closing::Server(reason) => match reason.code {
                CloseCode::Normal => "normal",
                CloseCode::BadFrame => "bad_frame",
                CloseCode::Unauthorized => "unauthorized",
                CloseCode::HandshakeTimeout => "handshake_timeout",
                CloseCode::Disconnected => "disconnected",
                CloseCode::TooManyConnections => "too_many_connections",
                CloseCode::MessageTooBig => "message_too_big",
                CloseCode::ProtocolError => "protocol_error",
                CloseCode::InvalidPayload => "invalid_payload",
                CloseCode::ShuttingDown => "shutting_down",
                CloseCode::SlowConsumer => "slow_consumer",
                CloseCode::IdleTimeout => "idle_timeout",
                CloseCode::ServerError => "server_error",
                CloseCode::InsufficientState => "insufficient_state",
                CloseCode::Kicked => "kicked",
                CloseCode::RemovedMember => "removed_member",
            },
        }
    }

    /// The reason the connection's outbox is closed with.
    pub fn reason(self) -> CloseReason {
        match self {
            Closing::Server(reason) => reason,
            Closing::Client(_) | Closing::Gone => CloseReason::new(CloseCode::Normal),
        }
    }
}

/// Finishes the connection. A server close writes what the outbox still
/// holds (nothing after an overflow: the client recovers by position), the
/// reason, and a close frame, then waits (bounded) for the client's close
/// frame and closes the TCP connection itself, as RFC 6455 wants of a
/// server. A client close is answered with its own code.
pub(crate) async fn finish<S>(mut socket: WebSocket<S>, outbox: &Outbox, closing: Closing, protocol: Protocol)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match closing {
        Closing::Gone => {}
        Closing::Client(code) => {
            let frame = match code {
                Some(code) => websocket::close_frame(code, ""),
                None => websocket::close_frame(CloseCode::Normal.code(), ""),
            };
            socket.outbound().push(frame);
            if write_all(&mut socket).await {
                socket.shutdown().await;
            }
        }
        Closing::Server(_) => {
            let Some(reason) = write_remaining(&mut socket, outbox).await else { return };
            queue_close(&mut socket, reason, protocol);
            if write_all(&mut socket).await {
                linger(socket).await;
            }
        }
    }
}

/// Refuses a connection before any session starts (Pusher: unknown app,
/// protocol version, quota).
pub(crate) async fn refuse(io: Io, code: u16, reason: &str) {
    let mut socket = WebSocket::new(io.stream, &[], 1024);
    socket.outbound().push(websocket::close_frame(code, reason));
    if write_all(&mut socket).await {
        linger(socket).await;
    }
}

/// Writes the outbox's last frames; returns the reason it was closed with
/// (the first reason given wins), or `None` if the socket failed.
async fn write_remaining<S>(socket: &mut WebSocket<S>, outbox: &Outbox) -> Option<CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let flush = poll_fn(|cx| {
        loop {
            match socket.poll_write(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
            if let Some(reason) = ready!(outbox.poll_drain(cx, socket.outbound().queue())) {
                return Poll::Ready(Some(reason));
            }
        }
    });
    tokio::time::timeout(CLOSE_LINGER, flush).await.ok().flatten()
}

/// Tells the client why. Native clients get a `disconnect` push first (for
/// clients that cannot read close codes); Pusher clients get the Pusher
/// close code their library acts on.
fn queue_close<S>(socket: &mut WebSocket<S>, reason: CloseReason, protocol: Protocol)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let code = reason.code;
    let (number, text) = match protocol {
        Protocol::Native => {
            // Application codes only: after a WebSocket-level failure (1002,
            // 1007, 1009) nothing but the close frame is sent.
            if code.code() >= 4000 {
                let push = native::encode_disconnect(code, reason.reconnect_after_ms);
                socket.outbound().push(push);
            }
            (code.code(), code.reason())
        }
        Protocol::Pusher { .. } => pusher_close(code),
    };
    socket.outbound().push(websocket::close_frame(number, text));
}

async fn write_all<S>(socket: &mut WebSocket<S>) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let write = poll_fn(|cx| socket.poll_write(cx));
    matches!(tokio::time::timeout(CLOSE_LINGER, write).await, Ok(Ok(())))
}

/// Waits for the client's close frame, then closes. If the client sends
/// garbage instead, reads and drops it until it closes its side: closing a
/// TCP socket with unread input resets the connection, and the client
/// could lose the close frame (and its code) already on its way.
async fn linger<S>(mut socket: WebSocket<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = async {
        loop {
            match poll_fn(|cx| socket.poll_message(cx)).await {
                Ok(Incoming::Close(_)) | Err(ReadEnd::Gone) => return true,
                Ok(_) => {}
                Err(ReadEnd::Violation(_)) => return false,
            }
        }
    };
    if let Ok(true) = tokio::time::timeout(CLOSE_LINGER, handshake).await {
        socket.shutdown().await;
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, poll_fn(|cx| socket.poll_discard(cx))).await;
}

/// The Pusher close code for why the outbox closed: pusher-js reconnects
/// at once on 42xx, after a backoff on 41xx, and gives up on 40xx.
fn pusher_close(code: CloseCode) -> (u16, &'static str) {
    let pusher = match code {
        CloseCode::Normal => return (1000, "normal closure"),
        CloseCode::MessageTooBig => return (1009, "message too big"),
        CloseCode::BadFrame => return (1003, "unsupported data"),
        CloseCode::ProtocolError => return (1002, "protocol error"),
        CloseCode::InvalidPayload => return (1007, "invalid payload data"),
        CloseCode::Unauthorized | CloseCode::HandshakeTimeout | CloseCode::Disconnected => {
            PusherCloseCode::Unauthorized
        }
        CloseCode::ShuttingDown => PusherCloseCode::ShuttingDown,
        // 40xx: pusher-js gives up, and does not hammer a full user's limit.
        CloseCode::TooManyConnections => PusherCloseCode::OverQuota,
        CloseCode::SlowConsumer | CloseCode::ServerError => PusherCloseCode::OverCapacity,
        CloseCode::IdleTimeout => PusherCloseCode::PongTimeout,
        CloseCode::InsufficientState | CloseCode::RemovedMember => PusherCloseCode::Reconnect,
        CloseCode::Kicked => PusherCloseCode::Kicked,
    };
    (pusher.code(), pusher.reason())
}
