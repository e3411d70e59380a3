//! Feed notices: every message appended in a members channel of at most
//! `members.feed_max_members` members becomes a notice in each other
//! member's feed channel `feed:<user>` (`docs/members.md` §3), so that a
//! client holds one subscription for all its conversations.
//!
//! One task per node reads the hub's observed appends (`fanfare-hub`
//! `appends.rs`: this node's, in each channel's order) and submits the
//! notices of each to the feeds' pipelines in that order; so a feed's
//! notices of one channel are in the channel's order. The author's read
//! cursor moves to its own publication here too, and a direct channel's
//! members are put in the store the first time this node sees it.
//!
//! What a notice costs is one append per member: per member, not per
//! conversation. Messages only: member changes, deletes, edits and other
//! `fanfare:` events send none.

use std::sync::{Arc, Weak};

use fanfare_hub::{Hub, ObservedAppend, Publish, PublishReceipt};
use fanfare_protocol::direct::{direct_members, feed_channel};
use fanfare_protocol::{ChannelName, JsonData, StreamPosition, UserId};
use fanfare_store::PageAfter;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use metrics::counter;
use serde::Serialize;
use tokio::sync::mpsc;

use super::Members;
use crate::config::ServerEventKind;
use crate::webhooks::ServerWebhooks;

/// The event of feed notices.
pub const NOTICE_EVENT: &str = "fanfare:notice";
/// The observed-appends queue of a node.
pub const APPEND_QUEUE: usize = 65_536;
/// Notices submitted and not yet appended, at most; past it the task
/// waits for some before taking the next publication.
const IN_FLIGHT: usize = 4_096;

/// A notice's data.
#[derive(Serialize)]
struct Notice<'a> {
    channel: &'a ChannelName,
    epoch: &'a str,
    offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<String>,
}

/// Starts the node's feed task on the hub's observed appends. It holds
/// the hub weakly: once the server drops the hub, the appends end and so
/// does the task (and with it the stores it holds).
pub fn start(hub: &Arc<Hub>, members: Arc<Members>, webhooks: Arc<ServerWebhooks>) {
    let Some(appends) = hub.observe_appends(APPEND_QUEUE) else { return };
    let after = AfterAppend { members, webhooks };
    tokio::spawn(run(Arc::downgrade(hub), after, appends));
}

/// What the task needs besides the hub.
struct AfterAppend {
    members: Arc<Members>,
    webhooks: Arc<ServerWebhooks>,
}

async fn run(hub: Weak<Hub>, after: AfterAppend, mut appends: mpsc::Receiver<ObservedAppend>) {
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => count_notice(outcome),
            append = appends.recv(), if in_flight.len() < IN_FLIGHT => {
                let Some(append) = append else { break };
                let Some(hub) = hub.upgrade() else { break };
                for receipt in after_append(&hub, &after, append).await {
                    in_flight.push(receipt);
                }
            }
        }
    }
    while let Some(outcome) = in_flight.next().await {
        count_notice(outcome);
    }
}

fn count_notice(outcome: Result<fanfare_hub::Published, fanfare_hub::HubError>) {
    match outcome {
        Ok(_) => counter!("fanfare_feed_notices_total").increment(1),
        Err(error) => {
            counter!("fanfare_feed_notice_errors_total").increment(1);
            tracing::warn!(%error, "a feed notice was not appended");
        }
    }
}

/// What follows one message: the direct channel remembered, the author's
/// cursor moved, the offline members told, the notices submitted (their
/// receipts returned).
async fn after_append(hub: &Hub, after: &AfterAppend, append: ObservedAppend) -> Vec<PublishReceipt> {
    let members = &*after.members;
    let publication = &append.publication;
    if !publication.is_message() || publication.event.as_deref().is_some_and(|e| e.starts_with("fanfare:")) {
        return Vec::new();
    }
    if let Err(error) = members.remember_direct(&append.channel).await {
        tracing::warn!(error = %error.message, channel = %append.channel, "listing a direct channel's members");
    }
    if let Some(author) = &publication.author {
        let position = StreamPosition::new(append.epoch.clone(), publication.offset);
        if let Err(error) = members.stores().cursors.mark_read(author, &append.channel, position).await {
            tracing::warn!(%error, "moving an author's read cursor");
        }
    }
    let recipients = match recipients(members, &append).await {
        Ok(recipients) => recipients,
        Err(error) => {
            tracing::warn!(%error, channel = %append.channel, "reading members for feed notices");
            return Vec::new();
        }
    };
    if recipients.is_empty() {
        return Vec::new();
    }
    let preview = preview(&publication.data, members.settings().feed_preview_bytes);
    if after.webhooks.wants(ServerEventKind::Offline) {
        super::offline::tell(hub, &after.webhooks, &append, &recipients, preview.as_deref()).await;
    }
    let data = notice_data(&append, preview);
    let publishes = recipients
        .iter()
        .filter_map(|user| feed_channel(user.as_str()))
        .map(|feed| Publish { event: Some(NOTICE_EVENT.to_owned()), ..Publish::new(feed, data.clone()) })
        .collect();
    hub.submit_many(publishes).await
}

/// The members who get a notice: all but the author, if the channel has
/// at most `feed_max_members`.
async fn recipients(
    members: &Members,
    append: &ObservedAppend,
) -> Result<Vec<UserId>, fanfare_store::StoreError> {
    let most = members.settings().feed_max_members as usize;
    if most == 0 {
        return Ok(Vec::new());
    }
    let all: Vec<UserId> = match direct_members(&append.channel) {
        Some(Ok(pair)) => pair.map(UserId::new).into(),
        Some(Err(_)) => return Ok(Vec::new()),
        None => members.store().members(&append.channel, PageAfter::first(most + 1)).await?,
    };
    if all.len() > most {
        return Ok(Vec::new());
    }
    let author = append.publication.author.as_ref();
    Ok(all.into_iter().filter(|user| Some(user) != author).collect())
}

fn notice_data(append: &ObservedAppend, preview: Option<String>) -> JsonData {
    let publication = &append.publication;
    let notice = Notice {
        channel: &append.channel,
        epoch: append.epoch.as_str(),
        offset: publication.offset,
        event: publication.event.as_deref(),
        from: publication.author.as_ref().map(UserId::as_str),
        preview,
    };
    JsonData::parse(serde_json::to_string(&notice).expect("a notice serializes")).expect("a notice is JSON")
}

/// The text a notice previews: the data if it is a JSON string, else its
/// string field `text`; cut to `bytes` on a character boundary.
pub fn preview(data: &JsonData, bytes: usize) -> Option<String> {
    if bytes == 0 {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(data.as_str()).ok()?;
    let text = match &value {
        serde_json::Value::String(text) => text,
        serde_json::Value::Object(fields) => fields.get("text")?.as_str()?,
        _ => return None,
    };
    let mut end = text.len().min(bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(text: &str) -> JsonData {
        JsonData::parse(text.to_owned()).unwrap()
    }

    #[test]
    fn a_preview_is_the_text_cut_on_a_character_boundary() {
        assert_eq!(preview(&data(r#""hello""#), 140).as_deref(), Some("hello"));
        assert_eq!(preview(&data(r#"{"text":"hello","x":1}"#), 3).as_deref(), Some("hel"));
        assert_eq!(preview(&data(r#""héllo""#), 2).as_deref(), Some("h"));
        assert_eq!(preview(&data(r#"{"body":"hello"}"#), 140), None);
        assert_eq!(preview(&data("42"), 140), None);
        assert_eq!(preview(&data(r#""hello""#), 0), None);
    }
}
