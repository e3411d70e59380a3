//! How the embedded store lays out membership (the rows are also in the
//! table at the top of `keys.rs`).
//!
//! | keyspace        | key                                          | value            |
//! |-----------------|----------------------------------------------|------------------|
//! | `members`       | channel, `0x00`, user id                     | empty            |
//! | `user_channels` | user id length (u16 BE), user id, channel    | empty            |
//! | `member_counts` | `c`, channel / `u`, user id                  | count (u64 BE)   |
//!
//! Channel names never contain `0x00`, so a channel's members are one key
//! range sorted bytewise by user id. User ids may contain any byte, so the
//! user side starts with the id's length instead of a separator: a user's
//! channels are one key range sorted bytewise by channel name. The counts
//! let a change check its limits without scanning.

use fanfare_protocol::{ChannelName, UserId};

use crate::StoreError;

pub(super) const MEMBERS: &str = "members";
pub(super) const USER_CHANNELS: &str = "user_channels";
pub(super) const MEMBER_COUNTS: &str = "member_counts";

const SEPARATOR: u8 = 0x00;

/// `channel 0x00`: the start of every member key of `channel`.
pub(super) fn member_prefix(channel: &ChannelName) -> Vec<u8> {
    let mut key = Vec::with_capacity(channel.as_str().len() + 1 + 32);
    key.extend_from_slice(channel.as_str().as_bytes());
    key.push(SEPARATOR);
    key
}

pub(super) fn member_key(channel: &ChannelName, user: &UserId) -> Vec<u8> {
    let mut key = member_prefix(channel);
    key.extend_from_slice(user.as_str().as_bytes());
    key
}

/// The user id at the end of a member key of `channel`.
pub(super) fn user_of_member_key(channel: &ChannelName, key: &[u8]) -> Result<UserId, StoreError> {
    let text = key.get(member_prefix(channel).len()..).and_then(|bytes| std::str::from_utf8(bytes).ok());
    text.map(UserId::new).ok_or_else(|| corrupt(MEMBERS, channel.to_string(), "user id not UTF-8"))
}

/// The user's length (u16 BE) and id: the start of every key of `user` in
/// `user_channels`. User ids are far shorter than 65,535 bytes (the server
/// bounds them); a longer one is cut, which only merges such giants' rows.
pub(super) fn user_prefix(user: &UserId) -> Vec<u8> {
    let bytes = user.as_str().as_bytes();
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(2 + bytes.len() + 32);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(&bytes[..usize::from(len)]);
    key
}

pub(super) fn user_channel_key(user: &UserId, channel: &ChannelName) -> Vec<u8> {
    let mut key = user_prefix(user);
    key.extend_from_slice(channel.as_str().as_bytes());
    key
}

/// The channel at the end of a `user_channels` key of `user`.
pub(super) fn channel_of_user_key(user: &UserId, key: &[u8]) -> Result<ChannelName, StoreError> {
    let text = key.get(user_prefix(user).len()..).and_then(|bytes| std::str::from_utf8(bytes).ok());
    text.and_then(|name| ChannelName::new(name).ok())
        .ok_or_else(|| corrupt(USER_CHANNELS, user.to_string(), "not a channel name"))
}

pub(super) fn channel_count_key(channel: &ChannelName) -> Vec<u8> {
    [b"c", channel.as_str().as_bytes()].concat()
}

pub(super) fn user_count_key(user: &UserId) -> Vec<u8> {
    [b"u", user.as_str().as_bytes()].concat()
}

pub(super) fn decode_count(key: &[u8], value: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| {
        corrupt(MEMBER_COUNTS, String::from_utf8_lossy(key).into_owned(), "count is not 8 bytes")
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// The first key after every key that starts with `prefix` (`None`: no
/// such key, the prefix is all `0xFF`).
pub(super) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn corrupt(keyspace: &'static str, key: String, reason: &'static str) -> StoreError {
    StoreError::Corrupt { keyspace, key, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    #[test]
    fn member_keys_sort_by_user_bytes_within_their_channel() {
        let room = channel("chat:a");
        let mut keys: Vec<Vec<u8>> =
            ["b", "a", "ab", "B", "ä"].map(|u| member_key(&room, &UserId::new(u))).into();
        keys.sort();
        let users: Vec<String> =
            keys.iter().map(|k| user_of_member_key(&room, k).unwrap().as_str().to_owned()).collect();
        assert_eq!(users, ["B", "a", "ab", "b", "ä"]);
        assert!(member_key(&channel("chat:a"), &UserId::new("x")) < member_prefix(&channel("chat:a0")));
    }

    #[test]
    fn user_keys_of_prefix_ids_stay_apart() {
        let ids = [UserId::new("a"), UserId::new("a\u{0}b")];
        let key = user_channel_key(&ids[1], &channel("x"));
        assert!(!key.starts_with(&user_prefix(&ids[0])), "the length keeps `a` from matching `a\\0b`");
        assert_eq!(channel_of_user_key(&ids[1], &key).unwrap(), channel("x"));
    }

    #[test]
    fn counts_round_trip_and_bad_ones_are_corrupt() {
        assert_eq!(decode_count(b"cx", &7u64.to_be_bytes()).unwrap(), 7);
        assert!(matches!(decode_count(b"cx", b"7"), Err(StoreError::Corrupt { .. })));
        assert_ne!(channel_count_key(&channel("x")), user_count_key(&UserId::new("x")));
    }

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b"ab\x00"), Some(b"ab\x01".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
