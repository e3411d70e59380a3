//! The [`CursorStore`] trait: how far each user has read each channel.
//!
//! The store keeps only the cursors; the server computes a channel's unread
//! count as its top offset (from the [`HistoryStore`](crate::HistoryStore))
//! minus the user's cursor, when both are in the same epoch.

use fanfare_protocol::{ChannelName, StreamPosition, UserId};

use crate::StoreError;

/// Most channels one [`CursorStore::cursors`] call may ask for. Enough for
/// the unread counts of a user's whole channel list in one call, little
/// enough that one call is one bounded round trip (one `HMGET` in Redis).
pub const MAX_CURSORS_PER_READ: usize = 1_000;

/// What a mark left in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkOutcome {
    /// The user's cursor in the channel after the mark: the mark itself if
    /// it moved the cursor, the stored cursor if it did not.
    pub cursor: StreamPosition,
    /// Whether the mark changed the stored cursor.
    pub moved: bool,
}

/// Read cursors: per (user, channel), the offset up to which the user has
/// read the channel, within the channel's epoch.
///
/// # Contract
///
/// - **Forward only.** [`mark_read`](Self::mark_read) with a position in the
///   stored cursor's epoch sets the cursor only if its offset is greater
///   than the stored one. A repeated or stale mark (same or lower offset)
///   changes nothing and answers the stored cursor with `moved: false`, so
///   marks that arrive out of order (two tabs, a retry) never move a cursor
///   back.
/// - **Another epoch replaces.** A mark in a different epoch than the stored
///   cursor's replaces it whatever its offset, with `moved: true`. Offsets
///   only compare within one epoch: after an epoch change (a lost stream,
///   a wiped store) the channel counts from 1 again and the old cursor
///   means nothing, so keeping a large old offset would hide every new
///   message as read. Callers mark with the channel's *current* epoch; a
///   mark carrying an older epoch than the channel's now is the caller's
///   to refuse before it reaches the store.
/// - **First mark.** A user with no cursor in the channel gets the mark,
///   with `moved: true` (offset 0 included).
/// - **Atomic per cursor.** Concurrent marks of one cursor behave as if
///   applied one at a time in some order: the cursor ends at the greatest
///   offset of the last epoch applied.
/// - **Reads.** [`cursor`](Self::cursor) is the stored cursor or `None`.
///   [`cursors`](Self::cursors) answers exactly one entry per channel asked,
///   in the order asked (a channel asked twice is answered twice), `None`
///   for channels without a cursor; it takes at most
///   [`MAX_CURSORS_PER_READ`] channels and fails with
///   [`StoreError::LimitExceeded`] beyond.
/// - **Forget.** [`forget_cursor`](Self::forget_cursor) removes the cursor
///   (when a member leaves or is removed) and says whether there was one;
///   the next mark starts afresh.
/// - **Independent.** Cursors of different users, and of one user in
///   different channels, never affect each other. User ids and channel
///   names are taken as opaque text: any character may appear in a user id.
/// - **Cheap.** A mark is one round trip (Redis) or one small write on the
///   caller's task (embedded): the server marks on every read receipt.
///   Durability is the store's usual one for small state: the embedded
///   store's marks reach the operating system before they are answered
///   (they survive a process crash, a power loss may take back the latest);
///   losing a cursor only shows messages as unread again.
#[async_trait::async_trait]
pub trait CursorStore: Send + Sync + 'static {
    /// Moves `user`'s cursor in `channel` to `read` if that is forward (or
    /// another epoch); answers the cursor now in force.
    async fn mark_read(
        &self,
        user: &UserId,
        channel: &ChannelName,
        read: StreamPosition,
    ) -> Result<MarkOutcome, StoreError>;

    /// `user`'s cursor in `channel`, if any.
    async fn cursor(
        &self,
        user: &UserId,
        channel: &ChannelName,
    ) -> Result<Option<StreamPosition>, StoreError>;

    /// `user`'s cursors in `channels` (at most [`MAX_CURSORS_PER_READ`]),
    /// one entry per channel in the order given.
    async fn cursors(
        &self,
        user: &UserId,
        channels: &[ChannelName],
    ) -> Result<Vec<Option<StreamPosition>>, StoreError>;

    /// Removes `user`'s cursor in `channel`; whether there was one.
    async fn forget_cursor(&self, user: &UserId, channel: &ChannelName) -> Result<bool, StoreError>;
}

/// Refuses a [`CursorStore::cursors`] call over [`MAX_CURSORS_PER_READ`].
pub(crate) fn check_cursors_asked(channels: &[ChannelName]) -> Result<(), StoreError> {
    match channels.len() > MAX_CURSORS_PER_READ {
        true => Err(StoreError::LimitExceeded { what: "cursors per read", limit: MAX_CURSORS_PER_READ }),
        false => Ok(()),
    }
}

/// The contract's rule for one mark against the stored cursor, for stores
/// that decide in Rust (Redis decides in its script, by the same rule).
pub(crate) fn apply_mark(stored: Option<&StreamPosition>, read: StreamPosition) -> MarkOutcome {
    match stored {
        Some(stored) if stored.epoch == read.epoch && stored.offset >= read.offset => {
            MarkOutcome { cursor: stored.clone(), moved: false }
        }
        _ => MarkOutcome { cursor: read, moved: true },
    }
}

#[cfg(test)]
mod tests {
    use fanfare_protocol::Epoch;

    use super::*;

    fn at(epoch: &str, offset: u64) -> StreamPosition {
        StreamPosition::new(Epoch::new(epoch), offset)
    }

    #[test]
    fn a_mark_moves_forward_only_within_an_epoch() {
        assert!(apply_mark(None, at("a", 0)).moved);
        assert!(apply_mark(Some(&at("a", 3)), at("a", 4)).moved);
        assert_eq!(
            apply_mark(Some(&at("a", 3)), at("a", 3)),
            MarkOutcome { cursor: at("a", 3), moved: false }
        );
        assert_eq!(apply_mark(Some(&at("a", 3)), at("a", 2)).cursor, at("a", 3));
        assert_eq!(
            apply_mark(Some(&at("a", 3)), at("b", 1)),
            MarkOutcome { cursor: at("b", 1), moved: true }
        );
    }
}
