//! [`RedisAnnouncements`]: the told state of channels and members, in Redis.
//!
//! ```text
//! fanfare:{<channel>}:told   HASH "#" -> state of the channel, "u:<user>" -> state of a member
//!                            state: "1" open, "c<ms>" closing since (Redis time); vacant: no field
//! ```
//!
//! Every call is one run of `announce.lua`, which reads the engine's truth
//! (`occupancy.rs`'s counts, `presence.rs`'s users) in the same script.

use std::sync::Arc;
use std::time::Duration;

use fanfare_protocol::cluster::channel_key;
use redis::aio::ConnectionManager;

use super::scripts::{self, Lua};
use crate::ClusterError;
use crate::announcements::{Announced, Announcements};

/// [`Announcements`] on Redis. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct RedisAnnouncements {
    conn: ConnectionManager,
    script: Arc<Lua>,
}

impl RedisAnnouncements {
    /// Connects to the Redis at `url` with a connection of its own.
    pub async fn open(url: &str) -> Result<Self, ClusterError> {
        Ok(Self::with_connection(scripts::connect(url).await?))
    }

    pub(crate) fn with_connection(conn: ConnectionManager) -> Self {
        Self { conn, script: Arc::new(Lua::new("announce", include_str!("scripts/announce.lua"))) }
    }

    async fn run(&self, op: &str, subject: &Announced, grace: Duration) -> Result<bool, ClusterError> {
        let (channel, truth, field, user) = match subject {
            Announced::Channel(channel) => (channel, "occupancy", "#".to_owned(), ""),
            Announced::Member(channel, user) => {
                (channel, "presence:users", format!("u:{}", user.as_str()), user.as_str())
            }
        };
        let mut invocation = self.script.prepare();
        invocation.key(channel_key(channel, "told")).key(channel_key(channel, truth));
        invocation.arg(op).arg(field).arg(grace.as_millis() as u64).arg(user);
        self.script.run(&mut self.conn.clone(), &invocation).await
    }
}

#[async_trait::async_trait]
impl Announcements for RedisAnnouncements {
    async fn opening(&self, subject: &Announced, grace: Duration) -> Result<bool, ClusterError> {
        self.run("open", subject, grace).await
    }

    async fn closing(&self, subject: &Announced) -> Result<(), ClusterError> {
        self.run("close", subject, Duration::ZERO).await.map(drop)
    }

    async fn release(&self, subject: &Announced) -> Result<bool, ClusterError> {
        self.run("release", subject, Duration::ZERO).await
    }
}

#[cfg(test)]
mod tests {
    use fanfare_protocol::native::Member;
    use fanfare_protocol::{ChannelName, UserId};
    use fanfare_testkit::RedisServer;

    use super::*;
    use crate::redis::RedisEngines;
    use crate::{NodeId, Occupancy, PresenceStore};

    const GRACE: Duration = Duration::from_secs(10);

    /// A member leaves on node A and joins again on node B before A's hold
    /// ends: B's opening cancels A's closing, A's release announces
    /// nothing; a real leave is announced once, a later join once.
    #[tokio::test]
    async fn a_reopening_on_another_node_cancels_the_held_closing_of_a_member() {
        let Some(redis) = RedisServer::start_or_skip() else { return };
        let engines = RedisEngines::open(&redis.url()).await.unwrap();
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let channel = ChannelName::new("presence-room").unwrap();
        let member = Member { user: UserId::new("alice"), info: None };
        let subject = Announced::Member(channel.clone(), member.user.clone());
        let told = &engines.announcements;

        assert!(engines.presence.join(&a, &channel, &member, 1).await.unwrap());
        assert!(told.opening(&subject, GRACE).await.unwrap(), "the first join is announced");
        assert!(engines.presence.leave(&a, &channel, &member.user, 1).await.unwrap());
        told.closing(&subject).await.unwrap();
        assert!(engines.presence.join(&b, &channel, &member, 2).await.unwrap());
        assert!(!told.opening(&subject, GRACE).await.unwrap(), "B's join cancels A's held leave");
        assert!(!told.release(&subject).await.unwrap(), "A's hold ends: nothing to announce");

        assert!(engines.presence.leave(&b, &channel, &member.user, 2).await.unwrap());
        told.closing(&subject).await.unwrap();
        assert!(told.release(&subject).await.unwrap(), "a real leave is announced");
        assert!(!told.release(&subject).await.unwrap(), "once");
        assert!(engines.presence.join(&a, &channel, &member, 3).await.unwrap());
        assert!(told.opening(&subject, GRACE).await.unwrap(), "a join after it is announced");
    }

    /// The channel's side, and a closing whose node never released it.
    #[tokio::test]
    async fn a_channel_reoccupied_within_the_hold_announces_nothing_and_a_stale_closing_expires() {
        let Some(redis) = RedisServer::start_or_skip() else { return };
        let engines = RedisEngines::open(&redis.url()).await.unwrap();
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let channel = ChannelName::new("news").unwrap();
        let subject = Announced::Channel(channel.clone());
        let told = &engines.announcements;

        assert!(engines.occupancy.set(&a, &channel, 1).await.unwrap().occupied());
        assert!(told.opening(&subject, GRACE).await.unwrap());
        assert!(engines.occupancy.set(&a, &channel, 0).await.unwrap().vacated());
        told.closing(&subject).await.unwrap();
        assert!(engines.occupancy.set(&b, &channel, 2).await.unwrap().occupied());
        assert!(!told.opening(&subject, GRACE).await.unwrap());
        assert!(!told.release(&subject).await.unwrap());

        // B vacates and dies before its release: a later opening past the
        // grace is announced (a duplicate rather than a lost occupied).
        assert!(engines.occupancy.set(&b, &channel, 0).await.unwrap().vacated());
        told.closing(&subject).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(engines.occupancy.set(&a, &channel, 1).await.unwrap().occupied());
        assert!(told.opening(&subject, Duration::from_millis(10)).await.unwrap());
    }
}
