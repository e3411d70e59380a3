//! Channel names.
//!
//! A name is 1..=200 bytes of `[A-Za-z0-9_\-=@,.;:/!#+]`. The part before the
//! first `:` is the namespace (`chat:acme/general` is in namespace `chat`); a
//! name without `:` is in the default namespace `""`.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest channel name accepted, in bytes.
pub const MAX_CHANNEL_NAME_LEN: usize = 200;

/// A validated channel name. Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    #[error("channel name is empty")]
    Empty,
    #[error("channel name is longer than {MAX_CHANNEL_NAME_LEN} bytes")]
    TooLong,
    #[error("channel name contains the character {0:?}, which is not allowed")]
    BadCharacter(char),
}

impl ChannelName {
    pub fn new(name: &str) -> Result<Self, ChannelNameError> {
        validate(name)?;
        Ok(Self(Arc::from(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace: the part before the first `:`, or `""`.
    pub fn namespace(&self) -> &str {
        self.0.split_once(':').map_or("", |(ns, _)| ns)
    }
}

fn validate(name: &str) -> Result<(), ChannelNameError> {
    if name.is_empty() {
        return Err(ChannelNameError::Empty);
    }
    if name.len() > MAX_CHANNEL_NAME_LEN {
        return Err(ChannelNameError::TooLong);
    }
    match name.chars().find(|c| !is_allowed(*c)) {
        Some(bad) => Err(ChannelNameError::BadCharacter(bad)),
        None => Ok(()),
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-=@,.;:/!#+".contains(c)
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for ChannelName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChannelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ChannelName::new(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_the_part_before_the_first_colon() {
        assert_eq!(ChannelName::new("chat:acme/general").unwrap().namespace(), "chat");
        assert_eq!(ChannelName::new("dm:alice,bob").unwrap().namespace(), "dm");
        assert_eq!(ChannelName::new("news").unwrap().namespace(), "");
        assert_eq!(ChannelName::new("a:b:c").unwrap().namespace(), "a");
    }

    #[test]
    fn invalid_names_are_refused_with_the_reason() {
        assert_eq!(ChannelName::new(""), Err(ChannelNameError::Empty));
        assert_eq!(ChannelName::new(&"x".repeat(201)), Err(ChannelNameError::TooLong));
        assert_eq!(ChannelName::new("a b"), Err(ChannelNameError::BadCharacter(' ')));
        assert_eq!(ChannelName::new("é"), Err(ChannelNameError::BadCharacter('é')));
        assert!(ChannelName::new(&"x".repeat(200)).is_ok());
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<ChannelName>("\"ok:1\"").is_ok());
        assert!(serde_json::from_str::<ChannelName>("\"not ok\"").is_err());
    }
}
