//! A shadow-banned user's publications: the user's own connections receive
//! them, nobody else does, and nothing is stored.
//!
//! Such a publication takes no offset and is never appended, so other
//! subscribers' streams have no gap from it. It is delivered like an
//! ephemeral publication (no epoch, no offset), to the subscribers of the
//! channel that are connections of the user. In a cluster the user's
//! connections may be on any node: the publication goes to every node as
//! a control message (`cluster/control.rs`), and each delivers it to its
//! own connections of the user.

use fanfare_protocol::cluster::LiveFrame;
use fanfare_protocol::{ChannelName, Stamp, StreamPosition};

use crate::encode::{Encoded, Message};
use crate::hub::{Hub, Publish, Shared, now_ms};
use crate::{HubError, cluster};

impl Hub {
    /// Delivers `publish` only to the connections registered under one of
    /// `users` (the names [`crate::Connections`] knows them by) that are
    /// subscribed to its channel, on every node, but `publish.exclude`;
    /// without epoch or offset, never stored. Returns what the author is
    /// told: for a durable publication the channel's current position
    /// (its epoch and top offset, as if it had been appended there), for
    /// an ephemeral one `None`.
    pub async fn publish_shadowed(
        &self,
        publish: Publish,
        users: Vec<String>,
    ) -> Result<Option<StreamPosition>, HubError> {
        let position = match publish.ephemeral {
            true => None,
            false => Some(self.position(&publish.channel).await?),
        };
        let frame = LiveFrame::Ephemeral {
            exclude: publish.exclude.unwrap_or(0),
            time_ms: now_ms(),
            event: publish.event,
            user: publish.user_id,
            data: publish.data,
        };
        match &self.shared.cluster {
            Some(_) => cluster::deliver_to_users(&self.shared, &publish.channel, users, &frame).await?,
            None => deliver_to_users(&self.shared, &publish.channel, &users, &frame),
        }
        Ok(position)
    }
}

/// Pushes an ephemeral `frame` to this node's subscribers of `channel`
/// that are connections of `users`.
pub(crate) fn deliver_to_users(shared: &Shared, channel: &ChannelName, users: &[String], frame: &LiveFrame) {
    let LiveFrame::Ephemeral { exclude, time_ms, event, user, data } = frame else { return };
    let Some(chan) = shared.registry.get(channel) else { return };
    let conns = shared.connections.ids_of(users);
    if conns.is_empty() {
        return;
    }
    let message =
        Message::Ephemeral { time_ms: *time_ms, event: event.as_deref(), data, user: user.as_ref() };
    let encoded = Encoded::new(channel, message).accepted_at(Stamp::from_unix_ms(*time_ms));
    let except = (*exclude != 0).then_some(*exclude);
    let cap = shared.options.catch_up_buffer;
    let result = chan.state.lock().fan_out_to_connections(&encoded, except, &conns, cap);
    shared.count_fan_out(channel, result);
}
