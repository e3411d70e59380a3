//! Ephemeral pushes to every subscriber of a channel but one user's own
//! connections: a typing indicator, a read receipt. The user's
//! connections already know (they are the ones typing or reading).
//!
//! Like a shadow-banned user's publication (`shadow.rs`), the push takes
//! no offset and is never stored; unlike it, it goes to everyone else. In
//! a cluster it reaches every node as a control message
//! (`cluster/control.rs`), each delivering it to its own subscribers.

use fanfare_protocol::cluster::LiveFrame;
use fanfare_protocol::{ChannelName, Stamp};

use crate::encode::{Encoded, Message};
use crate::hub::{Hub, Publish, Shared, now_ms};
use crate::{HubError, cluster};

impl Hub {
    /// Delivers `publish` (taken as ephemeral: no epoch, no offset, never
    /// stored) to the subscribers of its channel, on every node, but the
    /// connections registered under one of `users` (the names
    /// [`crate::Connections`] knows them by) and `publish.exclude`.
    pub async fn publish_to_others(&self, publish: Publish, users: Vec<String>) -> Result<(), HubError> {
        let frame = LiveFrame::Ephemeral {
            exclude: publish.exclude.unwrap_or(0),
            time_ms: now_ms(),
            event: publish.event,
            user: publish.user_id,
            data: publish.data,
        };
        match &self.shared.cluster {
            Some(_) => cluster::deliver_to_others(&self.shared, &publish.channel, users, &frame).await?,
            None => deliver_to_others(&self.shared, &publish.channel, &users, &frame),
        }
        Ok(())
    }
}

/// Pushes an ephemeral `frame` to this node's subscribers of `channel`
/// but the connections of `users`.
pub(crate) fn deliver_to_others(shared: &Shared, channel: &ChannelName, users: &[String], frame: &LiveFrame) {
    let LiveFrame::Ephemeral { exclude, time_ms, event, user, data } = frame else { return };
    let Some(chan) = shared.registry.get(channel) else { return };
    let message =
        Message::Ephemeral { time_ms: *time_ms, event: event.as_deref(), data, user: user.as_ref() };
    let encoded = Encoded::new(channel, message).accepted_at(Stamp::from_unix_ms(*time_ms));
    let except = (*exclude != 0).then_some(*exclude);
    let cap = shared.options.catch_up_buffer;
    let result = chan.state.lock().fan_out_except_users(&encoded, except, users, cap);
    shared.count_fan_out(channel, result);
}
