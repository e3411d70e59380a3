//! The store's one error enum.

use std::sync::Arc;

/// What can go wrong in a history store.
///
/// `Clone` because one failed group commit fails every receipt of its batch
/// with the same error; the engine's error is therefore kept behind an `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store is shut down or its writer is gone.
    #[error("the history store is closed")]
    Closed,
    /// The storage engine failed (disk error, failed fsync, engine poisoned
    /// by an earlier failure). The engine's own error is the source.
    #[error("the {backend} history storage failed")]
    Storage {
        /// Which implementation failed: `"embedded"`, `"redis"`, …
        backend: &'static str,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The storage engine cannot be reached now (a lost connection, a server
    /// restarting or loading); the store reconnects by itself, so a retry
    /// later may succeed.
    ///
    /// When `maybe_applied` is true the request reached the engine before
    /// the connection failed: the append may have been applied (and
    /// published) even though it failed here, so it may hold an offset. A
    /// publisher that must not publish twice retries with an idempotency
    /// key. When false, nothing was sent and nothing was applied.
    #[error("the {backend} history storage is unavailable{}", if *.maybe_applied { " (the append may have been applied)" } else { "" })]
    Unavailable {
        backend: &'static str,
        maybe_applied: bool,
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// A stored record could not be decoded.
    #[error("stored record {key} in {keyspace} is corrupt: {reason}")]
    Corrupt {
        /// Where the record lives (a keyspace, a table, a stream).
        keyspace: &'static str,
        /// The record's key, printable (`chat:x@42`, `chat:x`).
        key: String,
        reason: &'static str,
    },
    /// A delete found nothing to delete (see `HistoryStore`, "Deletes"):
    /// nothing was appended.
    #[error("nothing to delete")]
    NothingToDelete,
    /// An edit found no message to edit (see `HistoryStore`, "Edits"):
    /// nothing was appended.
    #[error("nothing to edit")]
    NothingToEdit,
    /// This store cannot do what was asked (yet).
    #[error("the {backend} history store does not support {operation}")]
    Unsupported { backend: &'static str, operation: &'static str },
    /// A request asked for more than the store takes in one call (e.g. over
    /// `MAX_CURSORS_PER_READ` cursors); nothing was done. A caller's bug or
    /// a client asking too much: split the request.
    #[error("too many {what} in one request (at most {limit})")]
    LimitExceeded { what: &'static str, limit: usize },
    /// A member add would leave `channel` with more than `max` members
    /// (`MemberLimits::max_members`): nothing was added.
    #[error("channel {channel} would have more than {max} members")]
    TooManyMembers { channel: fanfare_protocol::ChannelName, max: u64 },
    /// A member add would leave `user` in more than `max` channels
    /// (`MemberLimits::max_channels`): nothing was added.
    #[error("user {user} would be a member of more than {max} channels")]
    TooManyChannels { user: fanfare_protocol::UserId, max: u64 },
    /// One member change named `count` users, more than `max`
    /// (`MAX_MEMBER_CHANGE`): nothing changed.
    #[error("a member change names {count} users, at most {max} are allowed")]
    MemberChangeTooLarge { count: usize, max: usize },
    /// The store's options are not valid.
    #[error("invalid history store option `{option}`: {reason}")]
    Config { option: &'static str, reason: &'static str },
}

impl StoreError {
    /// Wraps an engine error of the named backend.
    pub fn storage(backend: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Storage { backend, source: Arc::new(source) }
    }

    /// The named backend is unreachable; see [`StoreError::Unavailable`].
    pub fn unavailable(
        backend: &'static str,
        maybe_applied: bool,
        source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Unavailable { backend, maybe_applied, source }
    }
}
