//! The [`ResumePoints`] trait: where a user who lost a connection resumes
//! each channel it was subscribed to.
//!
//! Pusher clients (pusher-js) know no offsets: after a reconnect they
//! subscribe again from "now". The server keeps, per (user, channel), the
//! position a new connection of the same user may recover from, so that the
//! events the user missed meanwhile are replayed without a client change
//! (`docs/pusher.md`, "Continuity"). The store keeps only the positions;
//! the server decides when to write them and what they mean.

use fanfare_protocol::{ChannelName, StreamPosition, UserId};

use crate::StoreError;

/// Most channels one [`ResumePoints::save_resume_points`] call may name:
/// one call is one bounded write (one script in Redis, one batch on disk).
pub const MAX_RESUME_POINTS_PER_SAVE: usize = 1_000;

/// A position to resume one channel from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    pub channel: ChannelName,
    pub position: StreamPosition,
}

/// How long a point is good for, and the clock it is read against (Unix
/// milliseconds, given by the caller so that every node of a cluster and
/// every test uses the same rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Now.
    pub now_ms: u64,
    /// Until when a point written now is answered (exclusive).
    pub expires_at_ms: u64,
}

/// Per (user, channel), the positions its connections ("holders", e.g. a
/// Pusher `socket_id`) last wrote, each with an expiry.
///
/// # Contract
///
/// - **Holders.** A (user, channel) pair holds at most one point per
///   holder. [`save_resume_points`](Self::save_resume_points) sets the
///   holder's point in every named channel to the given position and
///   expiry, replacing the holder's previous one whatever it was (a holder
///   writes the latest position it knows the client had; it is not
///   compared). Points of other holders are kept.
/// - **Expiry.** A point whose `expires_at_ms` is at or before the caller's
///   `now_ms` is never answered; saves and claims of a pair drop the
///   pair's expired points, and a store may drop them at any time after.
///   So a pair holds only as many points as it had holders within the
///   window.
/// - **Claim.** [`claim_resume_point`](Self::claim_resume_point) answers
///   the pair's unexpired point with the lowest offset (the oldest: with
///   several connections of one user, resuming from the oldest misses
///   nothing any of them missed), or `None`. The claimed point moves to the
///   claiming holder with the claim's expiry, atomically: two claims of
///   one pair never both take the same holder's point, and the claimer
///   holds a point from the first moment (a second loss before its first
///   save still resumes). Epochs are not compared: a point of an old epoch
///   is answered like any other and the caller's recovery refuses it.
/// - **Forget.** [`forget_resume_point`](Self::forget_resume_point) removes
///   the holder's point (a deliberate unsubscribe) and says whether there
///   was one.
/// - **Bounded.** A save names at most [`MAX_RESUME_POINTS_PER_SAVE`]
///   channels and fails with [`StoreError::LimitExceeded`] beyond, saving
///   nothing. An empty save changes nothing.
/// - **Independent.** Pairs never affect each other. User ids, channel
///   names and holders are opaque text: any character may appear in a user
///   id or a holder.
/// - **Cheap, and not precious.** A save is one round trip (Redis) or one
///   small write on the caller's task (embedded), reaching the operating
///   system before it is answered; losing points (a power loss, a Redis
///   flush) only means the next reconnect subscribes without a replay.
#[async_trait::async_trait]
pub trait ResumePoints: Send + Sync + 'static {
    /// Sets `holder`'s point in each of `points`' channels for `user`.
    async fn save_resume_points(
        &self,
        user: &UserId,
        holder: &str,
        points: &[ResumePoint],
        validity: Validity,
    ) -> Result<(), StoreError>;

    /// Takes `user`'s oldest unexpired point in `channel` for `holder`.
    async fn claim_resume_point(
        &self,
        user: &UserId,
        channel: &ChannelName,
        holder: &str,
        validity: Validity,
    ) -> Result<Option<StreamPosition>, StoreError>;

    /// Removes `holder`'s point of `user` in `channel`; whether there was one.
    async fn forget_resume_point(
        &self,
        user: &UserId,
        channel: &ChannelName,
        holder: &str,
    ) -> Result<bool, StoreError>;
}

/// Refuses a save of more than [`MAX_RESUME_POINTS_PER_SAVE`] channels.
pub(crate) fn check_save_size(points: &[ResumePoint]) -> Result<(), StoreError> {
    match points.len() > MAX_RESUME_POINTS_PER_SAVE {
        true => Err(StoreError::LimitExceeded {
            what: "resume points per save",
            limit: MAX_RESUME_POINTS_PER_SAVE,
        }),
        false => Ok(()),
    }
}

/// A stored point and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    pub position: StreamPosition,
    pub expires_at_ms: u64,
}

/// Which holder's point a claim takes among a pair's `held` points, for
/// stores that decide in Rust (Redis decides in its script, by the same
/// rule): the unexpired one with the lowest offset.
pub(crate) fn oldest_unexpired<'a, H: 'a>(
    held: impl IntoIterator<Item = (H, &'a Held)>,
    now_ms: u64,
) -> Option<(H, &'a Held)> {
    held.into_iter()
        .filter(|(_, held)| held.expires_at_ms > now_ms)
        .min_by_key(|(_, held)| held.position.offset)
}

#[cfg(test)]
mod tests {
    use fanfare_protocol::Epoch;

    use super::*;

    fn held(offset: u64, expires_at_ms: u64) -> Held {
        Held { position: StreamPosition::new(Epoch::new("e"), offset), expires_at_ms }
    }

    #[test]
    fn a_claim_takes_the_lowest_unexpired_offset() {
        let points = [("a", held(9, 100)), ("b", held(3, 50)), ("c", held(5, 101))];
        let picked = oldest_unexpired(points.iter().map(|(h, p)| (*h, p)), 50);
        assert_eq!(picked.map(|(holder, _)| holder), Some("c"), "b expired at 50");
        assert!(oldest_unexpired(points.iter().map(|(h, p)| (*h, p)), 200).is_none());
    }
}
