//! The native protocol's side of a connection: decodes commands, runs
//! them (`commands.rs`), and releases the session's state when it ends.

use std::sync::Arc;
use std::task::Context;

use fanfare_hub::{CloseReason, ConnId, Outbox, Protocol};
use fanfare_protocol::native::{self, Command};
use fanfare_protocol::{ChannelName, CloseCode, ErrorCode, ErrorInfo};
use tokio::time::Instant;

use crate::auth::Identity;
use crate::gateway::connection::{self, Dialect, Link, Next};
use crate::gateway::connection_counts::Counted;
use crate::gateway::rate::TokenBucket;
use crate::gateway::replies::PendingReplies;
use crate::gateway::subscriptions::Subscriptions;
use crate::gateway::upgrade::Io;
use crate::limits::Publisher;
use crate::server::AppState;

pub(crate) struct Session {
    pub app: AppState,
    pub conn: ConnId,
    pub outbox: Arc<Outbox>,
    /// Set by a successful `connect`.
    pub identity: Option<Identity>,
    pub channels: Subscriptions<ChannelName, ()>,
    /// Every command counts against `limits.max_commands_per_second`.
    pub commands: TokenBucket,
    /// Publishes handed to the hub whose replies are not written yet.
    pub replies: PendingReplies,
    /// Its publish buckets.
    pub publisher: Publisher,
    /// Its place within its user's `limits.max_connections_per_user`,
    /// from `connect` on (none for anonymous connections).
    pub user_slot: Option<Counted<Arc<str>>>,
}

/// The connection's future (see [`connection::drive`]).
pub fn run(app: AppState, io: Io) -> impl Future<Output = ()> + Send {
    let Link { app, conn, outbox } = Link::new(app);
    // Registered from the start (as anonymous until `connect`), so a
    // shutdown reaches connections that have not sent `connect` yet.
    app.hub.connections().register(conn, Arc::from(""), outbox.clone());
    let commands = TokenBucket::new(app.settings.limits.max_commands_per_second);
    let session = Session {
        app: app.clone(),
        conn,
        outbox: outbox.clone(),
        identity: None,
        channels: Subscriptions::new(),
        commands,
        replies: PendingReplies::default(),
        publisher: Publisher::new(&app.connection_key(conn)),
        user_slot: None,
    };
    connection::drive(&app, io, outbox, Protocol::Native, session)
}

impl Dialect for Session {
    /// Before `connect` the client has the handshake timeout; after it,
    /// one ping interval plus the pong timeout between any two frames.
    fn read_deadline(&self, last_activity: Instant) -> Instant {
        let limits = &self.app.settings.limits;
        last_activity
            + match self.identity {
                None => limits.handshake_timeout,
                Some(_) => limits.idle_timeout(),
            }
    }

    fn on_timeout(&self) -> CloseReason {
        match self.identity {
            None => CloseReason::new(CloseCode::HandshakeTimeout),
            Some(_) => CloseReason::new(CloseCode::IdleTimeout),
        }
    }

    async fn on_text(&mut self, text: &str) -> Next {
        match Command::decode(text) {
            Ok(command) if !self.commands.try_take() => {
                crate::gateway::rate::count_refusal("native_commands");
                self.replies.flush(&self.outbox).await;
                self.reply_error(
                    command.id,
                    ErrorInfo::new(ErrorCode::RateLimited, "too many commands; slow down"),
                );
                Next::Continue
            }
            Ok(command) => Box::pin(self.dispatch(command)).await,
            Err(error) => match error.id {
                Some(id) => {
                    self.replies.flush(&self.outbox).await;
                    self.reply_error(id, error.error);
                    Next::Continue
                }
                None => Next::Close(CloseReason::new(CloseCode::BadFrame)),
            },
        }
    }

    /// Replies of pipelined publishes go out as soon as they are known.
    fn poll_replies(&mut self, cx: &mut Context<'_>) {
        let _ = self.replies.poll_send(cx, &self.outbox);
    }

    /// Every piece of per-connection state is released here, once.
    fn conn(&self) -> Option<ConnId> {
        Some(self.conn)
    }

    fn end(&mut self) {
        for (channel, ()) in self.channels.drain() {
            let _ = self.app.hub.unsubscribe(self.conn, &channel);
        }
        self.app.hub.connections().unregister(self.conn);
        self.user_slot = None;
    }
}

impl Session {
    pub fn reply<T: serde::Serialize>(&self, id: u64, result: &T) {
        self.outbox.push(native::encode_reply(id, result));
    }

    pub fn reply_error(&self, id: u64, error: ErrorInfo) {
        self.outbox.push(native::encode_error(id, &error));
    }
}
