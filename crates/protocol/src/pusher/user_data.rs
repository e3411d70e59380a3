//! What a signature vouches for: a presence member's `channel_data` and a
//! signed-in user's `user_data`.
//!
//! Both arrive as JSON *strings* (the exact text the app's auth endpoint
//! signed), so they are verified first, as text, and parsed here after.
//! User ids may be strings or numbers, as Pusher accepts them (Laravel's
//! ids are integers); a [`UserId`] keeps which it was.

use serde::Deserialize;
use serde_json::Value;

use crate::{JsonData, UserId};

use super::error::PusherDecodeError;

/// Longest watchlist honoured; the rest is dropped with a
/// [`PusherErrorCode::WatchlistLimit`](super::PusherErrorCode::WatchlistLimit) error.
pub const MAX_WATCHLIST_LEN: usize = 100;

/// One member of a presence channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceMember {
    /// Members are keyed by its text; Pusher frames send it back in the
    /// JSON type the member's `channel_data` used.
    pub user_id: UserId,
    pub user_info: Option<JsonData>,
}

#[derive(Deserialize)]
struct RawChannelData {
    user_id: Option<Value>,
    user_info: Option<JsonData>,
}

impl PresenceMember {
    pub fn new(user_id: impl Into<UserId>, user_info: Option<JsonData>) -> Self {
        Self { user_id: user_id.into(), user_info }
    }

    /// Parses presence `channel_data`: `{"user_id": String|Number, "user_info"?: Object}`.
    pub fn from_channel_data(channel_data: &str) -> Result<Self, PusherDecodeError> {
        let raw: RawChannelData = serde_json::from_str(channel_data)
            .map_err(|_| PusherDecodeError::BadChannelData("not a JSON object"))?;
        let bad = PusherDecodeError::BadChannelData;
        let user_id = id(raw.user_id.as_ref()).ok_or(bad("user_id must be a string or a number"))?;
        if user_id.is_empty() {
            return Err(bad("user_id is empty"));
        }
        Ok(Self { user_id, user_info: raw.user_info })
    }
}

fn id(value: Option<&Value>) -> Option<UserId> {
    value.and_then(UserId::from_json)
}

/// A signed-in user, from `pusher:signin`'s `user_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    /// Non-empty, as pusher-js requires (`src/core/user.ts`), since it
    /// subscribes `#server-to-user-<id>` with it.
    pub id: UserId,
    pub user_info: Option<JsonData>,
    /// User ids whose online status this user follows, as sent (not yet
    /// cut to [`MAX_WATCHLIST_LEN`]).
    pub watchlist: Vec<UserId>,
}

#[derive(Deserialize)]
struct RawUserData {
    id: Option<Value>,
    user_info: Option<JsonData>,
    watchlist: Option<Vec<Value>>,
}

impl UserData {
    /// Parses signin `user_data`:
    /// `{"id": String|Number, "user_info"?, "watchlist"?: [String|Number]}`.
    pub fn parse(user_data: &str) -> Result<Self, PusherDecodeError> {
        let bad = PusherDecodeError::BadUserData;
        let raw: RawUserData =
            serde_json::from_str(user_data).map_err(|_| bad("not a JSON object with an array watchlist"))?;
        let id = id(raw.id.as_ref())
            .filter(|id| !id.is_empty())
            .ok_or(bad("id must be a non-empty string or a number"))?;
        let watchlist = raw.watchlist.unwrap_or_default();
        let watchlist = watchlist
            .iter()
            .map(|entry| {
                id_of_watchlist(entry).ok_or(bad("watchlist entries must be non-empty strings or numbers"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { id, user_info: raw.user_info, watchlist })
    }
}

fn id_of_watchlist(entry: &Value) -> Option<UserId> {
    UserId::from_json(entry).filter(|id| !id.is_empty())
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
        assert!(member.user_id.is_number());
        assert_eq!(member.user_info.unwrap().as_str(), r#"{"name":"Mr. Channels"}"#);
        let text = PresenceMember::from_channel_data(r#"{"user_id":"10"}"#).unwrap();
        assert!(!text.user_id.is_number());
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
    fn user_data_needs_a_non_empty_string_or_a_numeric_id() {
        let user = UserData::parse(r#"{"id":"12345"}"#).unwrap();
        assert_eq!(user, UserData { id: "12345".into(), user_info: None, watchlist: vec![] });
        // Laravel's broadcaster signs `{"id":1,…}` for an integer user id.
        let numeric = UserData::parse(r#"{"id":1,"user_info":{"name":"A"}}"#).unwrap();
        assert_eq!(numeric.id, "1");
        assert!(numeric.id.is_number());
        for bad in [r#"{"id":""}"#, r#"{"id":null}"#, r#"{"id":true}"#, r#"{"name":"x"}"#, "not json"] {
            assert!(matches!(UserData::parse(bad), Err(PusherDecodeError::BadUserData(_))), "{bad:?}");
        }
        assert!(UserData::parse(r#""{\"id\":\"1\"}""#).is_err(), "a string holding the object");
    }

    #[test]
    fn user_data_carries_info_and_watchlist() {
        let user = UserData::parse(r#"{"id":"1","user_info":{"name":"A"},"watchlist":["2",3]}"#).unwrap();
        assert_eq!(user.user_info.unwrap().as_str(), r#"{"name":"A"}"#);
        assert_eq!(user.watchlist, [UserId::new("2"), UserId::new("3")]);
        assert!(user.watchlist[1].is_number());
        assert!(UserData::parse(r#"{"id":"1","watchlist":[{"id":2}]}"#).is_err());
        assert!(UserData::parse(r#"{"id":"1","watchlist":[""]}"#).is_err());
    }
}
