//! Read receipts and delivery acknowledgements (`docs/members.md` §4):
//! "alice read up to 1042", "delivered to bob's device up to 1042", as
//! ephemeral pushes to the channel's subscribers but the user's own
//! connections, on every node.
//!
//! Throttled per user, channel and kind to one per the namespace's
//! `receipt_interval`: the first of a quiet spell goes at once; later ones
//! within the interval wait for its end, and only the newest position goes
//! then (a reader scrolling through 40 messages sends two receipts, not
//! 40). So the last position is never lost to the throttle, only delayed.
//!
//! Memory is bounded: an entry lives while its interval runs or a receipt
//! waits; past [`MAX_ENTRIES`] of them new receipts are dropped (counted in
//! `fanfare_receipts_dropped_total`) until some expire.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use fanfare_hub::{Hub, Publish};
use fanfare_protocol::{ChannelName, JsonData, StreamPosition};
use metrics::counter;
use parking_lot::Mutex;
use tokio::time::Instant;

/// The events of receipts.
pub const READ_EVENT: &str = "fanfare:read";
pub const DELIVERED_EVENT: &str = "fanfare:delivered";

/// Live entries at most.
pub const MAX_ENTRIES: usize = 100_000;

/// Which receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    Read,
    Delivered,
}

impl ReceiptKind {
    fn event(self) -> &'static str {
        match self {
            ReceiptKind::Read => READ_EVENT,
            ReceiptKind::Delivered => DELIVERED_EVENT,
        }
    }
}

type Key = (Arc<str>, ChannelName, ReceiptKind);

struct Slot {
    /// When the next receipt may go.
    next_at: Instant,
    /// The newest position waiting for `next_at`, if any (a task is
    /// sleeping until then to send it).
    waiting: Option<StreamPosition>,
}

/// One receipt to push.
pub struct Receipt {
    pub user: Arc<str>,
    pub channel: ChannelName,
    pub kind: ReceiptKind,
    pub position: StreamPosition,
    /// The names the user's own connections are known by (they are told
    /// nothing: they read it).
    pub own: Vec<String>,
}

/// Every user's receipts of this node.
#[derive(Default)]
pub struct Receipts {
    slots: Mutex<HashMap<Key, Slot>>,
}

impl Receipts {
    /// Sends `receipt` now, or when its throttle's interval ends.
    pub fn send(self: &Arc<Self>, hub: &Arc<Hub>, receipt: Receipt, interval: Duration) {
        let now = Instant::now();
        let key = (receipt.user.clone(), receipt.channel.clone(), receipt.kind);
        let mut slots = self.slots.lock();
        if slots.len() >= MAX_ENTRIES {
            slots.retain(|_, slot| slot.waiting.is_some() || slot.next_at > now);
        }
        let full = slots.len() >= MAX_ENTRIES;
        match slots.get_mut(&key) {
            Some(slot) if slot.next_at > now => {
                let first_waiting = slot.waiting.is_none();
                let newer = slot.waiting.as_ref().is_none_or(|waiting| newer(&receipt.position, waiting));
                if newer {
                    slot.waiting = Some(receipt.position.clone());
                }
                if first_waiting {
                    let at = slot.next_at;
                    drop(slots);
                    self.send_later(hub, key, receipt.own, at, interval);
                }
            }
            Some(slot) => {
                *slot = Slot { next_at: now + interval, waiting: None };
                drop(slots);
                push(hub.clone(), receipt);
            }
            None if full => counter!("fanfare_receipts_dropped_total").increment(1),
            None => {
                slots.insert(key, Slot { next_at: now + interval, waiting: None });
                drop(slots);
                push(hub.clone(), receipt);
            }
        }
    }

    /// At `at`, sends the newest waiting position of `key`'s slot and
    /// starts its next interval.
    fn send_later(
        self: &Arc<Self>,
        hub: &Arc<Hub>,
        key: Key,
        own: Vec<String>,
        at: Instant,
        interval: Duration,
    ) {
        let (receipts, hub): (Weak<Self>, Weak<Hub>) = (Arc::downgrade(self), Arc::downgrade(hub));
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let (Some(receipts), Some(hub)) = (receipts.upgrade(), hub.upgrade()) else { return };
            let position = {
                let mut slots = receipts.slots.lock();
                let Some(slot) = slots.get_mut(&key) else { return };
                slot.next_at = Instant::now() + interval;
                slot.waiting.take()
            };
            if let Some(position) = position {
                let (user, channel, kind) = key;
                push(hub, Receipt { user, channel, kind, position, own });
            }
        });
    }
}

/// Whether `a` is a newer position than `b` (another epoch counts as newer:
/// the channel was reset, and the reader is in the new one).
fn newer(a: &StreamPosition, b: &StreamPosition) -> bool {
    a.epoch != b.epoch || a.offset > b.offset
}

/// Pushes one receipt to every subscriber but the user's own connections.
fn push(hub: Arc<Hub>, receipt: Receipt) {
    let Receipt { user, channel, kind, position, own } = receipt;
    let data = JsonData::from_value(&serde_json::json!({
        "user": &*user,
        "epoch": position.epoch.as_str(),
        "offset": position.offset,
    }));
    let publish =
        Publish { event: Some(kind.event().to_owned()), ephemeral: true, ..Publish::new(channel, data) };
    tokio::spawn(async move {
        if let Err(error) = hub.publish_to_others(publish, own).await {
            tracing::warn!(%error, "pushing a receipt");
        }
    });
}

/// Tells `channel`'s other subscribers that `user` read (or received) it
/// up to `position`, throttled by the namespace's `receipt_interval`.
pub fn tell(
    app: &crate::server::AppState,
    user: &str,
    channel: &ChannelName,
    kind: ReceiptKind,
    position: StreamPosition,
) {
    let interval = app.settings.namespaces.resolve(channel).receipt_interval;
    let own = crate::moderation::shadow::own_connections(app, user);
    let receipt = Receipt { user: Arc::from(user), channel: channel.clone(), kind, position, own };
    app.members.receipts().send(&app.hub, receipt, interval);
}
