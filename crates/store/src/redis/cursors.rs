//! [`CursorStore`] for [`RedisStore`]: one hash per user,
//! `fanfare:{user:<user>}:cursors`, field the channel, value
//! `"<epoch> <offset>"`.
//!
//! A mark is one `EVALSHA mark_read.lua` (the compare and the write in one
//! atomic step), a read of many cursors one `HMGET`, a forget one `HDEL`:
//! one round trip each, on the writer's current connection (multiplexed,
//! so they pipeline with everything else). Measured with
//! `examples/cursor_marks.rs` (release, 2 shared cores, local Redis, 20,000
//! marks): ~11,600 marks/s one at a time (the round trip), ~190,000/s from
//! 64 tasks.
//!
//! Cursors take no part in the generation rule (module doc of [`super`]):
//! the store assigns no offsets here, it keeps what the caller marked, in
//! the epoch the caller gave. If Redis loses them (a flush, a failover to a
//! lagging replica), the users' next marks start afresh and messages show
//! as unread meanwhile.
//!
//! The hash tag is the whole user id with `%`, `{` and `}` percent-escaped
//! ([`user_tag`]): user ids come from the app and may hold any character,
//! and an unescaped `}` would end the tag early, so two users would share
//! a slot by accident and per-user keys added later would not share one
//! by design.

use std::sync::LazyLock;

use fanfare_protocol::{ChannelName, Epoch, StreamPosition, UserId};
use redis::{Script, cmd};

use super::{BACKEND, RedisStore, Shared, redis_error};
use crate::cursors::check_cursors_asked;
use crate::{CursorStore, MarkOutcome, StoreError};

static MARK_READ: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("mark_read.lua")));

const KEYSPACE: &str = "redis cursors";

/// The user id as a hash tag's content: `%`, `{` and `}` become `%25`,
/// `%7B` and `%7D`, so the tag is always exactly the user (and distinct
/// users get distinct keys).
pub(crate) fn user_tag(user: &UserId) -> String {
    let mut tag = String::with_capacity(user.as_str().len());
    for c in user.as_str().chars() {
        match c {
            '%' => tag.push_str("%25"),
            '{' => tag.push_str("%7B"),
            '}' => tag.push_str("%7D"),
            c => tag.push(c),
        }
    }
    tag
}

/// The hash of `user`'s cursors.
pub(crate) fn cursors_key(user: &UserId) -> String {
    format!("fanfare:{{user:{}}}:cursors", user_tag(user))
}

/// `"<epoch> <offset>"`, split at the last space (an epoch is opaque text).
fn parse_cursor(user: &UserId, channel: &ChannelName, value: &[u8]) -> Result<StreamPosition, StoreError> {
    let corrupt =
        |reason| StoreError::Corrupt { keyspace: KEYSPACE, key: format!("{user}/{channel}"), reason };
    let text = std::str::from_utf8(value).map_err(|_| corrupt("not UTF-8"))?;
    let (epoch, offset) = text.rsplit_once(' ').ok_or_else(|| corrupt("not \"<epoch> <offset>\""))?;
    let offset = offset.parse().map_err(|_| corrupt("offset not a u64"))?;
    Ok(StreamPosition::new(Epoch::new(epoch), offset))
}

/// Runs one command on the current connection. `maybe_applied` is what a
/// lost connection means for it (see [`StoreError::Unavailable`]).
pub(crate) async fn run<T: redis::FromRedisValue>(
    shared: &Shared,
    maybe_applied: bool,
    request: impl AsyncFnOnce(&mut redis::aio::MultiplexedConnection) -> redis::RedisResult<T>,
) -> Result<T, StoreError> {
    let Some(link) = shared.current() else {
        return Err(StoreError::unavailable(BACKEND, false, None));
    };
    let mut conn = link.conn.clone();
    request(&mut conn).await.map_err(|error| {
        let error = redis_error(error, maybe_applied);
        if matches!(error, StoreError::Unavailable { .. }) {
            shared.suspect.notify_one();
        }
        error
    })
}

#[async_trait::async_trait]
impl CursorStore for RedisStore {
    async fn mark_read(
        &self,
        user: &UserId,
        channel: &ChannelName,
        read: StreamPosition,
    ) -> Result<MarkOutcome, StoreError> {
        self.check_open()?;
        let mut invocation = MARK_READ.key(cursors_key(user));
        invocation.arg(channel.as_str()).arg(read.epoch.as_str()).arg(read.offset);
        let (epoch, offset, moved): (Vec<u8>, Vec<u8>, u8) =
            run(&self.shared, true, async |conn| invocation.invoke_async(conn).await).await?;
        let mut value = epoch;
        value.push(b' ');
        value.extend_from_slice(&offset);
        Ok(MarkOutcome { cursor: parse_cursor(user, channel, &value)?, moved: moved == 1 })
    }

    async fn cursor(
        &self,
        user: &UserId,
        channel: &ChannelName,
    ) -> Result<Option<StreamPosition>, StoreError> {
        self.check_open()?;
        let key = cursors_key(user);
        let value: Option<Vec<u8>> = run(&self.shared, false, async |conn| {
            cmd("HGET").arg(&key).arg(channel.as_str()).query_async(conn).await
        })
        .await?;
        value.map(|value| parse_cursor(user, channel, &value)).transpose()
    }

    async fn cursors(
        &self,
        user: &UserId,
        channels: &[ChannelName],
    ) -> Result<Vec<Option<StreamPosition>>, StoreError> {
        check_cursors_asked(channels)?;
        self.check_open()?;
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let mut hmget = cmd("HMGET");
        hmget.arg(cursors_key(user));
        for channel in channels {
            hmget.arg(channel.as_str());
        }
        let values: Vec<Option<Vec<u8>>> =
            run(&self.shared, false, async |conn| hmget.query_async(conn).await).await?;
        if values.len() != channels.len() {
            let key = user.to_string();
            return Err(StoreError::Corrupt {
                keyspace: KEYSPACE,
                key,
                reason: "HMGET answered another count",
            });
        }
        let cursors = channels.iter().zip(values);
        cursors.map(|(channel, value)| value.map(|v| parse_cursor(user, channel, &v)).transpose()).collect()
    }

    async fn forget_cursor(&self, user: &UserId, channel: &ChannelName) -> Result<bool, StoreError> {
        self.check_open()?;
        let key = cursors_key(user);
        let removed: u64 = run(&self.shared, true, async |conn| {
            cmd("HDEL").arg(&key).arg(channel.as_str()).query_async(conn).await
        })
        .await?;
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_with_braces_get_one_whole_hash_tag_and_distinct_keys() {
        assert_eq!(cursors_key(&UserId::new("alice")), "fanfare:{user:alice}:cursors");
        assert_eq!(cursors_key(&UserId::new("a}b{%")), "fanfare:{user:a%7Db%7B%25}:cursors");
        assert_ne!(cursors_key(&UserId::new("%7D")), cursors_key(&UserId::new("}")));
    }

    #[test]
    fn a_stored_value_splits_at_its_last_space() {
        let (user, channel) = (UserId::new("u"), ChannelName::new("c").unwrap());
        let cursor = parse_cursor(&user, &channel, b"an epoch 18446744073709551615").unwrap();
        assert_eq!(cursor, StreamPosition::new(Epoch::new("an epoch"), u64::MAX));
        assert!(parse_cursor(&user, &channel, b"nospace").is_err());
    }
}
