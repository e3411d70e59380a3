//! The events of the `[[webhooks]]` endpoints, as their JSON reads
//! (`docs/moderation.md`, "The moderation webhook", shows each byte for
//! byte). Each is encoded once, where it happens, and is sent, journaled
//! and kept in dead letters as that text.
//!
//! - `moderation_action`: a moderator's action that was carried out (from
//!   `moderation::act`, the one place every action runs): who (`actor`),
//!   what (the action's own request fields, as the native `moderate`
//!   command and `POST /api/moderation` take them), when, and what it did
//!   (`outcome`, the action's answer).
//! - `publication_rejected`: a publication a client sent that was refused
//!   by a ban, a mute, slow mode, a publish rate limit or the content
//!   rules: where, by whom, over which protocol, the code and message the
//!   client got, and the refused data.

use fanfare_protocol::native::moderation::ModerationAction;
use fanfare_protocol::{ChannelName, ErrorCode, ErrorInfo, JsonData};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{BatchEvent, event_id, now_ms};
use crate::config::ServerEventKind;
use crate::content::Rule;
use crate::moderation::ActionOutcome;

/// One event of a `[[webhooks]]` body, encoded when it happened.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct EncodedEvent(Box<RawValue>);

impl BatchEvent for EncodedEvent {}

impl EncodedEvent {
    pub fn encode(event: &impl Serialize) -> Option<Self> {
        match serde_json::value::to_raw_value(event) {
            Ok(raw) => Some(Self(raw)),
            Err(error) => {
                tracing::error!(%error, "cannot encode a webhook event");
                None
            }
        }
    }
}

/// A webhook event with the kind of `[[webhooks]].events` that wants it.
pub(crate) trait ServerEvent: Serialize {
    const KIND: ServerEventKind;
}

/// `moderation_action`.
#[derive(Serialize)]
pub(crate) struct ModerationActionEvent<'a> {
    name: &'static str,
    id: String,
    time_ms: u64,
    /// The cluster node that ran it; `null` on a single node.
    node: Option<&'a str>,
    /// `"api"` (the HTTP API key) or the moderator's user id.
    actor: &'a str,
    /// `action` and the action's other request fields.
    #[serde(flatten)]
    request: serde_json::Map<String, serde_json::Value>,
    outcome: &'a ActionOutcome,
}

impl<'a> ModerationActionEvent<'a> {
    pub fn new(
        node: Option<&'a str>,
        actor: &'a str,
        action: &ModerationAction,
        outcome: &'a ActionOutcome,
    ) -> Self {
        Self {
            name: "moderation_action",
            id: event_id(),
            time_ms: now_ms(),
            node,
            actor,
            request: action.to_fields(),
            outcome,
        }
    }
}

impl ServerEvent for ModerationActionEvent<'_> {
    const KIND: ServerEventKind = ServerEventKind::Moderation;
}

/// A refused publication, as the publish path knows it.
pub(crate) struct Refused<'a> {
    pub channel: &'a ChannelName,
    /// `None` for an anonymous connection.
    pub user: Option<&'a str>,
    /// `native` or `pusher`.
    pub protocol: &'static str,
    /// The Pusher event's name (`client-…`), or the native publication's
    /// `event`.
    pub event: Option<&'a str>,
    pub data: &'a JsonData,
    pub error: &'a ErrorInfo,
    /// The content rule that refused it (`content_rejected` only).
    pub rule: Option<Rule>,
}

/// The refusals that are events: the other codes (a bad channel, no
/// permission, too large) say nothing about the publisher's conduct.
pub(crate) fn is_reported(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Banned
            | ErrorCode::Muted
            | ErrorCode::SlowMode
            | ErrorCode::RateLimited
            | ErrorCode::ContentRejected
    )
}

/// `publication_rejected`.
#[derive(Serialize)]
pub(crate) struct PublicationRejectedEvent<'a> {
    name: &'static str,
    id: String,
    time_ms: u64,
    node: Option<&'a str>,
    channel: &'a ChannelName,
    user: Option<&'a str>,
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    code: &'static str,
    /// `blocklist`, `links`, `hook` or `hook_failure`, for `content_rejected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    data: &'a JsonData,
}

impl<'a> PublicationRejectedEvent<'a> {
    pub fn new(node: Option<&'a str>, refused: &Refused<'a>) -> Self {
        Self {
            name: "publication_rejected",
            id: event_id(),
            time_ms: now_ms(),
            node,
            channel: refused.channel,
            user: refused.user,
            protocol: refused.protocol,
            event: refused.event,
            code: refused.error.code.as_str(),
            rule: refused.rule.map(Rule::as_str),
            message: &refused.error.message,
            retry_after_ms: refused.error.retry_after_ms,
            data: refused.data,
        }
    }
}

impl ServerEvent for PublicationRejectedEvent<'_> {
    const KIND: ServerEventKind = ServerEventKind::Rejections;
}

/// `offline_members`: a message landed in a members channel and these
/// members had no connection subscribed to it or to their feed, on any
/// node (`docs/members.md` §6).
#[derive(Serialize)]
pub(crate) struct OfflineMembersEvent<'a> {
    name: &'static str,
    id: String,
    time_ms: u64,
    node: Option<&'a str>,
    channel: &'a ChannelName,
    epoch: &'a str,
    offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    users: &'a [fanfare_protocol::UserId],
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<&'a str>,
}

/// What an `offline_members` event says, as the feed task knows it.
pub(crate) struct Offline<'a> {
    pub channel: &'a ChannelName,
    pub epoch: &'a str,
    pub offset: u64,
    pub event: Option<&'a str>,
    pub from: Option<&'a str>,
    pub users: &'a [fanfare_protocol::UserId],
    pub preview: Option<&'a str>,
}

impl<'a> OfflineMembersEvent<'a> {
    pub fn new(node: Option<&'a str>, offline: &Offline<'a>) -> Self {
        Self {
            name: "offline_members",
            id: event_id(),
            time_ms: now_ms(),
            node,
            channel: offline.channel,
            epoch: offline.epoch,
            offset: offline.offset,
            event: offline.event,
            from: offline.from,
            users: offline.users,
            preview: offline.preview,
        }
    }
}

impl ServerEvent for OfflineMembersEvent<'_> {
    const KIND: ServerEventKind = ServerEventKind::Offline;
}

#[cfg(test)]
mod tests {
    use fanfare_cluster::{Sanction, SanctionKind, Scope};
    use fanfare_protocol::native::moderation::{ModerationTarget, SanctionAction};

    use super::*;

    const ID: &str = "9f0c1d2e-3b4a-4c5d-8e6f-708192a3b4c5";
    const TIME_MS: u64 = 1_767_225_600_000;

    fn channel() -> ChannelName {
        ChannelName::new("live:stage").unwrap()
    }

    /// The ban of `docs/moderation.md`'s example, as its event encodes.
    fn documented_ban() -> String {
        let action = ModerationAction::Impose {
            kind: SanctionAction::Ban,
            user: "bob".into(),
            target: ModerationTarget::Channel(channel()),
            duration_ms: Some(600_000),
            reason: Some("spam".into()),
        };
        let outcome = ActionOutcome {
            sanction: Some(Sanction {
                kind: SanctionKind::Ban,
                user: "bob".into(),
                scope: Scope::Channel(channel()),
                at_ms: TIME_MS,
                until_ms: Some(TIME_MS + 600_000),
                by: "mod-1".into(),
                reason: Some("spam".into()),
            }),
            closed: Some(2),
            ..ActionOutcome::default()
        };
        let mut event = ModerationActionEvent::new(Some("node-a"), "mod-1", &action, &outcome);
        (event.id, event.time_ms) = (ID.to_owned(), TIME_MS);
        serde_json::to_string(&event).unwrap()
    }

    /// The slow-mode refusal of `docs/moderation.md`'s example.
    fn documented_rejection() -> String {
        let data = JsonData::parse(r#"{"text":"first!!"}"#.to_owned()).unwrap();
        let error = ErrorInfo::new(
            ErrorCode::SlowMode,
            "slow mode: one publication per 30s per user in this channel",
        )
        .retry_after(std::time::Duration::from_millis(29_500));
        let refused = Refused {
            channel: &channel(),
            user: Some("ann"),
            protocol: "native",
            event: None,
            data: &data,
            error: &error,
            rule: None,
        };
        let mut event = PublicationRejectedEvent::new(Some("node-a"), &refused);
        (event.id, event.time_ms) = (ID.to_owned(), TIME_MS);
        serde_json::to_string(&event).unwrap()
    }

    #[test]
    fn the_documented_events_are_what_the_server_sends() {
        let docs = include_str!("../../../../docs/moderation.md");
        for event in [documented_rejection(), documented_ban()] {
            assert!(docs.contains(&event), "docs/moderation.md does not show, byte for byte:\n{event}");
        }
    }

    #[test]
    fn only_refusals_for_conduct_are_reported() {
        for code in [ErrorCode::Banned, ErrorCode::Muted, ErrorCode::SlowMode, ErrorCode::RateLimited] {
            assert!(is_reported(code), "{code:?}");
        }
        assert!(is_reported(ErrorCode::ContentRejected));
        assert!(!is_reported(ErrorCode::PermissionDenied));
        assert!(!is_reported(ErrorCode::BadRequest));
    }
}
