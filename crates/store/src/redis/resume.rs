//! [`ResumePoints`] for [`RedisStore`]: one hash per (user, channel),
//! `fanfare:{user:<user>}:resume:<channel>`, field the holder, value
//! `"<expires_at_ms> <offset> <epoch>"`; the key expires with its latest
//! point.
//!
//! A save is one `EVALSHA resume_save.lua` over every channel it names
//! (they share the user's hash tag, so one script may touch them all, in
//! a Redis Cluster too), a claim one `EVALSHA resume_claim.lua`, a forget
//! one `HDEL`: one round trip each, on the writer's current connection.
//! Like cursors they take no part in the generation rule: a point holds an
//! epoch the caller gave, and a point of a lost epoch is refused by the
//! caller's recovery, never trusted.

use std::sync::LazyLock;

use fanfare_protocol::{ChannelName, Epoch, StreamPosition, UserId};
use redis::{Script, cmd};

use super::RedisStore;
use super::cursors::{run, user_tag};
use crate::resume::check_save_size;
use crate::{ResumePoint, ResumePoints, StoreError, Validity};

static SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("resume_save.lua")));
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("resume_claim.lua")));

const KEYSPACE: &str = "redis resume points";

/// The hash of `user`'s points in `channel`.
pub(crate) fn resume_key(user: &UserId, channel: &ChannelName) -> String {
    format!("fanfare:{{user:{}}}:resume:{}", user_tag(user), channel.as_str())
}

#[async_trait::async_trait]
impl ResumePoints for RedisStore {
    async fn save_resume_points(
        &self,
        user: &UserId,
        holder: &str,
        points: &[ResumePoint],
        validity: Validity,
    ) -> Result<(), StoreError> {
        check_save_size(points)?;
        self.check_open()?;
        if points.is_empty() {
            return Ok(());
        }
        let mut invocation = SAVE.prepare_invoke();
        invocation.arg(holder).arg(validity.now_ms).arg(validity.expires_at_ms);
        for point in points {
            invocation.key(resume_key(user, &point.channel));
            invocation.arg(point.position.epoch.as_str()).arg(point.position.offset);
        }
        let _: u8 = run(&self.shared, true, async |conn| invocation.invoke_async(conn).await).await?;
        Ok(())
    }

    async fn claim_resume_point(
        &self,
        user: &UserId,
        channel: &ChannelName,
        holder: &str,
        validity: Validity,
    ) -> Result<Option<StreamPosition>, StoreError> {
        self.check_open()?;
        let mut invocation = CLAIM.key(resume_key(user, channel));
        invocation.arg(holder).arg(validity.now_ms).arg(validity.expires_at_ms);
        let claimed: Option<(String, String)> =
            run(&self.shared, true, async |conn| invocation.invoke_async(conn).await).await?;
        let Some((epoch, offset)) = claimed else { return Ok(None) };
        let offset = offset.parse().map_err(|_| StoreError::Corrupt {
            keyspace: KEYSPACE,
            key: resume_key(user, channel),
            reason: "offset not a u64",
        })?;
        Ok(Some(StreamPosition::new(Epoch::new(&epoch), offset)))
    }

    async fn forget_resume_point(
        &self,
        user: &UserId,
        channel: &ChannelName,
        holder: &str,
    ) -> Result<bool, StoreError> {
        self.check_open()?;
        let key = resume_key(user, channel);
        let removed: u64 =
            run(&self.shared, true, async |conn| cmd("HDEL").arg(&key).arg(holder).query_async(conn).await)
                .await?;
        Ok(removed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_users_hash_tag() {
        let key = resume_key(&UserId::new("a}b"), &ChannelName::new("private-chat").unwrap());
        assert_eq!(key, "fanfare:{user:a%7Db}:resume:private-chat");
    }
}
