//! The Pusher Channels v7 side of a connection (`/app/{key}`): pusher-js
//! and Laravel Echo connect here unmodified.
//!
//! - `mod.rs`: the upgrade (app, protocol version, quota) and the session's
//!   frame dispatch, deadlines and cleanup.
//! - `subscribe.rs`: subscribe with channel auth, presence, cache channels.
//! - `client_events.rs`: `client-*` events with their rate limit.
//! - `signin.rs`: `pusher:signin`, watchlists.
//! - `continuity.rs`: what a signed-in user's connection saves and claims
//!   so that a reconnect replays what it missed.

mod client_events;
mod continuity;
mod signin;
mod subscribe;

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use fanfare_hub::{CloseReason, ConnId, Outbox, Protocol};
use fanfare_protocol::pusher::{self, ClientFrame, PusherCloseCode, PusherErrorCode, SocketId};
use fanfare_protocol::{ChannelName, CloseCode, Epoch, Frame, JsonData, UserId};
use futures_util::future::Either;
use serde::Deserialize;
use tokio::time::Instant;

use crate::gateway::closing::{self, Closing};
use crate::gateway::connection::{self, Dialect, Link, Next};
use crate::gateway::upgrade::{Io, upgrade};
use crate::limits::Publisher;
use crate::pusher::apps::PusherApp;
use crate::server::AppState;

use crate::gateway::connection_counts::Counted;
use crate::gateway::rate::TokenBucket;
use crate::gateway::subscriptions::Subscriptions;

/// Seconds of silence after which pusher-js pings (it uses the smaller of
/// this and its own setting, 120 s by default).
const ACTIVITY_TIMEOUT_SECS: u32 = 120;

#[derive(Deserialize)]
pub struct ConnectParams {
    protocol: Option<String>,
}

/// `GET /app/{key}`.
pub async fn accept(
    State(app): State<AppState>,
    Path(key): Path<String>,
    Query(params): Query<ConnectParams>,
    request: Request,
) -> Response {
    upgrade(app, request, move |app, socket| start(app, socket, key, params))
}

/// Refusals that happen before the session starts: an unknown or disabled
/// app, a protocol version we do not speak, an app over its quota. A plain
/// function returning the connection's future (see `connection::drive`).
fn start(app: AppState, io: Io, key: String, params: ConnectParams) -> impl Future<Output = ()> + Send {
    match admit(&app, &key, &params) {
        Ok(pusher_app) => Either::Left(PusherSession::run(app, io, pusher_app)),
        Err(code) => {
            crate::gateway::upgrade::refused(refusal_cause(code));
            Either::Right(async move { closing::refuse(io, code.code(), code.reason()).await })
        }
    }
}

/// The `cause` label of `fanfare_handshake_failures_total` for a Pusher
/// connection refused before its session starts.
fn refusal_cause(code: PusherCloseCode) -> &'static str {
    match code {
        PusherCloseCode::AppNotFound => "app_not_found",
        PusherCloseCode::AppDisabled => "app_disabled",
        PusherCloseCode::OverQuota => "app_over_quota",
        PusherCloseCode::InvalidVersionFormat
        | PusherCloseCode::UnsupportedProtocol
        | PusherCloseCode::NoProtocol => "protocol_version",
        _ => "other",
    }
}

fn admit(app: &AppState, key: &str, params: &ConnectParams) -> Result<Arc<PusherApp>, PusherCloseCode> {
    check_protocol(params.protocol.as_deref())?;
    let pusher_app = app.pusher.apps.by_key(key).ok_or(PusherCloseCode::AppNotFound)?;
    if !pusher_app.settings.enabled {
        return Err(PusherCloseCode::AppDisabled);
    }
    let max = pusher_app.settings.max_connections;
    if !app.pusher.users.admit(pusher_app.id(), max) {
        return Err(PusherCloseCode::OverQuota);
    }
    Ok(pusher_app)
}

/// pusher-js sends `protocol=7`; versions 5 to 7 share this wire format.
fn check_protocol(protocol: Option<&str>) -> Result<(), PusherCloseCode> {
    let protocol = protocol.ok_or(PusherCloseCode::NoProtocol)?;
    match protocol.parse::<u32>() {
        Err(_) => Err(PusherCloseCode::InvalidVersionFormat),
        Ok(5..=7) => Ok(()),
        Ok(_) => Err(PusherCloseCode::UnsupportedProtocol),
    }
}

/// A channel this connection is subscribed to.
struct Subscribed {
    hub: ChannelName,
    /// The presence member id on a presence channel (added to client events).
    member: Option<UserId>,
    /// The channel's epoch when continuity tracks this subscription
    /// (`continuity.rs`): a signed-in user's private or presence channel.
    tracked: Option<Epoch>,
}

/// Who the connection signed in as.
struct SignedIn {
    id: UserId,
    info: Option<JsonData>,
    watchlist: Vec<UserId>,
    /// Its place within the user's `limits.max_connections_per_user`,
    /// freed on sign-out (with the rest of this).
    _slot: Option<Counted<Arc<str>>>,
}

pub(crate) struct PusherSession {
    app: AppState,
    pusher_app: Arc<PusherApp>,
    conn: ConnId,
    socket_id: String,
    outbox: Arc<Outbox>,
    channels: Subscriptions<String, Subscribed>,
    signed_in: Option<SignedIn>,
    /// When an app requires authentication: until when it must happen.
    authenticate_by: Option<Instant>,
    /// `None` when the app sets no client event rate.
    client_events: Option<TokenBucket>,
    /// Every frame counts against `limits.max_commands_per_second`.
    frames: TokenBucket,
    /// Its client events' buckets of the namespace publish limits.
    publisher: Publisher,
    /// Continuity's state once signed in (`continuity.rs`).
    tracking: Option<Box<continuity::Tracking>>,
}

impl PusherSession {
    fn run(app: AppState, io: Io, pusher_app: Arc<PusherApp>) -> impl Future<Output = ()> + Send + use<> {
        let Link { app, conn, outbox } = Link::new(app);
        app.hub.connections().register(conn, Arc::from(""), outbox.clone());
        let socket_id = SocketId::new(conn, rand::random_range(1..1_000_000_000)).to_string();
        let socket_id_parsed = SocketId::parse(&socket_id).expect("just formatted");
        outbox.push(pusher::encode_connection_established(socket_id_parsed, ACTIVITY_TIMEOUT_SECS));
        let settings = &pusher_app.settings;
        let authenticate_by =
            settings.requires_authentication().then(|| Instant::now() + settings.user_authentication_timeout);
        let client_events = match settings.max_client_events_per_second {
            0 => None,
            per_second => Some(TokenBucket::new(per_second)),
        };
        let protocol = pusher_app.protocol();
        let session = PusherSession {
            app: app.clone(),
            pusher_app,
            conn,
            socket_id,
            outbox: outbox.clone(),
            channels: Subscriptions::new(),
            signed_in: None,
            authenticate_by,
            publisher: Publisher::new(&app.connection_key(conn)),
            client_events,
            frames: TokenBucket::new(app.settings.limits.max_commands_per_second),
            tracking: None,
        };
        connection::drive(&app, io, outbox, protocol, session)
    }

    fn protocol(&self) -> Protocol {
        self.pusher_app.protocol()
    }

    fn send_error(&self, code: PusherErrorCode, message: &str) {
        self.outbox.push(pusher::encode_error(code, message));
    }

    /// Signed in, or subscribed to a private or presence channel.
    fn authenticated(&mut self) {
        self.authenticate_by = None;
    }
}

impl Dialect for PusherSession {
    fn read_deadline(&self, last_activity: Instant) -> Instant {
        let limits = &self.app.settings.limits;
        let idle = last_activity + limits.idle_timeout();
        match self.authenticate_by {
            Some(deadline) => idle.min(deadline),
            None => idle,
        }
    }

    fn on_timeout(&self) -> CloseReason {
        match self.authenticate_by {
            Some(deadline) if Instant::now() >= deadline => CloseReason::new(CloseCode::Unauthorized),
            _ => CloseReason::new(CloseCode::IdleTimeout),
        }
    }

    async fn on_text(&mut self, text: &str) -> Next {
        if !self.frames.try_take() {
            crate::gateway::rate::count_refusal("pusher_messages");
            self.send_error(PusherErrorCode::InvalidMessage, "too many messages; slow down");
            return Next::Continue;
        }
        let frame = match ClientFrame::decode(text) {
            Ok(frame) => frame,
            Err(error) => {
                self.send_error(error.pusher_code(), &error.to_string());
                return Next::Continue;
            }
        };
        match frame {
            ClientFrame::Ping => {
                self.outbox.push(pusher::encode_pong());
            }
            ClientFrame::Pong => {}
            ClientFrame::Subscribe { channel, auth, channel_data } => {
                Box::pin(self.subscribe(channel, auth, channel_data)).await;
            }
            ClientFrame::Unsubscribe { channel } => self.unsubscribe(channel.as_str()).await,
            ClientFrame::Signin { auth, user_data } => return self.sign_in(&auth, &user_data).await,
            ClientFrame::ClientEvent { channel, event, data } => {
                Box::pin(self.client_event(channel, event, data)).await;
            }
        }
        Next::Continue
    }

    fn conn(&self) -> Option<ConnId> {
        Some(self.conn)
    }

    fn keepalive_ping(&mut self) -> Option<Frame> {
        self.continuity_ping()
    }

    async fn on_pong(&mut self, payload: Vec<u8>) -> Next {
        self.continuity_pong(&payload).await;
        Next::Continue
    }

    async fn closing(&mut self, closing: Closing) {
        self.continuity_close(closing).await;
    }

    fn end(&mut self) {
        for (_, subscribed) in self.channels.drain() {
            let _ = self.app.hub.unsubscribe(self.conn, &subscribed.hub);
        }
        self.sign_out();
        self.app.pusher.users.release(self.pusher_app.id());
        self.app.hub.connections().unregister(self.conn);
    }
}
