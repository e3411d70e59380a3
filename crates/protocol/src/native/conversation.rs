//! The commands of conversations (`docs/protocol.md` §5.10–§5.13): a
//! members channel's member list, read positions, delivery
//! acknowledgements and unread counts. Each is read from the whole frame
//! (without `id` and `type`); unknown fields are ignored, as in every
//! command (`docs/protocol.md` §15).
//!
//! ```json
//! {"id":1,"type":"members","channel":"team:general","action":"list","after":"bob","limit":100}
//! {"id":2,"type":"members","channel":"team:general","action":"add","users":["erin"]}
//! {"id":3,"type":"read","channel":"dm:alice,bob","epoch":"Xk2f","offset":42}
//! {"id":4,"type":"delivered","channel":"dm:alice,bob","epoch":"Xk2f","offset":42}
//! {"id":5,"type":"unread","after":"team:a","limit":100}
//! ```

use serde::Deserialize;

use crate::{ChannelName, Epoch, ErrorCode, ErrorInfo, StreamPosition, UserId};

/// What a `members` command does in its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembersAction {
    /// One page of the members, bytewise after `after`.
    List {
        after: Option<UserId>,
        limit: Option<usize>,
    },
    Add(Vec<UserId>),
    Remove(Vec<UserId>),
}

/// A `members` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersCommand {
    pub channel: ChannelName,
    pub action: MembersAction,
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum RawMembers {
    List { channel: ChannelName, after: Option<String>, limit: Option<usize> },
    Add { channel: ChannelName, users: Vec<String> },
    Remove { channel: ChannelName, users: Vec<String> },
}

impl MembersCommand {
    /// Reads the command's fields (the frame without `id` and `type`).
    pub fn from_fields(fields: serde_json::Value) -> Result<Self, ErrorInfo> {
        check_channel(&fields, "channel")?;
        let raw: RawMembers =
            serde_json::from_value(fields).map_err(|e| bad(format!("not a valid members command: {e}")))?;
        let users = |users: Vec<String>| -> Result<Vec<UserId>, ErrorInfo> {
            if users.is_empty() {
                return Err(bad("\"users\" must name at least one user".to_owned()));
            }
            if let Some(empty) = users.iter().position(String::is_empty) {
                return Err(bad(format!("\"users\"[{empty}] is empty: a member is a signed-in user")));
            }
            Ok(users.into_iter().map(UserId::new).collect())
        };
        Ok(match raw {
            RawMembers::List { channel, after, limit } => {
                Self { channel, action: MembersAction::List { after: after.map(UserId::new), limit } }
            }
            RawMembers::Add { channel, users: named } => {
                Self { channel, action: MembersAction::Add(users(named)?) }
            }
            RawMembers::Remove { channel, users: named } => {
                Self { channel, action: MembersAction::Remove(users(named)?) }
            }
        })
    }

    /// The command's fields, for the encoder (the Rust client).
    pub fn to_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("channel".into(), self.channel.as_str().into());
        let names = |users: &[UserId]| {
            users.iter().map(|user| user.as_str().into()).collect::<Vec<serde_json::Value>>()
        };
        match &self.action {
            MembersAction::List { after, limit } => {
                fields.insert("action".into(), "list".into());
                if let Some(after) = after {
                    fields.insert("after".into(), after.as_str().into());
                }
                if let Some(limit) = limit {
                    fields.insert("limit".into(), (*limit).into());
                }
            }
            MembersAction::Add(users) => {
                fields.insert("action".into(), "add".into());
                fields.insert("users".into(), names(users).into());
            }
            MembersAction::Remove(users) => {
                fields.insert("action".into(), "remove".into());
                fields.insert("users".into(), names(users).into());
            }
        }
        fields
    }
}

/// A position in a channel a `read` or `delivered` command names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChannelPosition {
    pub channel: ChannelName,
    pub epoch: Epoch,
    pub offset: u64,
}

impl ChannelPosition {
    pub fn from_fields(kind: &str, fields: serde_json::Value) -> Result<Self, ErrorInfo> {
        check_channel(&fields, "channel")?;
        let position: Self =
            serde_json::from_value(fields).map_err(|e| bad(format!("not a valid {kind} command: {e}")))?;
        if position.offset == 0 {
            return Err(bad(format!("a {kind} offset is at least 1 (the first publication)")));
        }
        Ok(position)
    }

    pub fn position(&self) -> StreamPosition {
        StreamPosition { epoch: self.epoch.clone(), offset: self.offset }
    }
}

/// An `unread` command: one page of the user's channels with their counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UnreadQuery {
    pub after: Option<ChannelName>,
    pub limit: Option<usize>,
}

impl UnreadQuery {
    pub fn from_fields(fields: serde_json::Value) -> Result<Self, ErrorInfo> {
        check_channel(&fields, "after")?;
        serde_json::from_value(fields).map_err(|e| bad(format!("not a valid unread command: {e}")))
    }
}

/// A channel name that is a string but not a valid name is
/// `invalid_channel`, as in every other command (not `bad_request`).
fn check_channel(fields: &serde_json::Value, key: &str) -> Result<(), ErrorInfo> {
    match fields.get(key).and_then(serde_json::Value::as_str) {
        Some(name) => ChannelName::new(name)
            .map(drop)
            .map_err(|e| ErrorInfo::new(ErrorCode::InvalidChannel, e.to_string())),
        None => Ok(()),
    }
}

fn bad(message: String) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::BadRequest, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn members_commands_read_their_action() {
        let list =
            MembersCommand::from_fields(fields(r#"{"channel":"team:a","action":"list","after":"bob"}"#));
        assert_eq!(
            list.unwrap().action,
            MembersAction::List { after: Some(UserId::new("bob")), limit: None }
        );
        let add = MembersCommand::from_fields(fields(r#"{"channel":"team:a","action":"add","users":["e"]}"#));
        assert_eq!(add.unwrap().action, MembersAction::Add(vec![UserId::new("e")]));
    }

    #[test]
    fn members_commands_refuse_no_users_empty_users_and_unknown_actions() {
        for text in [
            r#"{"channel":"team:a","action":"add","users":[]}"#,
            r#"{"channel":"team:a","action":"remove","users":[""]}"#,
            r#"{"channel":"team:a","action":"promote","users":["x"]}"#,
            r#"{"action":"list"}"#,
        ] {
            let error = MembersCommand::from_fields(fields(text)).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadRequest, "{text}");
        }
    }

    #[test]
    fn members_commands_round_trip_through_their_fields() {
        let command = MembersCommand {
            channel: ChannelName::new("team:a").unwrap(),
            action: MembersAction::Remove(vec![UserId::new("x"), UserId::new("y")]),
        };
        let again = MembersCommand::from_fields(serde_json::Value::Object(command.to_fields())).unwrap();
        assert_eq!(again, command);
    }

    #[test]
    fn a_read_position_starts_at_offset_one() {
        let zero = ChannelPosition::from_fields("read", fields(r#"{"channel":"a","epoch":"e","offset":0}"#));
        assert_eq!(zero.unwrap_err().code, ErrorCode::BadRequest);
        let read = ChannelPosition::from_fields("read", fields(r#"{"channel":"a","epoch":"e","offset":3}"#));
        assert_eq!(read.unwrap().position(), StreamPosition { epoch: Epoch::new("e"), offset: 3 });
        let bad_name =
            ChannelPosition::from_fields("read", fields(r#"{"channel":"a b","epoch":"e","offset":3}"#));
        assert_eq!(bad_name.unwrap_err().code, ErrorCode::InvalidChannel);
    }
}
