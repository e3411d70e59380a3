//! The life of one WebSocket connection, whatever protocol it speaks.
//!
//! A connection is two tasks: the reader here, which hands each text frame
//! to the protocol's [`Dialect`] (native session or Pusher session), and the
//! writer (`writer.rs`), which drains the outbox. Replies and pushes all go
//! through the outbox, so the socket has exactly one writer and every frame
//! keeps its order. Cleanup happens in one place, once, however the
//! connection ends; then the close handshake is finished.

use std::sync::Arc;
use std::time::Duration;

use fanfare_hub::{CloseReason, ConnId, Outbox, OutboxLimits, Protocol};
use fanfare_protocol::CloseCode;
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};

use crate::gateway::writer;
use crate::server::AppState;

/// How long a closing connection waits for the client's side of the close.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What to do after a frame.
pub(crate) enum Next {
    Continue,
    Close(CloseReason),
}

/// A protocol's side of a connection.
pub(crate) trait Dialect: Send {
    /// How long the reader may wait for the next frame.
    fn read_deadline(&self) -> Duration;
    /// Why the connection closes when that wait runs out.
    fn on_timeout(&self) -> CloseReason;
    fn on_text(&mut self, text: &str) -> impl Future<Output = Next> + Send;
    /// Releases every piece of per-connection state; called exactly once.
    fn end(&mut self);
}

/// Per-connection things every dialect gets from the driver.
pub(crate) struct Link {
    pub app: AppState,
    pub conn: ConnId,
    pub outbox: Arc<Outbox>,
}

impl Link {
    pub fn new(app: AppState) -> Self {
        let limits = &app.settings.limits;
        let outbox = Arc::new(Outbox::new(OutboxLimits {
            max_frames: limits.outbox_frames,
            max_bytes: limits.outbox_bytes,
        }));
        let conn = app.hub.connections().next_id();
        Self { app, conn, outbox }
    }
}

/// Runs a connection to its end: `dialect` was built around `link`.
pub(crate) async fn drive<S, D>(
    app: AppState,
    socket: WebSocketStream<S>,
    outbox: Arc<Outbox>,
    protocol: Protocol,
    mut dialect: D,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    D: Dialect,
{
    let (sink, mut stream) = socket.split();
    let ping_interval = app.settings.limits.ping_interval;
    let mut writer = tokio::spawn({
        let outbox = outbox.clone();
        async move { writer::run(sink, &outbox, ping_interval, protocol).await }
    });
    app.telemetry.connections.increment(1.0);
    let finished_writer = tokio::select! {
        reason = read_until_closed(&mut dialect, &mut stream) => {
            outbox.close(reason);
            None
        }
        sink = &mut writer => Some(sink),
    };
    dialect.end();
    app.telemetry.connections.decrement(1.0);
    let sink = match finished_writer {
        Some(sink) => sink.ok(),
        None => tokio::time::timeout(CLOSE_LINGER, &mut writer).await.ok().and_then(Result::ok),
    };
    writer.abort();
    if let Some(sink) = sink {
        linger(stream, sink).await;
    }
}

async fn read_until_closed<S, D>(dialect: &mut D, stream: &mut SplitStream<WebSocketStream<S>>) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: Dialect,
{
    loop {
        let message = match tokio::time::timeout(dialect.read_deadline(), stream.next()).await {
            Err(_) => return dialect.on_timeout(),
            Ok(None) => return CloseReason::new(CloseCode::Normal),
            Ok(Some(Err(error))) => return close_reason_for(&error),
            Ok(Some(Ok(message))) => message,
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => return CloseReason::new(CloseCode::BadFrame),
            Message::Close(_) => return CloseReason::new(CloseCode::Normal),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if let Next::Close(reason) = dialect.on_text(text.as_str()).await {
            return reason;
        }
    }
}

/// The end of the close handshake: wait (bounded) for the client's close
/// frame, then close the TCP connection ourselves, as RFC 6455 wants of a
/// server. If the client sends garbage instead, read and discard it until
/// it closes its side: closing a TCP socket that still has unread input
/// resets the connection, and the client could lose the close frame (and
/// its code) already on its way.
async fn linger<S>(stream: SplitStream<WebSocketStream<S>>, sink: writer::SocketSink<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(mut socket) = stream.reunite(sink) else { return };
    let handshake = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(_))) | None => return true,
                Some(Ok(_)) => {}
                Some(Err(_)) => return false,
            }
        }
    };
    if let Ok(true) = tokio::time::timeout(CLOSE_LINGER, handshake).await {
        return;
    }
    let mut io = socket.into_inner();
    let discard = async {
        let mut buffer = [0u8; 1024];
        while matches!(io.read(&mut buffer).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, discard).await;
}

fn close_reason_for(error: &WsError) -> CloseReason {
    match error {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => CloseReason::new(CloseCode::MessageTooBig),
        WsError::Protocol(_) | WsError::Utf8(_) => CloseReason::new(CloseCode::BadFrame),
        _ => CloseReason::new(CloseCode::Normal),
    }
}
