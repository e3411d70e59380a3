//! Pusher Channels protocol v7 compatibility: apps, the WebSocket session
//! (`session/`, on the gateway's connection driver), the Pusher HTTP API,
//! signed-in users and watchlists, webhooks, and continuity (missed events
//! replayed to a signed-in user that reconnects, `continuity.rs`). The wire codec is the
//! protocol crate's (`fanfare_protocol::pusher`).
//!
//! Pusher apps map onto the same hub as the native protocol: a Pusher
//! channel `name` of an app with prefix `p` is the hub channel `p` + `name`,
//! so native and Pusher clients of the same channel see each other's
//! messages.

pub(crate) mod api;
pub mod apps;
pub(crate) mod continuity;
pub(crate) mod rates;
pub(crate) mod session;
pub(crate) mod users;
pub mod webhooks;

use std::sync::Arc;

use apps::Apps;
use users::SignedInUsers;
use webhooks::Webhooks;

/// What the Pusher side of the server shares.
pub(crate) struct PusherState {
    pub apps: Arc<Apps>,
    pub users: SignedInUsers,
    pub webhooks: Webhooks,
    /// Replays to a signed-in user what it missed while reconnecting;
    /// `None` when `pusher.continuity_window` is `0s`.
    pub continuity: Option<continuity::Continuity>,
}

/// How long a cache channel keeps its last event (the hub's history age,
/// and the `ttl` the HTTP API reports).
pub(crate) const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Channel options with the Pusher naming rules on top of the namespace's:
/// a channel whose name (after an app prefix) starts with `presence-` tracks
/// presence and announces joins and leaves; a cache channel keeps its last
/// event for at most 30 minutes.
pub(crate) fn channel_options(
    mut options: fanfare_hub::ChannelOptions,
    channel: &fanfare_protocol::ChannelName,
) -> fanfare_hub::ChannelOptions {
    let name = channel.as_str();
    let local = name.split_once(':').map_or(name, |(_, rest)| rest);
    let Ok(pusher_channel) = fanfare_protocol::pusher::PusherChannel::new(local) else { return options };
    if matches!(pusher_channel.kind(), fanfare_protocol::pusher::ChannelKind::Presence) {
        options.presence = true;
        options.join_leave = true;
    }
    if pusher_channel.is_cache() {
        options.history.max_len = options.history.max_len.max(1);
        options.history.max_age = options.history.max_age.min(CACHE_TTL);
    }
    options
}
