//! A fake Fanfare server that speaks just enough of the native protocol,
//! driven step by step by the test: it accepts WebSocket connections on
//! 127.0.0.1:0 and lets the test read each command and write each reply,
//! push and close frame itself.

use std::time::Duration;

use fanfare_client::{Backoff, ClientOptions, Epoch, ErrorInfo, Publication, StreamPosition};
use fanfare_protocol::native::{self, Command, CommandBody, ConnectResult, SubscribeResult};
use fanfare_protocol::{ChannelName, Frame, JsonData};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{WebSocketStream, accept_async};

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub struct FakeServer {
    url: String,
    connections: mpsc::Receiver<FakeConnection>,
}

impl FakeServer {
    pub async fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/connection", listener.local_addr().unwrap());
        let (tx, connections) = mpsc::channel(8);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(ws) = accept_async(tcp).await else { continue };
                if tx.send(FakeConnection { ws }).await.is_err() {
                    return;
                }
            }
        });
        FakeServer { url, connections }
    }

    /// Its WebSocket URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Options pointing at this server, with delays short enough for tests.
    pub fn options(&self) -> ClientOptions {
        ClientOptions {
            backoff: Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(40) },
            connect_timeout: PATIENCE,
            request_timeout: PATIENCE,
            ..ClientOptions::new(self.url.clone())
        }
    }

    /// The next WebSocket connection a client opens.
    pub async fn accept(&mut self) -> FakeConnection {
        timeout(PATIENCE, self.connections.recv()).await.expect("no connection in time").unwrap()
    }

    /// Whether a client connects within `wait` (for checking that one does not).
    pub async fn connects_within(&mut self, wait: Duration) -> bool {
        timeout(wait, self.connections.recv()).await.is_ok()
    }
}

pub struct FakeConnection {
    ws: WebSocketStream<TcpStream>,
}

impl FakeConnection {
    /// The next command the client sent.
    pub async fn recv(&mut self) -> Command {
        loop {
            let message = timeout(PATIENCE, self.ws.next()).await.expect("no command in time");
            match message.expect("client hung up").expect("socket error") {
                Message::Text(text) => return Command::decode(text.as_str()).expect("a valid command"),
                Message::Close(frame) => panic!("client closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Reads the `connect` command: its id and token.
    pub async fn expect_connect(&mut self) -> (u64, Option<String>) {
        match self.recv().await {
            Command { id, body: CommandBody::Connect { token } } => (id, token),
            other => panic!("expected connect, got {other:?}"),
        }
    }

    /// Reads `connect` and accepts it; the server "pings" every `ping_interval_ms`.
    pub async fn accept_connect_pinging(&mut self, client_id: &str, ping_interval_ms: u64) {
        let (id, _token) = self.expect_connect().await;
        let result = ConnectResult {
            client: client_id.to_string(),
            user: "alice".to_string(),
            version: "test".to_string(),
            ping_interval_ms,
        };
        self.reply(id, &result).await;
    }

    pub async fn accept_connect(&mut self, client_id: &str) {
        self.accept_connect_pinging(client_id, 25_000).await;
    }

    /// Reads a `subscribe`: its id, channel and `since`.
    pub async fn expect_subscribe(&mut self) -> (u64, ChannelName, Option<StreamPosition>) {
        match self.recv().await {
            Command { id, body: CommandBody::Subscribe { channel, since } } => (id, channel, since),
            other => panic!("expected subscribe, got {other:?}"),
        }
    }

    /// Reads a `subscribe` and accepts it at `(epoch, offset)`.
    pub async fn accept_subscribe(
        &mut self,
        epoch: &str,
        offset: u64,
        recovered: Option<bool>,
    ) -> Option<StreamPosition> {
        let (id, _channel, since) = self.expect_subscribe().await;
        self.reply(id, &SubscribeResult { epoch: Epoch::new(epoch), offset, recovered }).await;
        since
    }

    pub async fn reply<T: Serialize>(&mut self, id: u64, result: &T) {
        self.send(native::encode_reply(id, result)).await;
    }

    pub async fn reply_error(&mut self, id: u64, error: ErrorInfo) {
        self.send(native::encode_error(id, &error)).await;
    }

    /// Pushes the stored publication `offset` of `channel`; its data is the offset.
    pub async fn publish(&mut self, channel: &str, epoch: &str, offset: u64) {
        let publication = Publication::new(offset, 1, None, JsonData::parse(offset.to_string()).unwrap());
        let channel = ChannelName::new(channel).unwrap();
        self.send(native::encode_publication(&channel, &Epoch::new(epoch), &publication)).await;
    }

    pub async fn send(&mut self, frame: Frame) {
        self.ws.send(Message::text(frame.as_str())).await.unwrap();
    }

    /// Closes with a close frame carrying `code`.
    pub async fn close(mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code: code.into(), reason: reason.into() };
        let _ = self.ws.close(Some(frame)).await;
        // Let the client answer the close before the TCP connection goes.
        let _ = timeout(PATIENCE, self.ws.next()).await;
    }

    /// Drops the TCP connection without a close frame, like a lost network.
    pub fn drop_abruptly(self) {
        drop(self);
    }
}
