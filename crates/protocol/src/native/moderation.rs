//! Moderators' actions: the body of the native `moderate` command (with
//! `id` and `"type":"moderate"`) and of `POST /api/moderation` alike.
//!
//! ```json
//! {"action":"ban","user":"bob","channel":"comments:final","duration_ms":600000,"reason":"spam"}
//! {"action":"mute","user":"bob","namespace":"comments"}
//! {"action":"unban","user":"bob","channel":"comments:final"}
//! {"action":"shadow_ban","user":"bob","channel":"comments:final","duration_ms":600000}
//! {"action":"unshadow_ban","user":"bob","channel":"comments:final"}
//! {"action":"kick","user":"bob","channel":"comments:final"}
//! {"action":"kick","connection":"17","channel":"comments:final"}
//! {"action":"slow_mode","channel":"comments:final","interval_ms":30000}
//! {"action":"delete","channel":"comments:final","offset":42}
//! {"action":"purge","channel":"comments:final","user":"bob"}
//! ```

use serde::Deserialize;

use crate::{ChannelName, ErrorCode, ErrorInfo};

/// An action as sent, checked by [`ModerationRequest::into_action`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModerationRequest {
    Ban {
        user: String,
        channel: Option<ChannelName>,
        namespace: Option<String>,
        duration_ms: Option<u64>,
        reason: Option<String>,
    },
    Mute {
        user: String,
        channel: Option<ChannelName>,
        namespace: Option<String>,
        duration_ms: Option<u64>,
        reason: Option<String>,
    },
    ShadowBan {
        user: String,
        channel: Option<ChannelName>,
        namespace: Option<String>,
        duration_ms: Option<u64>,
        reason: Option<String>,
    },
    Unban {
        user: String,
        channel: Option<ChannelName>,
        namespace: Option<String>,
    },
    Unmute {
        user: String,
        channel: Option<ChannelName>,
        namespace: Option<String>,
    },
    UnshadowBan {
        user: String,
        channel: Option<ChannelName>,
        namespace: Option<String>,
    },
    /// Exactly one of `user` (all of that user's connections) and
    /// `connection` (one connection).
    Kick {
        user: Option<String>,
        connection: Option<String>,
        channel: Option<ChannelName>,
        namespace: Option<String>,
    },
    SlowMode {
        channel: ChannelName,
        /// Required: milliseconds, 0 (off), or `null` (the namespace's).
        #[serde(default, deserialize_with = "present")]
        interval_ms: Option<Option<u64>>,
    },
    Delete {
        channel: ChannelName,
        offset: Option<u64>,
        idempotency_key: Option<String>,
    },
    Purge {
        channel: ChannelName,
        user: String,
    },
}

/// A field that must be there, `null` or not.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// Where an action holds: one channel, or every channel of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModerationTarget {
    Channel(ChannelName),
    Namespace(String),
}

/// Ban, mute or shadow-ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanctionAction {
    Ban,
    Mute,
    ShadowBan,
}

/// Which publication a delete targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteTarget {
    Offset(u64),
    /// The publication first published with this idempotency key.
    IdempotencyKey(String),
}

impl DeleteTarget {
    /// Exactly one of an offset (at least 1) and a non-empty idempotency
    /// key, as every way of deleting names its target.
    pub fn from_parts(offset: Option<u64>, idempotency_key: Option<String>) -> Result<Self, ErrorInfo> {
        match (offset, idempotency_key) {
            (Some(offset), None) if offset > 0 => Ok(Self::Offset(offset)),
            (None, Some(key)) if !key.is_empty() => Ok(Self::IdempotencyKey(key)),
            _ => Err(bad("give exactly one of \"offset\" (at least 1) and \"idempotency_key\" (not empty)")),
        }
    }
}

/// A checked action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModerationAction {
    Impose {
        kind: SanctionAction,
        user: String,
        target: ModerationTarget,
        duration_ms: Option<u64>,
        reason: Option<String>,
    },
    Lift {
        kind: SanctionAction,
        user: String,
        target: ModerationTarget,
    },
    /// Closes the user's connections on every node (4506).
    Kick {
        user: String,
        target: ModerationTarget,
    },
    /// Closes one connection, on whichever node holds it (4506).
    KickConnection {
        connection: ConnectionRef,
        target: ModerationTarget,
    },
    /// `None`: back to the namespace's.
    SlowMode {
        channel: ChannelName,
        interval_ms: Option<u64>,
    },
    /// Appends a delete record; the target becomes a tombstone.
    Delete {
        channel: ChannelName,
        target: DeleteTarget,
    },
    /// Deletes every publication of `user` still in the channel's history.
    Purge {
        channel: ChannelName,
        user: String,
    },
}

impl ModerationAction {
    /// The action as its request's fields (what [`ModerationRequest`] reads).
    pub fn to_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::{Value, json};
        let (action, mut fields) = match self {
            Self::Impose { kind, user, target, duration_ms, reason } => {
                let mut fields = target_fields(target);
                fields.insert("user".into(), json!(user));
                if let Some(ms) = duration_ms {
                    fields.insert("duration_ms".into(), json!(ms));
                }
                if let Some(reason) = reason {
                    fields.insert("reason".into(), json!(reason));
                }
                (kind.verb(), fields)
            }
            Self::Lift { kind, user, target } => {
                let mut fields = target_fields(target);
                fields.insert("user".into(), json!(user));
                (kind.undo_verb(), fields)
            }
            Self::Kick { user, target } => {
                let mut fields = target_fields(target);
                fields.insert("user".into(), json!(user));
                ("kick", fields)
            }
            Self::KickConnection { connection, target } => {
                let mut fields = target_fields(target);
                fields.insert("connection".into(), json!(connection.as_str()));
                ("kick", fields)
            }
            Self::SlowMode { channel, interval_ms } => {
                let mut fields = serde_json::Map::new();
                fields.insert("channel".into(), json!(channel));
                fields.insert("interval_ms".into(), interval_ms.map_or(Value::Null, Value::from));
                ("slow_mode", fields)
            }
            Self::Delete { channel, target } => {
                let mut fields = serde_json::Map::new();
                fields.insert("channel".into(), json!(channel));
                match target {
                    DeleteTarget::Offset(offset) => fields.insert("offset".into(), json!(offset)),
                    DeleteTarget::IdempotencyKey(key) => fields.insert("idempotency_key".into(), json!(key)),
                };
                ("delete", fields)
            }
            Self::Purge { channel, user } => {
                let mut fields = serde_json::Map::new();
                fields.insert("channel".into(), json!(channel));
                fields.insert("user".into(), json!(user));
                ("purge", fields)
            }
        };
        fields.insert("action".into(), json!(action));
        fields
    }
}

fn target_fields(target: &ModerationTarget) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    match target {
        ModerationTarget::Channel(channel) => fields.insert("channel".into(), serde_json::json!(channel)),
        ModerationTarget::Namespace(namespace) => {
            fields.insert("namespace".into(), serde_json::json!(namespace))
        }
    };
    fields
}

impl SanctionAction {
    fn verb(self) -> &'static str {
        match self {
            Self::Ban => "ban",
            Self::Mute => "mute",
            Self::ShadowBan => "shadow_ban",
        }
    }

    fn undo_verb(self) -> &'static str {
        match self {
            Self::Ban => "unban",
            Self::Mute => "unmute",
            Self::ShadowBan => "unshadow_ban",
        }
    }
}

/// The longest reason kept with a sanction, in bytes.
pub const MAX_REASON_BYTES: usize = 512;

impl ModerationRequest {
    /// Checks what serde cannot: exactly one of `channel` and `namespace`,
    /// a user, a reason of at most [`MAX_REASON_BYTES`], a positive
    /// duration, a present `interval_ms`.
    pub fn into_action(self) -> Result<ModerationAction, ErrorInfo> {
        use ModerationRequest as R;
        Ok(match self {
            R::Ban { user, channel, namespace, duration_ms, reason } => {
                impose(SanctionAction::Ban, user, channel, namespace, duration_ms, reason)?
            }
            R::Mute { user, channel, namespace, duration_ms, reason } => {
                impose(SanctionAction::Mute, user, channel, namespace, duration_ms, reason)?
            }
            R::ShadowBan { user, channel, namespace, duration_ms, reason } => {
                impose(SanctionAction::ShadowBan, user, channel, namespace, duration_ms, reason)?
            }
            R::Unban { user, channel, namespace } => ModerationAction::Lift {
                kind: SanctionAction::Ban,
                user: user_of(user)?,
                target: target(channel, namespace)?,
            },
            R::Unmute { user, channel, namespace } => ModerationAction::Lift {
                kind: SanctionAction::Mute,
                user: user_of(user)?,
                target: target(channel, namespace)?,
            },
            R::UnshadowBan { user, channel, namespace } => ModerationAction::Lift {
                kind: SanctionAction::ShadowBan,
                user: user_of(user)?,
                target: target(channel, namespace)?,
            },
            R::Kick { user, connection, channel, namespace } => kick(user, connection, channel, namespace)?,
            R::SlowMode { channel, interval_ms } => {
                let interval_ms =
                    interval_ms.ok_or_else(|| bad("give \"interval_ms\": milliseconds, 0 (off) or null"))?;
                ModerationAction::SlowMode { channel, interval_ms }
            }
            R::Delete { channel, offset, idempotency_key } => ModerationAction::Delete {
                channel,
                target: DeleteTarget::from_parts(offset, idempotency_key)?,
            },
            R::Purge { channel, user } => ModerationAction::Purge { channel, user: user_of(user)? },
        })
    }
}

fn impose(
    kind: SanctionAction,
    user: String,
    channel: Option<ChannelName>,
    namespace: Option<String>,
    duration_ms: Option<u64>,
    reason: Option<String>,
) -> Result<ModerationAction, ErrorInfo> {
    if duration_ms == Some(0) {
        return Err(bad("\"duration_ms\" must be at least 1 (leave it out for no end)"));
    }
    if reason.as_ref().is_some_and(|r| r.len() > MAX_REASON_BYTES) {
        return Err(bad(&format!("\"reason\" may be at most {MAX_REASON_BYTES} bytes")));
    }
    Ok(ModerationAction::Impose {
        kind,
        user: user_of(user)?,
        target: target(channel, namespace)?,
        duration_ms,
        reason,
    })
}

fn kick(
    user: Option<String>,
    connection: Option<String>,
    channel: Option<ChannelName>,
    namespace: Option<String>,
) -> Result<ModerationAction, ErrorInfo> {
    match (user, connection) {
        (Some(user), None) => {
            Ok(ModerationAction::Kick { user: user_of(user)?, target: target(channel, namespace)? })
        }
        (None, Some(connection)) => Ok(ModerationAction::KickConnection {
            connection: ConnectionRef::parse(&connection)?,
            target: target(channel, namespace)?,
        }),
        _ => Err(bad("give one of \"user\" (all of a user's connections) and \"connection\" (one)")),
    }
}

/// A connection named by a moderator: a native connection's id (the
/// `client` of its `connect` reply, `"17"`) or a Pusher `socket_id`
/// (`"17.4821"`, whose first number is the connection's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRef {
    text: String,
    id: u64,
}

impl ConnectionRef {
    pub fn parse(text: &str) -> Result<Self, ErrorInfo> {
        let id = match text.split_once('.') {
            None => digits(text),
            Some((id, salt)) => digits(salt).and(digits(id)),
        };
        match id {
            Some(id) if id > 0 => Ok(Self { text: text.to_owned(), id }),
            _ => Err(bad(&format!(
                "{text:?} is not a connection: give a native connection's \"client\" (like \"17\") or a Pusher socket_id (like \"17.4821\")"
            ))),
        }
    }

    /// As the moderator wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The connection's id in the server.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// Decimal digits only, within `u64`.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn user_of(user: String) -> Result<String, ErrorInfo> {
    if user.is_empty() {
        return Err(bad("\"user\" must not be empty"));
    }
    Ok(user)
}

fn target(channel: Option<ChannelName>, namespace: Option<String>) -> Result<ModerationTarget, ErrorInfo> {
    match (channel, namespace) {
        (Some(channel), None) => Ok(ModerationTarget::Channel(channel)),
        (None, Some(namespace))
            if !namespace.contains(':') && (namespace.is_empty() || ChannelName::new(&namespace).is_ok()) =>
        {
            Ok(ModerationTarget::Namespace(namespace))
        }
        (None, Some(namespace)) => Err(bad(&format!("{namespace:?} is not a namespace name"))),
        _ => Err(bad("give one of \"channel\" and \"namespace\"")),
    }
}

fn bad(message: &str) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::BadRequest, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ModerationAction, String> {
        let request: ModerationRequest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        request.into_action().map_err(|e| e.message)
    }

    #[test]
    fn every_action_reads_with_its_target() {
        let room = ChannelName::new("live:a").unwrap();
        assert_eq!(
            parse(r#"{"action":"ban","user":"bob","channel":"live:a","duration_ms":60000,"reason":"spam"}"#),
            Ok(ModerationAction::Impose {
                kind: SanctionAction::Ban,
                user: "bob".into(),
                target: ModerationTarget::Channel(room.clone()),
                duration_ms: Some(60000),
                reason: Some("spam".into()),
            })
        );
        assert_eq!(
            parse(r#"{"action":"unmute","user":"bob","namespace":"live"}"#),
            Ok(ModerationAction::Lift {
                kind: SanctionAction::Mute,
                user: "bob".into(),
                target: ModerationTarget::Namespace("live".into())
            })
        );
        assert_eq!(
            parse(r#"{"action":"kick","connection":"17.4821","channel":"live:a"}"#),
            Ok(ModerationAction::KickConnection {
                connection: ConnectionRef { text: "17.4821".into(), id: 17 },
                target: ModerationTarget::Channel(room.clone()),
            })
        );
        assert_eq!(
            parse(r#"{"action":"slow_mode","channel":"live:a","interval_ms":null}"#),
            Ok(ModerationAction::SlowMode { channel: room, interval_ms: None })
        );
    }

    #[test]
    fn wrong_actions_are_refused_with_the_reason() {
        let refused = |json: &str| parse(json).unwrap_err();
        assert!(refused(r#"{"action":"ban","user":"bob"}"#).contains("one of \"channel\" and \"namespace\""));
        assert!(refused(r#"{"action":"ban","user":"bob","channel":"a","namespace":"b"}"#).contains("one of"));
        assert!(refused(r#"{"action":"ban","user":"","channel":"a"}"#).contains("must not be empty"));
        assert!(
            refused(r#"{"action":"mute","user":"b","channel":"a","duration_ms":0}"#).contains("at least 1")
        );
        assert!(refused(r#"{"action":"kick","user":"b","namespace":"a:b"}"#).contains("not a namespace"));
        assert!(
            refused(r#"{"action":"kick","user":"b","connection":"7","channel":"a"}"#)
                .contains("one of \"user\"")
        );
        assert!(refused(r#"{"action":"kick","channel":"a"}"#).contains("one of \"user\""));
        for connection in ["", "x", "7.", ".7", "0", "-7", "7.8.9", "99999999999999999999"] {
            let json = format!(r#"{{"action":"kick","connection":"{connection}","channel":"a"}}"#);
            assert!(refused(&json).contains("is not a connection"), "{connection:?}");
        }
        assert!(
            refused(r#"{"action":"shadow_ban","user":"b","channel":"a","duration_ms":0}"#)
                .contains("at least 1")
        );
        assert!(refused(r#"{"action":"slow_mode","channel":"a"}"#).contains("interval_ms"));
        assert!(refused(r#"{"action":"delete","channel":"a"}"#).contains("exactly one of"));
        assert!(refused(r#"{"action":"delete","channel":"a","offset":0}"#).contains("exactly one of"));
        assert!(
            refused(r#"{"action":"delete","channel":"a","offset":1,"idempotency_key":"k"}"#)
                .contains("exactly one")
        );
        assert!(refused(r#"{"action":"purge","channel":"a","user":""}"#).contains("must not be empty"));
        assert!(refused(r#"{"action":"ban","user":"b","channel":"a","colour":1}"#).contains("unknown field"));
        assert!(refused(r#"{"action":"smite","user":"b","channel":"a"}"#).contains("unknown variant"));
        for json in [
            r#"{"action":"ban","user":"bob","channel":"live:a","duration_ms":60000,"reason":"spam"}"#,
            r#"{"action":"unmute","user":"bob","namespace":""}"#,
            r#"{"action":"kick","user":"bob","channel":"live:a"}"#,
            r#"{"action":"kick","connection":"17","channel":"live:a"}"#,
            r#"{"action":"kick","connection":"17.4821","namespace":"live"}"#,
            r#"{"action":"shadow_ban","user":"bob","channel":"live:a","duration_ms":5,"reason":"spam"}"#,
            r#"{"action":"unshadow_ban","user":"bob","namespace":"live"}"#,
            r#"{"action":"slow_mode","channel":"live:a","interval_ms":null}"#,
            r#"{"action":"delete","channel":"live:a","offset":42}"#,
            r#"{"action":"delete","channel":"live:a","idempotency_key":"k-1"}"#,
            r#"{"action":"purge","channel":"live:a","user":"bob"}"#,
        ] {
            let action = parse(json).unwrap();
            let again: ModerationRequest =
                serde_json::from_value(serde_json::Value::Object(action.to_fields())).unwrap();
            assert_eq!(again.into_action().unwrap(), action, "{json} reads back");
        }
        let long = format!(r#"{{"action":"ban","user":"b","channel":"a","reason":"{}"}}"#, "x".repeat(513));
        assert!(refused(&long).contains("at most 512 bytes"));
    }
}
