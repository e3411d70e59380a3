//! The hub's one error enum.

use fanfare_protocol::ErrorCode;
use fanfare_store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    #[error("this connection is already subscribed to the channel")]
    AlreadySubscribed,
    #[error("this connection is not subscribed to the channel")]
    NotSubscribed,
    #[error("presence is not enabled for this channel's namespace")]
    PresenceDisabled,
    #[error("history store: {0}")]
    Store(#[from] StoreError),
    /// A cluster engine (bus, presence, occupancy, registry) failed.
    #[error("cluster: {0}")]
    Cluster(#[from] fanfare_cluster::ClusterError),
    #[error("the hub is shutting down")]
    ShuttingDown,
    #[error("this channel's namespace takes no reactions")]
    ReactionsOff,
    #[error("a reaction is 1 to 32 bytes of text without control characters")]
    BadReaction,
    #[error("too many different reactions in this channel's window (at most 64); retry in the next")]
    TooManyReactionKinds,
}

impl HubError {
    /// The row of the error table a client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            HubError::AlreadySubscribed => ErrorCode::AlreadySubscribed,
            HubError::NotSubscribed => ErrorCode::NotSubscribed,
            HubError::PresenceDisabled => ErrorCode::NotAvailable,
            HubError::Store(StoreError::NothingToDelete | StoreError::NothingToEdit) => ErrorCode::NotFound,
            HubError::Store(StoreError::Unsupported { .. }) => ErrorCode::NotAvailable,
            HubError::Store(StoreError::LimitExceeded { .. } | StoreError::MemberChangeTooLarge { .. }) => {
                ErrorCode::BadRequest
            }
            HubError::Store(StoreError::TooManyMembers { .. }) => ErrorCode::TooManyMembers,
            HubError::Store(StoreError::TooManyChannels { .. }) => ErrorCode::TooManyMemberships,
            HubError::Store(_) | HubError::Cluster(_) => ErrorCode::Unavailable,
            HubError::ShuttingDown => ErrorCode::ShuttingDown,
            HubError::ReactionsOff => ErrorCode::NotAvailable,
            HubError::BadReaction => ErrorCode::BadRequest,
            HubError::TooManyReactionKinds => ErrorCode::RateLimited,
        }
    }
}
