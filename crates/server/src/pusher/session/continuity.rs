//! The session's part of continuity (`pusher/continuity.rs` says what a
//! resume point means): which subscriptions are tracked, the numbered
//! keepalive pings and the snapshot each carries, the save at an answered
//! ping and at a server close, the claim on subscribe, the forget on
//! unsubscribe.

use fanfare_protocol::pusher::PusherChannel;
use fanfare_protocol::websocket;
use fanfare_protocol::{ChannelName, CloseCode, Frame, StreamPosition, UserId};
use fanfare_store::ResumePoint;

use super::PusherSession;
use crate::gateway::closing::Closing;
use crate::pusher::continuity::Continuity;

/// A signed-in connection's continuity state; boxed in the session, since
/// most connections never sign in.
pub(super) struct Tracking {
    /// The user's key in the store: the app's hub user, so apps never share
    /// points.
    user: UserId,
    /// The number of the last keepalive ping sent.
    pings: u64,
    /// The last ping sent, not yet answered, and the positions queued
    /// before it.
    pending: Option<(u64, Vec<ResumePoint>)>,
}

impl Tracking {
    pub fn new(hub_user: &str) -> Box<Self> {
        Box::new(Self { user: UserId::new(hub_user), pings: 0, pending: None })
    }
}

/// Whether a channel's events are worth resuming: private (encrypted too)
/// and presence channels, whose events are stored and meant for
/// authorised users; a public channel's missed events are anyone's to
/// fetch, and `#server-to-user-` events are not stored.
pub(super) fn is_tracked_kind(channel: &PusherChannel) -> bool {
    channel.requires_auth()
}

/// A server close after which the client is expected back at once: what
/// the closed outbox holds is what it will have read.
fn is_close_to_come_back(closing: Closing) -> bool {
    matches!(closing, Closing::Server(reason)
        if matches!(reason.code, CloseCode::ShuttingDown | CloseCode::InsufficientState))
}

impl PusherSession {
    fn continuity(&self) -> Option<&Continuity> {
        self.app.pusher.continuity.as_ref()
    }

    /// The user a tracked subscription is saved for, when continuity is on
    /// and the connection signed in.
    pub(super) fn tracked_user(&self) -> Option<UserId> {
        self.continuity()?;
        self.tracking.as_ref().map(|tracking| tracking.user.clone())
    }

    /// Where a subscription of a tracked channel starts: the user's oldest
    /// point there, now this connection's.
    pub(super) async fn claim_resume_point(
        &self,
        channel: &PusherChannel,
        hub: &ChannelName,
    ) -> Option<StreamPosition> {
        if !is_tracked_kind(channel) {
            return None;
        }
        let user = self.tracked_user()?;
        self.continuity()?.claim(&user, hub, &self.socket_id).await
    }

    /// Signed in after subscribing: each private or presence channel that
    /// has been given nothing since it started recovers in place from the
    /// user's point (so the order in which pusher-js's two auth requests
    /// answer does not matter), and every one is tracked from now on.
    pub(super) async fn track_after_signin(&mut self) {
        let (Some(user), Some(continuity)) = (self.tracked_user(), self.app.pusher.continuity.as_ref())
        else {
            return;
        };
        let untracked: Vec<(String, ChannelName)> = self
            .channels
            .iter()
            .filter(|(name, sub)| {
                sub.tracked.is_none() && PusherChannel::new(name).is_ok_and(|c| is_tracked_kind(&c))
            })
            .map(|(name, sub)| (name.clone(), sub.hub.clone()))
            .collect();
        for (name, hub) in untracked {
            let mut epoch = None;
            if let Some(point) = continuity.claim(&user, &hub, &self.socket_id).await {
                epoch = self.app.hub.recover_in_place(self.conn, &hub, &point).await.ok().flatten();
                crate::pusher::continuity::count_resume(epoch.is_some());
            }
            if epoch.is_none() {
                epoch = self.app.hub.position(&hub).await.ok().map(|position| position.epoch);
            }
            if let Some(sub) = self.channels.get_mut(name.as_str()) {
                sub.tracked = epoch;
            }
        }
    }

    /// What every tracked subscription has had queued in the outbox so far.
    fn snapshot(&self) -> Vec<ResumePoint> {
        let tracked = self.channels.iter().filter_map(|(_, sub)| Some((sub, sub.tracked.as_ref()?)));
        tracked
            .filter_map(|(sub, epoch)| {
                let offset = self.app.hub.covered(self.conn, &sub.hub)?;
                let position = StreamPosition::new(epoch.clone(), offset);
                Some(ResumePoint { channel: sub.hub.clone(), position })
            })
            .collect()
    }

    /// A numbered ping carrying the snapshot, when anything is tracked.
    pub(super) fn continuity_ping(&mut self) -> Option<Frame> {
        self.continuity()?;
        self.tracking.as_ref()?;
        let points = self.snapshot();
        let tracking = self.tracking.as_mut()?;
        if points.is_empty() {
            tracking.pending = None;
            return None;
        }
        tracking.pings += 1;
        tracking.pending = Some((tracking.pings, points));
        Some(websocket::ping_frame_with(tracking.pings.to_string().as_bytes()))
    }

    /// The pong of the pending ping: the client has read its snapshot.
    pub(super) async fn continuity_pong(&mut self, payload: &[u8]) {
        let Some(tracking) = self.tracking.as_mut() else { return };
        let answers = |(number, _): &(u64, Vec<ResumePoint>)| number.to_string().as_bytes() == payload;
        if !tracking.pending.as_ref().is_some_and(answers) {
            return;
        }
        let Some((_, points)) = tracking.pending.take() else { return };
        let user = tracking.user.clone();
        if let Some(continuity) = self.continuity() {
            continuity.save(&user, &self.socket_id, &points, continuity.while_connected()).await;
        }
    }

    /// A server close that sends the client back: save exactly what it
    /// will have read (every other end keeps the last answered ping's).
    pub(super) async fn continuity_close(&mut self, closing: Closing) {
        if !is_close_to_come_back(closing) {
            return;
        }
        let (Some(user), Some(continuity)) = (self.tracked_user(), self.continuity()) else { return };
        let points = self.snapshot();
        continuity.save(&user, &self.socket_id, &points, continuity.at_close()).await;
    }

    /// A deliberate unsubscribe: the next subscription starts afresh.
    pub(super) async fn continuity_forget(&self, hub: &ChannelName) {
        let (Some(user), Some(continuity)) = (self.tracked_user(), self.continuity()) else { return };
        continuity.forget(&user, hub, &self.socket_id).await;
    }
}

#[cfg(test)]
mod tests {
    use fanfare_hub::CloseReason;

    use super::*;

    #[test]
    fn private_encrypted_and_presence_channels_are_tracked_public_and_user_ones_not() {
        let kind = |name: &str| is_tracked_kind(&PusherChannel::new(name).unwrap());
        assert!(kind("private-chat") && kind("private-encrypted-chat") && kind("presence-room"));
        assert!(kind("private-cache-chat"));
        assert!(!kind("news") && !kind("cache-news") && !kind("#server-to-user-1"));
    }

    #[test]
    fn only_a_drain_or_a_reconnect_close_is_exact() {
        let server = |code| Closing::Server(CloseReason::new(code));
        assert!(is_close_to_come_back(server(CloseCode::ShuttingDown)));
        assert!(is_close_to_come_back(server(CloseCode::InsufficientState)));
        assert!(!is_close_to_come_back(server(CloseCode::SlowConsumer)), "its outbox was dropped");
        assert!(!is_close_to_come_back(server(CloseCode::IdleTimeout)));
        assert!(!is_close_to_come_back(Closing::Client(Some(1000))));
        assert!(!is_close_to_come_back(Closing::Gone));
    }
}
