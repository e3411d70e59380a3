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
            message: &refused.error.message,
            retry_after_ms: refused.error.retry_after_ms,
            data: refused.data,
        }
    }
}

impl ServerEvent for PublicationRejectedEvent<'_> {
    const KIND: ServerEventKind = ServerEventKind::Rejections;
}
