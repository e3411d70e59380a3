//! A user's id, as the app's auth endpoint wrote it.
//!
//! Presence, signin and `#server-to-user-<id>` channels key users by the
//! id's *text*. Pusher apps may write the id as a JSON number: Laravel's
//! user ids are integers and its broadcaster puts them into `channel_data`
//! and `user_data` as they are. So `1` and `"1"` are one user, and the id
//! remembers which form it came in, because the Pusher protocol echoes it
//! in that form (pusher-js hands `member.id` to the app as it was sent).
//!
//! Serialized with serde a [`UserId`] is always its text, a JSON string:
//! that is how the native protocol, the HTTP APIs and webhooks show it.
//! [`UserId::as_sent`] is the Pusher form.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A user id: its text, and whether it was a JSON number. Two ids are the
/// same user when their text is the same; equality, ordering and hashing
/// look at the text only. Cheap to clone.
#[derive(Clone)]
pub struct UserId {
    text: Arc<str>,
    number: bool,
}

impl UserId {
    /// An id given as a string (or by a protocol that has only strings).
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        Self { text: text.into(), number: false }
    }

    /// An id given as a JSON number; its text is the number's decimal form.
    pub fn number(number: &serde_json::Number) -> Self {
        Self { text: number.to_string().into(), number: true }
    }

    /// The id in a JSON value, if it is a string or a number.
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::String(text) => Some(Self::new(text.as_str())),
            Value::Number(number) => Some(Self::number(number)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the app wrote it as a JSON number.
    pub fn is_number(&self) -> bool {
        self.number
    }

    /// `""` is the anonymous user, never a presence member.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Serializes as it was sent: a JSON number for a numeric id, else a string.
    pub fn as_sent(&self) -> AsSent<'_> {
        AsSent(self)
    }
}

/// [`UserId::as_sent`]: the id in the JSON type it arrived in.
pub struct AsSent<'a>(&'a UserId);

impl Serialize for AsSent<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let id = self.0;
        match id.number.then(|| id.text.parse::<serde_json::Number>().ok()).flatten() {
            Some(number) => number.serialize(serializer),
            None => serializer.serialize_str(&id.text),
        }
    }
}

impl PartialEq for UserId {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for UserId {}

impl PartialEq<str> for UserId {
    fn eq(&self, other: &str) -> bool {
        &*self.text == other
    }
}

impl PartialEq<&str> for UserId {
    fn eq(&self, other: &&str) -> bool {
        &*self.text == *other
    }
}

impl Hash for UserId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for UserId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for UserId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

/// Maps keyed by [`UserId`] can be looked up by text.
impl Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number {
            true => f.write_str(&self.text),
            false => fmt::Debug::fmt(&*self.text, f),
        }
    }
}

impl From<&str> for UserId {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for UserId {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<Arc<str>> for UserId {
    fn from(text: Arc<str>) -> Self {
        Self::new(text)
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::new(String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn a_number_and_its_text_are_the_same_user() {
        let number = UserId::from_json(&json!(1)).unwrap();
        let text = UserId::from_json(&json!("1")).unwrap();
        assert!(number.is_number() && !text.is_number());
        assert_eq!(number, text);
        let mut members = HashMap::new();
        members.insert(number, "first");
        assert_eq!(members.get("1"), Some(&"first"));
        assert!(members.contains_key(&text));
    }

    #[test]
    fn each_id_is_sent_back_in_its_own_json_type() {
        let number = UserId::from_json(&json!(42)).unwrap();
        let text = UserId::new("42");
        assert_eq!(serde_json::to_string(&number.as_sent()).unwrap(), "42");
        assert_eq!(serde_json::to_string(&text.as_sent()).unwrap(), r#""42""#);
        assert_eq!(serde_json::to_string(&UserId::from_json(&json!(-7)).unwrap().as_sent()).unwrap(), "-7");
    }

    #[test]
    fn serde_shows_every_id_as_its_text() {
        let number = UserId::from_json(&json!(42)).unwrap();
        assert_eq!(serde_json::to_string(&number).unwrap(), r#""42""#);
        let back: UserId = serde_json::from_str(r#""42""#).unwrap();
        assert_eq!(back, number);
        assert!(!back.is_number());
    }

    #[test]
    fn only_strings_and_numbers_are_ids() {
        for bad in [json!(null), json!(true), json!([1]), json!({"id": 1})] {
            assert!(UserId::from_json(&bad).is_none(), "{bad}");
        }
    }
}
