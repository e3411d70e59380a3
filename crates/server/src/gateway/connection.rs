//! The life of one WebSocket connection, whatever protocol it speaks, in
//! one task.
//!
//! The task waits for whichever comes first: a message from the client
//! (handed to the protocol's [`Dialect`]), a reply to an earlier command
//! becoming ready, frames in the outbox (written together, `socket.rs`),
//! or the timer (keepalive ping, read deadline).
//! While a command runs, the outbox keeps being written, so a replay that
//! waits for room in the outbox makes progress. Replies and pushes all go
//! through the outbox, so every frame keeps its order. Cleanup happens in
//! one place, once, however the connection ends; then the close handshake
//! is finished (`closing.rs`).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fanfare_hub::{CloseReason, ConnId, Outbox, Protocol};
use fanfare_protocol::websocket::{self, Incoming};
use fanfare_protocol::{CloseCode, Frame};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::either::Either;

use super::capacity::OpenSlot;
use tokio::time::{Instant, Sleep};

use crate::gateway::closing::{self, Closing};
use crate::gateway::socket::{ReadEnd, WebSocket};
use crate::gateway::upgrade::{Io, Stream};
use crate::server::AppState;

/// What to do after a message.
pub(crate) enum Next {
    Continue,
    Close(CloseReason),
}

/// A protocol's side of a connection.
pub(crate) trait Dialect: Send {
    /// When the connection times out if nothing arrives after
    /// `last_activity` (the last message from the client).
    fn read_deadline(&self, last_activity: Instant) -> Instant;
    /// Why the connection closes when that deadline passes.
    fn on_timeout(&self) -> CloseReason;
    fn on_text(&mut self, text: &str) -> impl Future<Output = Next> + Send;
    /// Pushes into the outbox the replies of earlier commands that are
    /// ready now (registering `cx` for the rest); called whenever the
    /// connection waits for its next message.
    fn poll_replies(&mut self, _cx: &mut Context<'_>) {}
    /// A binary message: neither protocol has one.
    fn on_binary(&mut self, _data: Vec<u8>) -> Next {
        Next::Close(CloseReason::new(CloseCode::BadFrame))
    }
    /// A keepalive ping is due. A dialect that wants to know how far the
    /// client has read returns its own (numbered) ping: the driver queues
    /// it in the outbox, behind every frame queued before it, so its pong
    /// proves they arrived. `None`: the plain ping, written at once.
    fn keepalive_ping(&mut self) -> Option<Frame> {
        None
    }
    /// The client answered a ping (`payload`: the ping's).
    fn on_pong(&mut self, _payload: Vec<u8>) -> impl Future<Output = Next> + Send {
        std::future::ready(Next::Continue)
    }
    /// The connection is closing: its outbox is closed, so what it holds is
    /// all the client will get before the close frame, which waits for
    /// this; the subscriptions are still there. Called once, before `end`.
    fn closing(&mut self, _closing: Closing) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
    /// Releases every piece of per-connection state; called exactly once.
    fn end(&mut self);
    /// The hub's id of the connection, named in every log line about it
    /// (`connection = …`); none for a connection outside the hub.
    fn conn(&self) -> Option<ConnId> {
        None
    }
}

/// Per-connection things every dialect gets from the driver.
pub(crate) struct Link {
    pub app: AppState,
    pub conn: ConnId,
    pub outbox: Arc<Outbox>,
}

impl Link {
    pub fn new(app: AppState) -> Self {
        let outbox = Arc::new(Outbox::new(app.settings.limits.outbox()));
        let conn = app.hub.connections().next_id();
        Self { app, conn, outbox }
    }
}

/// What the driver needs to know of the server's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketLimits {
    pub max_message_bytes: usize,
    pub ping_interval: Duration,
}

impl SocketLimits {
    pub fn of(app: &AppState) -> Self {
        let limits = &app.settings.limits;
        Self { max_message_bytes: limits.max_frame_bytes, ping_interval: limits.ping_interval }
    }
}

/// Runs a connection of the server to its end: `dialect` was built around
/// `outbox`. A plain function returning the connection's future, so the
/// task spawned for it holds nothing else (`docs/benchmarks.md`: memory
/// per connection).
pub(crate) fn drive<D>(
    app: &AppState,
    io: Io,
    outbox: Arc<Outbox>,
    protocol: Protocol,
    dialect: D,
) -> impl Future<Output = ()> + Send + use<D>
where
    D: Dialect,
{
    let label = protocol_label(protocol);
    metrics::counter!("fanfare_connections_opened_total", "protocol" => label).increment(1);
    if tracing::enabled!(tracing::Level::DEBUG) {
        let peer = match &io.stream {
            Either::Left(tcp) => tcp.peer_addr().ok(),
            Either::Right(tls) => tls.get_ref().0.peer_addr().ok(),
        };
        tracing::debug!(connection = dialect.conn(), peer = ?peer, protocol = label, "connection opened");
    }
    Connection::new(io, SocketLimits::of(app), outbox, protocol, dialect).run()
}

/// The `protocol` label of the connection metrics.
fn protocol_label(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Native => "native",
        Protocol::Pusher { .. } => "pusher",
    }
}

/// One connection's state, owned by its task.
pub(crate) struct Connection<D> {
    socket: WebSocket<Stream>,
    limits: SocketLimits,
    outbox: Arc<Outbox>,
    protocol: Protocol,
    dialect: D,
    /// Its place within the node's connection limit, freed at the end of
    /// `run` (`capacity.rs`).
    slot: Option<OpenSlot>,
}

impl<D: Dialect> Connection<D> {
    pub fn new(io: Io, limits: SocketLimits, outbox: Arc<Outbox>, protocol: Protocol, dialect: D) -> Self {
        let socket = WebSocket::new(io.stream, &io.read_ahead, limits.max_message_bytes);
        Self { socket, limits, outbox, protocol, dialect, slot: io.slot }
    }

    /// Serves the connection to its end, releases its state, closes it.
    ///
    /// Not an `async fn`: its `self` argument would be stored twice in the
    /// future (once as the argument, once as the local it is moved into);
    /// a block that captures it uses it in place (measured: 1,280 → 824
    /// bytes per connection).
    pub fn run(self) -> impl Future<Output = ()> + Send {
        let mut this = self;
        async move {
            let closing = serve(&mut this.socket, this.limits, &this.outbox, &mut this.dialect).await;
            let reason = closing.metric_label();
            tracing::debug!(connection = this.dialect.conn(), reason, "connection closed");
            this.outbox.close(closing.reason());
            Box::pin(this.dialect.closing(closing)).await;
            this.dialect.end();
            // Boxed: its timers would otherwise make every idle
            // connection's future larger (measured: 728 bytes).
            Box::pin(closing::finish(this.socket, &this.outbox, closing, this.protocol)).await;
            if let Some(slot) = this.slot {
                slot.close(reason, this.dialect.conn(), protocol_label(this.protocol));
            }
        }
    }
}

/// What woke the connection.
enum Wake {
    Message(Incoming),
    Closed(CloseReason),
    Timer,
    Ended(Closing),
}

async fn serve<S, D>(
    socket: &mut WebSocket<S>,
    limits: SocketLimits,
    outbox: &Outbox,
    dialect: &mut D,
) -> Closing
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    D: Dialect,
{
    let mut last_activity = Instant::now();
    let mut next_ping = last_activity + limits.ping_interval;
    let timer = tokio::time::sleep_until(next_ping.min(dialect.read_deadline(last_activity)));
    let mut timer = std::pin::pin!(timer);
    loop {
        let wake = poll_fn(|cx| {
            dialect.poll_replies(cx);
            poll_wake(cx, socket, outbox, timer.as_mut())
        })
        .await;
        let message = match wake {
            Wake::Message(message) => message,
            Wake::Closed(reason) => return Closing::Server(reason),
            Wake::Ended(closing) => return closing,
            Wake::Timer => {
                let now = Instant::now();
                let deadline = dialect.read_deadline(last_activity);
                if now >= deadline {
                    return Closing::Server(dialect.on_timeout());
                }
                if now >= next_ping {
                    match dialect.keepalive_ping() {
                        Some(ping) => {
                            outbox.push(ping);
                        }
                        None => socket.outbound().push(websocket::ping_frame()),
                    }
                    next_ping = now + limits.ping_interval;
                }
                timer.as_mut().reset(next_ping.min(deadline));
                continue;
            }
        };
        last_activity = Instant::now();
        let next = match message {
            Incoming::Text(text) => {
                let mut command = Box::pin(dialect.on_text(&text));
                poll_fn(|cx| poll_command(cx, command.as_mut(), socket, outbox)).await
            }
            Incoming::Binary(data) => dialect.on_binary(data),
            Incoming::Ping(payload) => {
                socket.outbound().push(websocket::pong_frame(&payload));
                Next::Continue
            }
            Incoming::Pong(payload) => {
                let mut answered = Box::pin(dialect.on_pong(payload));
                poll_fn(|cx| poll_command(cx, answered.as_mut(), socket, outbox)).await
            }
            Incoming::Close(code) => return Closing::Client(code),
        };
        if let Next::Close(reason) = next {
            return Closing::Server(reason);
        }
    }
}

/// Writes what is queued and waits for the next thing to do.
fn poll_wake<S>(
    cx: &mut Context<'_>,
    socket: &mut WebSocket<S>,
    outbox: &Outbox,
    timer: Pin<&mut Sleep>,
) -> Poll<Wake>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match poll_flush_outbox(cx, socket, outbox) {
        Poll::Ready(Err(ended)) => return Poll::Ready(ended),
        Poll::Ready(Ok(reason)) => return Poll::Ready(Wake::Closed(reason)),
        Poll::Pending => {}
    }
    match socket.poll_message(cx) {
        Poll::Ready(Ok(message)) => return Poll::Ready(Wake::Message(message)),
        Poll::Ready(Err(ReadEnd::Violation(violation))) => {
            return Poll::Ready(Wake::Ended(Closing::Server(CloseReason::new(violation.close_code()))));
        }
        Poll::Ready(Err(ReadEnd::Gone)) => return Poll::Ready(Wake::Ended(Closing::Gone)),
        Poll::Pending => {}
    }
    timer.poll(cx).map(|()| Wake::Timer)
}

/// Moves frames from the outbox to the socket until the socket is full or
/// the outbox is empty (`Pending` either way). Ready with the close reason
/// once the outbox is closed, or with `Gone` if the socket failed.
fn poll_flush_outbox<S>(
    cx: &mut Context<'_>,
    socket: &mut WebSocket<S>,
    outbox: &Outbox,
) -> Poll<Result<CloseReason, Wake>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match socket.poll_write(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => {
                outbox.close(CloseReason::new(CloseCode::Normal));
                return Poll::Ready(Err(Wake::Ended(Closing::Gone)));
            }
            Poll::Pending => {
                // The socket is full: if the outbox overflows (or the server
                // closes it) meanwhile, the connection ends now, not when the
                // client reads again; what is left to write gets the bounded
                // time of the close (`closing.rs`).
                return outbox.poll_closed(cx).map(Ok);
            }
        }
        // Only an empty socket queue takes more from the outbox: a client
        // that does not read lets its outbox fill up and overflow.
        match outbox.poll_drain(cx, socket.outbound().queue()) {
            Poll::Ready(None) => continue,
            Poll::Ready(Some(reason)) => return Poll::Ready(Ok(reason)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Runs one command to its end, writing the outbox meanwhile. Messages
/// from the client wait: one command at a time, in order.
fn poll_command<S, F>(
    cx: &mut Context<'_>,
    command: Pin<&mut F>,
    socket: &mut WebSocket<S>,
    outbox: &Outbox,
) -> Poll<Next>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Future<Output = Next>,
{
    if let Poll::Ready(next) = command.poll(cx) {
        return Poll::Ready(next);
    }
    // A closed outbox or a failed socket are seen again by `poll_wake`
    // once the command has finished; the command itself ends soon, as the
    // outbox refuses its frames.
    let _ = poll_flush_outbox(cx, socket, outbox);
    Poll::Pending
}
