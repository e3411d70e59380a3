//! One session per WebSocket connection: reads frames, decodes commands,
//! runs them against the hub, and owns the connection's cleanup.
//!
//! A session is two tasks: this reader, and the writer (`writer.rs`) that
//! drains the outbox. Replies and pushes all go through the outbox, so the
//! socket has exactly one writer and every frame keeps its order.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fanfare_hub::{CloseReason, ConnId, Outbox, OutboxLimits};
use fanfare_protocol::native::{self, Command};
use fanfare_protocol::{ChannelName, CloseCode, ErrorInfo};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};

use crate::auth::Identity;
use crate::gateway::writer;
use crate::server::AppState;

pub(crate) struct Session {
    pub app: AppState,
    pub conn: ConnId,
    pub outbox: Arc<Outbox>,
    /// Set by a successful `connect`.
    pub identity: Option<Identity>,
    pub channels: HashSet<ChannelName>,
}

/// What to do after a command.
pub(crate) enum Next {
    Continue,
    Close(CloseReason),
}

pub async fn run<S>(app: AppState, socket: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &app.settings.limits;
    let outbox = Arc::new(Outbox::new(OutboxLimits {
        max_frames: limits.outbox_frames,
        max_bytes: limits.outbox_bytes,
    }));
    let (sink, mut stream) = socket.split();
    let ping_interval = limits.ping_interval;
    let mut writer = tokio::spawn({
        let outbox = outbox.clone();
        async move { writer::run(sink, &outbox, ping_interval).await }
    });
    app.telemetry.connections.increment(1.0);
    let conn = app.hub.connections().next_id();
    // Registered from the start (as anonymous until `connect`), so a
    // shutdown reaches connections that have not sent `connect` yet.
    app.hub.connections().register(conn, Arc::from(""), outbox.clone());
    let mut session = Session { app, conn, outbox: outbox.clone(), identity: None, channels: HashSet::new() };
    let finished_writer = tokio::select! {
        reason = session.read_until_closed(&mut stream) => {
            outbox.close(reason);
            None
        }
        sink = &mut writer => Some(sink),
    };
    session.end();
    let sink = match finished_writer {
        Some(sink) => sink.ok(),
        None => tokio::time::timeout(CLOSE_LINGER, &mut writer).await.ok().and_then(Result::ok),
    };
    writer.abort();
    if let Some(sink) = sink {
        linger(stream, sink).await;
    }
}

/// The end of the close handshake. Closing a TCP socket that still has
/// unread input resets the connection, and the client could lose the close
/// frame (and its code) already on its way. So read and discard whatever
/// the client still sends until it closes its side, for a bounded time.
async fn linger<S>(stream: SplitStream<WebSocketStream<S>>, sink: writer::SocketSink<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(socket) = stream.reunite(sink) else { return };
    let mut io = socket.into_inner();
    let discard = async {
        let mut buffer = [0u8; 1024];
        while matches!(io.read(&mut buffer).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, discard).await;
}

/// How long a closing session waits for the client's side of the close.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

impl Session {
    async fn read_until_closed<S>(&mut self, stream: &mut SplitStream<WebSocketStream<S>>) -> CloseReason
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let deadline = self.read_deadline();
            let message = match tokio::time::timeout(deadline, stream.next()).await {
                Err(_) if self.identity.is_none() => return CloseReason::new(CloseCode::HandshakeTimeout),
                Err(_) => return CloseReason::new(CloseCode::IdleTimeout),
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
            if let Next::Close(reason) = self.on_text(text.as_str()).await {
                return reason;
            }
        }
    }

    /// Before `connect` the client has the handshake timeout; after it,
    /// one ping interval plus the pong timeout between any two frames.
    fn read_deadline(&self) -> Duration {
        let limits = &self.app.settings.limits;
        match self.identity {
            None => limits.handshake_timeout,
            Some(_) => limits.ping_interval + limits.pong_timeout,
        }
    }

    async fn on_text(&mut self, text: &str) -> Next {
        match Command::decode(text) {
            Ok(command) => Box::pin(self.dispatch(command)).await,
            Err(error) => match error.id {
                Some(id) => {
                    self.reply_error(id, error.error);
                    Next::Continue
                }
                None => Next::Close(CloseReason::new(CloseCode::BadFrame)),
            },
        }
    }

    pub fn reply<T: serde::Serialize>(&self, id: u64, result: &T) {
        self.outbox.push(native::encode_reply(id, result));
    }

    pub fn reply_error(&self, id: u64, error: ErrorInfo) {
        self.outbox.push(native::encode_error(id, &error));
    }

    /// Every piece of per-connection state is released here, once.
    fn end(&mut self) {
        for channel in self.channels.drain() {
            let _ = self.app.hub.unsubscribe(self.conn, &channel);
        }
        self.app.hub.connections().unregister(self.conn);
        self.app.telemetry.connections.decrement(1.0);
    }
}

fn close_reason_for(error: &WsError) -> CloseReason {
    match error {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => CloseReason::new(CloseCode::MessageTooBig),
        WsError::Protocol(_) | WsError::Utf8(_) => CloseReason::new(CloseCode::BadFrame),
        _ => CloseReason::new(CloseCode::Normal),
    }
}
