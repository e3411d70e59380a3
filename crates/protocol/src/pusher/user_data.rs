//! What a signature vouches for: a presence member's `channel_data` and a
//! signed-in user's `user_data`.
//!
//! Both arrive as JSON *strings* (the exact text the app's auth endpoint
//! signed), so they are verified first, as text, and parsed here after.

use serde::Deserialize;
use serde_json::Value;

use crate::JsonData;

use super::error::PusherDecodeError;

/// Longest watchlist honoured; the rest is dropped with a
/// [`PusherErrorCode::WatchlistLimit`](super::PusherErrorCode::WatchlistLimit) error.
pub const MAX_WATCHLIST_LEN: usize = 100;

/// One member of a presence channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceMember {
    /// Members are keyed by this string; a numeric `user_id` (as in the
    /// Pusher test vectors) becomes its decimal text.
    pub user_id: String,
    pub user_info: Option<JsonData>,
}

#[derive(Deserialize)]
struct RawChannelData {
    user_id: Option<Value>,
    user_info: Option<JsonData>,
}

impl PresenceMember {
    pub fn new(user_id: impl Into<String>, user_info: Option<JsonData>) -> Self {
        Self { user_id: user_id.into(), user_info }
    }

    /// Parses presence `channel_data`: `{"user_id": String|Number, "user_info"?: Object}`.
    pub fn from_channel_data(channel_data: &str) -> Result<Self, PusherDecodeError> {
        let raw: RawChannelData = serde_json::from_str(channel_data)
            .map_err(|_| PusherDecodeError::BadChannelData("not a JSON object"))?;
        let user_id = user_id_text(raw.user_id)?;
        Ok(Self { user_id, user_info: raw.user_info })
    }
}

fn user_id_text(user_id: Option<Value>) -> Result<String, PusherDecodeError> {
    let user_id = match user_id {
        Some(Value::String(text)) => text,
        Some(Value::Number(number)) => number.to_string(),
        _ => return Err(PusherDecodeError::BadChannelData("user_id must be a string or a number")),
    };
    if user_id.is_empty() {
        return Err(PusherDecodeError::BadChannelData("user_id is empty"));
    }
    Ok(user_id)
}

/// A signed-in user, from `pusher:signin`'s `user_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    /// Non-empty, as pusher-js requires (`src/core/user.ts`), since it
    /// subscribes `#server-to-user-<id>` with it.
    pub id: String,
    pub user_info: Option<JsonData>,
    /// User ids whose online status this user follows, as sent (not yet
    /// cut to [`MAX_WATCHLIST_LEN`]).
    pub watchlist: Vec<String>,
}

#[derive(Deserialize)]
struct RawUserData {
    id: Option<Value>,
    user_info: Option<JsonData>,
    watchlist: Option<Vec<String>>,
}

impl UserData {
    /// Parses signin `user_data`: `{"id": String, "user_info"?, "watchlist"?: [String]}`.
    pub fn parse(user_data: &str) -> Result<Self, PusherDecodeError> {
        let raw: RawUserData = serde_json::from_str(user_data)
            .map_err(|_| PusherDecodeError::BadUserData("not a JSON object with a string array watchlist"))?;
        let id = match raw.id {
            Some(Value::String(id)) if !id.is_empty() => id,
            _ => return Err(PusherDecodeError::BadUserData("id must be a non-empty string")),
        };
        Ok(Self { id, user_info: raw.user_info, watchlist: raw.watchlist.unwrap_or_default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_data_with_a_numeric_user_id_keys_the_member_by_its_text() {
        let member =
            PresenceMember::from_channel_data(r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#)
                .unwrap();
        assert_eq!(member.user_id, "10");
        assert_eq!(member.user_info.unwrap().as_str(), r#"{"name":"Mr. Channels"}"#);
    }

    #[test]
    fn channel_data_user_info_is_optional() {
        let member = PresenceMember::from_channel_data(r#"{"user_id":"alice"}"#).unwrap();
        assert_eq!(member, PresenceMember::new("alice", None));
        let member = PresenceMember::from_channel_data(r#"{"user_id":"alice","user_info":null}"#).unwrap();
        assert_eq!(member.user_info, None);
    }

    #[test]
    fn bad_channel_data_is_refused() {
        for bad in ["", "[]", "{}", r#"{"user_id":""}"#, r#"{"user_id":null}"#, r#"{"user_id":{"a":1}}"#] {
            assert!(
                matches!(PresenceMember::from_channel_data(bad), Err(PusherDecodeError::BadChannelData(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn user_data_needs_a_non_empty_string_id() {
        let user = UserData::parse(r#"{"id":"12345"}"#).unwrap();
        assert_eq!(user, UserData { id: "12345".into(), user_info: None, watchlist: vec![] });
        for bad in [r#"{"id":12345}"#, r#"{"id":""}"#, r#"{"name":"x"}"#, "not json", r#""{\"id\":\"1\"}""#] {
            assert!(matches!(UserData::parse(bad), Err(PusherDecodeError::BadUserData(_))), "{bad:?}");
        }
    }

    #[test]
    fn user_data_carries_info_and_watchlist() {
        let user = UserData::parse(r#"{"id":"1","user_info":{"name":"A"},"watchlist":["2","3"]}"#).unwrap();
        assert_eq!(user.user_info.unwrap().as_str(), r#"{"name":"A"}"#);
        assert_eq!(user.watchlist, ["2", "3"]);
        assert!(UserData::parse(r#"{"id":"1","watchlist":[2]}"#).is_err());
    }
}
