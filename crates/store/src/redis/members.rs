//! [`MemberStore`] for [`RedisStore`]: the channel side under the
//! channel's hash tag, each user's index under the user's, so that no
//! script touches two slots of a Redis Cluster.
//!
//! An add runs in three steps (a removal skips the first):
//! 1. `member_reserve.lua`, per named user on the user's side: index the
//!    channel unless that would exceed `max_channels`. The first refusal
//!    stops the reservations, and step 2 then changes nothing;
//! 2. `member_change.lua` on the channel's side: decide the change
//!    atomically (checking `max_members`), take the channel's next change
//!    number, and report each named user's state at that number;
//! 3. `member_apply.lua`, per user reserved in step 1 or changed in step 2:
//!    apply that state, last change number wins.
//!
//! What a reader may see between the steps is in the trait's contract
//! ("Cluster"). The calls go one after the other on the multiplexed
//! connection: member changes are rare and small next to appends.

use std::sync::LazyLock;

use fanfare_protocol::cluster::channel_key;
use fanfare_protocol::{ChannelName, UserId};
use redis::Script;

use super::{BACKEND, RedisStore, redis_error};
use crate::members::distinct_users;
use crate::{MemberLimits, MemberStore, PageAfter, StoreError};

static CHANGE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("member_change.lua")));
static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("member_reserve.lua")));
static APPLY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("member_apply.lua")));

/// A key of `user`'s side: `fanfare:{user:<user>}:<suffix>`, the hash tag
/// the per-user rate buckets use too.
pub(crate) fn user_key(user: &UserId, suffix: &str) -> String {
    format!("fanfare:{{user:{user}}}:{suffix}")
}

/// What `member_change.lua` does.
#[derive(Clone, Copy)]
enum ChangeOp {
    Add,
    Remove,
    /// Change nothing, only stamp and report (after a refused reservation).
    State,
}

impl ChangeOp {
    fn as_arg(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::State => "state",
        }
    }
}

/// The reply of `member_change.lua`.
#[derive(Debug, PartialEq, Eq)]
struct ChangeReply {
    /// The add would have exceeded `max_members`; nothing changed.
    refused: bool,
    seq: u64,
    /// Per named user: (changed by this call, member after it).
    states: Vec<(bool, bool)>,
}

fn parse_change_reply(reply: &[i64], users: usize) -> Result<ChangeReply, StoreError> {
    let bad =
        || StoreError::Corrupt { keyspace: "member_change.lua", key: String::new(), reason: "bad reply" };
    let (&[refused, seq], states) = reply.split_first_chunk::<2>().ok_or_else(bad)?;
    if states.len() != users || states.iter().any(|s| !(0..=3).contains(s)) {
        return Err(bad());
    }
    let seq = u64::try_from(seq).map_err(|_| bad())?;
    let states = states.iter().map(|s| (s & 2 != 0, s & 1 != 0)).collect();
    Ok(ChangeReply { refused: refused == 1, seq, states })
}

/// The `ZRANGEBYLEX` minimum after `after` (exclusive), or from the start.
fn lex_after(after: Option<&str>) -> Vec<u8> {
    match after {
        Some(after) => [b"(", after.as_bytes()].concat(),
        None => b"-".to_vec(),
    }
}

impl RedisStore {
    fn connection(&self) -> Result<redis::aio::MultiplexedConnection, StoreError> {
        self.check_open()?;
        let link = self.shared.current().ok_or_else(|| StoreError::unavailable(BACKEND, false, None))?;
        Ok(link.conn)
    }

    /// Step 1 for every user: `Ok(reserved_now)`, or the first user refused.
    async fn reserve(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        channel: &ChannelName,
        users: &[UserId],
        max_channels: u64,
    ) -> Result<(Vec<bool>, Option<UserId>), StoreError> {
        let mut reserved = vec![false; users.len()];
        for (slot, user) in reserved.iter_mut().zip(users) {
            let mut invocation = RESERVE.key(user_key(user, "channels"));
            invocation.arg(channel.as_str()).arg(max_channels);
            let reply: i64 = invocation.invoke_async(conn).await.map_err(|e| redis_error(e, true))?;
            match reply {
                -1 => return Ok((reserved, Some(user.clone()))),
                1 => *slot = true,
                _ => {}
            }
        }
        Ok((reserved, None))
    }

    /// Step 2.
    async fn change(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        channel: &ChannelName,
        op: ChangeOp,
        users: &[UserId],
        max_members: u64,
    ) -> Result<ChangeReply, StoreError> {
        let mut invocation = CHANGE.key(channel_key(channel, "members"));
        invocation.key(channel_key(channel, "member_seq")).arg(op.as_arg()).arg(max_members);
        for user in users {
            invocation.arg(user.as_str());
        }
        let reply: Vec<i64> = invocation.invoke_async(conn).await.map_err(|e| redis_error(e, true))?;
        parse_change_reply(&reply, users.len())
    }

    /// Step 3 for each user `touched` says.
    async fn apply(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        channel: &ChannelName,
        users: &[UserId],
        reply: &ChangeReply,
        touched: impl Fn(usize) -> bool,
    ) -> Result<(), StoreError> {
        for (index, (user, &(_, member))) in users.iter().zip(&reply.states).enumerate() {
            if !touched(index) {
                continue;
            }
            let mut invocation = APPLY.key(user_key(user, "channels"));
            invocation
                .key(user_key(user, "channel_seq"))
                .arg(channel.as_str())
                .arg(reply.seq)
                .arg(u8::from(member));
            let _: i64 = invocation.invoke_async(conn).await.map_err(|e| redis_error(e, true))?;
        }
        Ok(())
    }
}

/// The users the reply says changed.
fn changed(users: &[UserId], reply: &ChangeReply) -> Vec<UserId> {
    users.iter().zip(&reply.states).filter(|(_, (changed, _))| *changed).map(|(u, _)| u.clone()).collect()
}

#[async_trait::async_trait]
impl MemberStore for RedisStore {
    async fn add_members(
        &self,
        channel: &ChannelName,
        users: &[UserId],
        limits: MemberLimits,
    ) -> Result<Vec<UserId>, StoreError> {
        let users = distinct_users(users)?;
        if users.is_empty() {
            return Ok(users);
        }
        let mut conn = self.connection()?;
        let (reserved, refused_user) = self.reserve(&mut conn, channel, &users, limits.max_channels).await?;
        let op = if refused_user.is_some() { ChangeOp::State } else { ChangeOp::Add };
        let reply = self.change(&mut conn, channel, op, &users, limits.max_members).await?;
        self.apply(&mut conn, channel, &users, &reply, |i| reserved[i] || reply.states[i].0).await?;
        if let Some(user) = refused_user {
            return Err(StoreError::TooManyChannels { user, max: limits.max_channels });
        }
        if reply.refused {
            return Err(StoreError::TooManyMembers { channel: channel.clone(), max: limits.max_members });
        }
        Ok(changed(&users, &reply))
    }

    async fn remove_members(
        &self,
        channel: &ChannelName,
        users: &[UserId],
    ) -> Result<Vec<UserId>, StoreError> {
        let users = distinct_users(users)?;
        if users.is_empty() {
            return Ok(users);
        }
        let mut conn = self.connection()?;
        let reply = self.change(&mut conn, channel, ChangeOp::Remove, &users, 0).await?;
        self.apply(&mut conn, channel, &users, &reply, |i| reply.states[i].0).await?;
        Ok(changed(&users, &reply))
    }

    async fn is_member(&self, channel: &ChannelName, user: &UserId) -> Result<bool, StoreError> {
        let mut conn = self.connection()?;
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(channel_key(channel, "members"))
            .arg(user.as_str())
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error(e, false))?;
        Ok(score.is_some())
    }

    async fn member_count(&self, channel: &ChannelName) -> Result<u64, StoreError> {
        let mut conn = self.connection()?;
        redis::cmd("ZCARD")
            .arg(channel_key(channel, "members"))
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error(e, false))
    }

    async fn members(
        &self,
        channel: &ChannelName,
        page: PageAfter<'_, UserId>,
    ) -> Result<Vec<UserId>, StoreError> {
        let after = page.after.map(UserId::as_str);
        let names = self.lex_page(channel_key(channel, "members"), after, page.bounded_limit()).await?;
        Ok(names.into_iter().map(UserId::new).collect())
    }

    async fn channels_of(
        &self,
        user: &UserId,
        page: PageAfter<'_, ChannelName>,
    ) -> Result<Vec<ChannelName>, StoreError> {
        let after = page.after.map(ChannelName::as_str);
        let names = self.lex_page(user_key(user, "channels"), after, page.bounded_limit()).await?;
        names
            .into_iter()
            .map(|name| {
                ChannelName::new(&name).map_err(|_| StoreError::Corrupt {
                    keyspace: "channels",
                    key: user_key(user, "channels"),
                    reason: "not a channel name",
                })
            })
            .collect()
    }
}

impl RedisStore {
    /// One `ZRANGEBYLEX` page of a score-0 sorted set.
    async fn lex_page(
        &self,
        key: String,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.connection()?;
        redis::cmd("ZRANGEBYLEX")
            .arg(key)
            .arg(lex_after(after))
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error(e, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_replies_decode_flags_per_user() {
        let reply = parse_change_reply(&[0, 7, 3, 1, 0, 2], 4).unwrap();
        assert_eq!(
            reply,
            ChangeReply {
                refused: false,
                seq: 7,
                states: vec![(true, true), (false, true), (false, false), (true, false)],
            }
        );
        assert!(parse_change_reply(&[1, 8, 0], 1).unwrap().refused);
    }

    #[test]
    fn malformed_change_replies_are_corrupt() {
        assert!(parse_change_reply(&[0], 0).is_err(), "too short");
        assert!(parse_change_reply(&[0, 1, 1], 2).is_err(), "a state missing");
        assert!(parse_change_reply(&[0, 1, 4], 1).is_err(), "not a state");
        assert!(parse_change_reply(&[0, -1], 0).is_err(), "a negative change number");
    }

    #[test]
    fn keys_put_each_side_under_its_own_hash_tag() {
        let channel = ChannelName::new("chat:a").unwrap();
        assert_eq!(channel_key(&channel, "members"), "fanfare:{chat:a}:members");
        assert_eq!(user_key(&UserId::new("alice"), "channels"), "fanfare:{user:alice}:channels");
        assert_eq!(lex_after(Some("bob")), b"(bob");
        assert_eq!(lex_after(None), b"-");
    }
}
