//! Adding and removing a members channel's members: by the HTTP API, or
//! by a member whose token's `members` claim grants the channel where the
//! namespace's `manage_members` is `"grant"`.
//!
//! Each call that changes something appends one publication to the
//! channel, event `fanfare:members`, data `{"added":[…]}` or
//! `{"removed":[…]}`: members learn of it in order with the messages, and
//! a recovering client replays it. A removed user's connections are then
//! closed with 4507 on every node: its clients reconnect and resume their
//! other subscriptions; this channel refuses them (`permission_denied`).
//! Its read cursor in the channel is forgotten.

use fanfare_hub::{Hub, Publish};
use fanfare_protocol::{ChannelName, CloseCode, ErrorCode, ErrorInfo, JsonData, UserId};
use fanfare_store::PageAfter;
use serde::Serialize;

use super::{MEMBERS_EVENT, Members, store_error};
use crate::auth::Identity;
use crate::config::{ManageMembers, NamespaceSettings, SubscribePolicy};
use crate::policy::hub_error;

/// The largest page of a member listing.
pub const MAX_LIST: usize = fanfare_store::MAX_MEMBER_PAGE;
/// A listing's page when the request names no `limit`.
pub const DEFAULT_LIST: usize = 100;

/// What a change did: the users it really added or removed, and the
/// channel's member count after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeOutcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<Vec<UserId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<UserId>>,
    pub count: u64,
}

/// One page of a channel's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberPage {
    pub members: Vec<UserId>,
    pub count: u64,
    /// The last member of a full page: the `after` of the next one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<UserId>,
}

/// A change asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Remove,
}

impl Members {
    /// Whether `identity` may change `channel`'s members over a connection.
    pub fn may_manage(
        &self,
        identity: &Identity,
        channel: &ChannelName,
        namespace: &NamespaceSettings,
    ) -> Result<(), ErrorInfo> {
        let granted = identity.manages_members(channel);
        match namespace.manage_members {
            ManageMembers::Grant if granted => Ok(()),
            ManageMembers::Grant => Err(denied("the token does not grant managing this channel's members")),
            ManageMembers::Server => Err(denied("only the server manages this namespace's members")),
        }
    }

    /// Adds or removes `users` (at most 1,000), then tells the channel.
    pub async fn change(
        &self,
        hub: &Hub,
        channel: &ChannelName,
        namespace: &NamespaceSettings,
        change: Change,
        users: &[UserId],
    ) -> Result<ChangeOutcome, ErrorInfo> {
        self.changeable(channel, namespace)?;
        let store = self.store();
        let changed = match change {
            Change::Add => store.add_members(channel, users, self.limits()).await,
            Change::Remove => store.remove_members(channel, users).await,
        };
        let changed = changed.map_err(store_error)?;
        if !changed.is_empty() {
            announce(hub, channel, change, &changed).await?;
        }
        if change == Change::Remove {
            for user in &changed {
                // A removed member's read state goes with the membership.
                if let Err(error) = self.stores().cursors.forget_cursor(user, channel).await {
                    tracing::warn!(%error, user = user.as_str(), "forgetting a removed member's read cursor");
                }
                close_removed(hub, user).await;
            }
        }
        let count = store.member_count(channel).await.map_err(store_error)?;
        Ok(match change {
            Change::Add => ChangeOutcome { added: Some(changed), removed: None, count },
            Change::Remove => ChangeOutcome { added: None, removed: Some(changed), count },
        })
    }

    /// One page of `channel`'s members, bytewise after `after`.
    pub async fn list(
        &self,
        channel: &ChannelName,
        namespace: &NamespaceSettings,
        after: Option<&UserId>,
        limit: Option<usize>,
    ) -> Result<MemberPage, ErrorInfo> {
        members_namespace(namespace)?;
        let limit = limit.unwrap_or(DEFAULT_LIST).clamp(1, MAX_LIST);
        if let Some(pair) = fanfare_protocol::direct::direct_members(channel) {
            let pair = super::direct_pair(channel, pair)?;
            let members: Vec<UserId> = pair
                .into_iter()
                .filter(|user| after.is_none_or(|after| *user > after.as_str()))
                .take(limit)
                .map(UserId::new)
                .collect();
            return Ok(MemberPage { members, count: 2, next: None });
        }
        let store = self.store();
        let page = PageAfter { after, limit };
        let members = store.members(channel, page).await.map_err(store_error)?;
        let count = store.member_count(channel).await.map_err(store_error)?;
        let next = (members.len() == limit).then(|| members.last().cloned()).flatten();
        Ok(MemberPage { members, count, next })
    }

    fn changeable(&self, channel: &ChannelName, namespace: &NamespaceSettings) -> Result<(), ErrorInfo> {
        members_namespace(namespace)?;
        if fanfare_protocol::direct::direct_members(channel).is_some() {
            return Err(ErrorInfo::new(
                ErrorCode::BadRequest,
                "a direct channel's members are the two users its name holds: they cannot change",
            ));
        }
        Ok(())
    }
}

fn members_namespace(namespace: &NamespaceSettings) -> Result<(), ErrorInfo> {
    match namespace.subscribe {
        SubscribePolicy::Members => Ok(()),
        _ => Err(ErrorInfo::new(
            ErrorCode::NotAvailable,
            "this channel's namespace has no members (subscribe = \"members\" turns them on)",
        )),
    }
}

/// The member-change publication: the server's, in the priority lane of
/// a shaped namespace.
async fn announce(
    hub: &Hub,
    channel: &ChannelName,
    change: Change,
    users: &[UserId],
) -> Result<(), ErrorInfo> {
    let key = match change {
        Change::Add => "added",
        Change::Remove => "removed",
    };
    let data = JsonData::from_value(&serde_json::json!({ key: users }));
    let publish = Publish {
        event: Some(MEMBERS_EVENT.to_owned()),
        priority: true,
        ..Publish::new(channel.clone(), data)
    };
    hub.publish(publish).await.map(drop).map_err(hub_error)
}

/// Closes a removed member's connections on every node; a node that does
/// not answer keeps them open until their next subscribe or publish in the
/// channel is refused.
async fn close_removed(hub: &Hub, user: &UserId) {
    if let Err(error) = hub.close_user(user.as_str(), CloseCode::RemovedMember).await {
        tracing::warn!(%error, user = user.as_str(), "closing a removed member's connections");
    }
}

fn denied(message: &str) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::PermissionDenied, message)
}
