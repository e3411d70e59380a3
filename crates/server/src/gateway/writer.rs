//! The writer task of a session: drains the outbox and writes everything
//! queued with one flush, sends heartbeats, and closes the socket with the
//! outbox's close reason.

use std::time::Duration;

use fanfare_hub::{CloseReason, Outbox};
use fanfare_protocol::{Frame, native};
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
pub async fn run<S>(mut sink: SocketSink<S>, outbox: &Outbox, ping_interval: Duration) -> SocketSink<S>
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
            close(&mut sink, reason).await;
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

/// Tells the client why (a `disconnect` push, for clients that cannot read
/// close codes), then closes with the code.
async fn close<S>(sink: &mut SocketSink<S>, reason: CloseReason)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let code = reason.code;
    if code != fanfare_protocol::CloseCode::Normal {
        let push = native::encode_disconnect(code, reason.reconnect_after_ms);
        let _ = sink.feed(text_message(push)).await;
    }
    let frame =
        CloseFrame { code: WsCloseCode::from(code.code()), reason: Utf8Bytes::from_static(code.reason()) };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = sink.close().await;
}

/// A text message sharing the frame's bytes: no copy and no second UTF-8
/// check per connection.
#[allow(unsafe_code)]
fn text_message(frame: Frame) -> Message {
    // SAFETY: a `Frame` can only be built from a `String` (see
    // `Frame::from_string`), so its bytes are valid UTF-8.
    Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(frame.into_bytes()) })
}
