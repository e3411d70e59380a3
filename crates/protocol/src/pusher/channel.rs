//! Pusher channel names and event names.
//!
//! A channel's kind is its name prefix, as pusher-js decides it
//! (`src/core/channels/channels.ts`): `private-encrypted-`, then `private-`,
//! then `presence-`, else public. After that prefix, `cache-` makes it a
//! cache channel (`cache-x`, `private-cache-x`, `private-encrypted-cache-x`,
//! `presence-cache-x`). Names are at most 200 characters of
//! `[A-Za-z0-9_\-=@,.;]`, the rule pusher-http-node enforces; `#` is
//! reserved, and the one `#` name a client may use is `#server-to-user-<id>`,
//! which pusher-js subscribes to after signin.
//!
//! Every valid Pusher name is also a valid [`ChannelName`], so the hub can
//! carry Pusher channels unchanged.

use std::fmt;

use crate::ChannelName;

/// Longest channel name accepted (pusher-http-node and the clones use 200;
/// the Pusher docs say 164, which no SDK enforces).
pub const MAX_PUSHER_CHANNEL_NAME_LEN: usize = 200;

/// Longest event name accepted.
pub const MAX_EVENT_NAME_LEN: usize = 200;

/// The prefix of the per-user channel a signed-in connection receives
/// `sendToUser` events on.
pub const SERVER_TO_USER_PREFIX: &str = "#server-to-user-";

const CLIENT_EVENT_PREFIX: &str = "client-";
const RESERVED_EVENT_PREFIXES: [&str; 2] = ["pusher:", "pusher_internal:"];

/// What a channel is, decided by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind<'a> {
    Public,
    /// `private-`: subscribing needs `auth` over `socket_id:channel`.
    Private,
    /// `private-encrypted-`: authorised like a private channel; payloads are
    /// end-to-end encrypted and forwarded opaquely.
    PrivateEncrypted,
    /// `presence-`: authorised with the member's `channel_data` (or a signin).
    Presence,
    /// `#server-to-user-<id>`: only a connection signed in as that user may
    /// subscribe; no signature.
    ServerToUser(&'a str),
}

/// A validated Pusher channel name. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PusherChannel(ChannelName);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PusherChannelError {
    #[error("channel name is empty")]
    Empty,
    #[error("channel name is longer than {MAX_PUSHER_CHANNEL_NAME_LEN} characters")]
    TooLong,
    #[error("channel name contains the character {0:?}, which is not allowed")]
    BadCharacter(char),
    #[error("channel names starting with '#' are reserved, except #server-to-user-<user id>")]
    Reserved,
}

impl PusherChannel {
    pub fn new(name: &str) -> Result<Self, PusherChannelError> {
        validate_channel_name(name)?;
        let name = ChannelName::new(name).expect("the Pusher charset is a subset of ChannelName's");
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The same name as the hub knows it.
    pub fn channel_name(&self) -> &ChannelName {
        &self.0
    }

    pub fn kind(&self) -> ChannelKind<'_> {
        kind_and_rest(self.as_str()).0
    }

    /// Whether the channel keeps its last event for new subscribers.
    pub fn is_cache(&self) -> bool {
        kind_and_rest(self.as_str()).1.starts_with("cache-")
    }

    /// Whether `pusher:subscribe` must carry a valid `auth` signature.
    pub fn requires_auth(&self) -> bool {
        matches!(self.kind(), ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence)
    }

    /// Whether clients may send `client-*` events on it. Private and presence
    /// only: pusher-js refuses to trigger on encrypted channels, since the
    /// server would relay clear text on a channel whose point is encryption.
    pub fn accepts_client_events(&self) -> bool {
        matches!(self.kind(), ChannelKind::Private | ChannelKind::Presence)
    }
}

/// The kind by prefix, and the part of the name where a `cache-` prefix
/// would be (nothing, for a server-to-user channel).
fn kind_and_rest(name: &str) -> (ChannelKind<'_>, &str) {
    if let Some(user_id) = name.strip_prefix(SERVER_TO_USER_PREFIX) {
        return (ChannelKind::ServerToUser(user_id), "");
    }
    let prefixes = [
        ("private-encrypted-", ChannelKind::PrivateEncrypted),
        ("private-", ChannelKind::Private),
        ("presence-", ChannelKind::Presence),
    ];
    for (prefix, kind) in prefixes {
        if let Some(rest) = name.strip_prefix(prefix) {
            return (kind, rest);
        }
    }
    (ChannelKind::Public, name)
}

fn validate_channel_name(name: &str) -> Result<(), PusherChannelError> {
    if name.is_empty() {
        return Err(PusherChannelError::Empty);
    }
    if name.len() > MAX_PUSHER_CHANNEL_NAME_LEN {
        return Err(PusherChannelError::TooLong);
    }
    let checked = match name.strip_prefix(SERVER_TO_USER_PREFIX) {
        Some("") => return Err(PusherChannelError::Reserved),
        Some(user_id) => user_id,
        None if name.starts_with('#') => return Err(PusherChannelError::Reserved),
        None => name,
    };
    match checked.chars().find(|c| !is_allowed(*c)) {
        Some(bad) => Err(PusherChannelError::BadCharacter(bad)),
        None => Ok(()),
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-=@,.;".contains(c)
}

impl fmt::Debug for PusherChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PusherChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for PusherChannel {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventNameError {
    #[error("event name is empty")]
    Empty,
    #[error("event name is longer than {MAX_EVENT_NAME_LEN} characters")]
    TooLong,
    #[error("event names starting with \"pusher:\" or \"pusher_internal:\" are reserved")]
    Reserved,
    #[error("client events must start with \"client-\"")]
    NotClientEvent,
}

/// Checks the name of an event triggered through the HTTP API: 1..=200
/// characters, and not in the protocol's own `pusher:`/`pusher_internal:`
/// namespaces, which pusher-js would treat as protocol messages.
pub fn validate_event_name(name: &str) -> Result<(), EventNameError> {
    if name.is_empty() {
        return Err(EventNameError::Empty);
    }
    if name.chars().count() > MAX_EVENT_NAME_LEN {
        return Err(EventNameError::TooLong);
    }
    if RESERVED_EVENT_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(EventNameError::Reserved);
    }
    Ok(())
}

/// Checks the name of an event a client sends: as [`validate_event_name`],
/// and it must start with `client-`.
pub fn validate_client_event_name(name: &str) -> Result<(), EventNameError> {
    validate_event_name(name)?;
    if !name.starts_with(CLIENT_EVENT_PREFIX) {
        return Err(EventNameError::NotClientEvent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str) -> PusherChannel {
        PusherChannel::new(name).unwrap()
    }

    #[test]
    fn the_kind_comes_from_the_name_prefix() {
        assert_eq!(ch("my-channel").kind(), ChannelKind::Public);
        assert_eq!(ch("private-foobar").kind(), ChannelKind::Private);
        assert_eq!(ch("private-encrypted-foo").kind(), ChannelKind::PrivateEncrypted);
        assert_eq!(ch("presence-foobar").kind(), ChannelKind::Presence);
        assert_eq!(ch("#server-to-user-42").kind(), ChannelKind::ServerToUser("42"));
        // A prefix only counts at the start.
        assert_eq!(ch("my-private-channel").kind(), ChannelKind::Public);
    }

    #[test]
    fn cache_is_a_flag_after_the_kind_prefix() {
        let cases = [
            ("cache-x", ChannelKind::Public, true),
            ("private-cache-x", ChannelKind::Private, true),
            ("private-encrypted-cache-x", ChannelKind::PrivateEncrypted, true),
            ("presence-cache-x", ChannelKind::Presence, true),
            ("presence-x", ChannelKind::Presence, false),
            ("x-cache-y", ChannelKind::Public, false),
            ("#server-to-user-cache-1", ChannelKind::ServerToUser("cache-1"), false),
        ];
        for (name, kind, cache) in cases {
            assert_eq!((ch(name).kind(), ch(name).is_cache()), (kind, cache), "{name}");
        }
    }

    #[test]
    fn auth_and_client_events_follow_the_kind() {
        assert!(!ch("news").requires_auth());
        assert!(ch("private-a").requires_auth());
        assert!(ch("private-encrypted-a").requires_auth());
        assert!(ch("presence-a").requires_auth());
        assert!(!ch("#server-to-user-1").requires_auth());

        assert!(ch("private-a").accepts_client_events());
        assert!(ch("presence-cache-a").accepts_client_events());
        assert!(!ch("news").accepts_client_events());
        assert!(!ch("private-encrypted-a").accepts_client_events());
        assert!(!ch("#server-to-user-1").accepts_client_events());
    }

    #[test]
    fn names_follow_the_pusher_charset_and_length() {
        assert!(PusherChannel::new("a-Z_0=@,.;").is_ok());
        assert!(PusherChannel::new(&"x".repeat(200)).is_ok());
        assert_eq!(PusherChannel::new(""), Err(PusherChannelError::Empty));
        assert_eq!(PusherChannel::new(&"x".repeat(201)), Err(PusherChannelError::TooLong));
        // Fanfare's native names allow ':' and '/'; Pusher's do not.
        assert_eq!(PusherChannel::new("chat:room"), Err(PusherChannelError::BadCharacter(':')));
        assert_eq!(PusherChannel::new("a/b"), Err(PusherChannelError::BadCharacter('/')));
        assert_eq!(PusherChannel::new("a b"), Err(PusherChannelError::BadCharacter(' ')));
        assert_eq!(PusherChannel::new("é"), Err(PusherChannelError::BadCharacter('é')));
    }

    #[test]
    fn only_server_to_user_may_start_with_a_hash() {
        assert_eq!(PusherChannel::new("#private"), Err(PusherChannelError::Reserved));
        assert_eq!(PusherChannel::new("#server-to-user-"), Err(PusherChannelError::Reserved));
        assert_eq!(PusherChannel::new("#server-to-user-a#b"), Err(PusherChannelError::BadCharacter('#')));
        assert_eq!(PusherChannel::new("a#b"), Err(PusherChannelError::BadCharacter('#')));
        assert_eq!(ch("#server-to-user-alice@example.com").as_str(), "#server-to-user-alice@example.com");
    }

    #[test]
    fn a_pusher_channel_is_the_same_name_for_the_hub() {
        assert_eq!(ch("presence-room").channel_name(), &ChannelName::new("presence-room").unwrap());
    }

    #[test]
    fn api_event_names_are_bounded_and_not_reserved() {
        assert_eq!(validate_event_name("my-event"), Ok(()));
        assert_eq!(validate_event_name("client-typing"), Ok(()));
        assert_eq!(validate_event_name(&"e".repeat(200)), Ok(()));
        assert_eq!(validate_event_name(&"e".repeat(201)), Err(EventNameError::TooLong));
        assert_eq!(validate_event_name(""), Err(EventNameError::Empty));
        assert_eq!(validate_event_name("pusher:subscribe"), Err(EventNameError::Reserved));
        assert_eq!(validate_event_name("pusher_internal:member_added"), Err(EventNameError::Reserved));
    }

    #[test]
    fn client_event_names_must_start_with_client() {
        assert_eq!(validate_client_event_name("client-typing"), Ok(()));
        assert_eq!(validate_client_event_name("typing"), Err(EventNameError::NotClientEvent));
        assert_eq!(validate_client_event_name("pusher:ping"), Err(EventNameError::Reserved));
        let long = format!("client-{}", "x".repeat(194));
        assert_eq!(validate_client_event_name(&long), Err(EventNameError::TooLong));
    }
}
