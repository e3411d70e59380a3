//! The native protocol, version 1 (`docs/protocol.md`).
//!
//! JSON text frames. A client sends commands, each with a numeric `id` and a
//! `type`; the server answers each with a reply carrying the same `id` and
//! either `result` or `error`. Server pushes (publications, join, leave,
//! disconnect advice) carry a `type` and no `id`.
//!
//! Decoding goes through one flat struct with every field optional, then
//! into a typed [`Command`]: serde cannot keep a raw JSON payload inside an
//! internally tagged enum, and one pass over the frame is all we want.

use self::conversation::{ChannelPosition, MembersCommand, UnreadQuery};
use self::moderation::{ModerationAction, ModerationRequest};
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    ChannelName, CloseCode, Epoch, ErrorCode, ErrorInfo, Frame, JsonData, Publication, StreamPosition, UserId,
};

/// A decoded client command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub id: u64,
    pub body: CommandBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandBody {
    Connect {
        token: Option<String>,
    },
    Subscribe {
        channel: ChannelName,
        since: Option<StreamPosition>,
    },
    Unsubscribe {
        channel: ChannelName,
    },
    Publish {
        channel: ChannelName,
        event: Option<String>,
        data: JsonData,
        idempotency_key: Option<String>,
        ephemeral: bool,
    },
    History {
        channel: ChannelName,
        query: HistoryParams,
    },
    Presence {
        channel: ChannelName,
    },
    /// A moderator's action ([`moderation`]).
    Moderate(ModerationAction),
    /// A reaction (an emoji) in a shaped namespace's channel: counted, and
    /// pushed with the others of its window as one aggregate.
    React {
        channel: ChannelName,
        reaction: String,
    },
    /// A members channel's member list: read a page, add, remove.
    Members(MembersCommand),
    /// The user has read the channel up to this position.
    Read(ChannelPosition),
    /// This device received the channel's publications up to this position.
    Delivered(ChannelPosition),
    /// The user's channels with their unread counts, a page at a time.
    Unread(UnreadQuery),
    /// An edit of the publication at `offset` by its author or a moderator:
    /// appended as an update record carrying `data`.
    Edit {
        channel: ChannelName,
        offset: u64,
        data: JsonData,
    },
    /// A delete of the publication at `offset` by its author or a
    /// moderator: appended as a delete record.
    Delete {
        channel: ChannelName,
        offset: u64,
    },
    /// The user is typing in `channel`: an ephemeral push to the other
    /// subscribers, throttled per user and channel.
    Typing {
        channel: ChannelName,
    },
    Ping,
}

impl CommandBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            CommandBody::Connect { .. } => "connect",
            CommandBody::Subscribe { .. } => "subscribe",
            CommandBody::Unsubscribe { .. } => "unsubscribe",
            CommandBody::Publish { .. } => "publish",
            CommandBody::History { .. } => "history",
            CommandBody::Presence { .. } => "presence",
            CommandBody::Moderate(_) => "moderate",
            CommandBody::React { .. } => "react",
            CommandBody::Members(_) => "members",
            CommandBody::Read(_) => "read",
            CommandBody::Delivered(_) => "delivered",
            CommandBody::Unread(_) => "unread",
            CommandBody::Edit { .. } => "edit",
            CommandBody::Delete { .. } => "delete",
            CommandBody::Typing { .. } => "typing",
            CommandBody::Ping => "ping",
        }
    }
}

/// Parameters of a history read: `since` is exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default)]
    pub reverse: bool,
}

/// A frame that could not be turned into a command. With an `id` the
/// server answers with an error reply; without one it closes the
/// connection with [`CloseCode::BadFrame`].
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub id: Option<u64>,
    pub error: ErrorInfo,
}

#[derive(Deserialize)]
struct RawCommand<'a> {
    id: Option<u64>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow)]
    since: Option<&'a RawValue>,
    data: Option<JsonData>,
    event: Option<String>,
    token: Option<String>,
    idempotency_key: Option<String>,
    ephemeral: Option<bool>,
    limit: Option<usize>,
    reverse: Option<bool>,
    reaction: Option<String>,
    offset: Option<u64>,
}

impl Command {
    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<Command, DecodeError> {
        // serde also reads a struct from a JSON array, field by field: `[7]`
        // would get a reply with id 7, and an array of every field in order
        // would run. A command is an object, and anything else is a bad frame.
        if !text.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('{') {
            return Err(DecodeError { id: None, error: bad("a command must be a JSON object") });
        }
        let raw: RawCommand<'_> = serde_json::from_str(text).map_err(|e| DecodeError {
            id: id_of_unparsable(text),
            error: ErrorInfo::new(ErrorCode::BadRequest, format!("not a valid command: {e}")),
        })?;
        let id = raw.id.ok_or_else(|| DecodeError {
            id: None,
            error: ErrorInfo::new(ErrorCode::BadRequest, "command has no numeric \"id\""),
        })?;
        let fail = |error: ErrorInfo| DecodeError { id: Some(id), error };
        if raw.kind.as_deref() == Some("moderate") {
            return moderation_body(text).map(|body| Command { id, body }).map_err(fail);
        }
        if let Some(kind) = raw.kind.as_deref().filter(|kind| CONVERSATION_COMMANDS.contains(kind)) {
            return conversation_body(kind, text).map(|body| Command { id, body }).map_err(fail);
        }
        let body = raw.into_body().map_err(fail)?;
        Ok(Command { id, body })
    }
}

/// The body of a `moderate` command: the frame without `id` and `type`,
/// read as a [`ModerationRequest`].
fn moderation_body(text: &str) -> Result<CommandBody, ErrorInfo> {
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| bad(&format!("not a valid command: {e}")))?;
    fields.remove("id");
    fields.remove("type");
    let request: ModerationRequest = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| bad(&format!("not a valid moderate command: {e}")))?;
    request.into_action().map(CommandBody::Moderate)
}

/// The commands read whole from their frame (`native/conversation.rs`).
const CONVERSATION_COMMANDS: [&str; 4] = ["members", "read", "delivered", "unread"];

/// The body of a conversation command: the frame without `id` and `type`.
fn conversation_body(kind: &str, text: &str) -> Result<CommandBody, ErrorInfo> {
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| bad(&format!("not a valid command: {e}")))?;
    fields.remove("id");
    fields.remove("type");
    let fields = serde_json::Value::Object(fields);
    Ok(match kind {
        "members" => CommandBody::Members(MembersCommand::from_fields(fields)?),
        "read" => CommandBody::Read(ChannelPosition::from_fields(kind, fields)?),
        "delivered" => CommandBody::Delivered(ChannelPosition::from_fields(kind, fields)?),
        _ => CommandBody::Unread(UnreadQuery::from_fields(fields)?),
    })
}

/// Best effort to find an `id` in a frame that failed to decode as a
/// command, so the error can still be a reply.
fn id_of_unparsable(text: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: u64,
    }
    serde_json::from_str::<IdOnly>(text).ok().map(|x| x.id)
}

impl RawCommand<'_> {
    fn into_body(self) -> Result<CommandBody, ErrorInfo> {
        let kind = self.kind.as_deref().ok_or_else(|| bad("command has no \"type\""))?;
        Ok(match kind {
            "connect" => CommandBody::Connect { token: self.token },
            "subscribe" => {
                let since = match self.since {
                    Some(raw) => Some(parse_position(raw)?),
                    None => None,
                };
                CommandBody::Subscribe { channel: channel(&self.channel)?, since }
            }
            "unsubscribe" => CommandBody::Unsubscribe { channel: channel(&self.channel)? },
            "publish" => CommandBody::Publish {
                channel: channel(&self.channel)?,
                event: self.event,
                data: self.data.ok_or_else(|| bad("publish needs \"data\""))?,
                idempotency_key: self.idempotency_key,
                ephemeral: self.ephemeral.unwrap_or(false),
            },
            "history" => {
                let since = match self.since {
                    Some(raw) => Some(
                        serde_json::from_str::<u64>(raw.get())
                            .map_err(|_| bad("history \"since\" must be an offset (a number)"))?,
                    ),
                    None => None,
                };
                let query =
                    HistoryParams { since, limit: self.limit, reverse: self.reverse.unwrap_or(false) };
                CommandBody::History { channel: channel(&self.channel)?, query }
            }
            "presence" => CommandBody::Presence { channel: channel(&self.channel)? },
            "react" => CommandBody::React {
                channel: channel(&self.channel)?,
                reaction: self.reaction.ok_or_else(|| bad("react needs \"reaction\""))?,
            },
            "edit" => CommandBody::Edit {
                channel: channel(&self.channel)?,
                offset: self.offset.ok_or_else(|| bad("edit needs \"offset\""))?,
                data: self.data.ok_or_else(|| bad("edit needs \"data\""))?,
            },
            "delete" => CommandBody::Delete {
                channel: channel(&self.channel)?,
                offset: self.offset.ok_or_else(|| bad("delete needs \"offset\""))?,
            },
            "typing" => CommandBody::Typing { channel: channel(&self.channel)? },
            "ping" => CommandBody::Ping,
            other => {
                return Err(ErrorInfo::new(
                    ErrorCode::UnknownCommand,
                    format!("unknown command type {other:?}"),
                ));
            }
        })
    }
}

fn bad(message: &str) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::BadRequest, message)
}

fn channel(name: &Option<Cow<'_, str>>) -> Result<ChannelName, ErrorInfo> {
    let name = name.as_deref().ok_or_else(|| bad("command needs \"channel\""))?;
    ChannelName::new(name).map_err(|e| ErrorInfo::new(ErrorCode::InvalidChannel, e.to_string()))
}

fn parse_position(raw: &RawValue) -> Result<StreamPosition, ErrorInfo> {
    serde_json::from_str(raw.get())
        .map_err(|_| bad("subscribe \"since\" must be {\"epoch\": string, \"offset\": number}"))
}

// ---------------------------------------------------------------------------
// Server → client

/// Result of `connect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectResult {
    /// This connection's id, unique within the server.
    pub client: String,
    /// The user id from the token's `sub`, or `""` when anonymous.
    pub user: String,
    pub version: String,
    /// The server pings at this interval; a client that hears nothing for
    /// about twice as long should assume the connection is dead.
    pub ping_interval_ms: u64,
}

/// Result of `subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeResult {
    pub epoch: Epoch,
    /// The channel's current offset (0 if it never had a publication).
    /// With `recovered: true` the publications after the client's `since`
    /// up to this offset follow first; then live ones.
    pub offset: u64,
    /// Present when the subscribe carried `since`: whether every publication
    /// after it follows (true), or the client must reload (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
}

/// Result of `publish` (and of the HTTP `POST /api/publish`). Empty for an
/// ephemeral publication.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublishResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// Result of `history` (and of `GET /api/history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryResult {
    pub epoch: Epoch,
    pub top_offset: u64,
    pub publications: Vec<Publication>,
}

/// Result of `edit` and of `delete` (`deleted` is empty for an edit): the
/// update or delete record's position, and for a delete the offsets it
/// tombstoned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordResult {
    pub epoch: Epoch,
    pub offset: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<u64>,
}

/// One member in a presence answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Always a JSON string on the native protocol, whatever form a Pusher
    /// client joined with.
    pub user: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<JsonData>,
}

/// Result of `presence` (and of `GET /api/presence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceResult {
    pub members: Vec<Member>,
}

#[derive(Serialize)]
struct OkReply<'a, T: Serialize> {
    id: u64,
    result: &'a T,
}

#[derive(Serialize)]
struct ErrReply<'a> {
    id: u64,
    error: &'a ErrorInfo,
}

/// Encodes a successful reply.
pub fn encode_reply<T: Serialize>(id: u64, result: &T) -> Frame {
    encode(&OkReply { id, result })
}

/// Encodes an error reply.
pub fn encode_error(id: u64, error: &ErrorInfo) -> Frame {
    encode(&ErrReply { id, error })
}

#[derive(Serialize)]
struct PublicationPush<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    channel: &'a ChannelName,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a Epoch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    time: u64,
    /// In a shaped namespace: publications sampled out just before this
    /// one, for this subscription (never 0 on the wire).
    #[serde(skip_serializing_if = "is_zero")]
    skipped: u64,
    /// A publication of a shaped namespace's priority lane.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    priority: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    /// An update record's target: the offset whose data `data` replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    updates: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a JsonData>,
    /// A message replayed with its newest data (recovery after an edit).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    edited: bool,
    /// A delete record's deleted offsets (then no `event`, no `data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    deletes: Option<&'a [u64]>,
    /// A tombstone, replayed in recovery (then no `event`, no `data`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Encodes a stored publication push: done once per publication, shared by
/// every subscriber.
pub fn encode_publication(channel: &ChannelName, epoch: &Epoch, publication: &Publication) -> Frame {
    encode_shaped_publication(channel, epoch, publication, 0)
}

/// [`encode_publication`] with `"skipped":skipped` (a shaped namespace's
/// delivery after `skipped` sampled-out publications; 0 writes none).
pub fn encode_shaped_publication(
    channel: &ChannelName,
    epoch: &Epoch,
    publication: &Publication,
    skipped: u64,
) -> Frame {
    encode(&PublicationPush {
        kind: "publication",
        channel,
        epoch: Some(epoch),
        offset: Some(publication.offset),
        time: publication.time_ms,
        skipped,
        priority: publication.priority,
        event: publication.event.as_deref().filter(|_| publication.deletion.is_none()),
        updates: publication.updates,
        data: publication.message_data(),
        edited: publication.edited && publication.deletion.is_none(),
        deletes: publication.deletes(),
        deleted: publication.is_tombstone(),
    })
}

/// Encodes an ephemeral publication push: no epoch, no offset.
pub fn encode_ephemeral(channel: &ChannelName, time_ms: u64, event: Option<&str>, data: &JsonData) -> Frame {
    encode(&PublicationPush {
        kind: "publication",
        channel,
        epoch: None,
        offset: None,
        time: time_ms,
        skipped: 0,
        priority: false,
        event,
        updates: None,
        data: Some(data),
        edited: false,
        deletes: None,
        deleted: false,
    })
}

#[derive(Serialize)]
struct PresencePush<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    channel: &'a ChannelName,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<&'a JsonData>,
}

/// Encodes a `join` push (a user's first connection in the channel).
pub fn encode_join(channel: &ChannelName, member: &Member) -> Frame {
    encode(&PresencePush { kind: "join", channel, user: member.user.as_str(), info: member.info.as_ref() })
}

/// Encodes a `leave` push (a user's last connection left the channel).
pub fn encode_leave(channel: &ChannelName, user: &str) -> Frame {
    encode(&PresencePush { kind: "leave", channel, user, info: None })
}

#[derive(Serialize)]
struct DisconnectPush<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: u16,
    reason: &'a str,
    reconnect: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reconnect_after_ms: Option<u64>,
}

/// Encodes the `disconnect` push sent just before the server closes the
/// connection, so clients that cannot read close codes still learn why.
pub fn encode_disconnect(code: CloseCode, reconnect_after_ms: Option<u64>) -> Frame {
    encode(&DisconnectPush {
        kind: "disconnect",
        code: code.code(),
        reason: code.reason(),
        reconnect: code.reconnect(),
        reconnect_after_ms,
    })
}

fn encode<T: Serialize>(value: &T) -> Frame {
    Frame::from_string(serde_json::to_string(value).expect("protocol types always serialize"))
}

// ---------------------------------------------------------------------------
// Decoding server messages (used by clients)

/// A message from the server, as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Reply {
        id: u64,
        outcome: Result<JsonData, ErrorInfo>,
    },
    /// `skipped`: in a shaped namespace, publications sampled out just
    /// before this one (0 when the push has none).
    Publication {
        channel: ChannelName,
        epoch: Option<Epoch>,
        publication: Publication,
        skipped: u64,
    },
    Join {
        channel: ChannelName,
        member: Member,
    },
    Leave {
        channel: ChannelName,
        user: String,
    },
    Disconnect {
        code: u16,
        reason: String,
        reconnect: bool,
        reconnect_after_ms: Option<u64>,
    },
}

#[derive(Deserialize)]
struct RawServerMessage {
    id: Option<u64>,
    result: Option<JsonData>,
    error: Option<ErrorInfo>,
    #[serde(rename = "type")]
    kind: Option<String>,
    channel: Option<ChannelName>,
    epoch: Option<Epoch>,
    offset: Option<u64>,
    time: Option<u64>,
    #[serde(default)]
    skipped: u64,
    #[serde(default)]
    priority: bool,
    event: Option<String>,
    data: Option<JsonData>,
    updates: Option<u64>,
    #[serde(default)]
    edited: bool,
    deletes: Option<Vec<u64>>,
    #[serde(default)]
    deleted: bool,
    user: Option<String>,
    info: Option<JsonData>,
    code: Option<u16>,
    reason: Option<String>,
    reconnect: Option<bool>,
    reconnect_after_ms: Option<u64>,
}

impl ServerMessage {
    pub fn decode(text: &str) -> Result<ServerMessage, serde_json::Error> {
        let raw: RawServerMessage = serde_json::from_str(text)?;
        raw.into_message().map_err(serde::de::Error::custom)
    }
}

impl RawServerMessage {
    fn into_message(self) -> Result<ServerMessage, &'static str> {
        if let Some(id) = self.id {
            let outcome = match (self.result, self.error) {
                (_, Some(error)) => Err(error),
                (Some(result), None) => Ok(result),
                (None, None) => return Err("reply has neither result nor error"),
            };
            return Ok(ServerMessage::Reply { id, outcome });
        }
        let channel = self.channel;
        match self.kind.as_deref() {
            Some("publication") => Ok(ServerMessage::Publication {
                channel: channel.ok_or("publication without channel")?,
                epoch: self.epoch,
                publication: Publication::from_wire(
                    self.offset.unwrap_or(0),
                    self.time.unwrap_or(0),
                    self.event,
                    self.data,
                    self.deletes,
                    self.deleted,
                )?
                .with_edit_marks(self.updates, self.edited)?
                .with_priority(self.priority),
                skipped: self.skipped,
            }),
            Some("join") => Ok(ServerMessage::Join {
                channel: channel.ok_or("join without channel")?,
                member: Member { user: self.user.ok_or("join without user")?.into(), info: self.info },
            }),
            Some("leave") => Ok(ServerMessage::Leave {
                channel: channel.ok_or("leave without channel")?,
                user: self.user.ok_or("leave without user")?,
            }),
            Some("disconnect") => Ok(ServerMessage::Disconnect {
                code: self.code.ok_or("disconnect without code")?,
                reason: self.reason.unwrap_or_default(),
                reconnect: self.reconnect.unwrap_or(false),
                reconnect_after_ms: self.reconnect_after_ms,
            }),
            _ => Err("unknown server message"),
        }
    }
}

// ---------------------------------------------------------------------------
// Encoding client commands (used by clients)

#[derive(Serialize)]
struct OutgoingCommand<'a> {
    id: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a ChannelName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a JsonData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ephemeral: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reverse: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reaction: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
}

impl Command {
    /// Encodes this command as a text frame.
    pub fn encode(&self) -> String {
        let mut out = OutgoingCommand {
            id: self.id,
            kind: self.body.type_name(),
            channel: None,
            token: None,
            since: None,
            event: None,
            data: None,
            idempotency_key: None,
            ephemeral: false,
            limit: None,
            reverse: false,
            reaction: None,
            offset: None,
        };
        match &self.body {
            CommandBody::Connect { token } => out.token = token.as_deref(),
            CommandBody::Subscribe { channel, since } => {
                out.channel = Some(channel);
                out.since = since.as_ref().map(|p| serde_json::json!({"epoch": p.epoch, "offset": p.offset}));
            }
            CommandBody::Unsubscribe { channel } | CommandBody::Presence { channel } => {
                out.channel = Some(channel)
            }
            CommandBody::Publish { channel, event, data, idempotency_key, ephemeral } => {
                out.channel = Some(channel);
                out.event = event.as_deref();
                out.data = Some(data);
                out.idempotency_key = idempotency_key.as_deref();
                out.ephemeral = *ephemeral;
            }
            CommandBody::History { channel, query } => {
                out.channel = Some(channel);
                out.since = query.since.map(serde_json::Value::from);
                out.limit = query.limit;
                out.reverse = query.reverse;
            }
            CommandBody::Moderate(action) => return with_fields(&out, action.to_fields()),
            CommandBody::Members(command) => return with_fields(&out, command.to_fields()),
            CommandBody::Read(position) | CommandBody::Delivered(position) => {
                return with_fields(&out, position_fields(position));
            }
            CommandBody::Unread(query) => {
                let mut fields = serde_json::Map::new();
                if let Some(after) = &query.after {
                    fields.insert("after".into(), after.as_str().into());
                }
                if let Some(limit) = query.limit {
                    fields.insert("limit".into(), limit.into());
                }
                return with_fields(&out, fields);
            }
            CommandBody::React { channel, reaction } => {
                out.channel = Some(channel);
                out.reaction = Some(reaction);
            }
            CommandBody::Edit { channel, offset, data } => {
                out.channel = Some(channel);
                out.offset = Some(*offset);
                out.data = Some(data);
            }
            CommandBody::Delete { channel, offset } => {
                out.channel = Some(channel);
                out.offset = Some(*offset);
            }
            CommandBody::Typing { channel } => out.channel = Some(channel),
            CommandBody::Ping => {}
        }
        serde_json::to_string(&out).expect("commands always serialize")
    }
}

/// `out` (its `id` and `type`) with `fields` after them.
fn with_fields(out: &OutgoingCommand<'_>, fields: serde_json::Map<String, serde_json::Value>) -> String {
    let mut frame = serde_json::to_value(out).expect("commands always serialize");
    if let Some(frame) = frame.as_object_mut() {
        frame.extend(fields);
    }
    frame.to_string()
}

fn position_fields(position: &ChannelPosition) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("channel".into(), position.channel.as_str().into());
    fields.insert("epoch".into(), position.epoch.as_str().into());
    fields.insert("offset".into(), position.offset.into());
    fields
}

pub mod conversation;
pub mod moderation;

#[cfg(test)]
mod tests;
