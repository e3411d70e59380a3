//! The `offline_members` webhook event (`docs/members.md` §5): the
//! members of a channel who, when a message lands, have no connection
//! subscribed to it or to their feed, on any node — the hook for push
//! notifications. Run by the follow-up task of `feed.rs`, only while an
//! endpoint wants `offline` events.

use std::collections::HashSet;

use fanfare_hub::{Hub, ObservedAppend};
use fanfare_protocol::UserId;
use fanfare_protocol::direct::feed_channel;
use futures_util::future::join_all;

use crate::webhooks::ServerWebhooks;
use crate::webhooks::events::Offline;

/// The `offline_members` event of a message: the recipients with no
/// connection subscribed to the channel (the cluster's presence of it,
/// which the hub keeps for members channels while an offline webhook is
/// configured) nor to their feed (its subscriber count, cluster-wide).
/// Not knowing (an engine failed) counts as offline: a push notification
/// too many beats one missed.
pub(super) async fn tell(
    hub: &Hub,
    webhooks: &ServerWebhooks,
    append: &ObservedAppend,
    recipients: &[UserId],
    preview: Option<&str>,
) {
    let present: HashSet<String> = match hub.presence(&append.channel).await {
        Ok(present) => present.into_iter().map(|member| member.user.as_str().to_owned()).collect(),
        Err(error) => {
            tracing::warn!(%error, channel = %append.channel, "reading presence for the offline webhook");
            HashSet::new()
        }
    };
    let feeds = recipients.iter().map(|user| async move {
        let Some(feed) = feed_channel(user.as_str()) else { return false };
        hub.subscriber_count(&feed).await.is_ok_and(|count| count > 0)
    });
    let on_feed = join_all(feeds).await;
    let offline: Vec<UserId> = recipients
        .iter()
        .zip(on_feed)
        .filter(|(user, on_feed)| !on_feed && !present.contains(user.as_str()))
        .map(|(user, _)| user.clone())
        .collect();
    if offline.is_empty() {
        return;
    }
    let publication = &append.publication;
    webhooks.offline(Offline {
        channel: &append.channel,
        epoch: append.epoch.as_str(),
        offset: publication.offset,
        event: publication.event.as_deref(),
        from: publication.author.as_ref().map(UserId::as_str),
        users: &offline,
        preview,
    });
}
