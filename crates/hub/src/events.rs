//! Channel lifecycle events for whoever listens (webhooks): channels
//! becoming occupied or vacated, members joining or leaving, subscription
//! counts. Emitted without waiting into one bounded queue; when the
//! listener falls behind, events are dropped and counted, never allowed to
//! slow a subscribe or a fan-out.

use std::sync::OnceLock;

use fanfare_protocol::ChannelName;
use metrics::{Counter, counter};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// The channel got its first subscriber on this node.
    ChannelOccupied { channel: ChannelName },
    /// The channel's last subscriber on this node left.
    ChannelVacated { channel: ChannelName },
    /// A user's first connection joined the channel's presence.
    MemberAdded { channel: ChannelName, user: String },
    /// A user's last connection left the channel's presence.
    MemberRemoved { channel: ChannelName, user: String },
    /// The channel's subscriber count changed (only when asked for).
    SubscriptionCount { channel: ChannelName, count: usize },
    /// Another cluster node's lease expired and this node claimed it (and
    /// removed its members and subscriptions): whatever that node left to
    /// do, such as its pending webhooks, is this node's now. Never dropped
    /// for a full queue ([`EventSink::emit_surely`]).
    NodeGone { node: fanfare_cluster::NodeId },
}

pub(crate) struct EventSink {
    sender: OnceLock<(mpsc::Sender<HubEvent>, bool)>,
    dropped: Counter,
}

impl EventSink {
    pub fn new() -> Self {
        Self { sender: OnceLock::new(), dropped: counter!("fanfare_hub_events_dropped_total") }
    }

    /// The receiving end; only the first caller gets one.
    pub fn listen(&self, capacity: usize, with_counts: bool) -> Option<mpsc::Receiver<HubEvent>> {
        let (tx, rx) = mpsc::channel(capacity);
        self.sender.set((tx, with_counts)).ok().map(|()| rx)
    }

    /// Whether anyone listens (webhooks are configured).
    pub fn listening(&self) -> bool {
        self.sender.get().is_some()
    }

    /// Waits for room rather than drop the event: for the rare events that
    /// must reach the listener.
    pub async fn emit_surely(&self, event: HubEvent) {
        let Some((tx, _)) = self.sender.get() else { return };
        let _ = tx.send(event).await;
    }

    pub fn emit(&self, event: HubEvent) {
        let Some((tx, with_counts)) = self.sender.get() else { return };
        if matches!(event, HubEvent::SubscriptionCount { .. }) && !with_counts {
            return;
        }
        if tx.try_send(event).is_err() {
            self.dropped.increment(1);
        }
    }
}
