//! Continuity for stock Pusher clients: a signed-in user who loses a
//! connection and subscribes again within `pusher.continuity_window` gets
//! the private and presence events it missed, in order, before live ones
//! (`docs/pusher.md`, "Continuity").
//!
//! pusher-js knows no offsets, so the server keeps them, per (user,
//! channel), in the store's [`ResumePoints`] (shared by a cluster on
//! Redis). What a point means:
//! 1. While connected, each keepalive ping the session numbers and queues
//!    behind the frames already in its outbox carries a snapshot of what
//!    each tracked subscription had been given (`Hub::covered`); when its
//!    pong comes back the client has read all of it, and the snapshot is
//!    saved (one batched write per ping interval per connection). After an
//!    abrupt loss the server cannot know what arrived since: the next
//!    subscription replays from the last answered ping. Duplicates are
//!    possible, gaps are not.
//! 2. When the server closes the connection to have it come back (drain,
//!    `reconnect`), the outbox is closed first, so what it holds is exactly
//!    what the client gets before the close frame: that is saved before the
//!    close frame is sent, and the replay is exact.
//! 3. A subscription of the same user claims the oldest point of the
//!    channel (`ResumePoints::claim_resume_point`) and subscribes from it.
//!    Recovery refuses a point of another epoch, a gap past the namespace's
//!    recovery limit or one that history no longer holds: then it is a
//!    plain subscription, nothing is pretended.
//!
//! This file is the server-wide part (the store, the window, the clock);
//! the session's part is `session/continuity.rs`.

use std::sync::Arc;
use std::time::Duration;

use fanfare_protocol::{ChannelName, StreamPosition, UserId};
use fanfare_store::{ResumePoint, ResumePoints, StoreError, Validity};

use crate::config::Settings;

/// The longest a store call of continuity may take: it runs on the
/// connection's task (the outbox keeps being written meanwhile), and a
/// slow store must cost a replay, never a stuck connection.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The store and the window continuity works with; `None` in
/// [`crate::pusher::PusherState`] when the window is `0s`.
pub(crate) struct Continuity {
    points: Arc<dyn ResumePoints>,
    window: Duration,
    ping_interval: Duration,
}

impl Continuity {
    pub fn new(settings: &Settings, points: Arc<dyn ResumePoints>) -> Option<Self> {
        let window = settings.pusher.continuity_window;
        let ping_interval = settings.limits.ping_interval;
        (!window.is_zero()).then_some(Self { points, window, ping_interval })
    }

    /// A point saved at an answered ping: the loss it may precede happens
    /// at most a ping interval later (else the next ping would have been
    /// answered), so it lasts that much longer than the window.
    pub fn while_connected(&self) -> Validity {
        validity(self.window + self.ping_interval)
    }

    /// A point saved as the server closes the connection: the window
    /// starts now.
    pub fn at_close(&self) -> Validity {
        validity(self.window)
    }

    /// The oldest point `user` left in `channel`, now `holder`'s; `None`
    /// when there is none or the store failed (then: a plain subscription).
    pub async fn claim(&self, user: &UserId, channel: &ChannelName, holder: &str) -> Option<StreamPosition> {
        let claim = self.points.claim_resume_point(user, channel, holder, self.while_connected());
        answered("claim", tokio::time::timeout(STORE_TIMEOUT, claim).await).flatten()
    }

    pub async fn save(&self, user: &UserId, holder: &str, points: &[ResumePoint], validity: Validity) {
        if points.is_empty() {
            return;
        }
        let save = self.points.save_resume_points(user, holder, points, validity);
        if answered("save", tokio::time::timeout(STORE_TIMEOUT, save).await).is_some() {
            metrics::counter!("fanfare_pusher_continuity_points_saved_total").increment(points.len() as u64);
        }
    }

    /// A deliberate unsubscribe: that connection's point means nothing.
    pub async fn forget(&self, user: &UserId, channel: &ChannelName, holder: &str) {
        let forget = self.points.forget_resume_point(user, channel, holder);
        answered("forget", tokio::time::timeout(STORE_TIMEOUT, forget).await);
    }
}

/// Counts a resumed subscription: `recovered` when the missed events were
/// replayed, `unrecoverable` when recovery refused the point.
pub(crate) fn count_resume(recovered: bool) {
    let outcome = if recovered { "recovered" } else { "unrecoverable" };
    metrics::counter!("fanfare_pusher_continuity_resumes_total", "outcome" => outcome).increment(1);
}

fn validity(lasting: Duration) -> Validity {
    let now_ms = fanfare_store::unix_time_ms();
    Validity { now_ms, expires_at_ms: now_ms.saturating_add(lasting.as_millis() as u64) }
}

/// The store's answer, or `None` after a failure or a timeout (logged and
/// counted: continuity is best effort, the connection goes on).
fn answered<T>(
    operation: &'static str,
    result: Result<Result<T, StoreError>, tokio::time::error::Elapsed>,
) -> Option<T> {
    let error = match result {
        Ok(Ok(value)) => return Some(value),
        Ok(Err(error)) => error.to_string(),
        Err(_) => "timed out".to_owned(),
    };
    tracing::debug!(operation, error, "pusher continuity store call failed");
    metrics::counter!("fanfare_pusher_continuity_errors_total", "operation" => operation).increment(1);
    None
}
