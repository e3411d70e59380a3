//! Members channels (`docs/members.md`): who may read and write a
//! channel of a `subscribe = "members"` namespace, changes to its member
//! list, and the feed notices its publications send.
//!
//! - [`Members::may_read`] / [`Members::may_publish`]: checked once per
//!   subscribe, history or presence read and publication, after the
//!   namespace's permissions (`policy.rs`) and before the hub. A direct
//!   channel's members are the two users its name holds
//!   (`fanfare_protocol::direct`); any other channel's are in the store.
//! - `change.rs`: adding and removing members (the HTTP API, or a member
//!   with the `members` grant), each real change a `fanfare:members`
//!   publication in the channel.
//! - `feed.rs`: every message of a members channel of at most
//!   `members.feed_max_members` members, as a notice in each other
//!   member's feed; `offline.rs`: the members it reaches nowhere, as an
//!   `offline_members` webhook event.
//! - `read_state.rs`: read cursors and unread counts; `receipts.rs`: read
//!   receipts and delivery acknowledgements to the other members.

pub mod change;
pub mod feed;
pub mod offline;
pub mod read_state;
pub mod receipts;

use std::collections::HashSet;
use std::sync::Arc;

use fanfare_hub::HubError;
use fanfare_protocol::direct::direct_members;
use fanfare_protocol::{ChannelName, ErrorCode, ErrorInfo, UserId};
use fanfare_store::{MemberLimits, MemberStore, StoreError};
use parking_lot::Mutex;

use crate::config::{MemberSettings, NamespaceSettings, PublishPolicy, SubscribePolicy};
use crate::engines::ConversationStores;

/// The event of member-change publications.
pub const MEMBERS_EVENT: &str = "fanfare:members";

/// How many direct channels a node remembers having written to the store
/// (their members, for `channels_of`); past it the set starts over, and
/// each is written once more (adding members already there changes nothing).
const KNOWN_DIRECT: usize = 100_000;

/// Members channels' checks and stores; one per server.
pub struct Members {
    stores: ConversationStores,
    settings: MemberSettings,
    /// Direct channels whose members this node has put in the store.
    known_direct: Mutex<HashSet<ChannelName>>,
    /// The throttles of read receipts and delivery acknowledgements.
    receipts: Arc<receipts::Receipts>,
}

impl Members {
    pub fn new(stores: ConversationStores, settings: MemberSettings) -> Self {
        Self { stores, settings, known_direct: Mutex::new(HashSet::new()), receipts: Arc::default() }
    }

    pub fn store(&self) -> &Arc<dyn MemberStore> {
        &self.stores.members
    }

    pub fn stores(&self) -> &ConversationStores {
        &self.stores
    }

    pub fn receipts(&self) -> &Arc<receipts::Receipts> {
        &self.receipts
    }

    pub fn settings(&self) -> &MemberSettings {
        &self.settings
    }

    pub fn limits(&self) -> MemberLimits {
        MemberLimits {
            max_members: self.settings.max_members,
            max_channels: self.settings.max_channels_per_user,
        }
    }

    /// Whether `user` may subscribe to `channel`, read its history and
    /// presence: in a members namespace, a member.
    pub async fn may_read(
        &self,
        user: &str,
        channel: &ChannelName,
        namespace: &NamespaceSettings,
    ) -> Result<(), ErrorInfo> {
        if namespace.subscribe != SubscribePolicy::Members {
            return Ok(());
        }
        self.member_or_denied(user, channel).await
    }

    /// Whether `user` may publish in `channel`: in a namespace whose
    /// `publish` is `members`, a member.
    pub async fn may_publish(
        &self,
        user: &str,
        channel: &ChannelName,
        namespace: &NamespaceSettings,
    ) -> Result<(), ErrorInfo> {
        if namespace.publish != PublishPolicy::Members {
            return Ok(());
        }
        self.member_or_denied(user, channel).await
    }

    async fn member_or_denied(&self, user: &str, channel: &ChannelName) -> Result<(), ErrorInfo> {
        if !user.is_empty() && self.is_member(user, channel).await? {
            return Ok(());
        }
        Err(ErrorInfo::new(ErrorCode::PermissionDenied, "only the channel's members may do this"))
    }

    /// Whether `user` is a member of `channel` (`invalid_channel` for a
    /// `dm:` name that holds no two members).
    pub async fn is_member(&self, user: &str, channel: &ChannelName) -> Result<bool, ErrorInfo> {
        match direct_members(channel) {
            Some(pair) => Ok(direct_pair(channel, pair)?.contains(&user)),
            None => self.stores.members.is_member(channel, &UserId::new(user)).await.map_err(store_error),
        }
    }

    /// Refuses a `dm:` name that holds no two members, whoever uses it
    /// (the HTTP API too).
    pub fn check_name(&self, channel: &ChannelName) -> Result<(), ErrorInfo> {
        match direct_members(channel) {
            Some(pair) => direct_pair(channel, pair).map(drop),
            None => Ok(()),
        }
    }

    /// Puts a direct channel's two members in the store once, so that
    /// each lists it among their channels (unread counts, the feed).
    pub async fn remember_direct(&self, channel: &ChannelName) -> Result<(), ErrorInfo> {
        let Some(pair) = direct_members(channel) else { return Ok(()) };
        let [a, b] = direct_pair(channel, pair)?;
        if self.known_direct.lock().contains(channel) {
            return Ok(());
        }
        let users = [UserId::new(a), UserId::new(b)];
        self.stores.members.add_members(channel, &users, self.limits()).await.map_err(store_error)?;
        let mut known = self.known_direct.lock();
        if known.len() >= KNOWN_DIRECT {
            known.clear();
        }
        known.insert(channel.clone());
        Ok(())
    }
}

fn direct_pair<'a>(
    channel: &ChannelName,
    pair: Result<[&'a str; 2], fanfare_protocol::direct::DirectNameError>,
) -> Result<[&'a str; 2], ErrorInfo> {
    pair.map_err(|e| ErrorInfo::new(ErrorCode::InvalidChannel, format!("{channel}: {e}")))
}

/// A member store's error as clients see it: the limits are their own
/// rows; an engine failure is logged and `unavailable`.
pub(crate) fn store_error(error: StoreError) -> ErrorInfo {
    let error = HubError::Store(error);
    let code = error.code();
    if code == ErrorCode::Unavailable {
        tracing::warn!(%error, "member store error");
    }
    ErrorInfo::new(code, error.to_string())
}
