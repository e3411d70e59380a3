//! The names of the built-in conversation namespaces (`docs/members.md`):
//! direct channels `dm:<a>,<b>`, whose two members the name holds, and
//! each user's feed `feed:<user>`.

use crate::{ChannelName, ChannelNameError};

/// The namespace of direct channels.
pub const DIRECT_NAMESPACE: &str = "dm";
/// The namespace of users' feeds.
pub const FEED_NAMESPACE: &str = "feed";

/// Why a `dm:` name names no two members.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectNameError {
    #[error("a direct channel is dm:<user>,<user>: two user ids joined by one \",\"")]
    NotTwo,
    #[error("a direct channel's two user ids must differ")]
    Same,
    #[error("a direct channel's user ids are sorted bytewise: dm:{0},{1}")]
    Unsorted(String, String),
    #[error(transparent)]
    Name(#[from] ChannelNameError),
}

/// The two members of a direct channel, or why its name is not one; `None`
/// for a channel of another namespace.
pub fn direct_members(channel: &ChannelName) -> Option<Result<[&str; 2], DirectNameError>> {
    let rest = channel.as_str().strip_prefix(DIRECT_NAMESPACE)?.strip_prefix(':')?;
    Some(two_members(rest))
}

fn two_members(rest: &str) -> Result<[&str; 2], DirectNameError> {
    let (a, b) = rest.split_once(',').ok_or(DirectNameError::NotTwo)?;
    if a.is_empty() || b.is_empty() || b.contains(',') {
        return Err(DirectNameError::NotTwo);
    }
    match a.cmp(b) {
        std::cmp::Ordering::Less => Ok([a, b]),
        std::cmp::Ordering::Equal => Err(DirectNameError::Same),
        std::cmp::Ordering::Greater => Err(DirectNameError::Unsorted(b.to_owned(), a.to_owned())),
    }
}

/// The direct channel of two users, in either order.
pub fn direct_channel(one: &str, other: &str) -> Result<ChannelName, DirectNameError> {
    let (a, b) = if one <= other { (one, other) } else { (other, one) };
    let channel = ChannelName::new(&format!("{DIRECT_NAMESPACE}:{a},{b}"))?;
    two_members(&channel.as_str()[DIRECT_NAMESPACE.len() + 1..])?;
    Ok(channel)
}

/// A user's feed channel; `None` when the id cannot be part of a name.
pub fn feed_channel(user: &str) -> Option<ChannelName> {
    ChannelName::new(&format!("{FEED_NAMESPACE}:{user}")).ok()
}

/// Whose feed `channel` is, if it is a feed.
pub fn feed_owner(channel: &ChannelName) -> Option<&str> {
    channel.as_str().strip_prefix(FEED_NAMESPACE)?.strip_prefix(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(name: &str) -> Option<Result<[&'static str; 2], DirectNameError>> {
        let channel: &'static ChannelName = Box::leak(Box::new(ChannelName::new(name).unwrap()));
        direct_members(channel)
    }

    #[test]
    fn a_direct_name_holds_two_distinct_sorted_users() {
        assert_eq!(members("dm:alice,bob"), Some(Ok(["alice", "bob"])));
        assert_eq!(members("dm:a:x,b"), Some(Ok(["a:x", "b"])));
        assert_eq!(
            members("dm:bob,alice"),
            Some(Err(DirectNameError::Unsorted("alice".into(), "bob".into())))
        );
        assert_eq!(members("dm:bob,bob"), Some(Err(DirectNameError::Same)));
        for bad in ["dm:alice", "dm:,bob", "dm:alice,", "dm:a,b,c", "dm:"] {
            assert_eq!(members(bad), Some(Err(DirectNameError::NotTwo)), "{bad}");
        }
        assert_eq!(members("dms:alice,bob"), None);
        assert_eq!(members("chat:alice,bob"), None);
    }

    #[test]
    fn the_direct_channel_of_two_users_sorts_them() {
        assert_eq!(direct_channel("bob", "alice").unwrap().as_str(), "dm:alice,bob");
        assert_eq!(direct_channel("bob", "bob"), Err(DirectNameError::Same));
        assert!(direct_channel("a,b", "c").is_err());
        assert!(matches!(direct_channel("a b", "c"), Err(DirectNameError::Name(_))));
    }

    #[test]
    fn a_feed_is_named_after_its_user() {
        let feed = feed_channel("alice").unwrap();
        assert_eq!((feed.as_str(), feed_owner(&feed)), ("feed:alice", Some("alice")));
        assert_eq!(feed_owner(&ChannelName::new("feeds:alice").unwrap()), None);
        assert!(feed_channel("a b").is_none());
    }
}
