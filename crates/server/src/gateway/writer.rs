//! The writer task of a session: drains the outbox and writes everything
//! queued with one flush, sends heartbeats, and closes the socket with the
//! outbox's close reason.

use std::time::Duration;

use fanfare_hub::{CloseReason, Outbox, Protocol};
use fanfare_protocol::pusher::PusherCloseCode;
use fanfare_protocol::{CloseCode, Frame, native};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

pub type SocketSink<S> = SplitSink<WebSocketStream<S>, Message>;

/// Runs until the outbox closes or the socket fails; hands the sink back
/// for the end of the close handshake.
pub async fn run<S>(
    mut sink: SocketSink<S>,
    outbox: &Outbox,
    ping_interval: Duration,
    protocol: Protocol,
) -> SocketSink<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut batch: Vec<Frame> = Vec::new();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    loop {
        let closed = tokio::select! {
            closed = outbox.drain(&mut batch) => closed,
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    return sink;
                }
                continue;
            }
        };
        if write_batch(&mut sink, &mut batch).await.is_err() {
            return sink;
        }
        if let Some(reason) = closed {
            close(&mut sink, reason, protocol).await;
            return sink;
        }
    }
}

async fn write_batch<S>(sink: &mut SocketSink<S>, batch: &mut Vec<Frame>) -> Result<(), ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if batch.is_empty() {
        return Ok(());
    }
    for frame in batch.drain(..) {
        sink.feed(text_message(frame)).await.map_err(drop)?;
    }
    sink.flush().await.map_err(drop)
}

/// Tells the client why and closes. Native clients get a `disconnect`
/// push first (for clients that cannot read close codes); Pusher clients
/// get the Pusher close code their library acts on.
async fn close<S>(sink: &mut SocketSink<S>, reason: CloseReason, protocol: Protocol)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let code = reason.code;
    let (number, text) = match protocol {
        Protocol::Native => {
            if code != CloseCode::Normal {
                let push = native::encode_disconnect(code, reason.reconnect_after_ms);
                let _ = sink.feed(text_message(push)).await;
            }
            (code.code(), code.reason())
        }
        Protocol::Pusher { .. } => pusher_close(code),
    };
    let frame = CloseFrame { code: WsCloseCode::from(number), reason: Utf8Bytes::from_static(text) };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = sink.close().await;
}

/// The Pusher close code for why the outbox closed: pusher-js reconnects
/// at once on 42xx, after a backoff on 41xx, and gives up on 40xx.
fn pusher_close(code: CloseCode) -> (u16, &'static str) {
    let pusher = match code {
        CloseCode::Normal => return (1000, "normal closure"),
        CloseCode::MessageTooBig => return (1009, "message too big"),
        CloseCode::BadFrame => return (1003, "unsupported data"),
        CloseCode::Unauthorized | CloseCode::HandshakeTimeout | CloseCode::Disconnected => {
            PusherCloseCode::Unauthorized
        }
        CloseCode::ShuttingDown => PusherCloseCode::ShuttingDown,
        CloseCode::SlowConsumer | CloseCode::ServerError => PusherCloseCode::OverCapacity,
        CloseCode::IdleTimeout => PusherCloseCode::PongTimeout,
    };
    (pusher.code(), pusher.reason())
}

/// A text message sharing the frame's bytes: no copy and no second UTF-8
/// check per connection.
#[allow(unsafe_code)]
fn text_message(frame: Frame) -> Message {
    // SAFETY: a `Frame` can only be built from a `String` (see
    // `Frame::from_string`), so its bytes are valid UTF-8.
    Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(frame.into_bytes()) })
}
