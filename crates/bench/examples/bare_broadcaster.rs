//! A bare coalescing broadcaster: the reference the fan-out targets of
//! `docs/benchmarks.md` are set against, measured in the same session by
//! the same tool (`scripts/bench-peers.sh`, target `bare`).
//!
//! It speaks just enough of Fanfare's native protocol for `fanfare bench
//! --protocol native` (`connect`, `subscribe`, publication pushes, `POST
//! /api/publish` answering the offset) and does nothing else: no store, no
//! auth, no limits, no outbox bounds, one channel in effect. A publication
//! is encoded once and handed to every subscriber's queue under one lock
//! (so offsets stay in order); each connection's writer takes everything
//! queued, buffers it in tungstenite and writes it with one flush. It is a
//! measuring stick, not a server: never run it anywhere but loopback.
//!
//! Like any plain tokio server it leaves Nagle's algorithm on; `--nodelay`
//! sets `TCP_NODELAY` on every connection, as Fanfare does by default.
//! `--one-worker` runs it on one worker thread (default: one per core).
//!
//! ```text
//! cargo run --release -p fanfare-bench --example bare_broadcaster -- 127.0.0.1:0 [--nodelay] [--one-worker]
//! ```
//! prints `bare broadcaster listening on ADDR`, and runs until killed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use fanfare_protocol::Epoch;
use fanfare_protocol::native::{Command, CommandBody, ConnectResult, SubscribeResult, encode_reply};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const EPOCH: &str = "bare";

#[derive(Default)]
struct Broadcaster {
    /// Every subscriber's queue, and the last offset given (one lock, so a
    /// subscriber's queue gets offsets in order).
    channel: Mutex<Channel>,
    connections: AtomicU64,
}

#[derive(Default)]
struct Channel {
    offset: u64,
    subscribers: Vec<mpsc::UnboundedSender<Utf8Bytes>>,
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if args.iter().any(|a| a == "--one-worker") {
        runtime.worker_threads(1);
    }
    runtime.enable_all().build()?.block_on(serve(args))
}

async fn serve(args: Vec<String>) -> std::io::Result<()> {
    let nodelay = args.iter().any(|a| a == "--nodelay");
    let address: SocketAddr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("127.0.0.1:0", String::as_str)
        .parse()
        .expect("an address");
    assert!(address.ip().is_loopback(), "the bare broadcaster listens on loopback only");
    let broadcaster = Arc::new(Broadcaster::default());
    let app = Router::new()
        .route("/connection/websocket", get(accept))
        .route("/api/publish", post(publish))
        .with_state(broadcaster);
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("bare broadcaster listening on {}", listener.local_addr()?);
    let listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(nodelay);
    });
    axum::serve(listener, app).await
}

#[derive(Deserialize)]
struct PublishBody<'a> {
    #[serde(borrow)]
    channel: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// `POST /api/publish`: the next offset, pushed to every subscriber.
async fn publish(State(broadcaster): State<Arc<Broadcaster>>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<PublishBody<'_>>(&body) else {
        return answer(StatusCode::BAD_REQUEST, r#"{"error":"bad body"}"#.into());
    };
    let channel_json = serde_json::to_string(body.channel).expect("strings serialize");
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut channel = broadcaster.channel.lock();
    channel.offset += 1;
    let offset = channel.offset;
    let text: Utf8Bytes = format!(
        r#"{{"type":"publication","channel":{channel_json},"epoch":"{EPOCH}","offset":{offset},"time":{time},"data":{}}}"#,
        body.data.get()
    )
    .into();
    channel.subscribers.retain(|queue| queue.send(text.clone()).is_ok());
    drop(channel);
    answer(StatusCode::OK, format!(r#"{{"offset":{offset}}}"#))
}

fn answer(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /connection/websocket`: switches, then runs the connection.
async fn accept(State(broadcaster): State<Arc<Broadcaster>>, mut request: Request) -> Response {
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).map(|k| derive_accept_key(k.as_bytes()))
    else {
        return answer(StatusCode::BAD_REQUEST, r#"{"error":"not a websocket upgrade"}"#.into());
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            run(broadcaster, ws).await;
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers
        .insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&key).expect("base64 is a header value"));
    response
}

/// A reader (commands) and a writer (everything queued, one flush).
async fn run<S>(broadcaster: Arc<Broadcaster>, ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (queue, mut queued) = mpsc::unbounded_channel::<Utf8Bytes>();
    let writer = tokio::spawn(async move {
        let mut batch = Vec::new();
        while queued.recv_many(&mut batch, usize::MAX).await > 0 {
            for text in batch.drain(..) {
                if sink.feed(Message::Text(text)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let client = broadcaster.connections.fetch_add(1, Ordering::Relaxed);
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else { continue };
        let Ok(command) = Command::decode(text.as_str()) else { break };
        match command.body {
            CommandBody::Connect { .. } => {
                let result = ConnectResult {
                    client: client.to_string(),
                    user: String::new(),
                    version: "bare".into(),
                    ping_interval_ms: 25_000,
                };
                let _ = queue.send(encode_reply(command.id, &result).as_str().into());
            }
            CommandBody::Subscribe { since, .. } => {
                // The reply and the registration under the channel's lock:
                // the first publication queued after the reply is the next.
                let mut channel = broadcaster.channel.lock();
                let result = SubscribeResult {
                    epoch: Epoch::new(EPOCH),
                    offset: channel.offset,
                    recovered: since.map(|_| false),
                };
                let _ = queue.send(encode_reply(command.id, &result).as_str().into());
                channel.subscribers.push(queue.clone());
            }
            _ => break,
        }
    }
    drop(queue);
    writer.abort();
}
