//! A WebSocket echo server on the gateway's own framing and connection
//! driver, for conformance tests only (the Autobahn suite,
//! `scripts/test-autobahn`): the native and Pusher endpoints greet first
//! and speak JSON, which an echo test cannot use. Never routed by
//! `fanfare serve`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use fanfare_hub::{CloseReason, Outbox, OutboxLimits, Protocol};
use fanfare_protocol::Frame;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::gateway::connection::{Connection, Dialect, Next, SocketLimits};
use crate::gateway::upgrade::{Io, switch};

/// Serves echo connections on `listener` at any path until the task is
/// dropped; messages up to `max_message_bytes`.
pub async fn serve(listener: TcpListener, max_message_bytes: usize) -> std::io::Result<()> {
    let limits = SocketLimits { max_message_bytes, ping_interval: Duration::from_secs(3600) };
    let route = any(move |request: Request| async move { switch(request, move |io| echo(io, limits)) });
    let router = Router::new().route("/", route.clone()).fallback(route);
    axum::serve(listener, router).await
}

async fn echo(io: Io, limits: SocketLimits) {
    let outbox = Arc::new(Outbox::new(OutboxLimits { max_frames: 1 << 20, max_bytes: 1 << 30 }));
    let dialect = Echo { outbox: outbox.clone() };
    Connection::new(io, limits, outbox, Protocol::Native, dialect).run().await;
}

struct Echo {
    outbox: Arc<Outbox>,
}

impl Dialect for Echo {
    fn read_deadline(&self, last_activity: Instant) -> Instant {
        last_activity + Duration::from_secs(3600)
    }

    fn on_timeout(&self) -> CloseReason {
        CloseReason::new(fanfare_protocol::CloseCode::IdleTimeout)
    }

    async fn on_text(&mut self, text: &str) -> Next {
        self.outbox.push(Frame::from_string(text.to_owned()));
        Next::Continue
    }

    fn on_binary(&mut self, data: Vec<u8>) -> Next {
        self.outbox.push(Frame::binary(&data));
        Next::Continue
    }

    fn end(&mut self) {}
}
