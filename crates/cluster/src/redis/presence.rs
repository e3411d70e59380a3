//! [`RedisPresence`]: presence keyed by user, in Redis.
//!
//! Keys of a channel (one hash tag, so each script touches one slot):
//!
//! ```text
//! fanfare:{<channel>}:presence:conns:<node>  HASH conn -> user text     connections the node holds
//! fanfare:{<channel>}:presence:users         HASH user text -> count    connections per user, all nodes
//! fanfare:{<channel>}:presence:info          HASH user text -> record   "<user as sent, JSON>\n<info JSON or empty>"
//! fanfare:node:<node>:presence               HASH channel -> token      where the node holds connections
//! ```
//!
//! 1. `join` marks the channel in the node's index (`channel_index.rs`),
//!    runs `presence_join.lua` (a connection already there counts once;
//!    the user's count going 0 → 1 is the first join, stores the record
//!    and, with `join_pushing`, publishes the join push on the channel's
//!    live topic), then marks the channel again.
//! 2. `leave` reads the channel's token, runs `presence_leave.lua` (the
//!    count going 1 → 0 is the last leave, drops the record and publishes
//!    the leave push if given), and
//!    when the node holds nothing more there, forgets the channel unless
//!    it was marked again meanwhile.
//! 3. `remove_node` runs `presence_remove_node.lua` for every indexed
//!    channel (the script deletes the node's connections and returns the
//!    records of users left with none, so a second caller gets nothing),
//!    then forgets those channels the same way.

use fanfare_protocol::cluster::{KEY_PREFIX, channel_key, live_channel};
use fanfare_protocol::native::Member;
use fanfare_protocol::{ChannelName, JsonData, UserId};
use redis::aio::ConnectionManager;

use super::channel_index::{ChannelIndex, IndexKeys};
use super::scripts::{self, Lua, corrupt};
use crate::{ClusterError, NodeId, PresenceChange, PresenceStore};

/// The scripts, built once (each keeps its SHA for `EVALSHA`).
struct Scripts {
    join: Lua,
    leave: Lua,
    remove_node: Lua,
    index: ChannelIndex,
}

impl Scripts {
    fn new() -> Self {
        Self {
            join: Lua::new("presence_join", include_str!("scripts/presence_join.lua")),
            leave: Lua::new("presence_leave", include_str!("scripts/presence_leave.lua")),
            remove_node: Lua::new("presence_remove_node", include_str!("scripts/presence_remove_node.lua")),
            index: ChannelIndex::new(),
        }
    }
}

/// [`PresenceStore`] on Redis. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct RedisPresence {
    conn: ConnectionManager,
    scripts: std::sync::Arc<Scripts>,
}

impl RedisPresence {
    /// Connects to the Redis at `url` with a connection of its own.
    pub async fn open(url: &str) -> Result<Self, ClusterError> {
        Ok(Self::with_connection(scripts::connect(url).await?))
    }

    pub(crate) fn with_connection(conn: ConnectionManager) -> Self {
        Self { conn, scripts: std::sync::Arc::new(Scripts::new()) }
    }

    /// The per-channel keys, in the order every presence script takes them.
    fn keys(channel: &ChannelName, node: &NodeId) -> [String; 3] {
        [
            channel_key(channel, &format!("presence:conns:{node}")),
            channel_key(channel, "presence:users"),
            channel_key(channel, "presence:info"),
        ]
    }
}

fn index_keys(node: &NodeId) -> IndexKeys {
    IndexKeys { index: format!("{KEY_PREFIX}:node:{node}:presence"), nodes: None }
}

/// `"<user as sent>\n<info or empty>"`: JSON never holds a raw newline, so
/// the first one ends the user.
fn encode_record(member: &Member) -> String {
    let user = serde_json::to_string(&member.user.as_sent()).expect("a user id always serializes");
    let info = member.info.as_ref().map_or("", JsonData::as_str);
    format!("{user}\n{info}")
}

fn decode_record(record: &str) -> Result<Member, ClusterError> {
    let (user, info) = record.split_once('\n').ok_or_else(|| corrupt("presence member", "no newline"))?;
    let user: serde_json::Value = serde_json::from_str(user).map_err(|e| corrupt("presence member", e))?;
    let user = UserId::from_json(&user).ok_or_else(|| corrupt("presence member", "user is not an id"))?;
    let info = match info {
        "" => None,
        info => Some(JsonData::parse(info.to_owned()).map_err(|e| corrupt("presence member", e))?),
    };
    Ok(Member { user, info })
}

/// The live topic and the frame a presence script publishes, or `""` for none.
fn push_args(invocation: &mut redis::ScriptInvocation<'_>, channel: &ChannelName, push: Option<Vec<u8>>) {
    match push {
        Some(frame) => invocation.arg(live_channel(channel)).arg(frame),
        None => invocation.arg("").arg(""),
    };
}

fn channel_name(name: &str) -> Result<ChannelName, ClusterError> {
    ChannelName::new(name).map_err(|e| corrupt("presence channel", e))
}

#[async_trait::async_trait]
impl PresenceStore for RedisPresence {
    async fn join(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        member: &Member,
        conn: u64,
    ) -> Result<bool, ClusterError> {
        self.join_pushing(node, channel, member, conn, None).await
    }

    async fn leave(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        user: &UserId,
        conn: u64,
    ) -> Result<bool, ClusterError> {
        self.leave_pushing(node, channel, user, conn, None).await
    }

    async fn join_pushing(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        member: &Member,
        conn: u64,
        push: Option<Vec<u8>>,
    ) -> Result<bool, ClusterError> {
        let (mut link, index) = (self.conn.clone(), index_keys(node));
        self.scripts.index.mark(&mut link, &index, node, channel.as_str()).await?;
        let mut invocation = self.scripts.join.prepare();
        invocation.key(&Self::keys(channel, node)[..]);
        invocation.arg(conn).arg(member.user.as_str()).arg(encode_record(member));
        push_args(&mut invocation, channel, push);
        let first = self.scripts.join.run(&mut link, &invocation).await?;
        self.scripts.index.mark(&mut link, &index, node, channel.as_str()).await?;
        Ok(first)
    }

    async fn leave_pushing(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        user: &UserId,
        conn: u64,
        push: Option<Vec<u8>>,
    ) -> Result<bool, ClusterError> {
        let (mut link, index) = (self.conn.clone(), index_keys(node));
        let token = self.scripts.index.token(&mut link, &index, channel.as_str()).await?;
        let mut invocation = self.scripts.leave.prepare();
        invocation.key(&Self::keys(channel, node)[..]);
        invocation.arg(conn).arg(user.as_str());
        push_args(&mut invocation, channel, push);
        let (last, node_empty): (bool, bool) = self.scripts.leave.run(&mut link, &invocation).await?;
        if let (true, Some(token)) = (node_empty, token) {
            let entry = [(channel.as_str().to_owned(), token)];
            self.scripts.index.forget(&mut link, &index, node, &entry).await?;
        }
        Ok(last)
    }

    async fn members(&self, channel: &ChannelName) -> Result<Vec<Member>, ClusterError> {
        let key = channel_key(channel, "presence:info");
        let records: Vec<String> =
            scripts::query(&mut self.conn.clone(), redis::cmd("HVALS").arg(key)).await?;
        let mut members =
            records.iter().map(|record| decode_record(record)).collect::<Result<Vec<_>, _>>()?;
        members.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(members)
    }

    async fn remove_node(&self, node: &NodeId) -> Result<Vec<PresenceChange>, ClusterError> {
        let (mut link, index) = (self.conn.clone(), index_keys(node));
        let entries = self.scripts.index.entries(&mut link, &index).await?;
        let mut changes = Vec::new();
        for (name, _) in &entries {
            let channel = channel_name(name)?;
            let mut invocation = self.scripts.remove_node.prepare();
            invocation.key(&Self::keys(&channel, node)[..]);
            let records: Vec<String> = self.scripts.remove_node.run(&mut link, &invocation).await?;
            let mut members =
                records.iter().map(|record| decode_record(record)).collect::<Result<Vec<_>, _>>()?;
            members.sort_by(|a, b| a.user.cmp(&b.user));
            changes.extend(
                members.into_iter().map(|member| PresenceChange { channel: channel.clone(), member }),
            );
        }
        if !entries.is_empty() {
            self.scripts.index.forget(&mut link, &index, node, &entries).await?;
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fanfare_protocol::cluster::LiveFrame;
    use fanfare_testkit::RedisServer;
    use serde_json::json;

    use super::*;
    use crate::redis::{RedisBus, RedisBusOptions};
    use crate::{BusEvent, ClusterBus};

    /// A leave decided on node A and the join right after on node B: the
    /// engine publishes both pushes as it decides them, so every node gets
    /// them in that order (when each node published its own after the
    /// script answered, B's join could overtake A's leave and a client
    /// would drop a member who is there). Nothing for a join or leave that
    /// is not the first or last.
    #[tokio::test]
    async fn pushes_are_published_by_the_engine_in_decision_order_and_only_for_first_and_last() {
        let Some(redis) = RedisServer::start_or_skip() else { return };
        let url = redis.url();
        let bus = RedisBus::open(&url, NodeId::new("watcher"), RedisBusOptions::default()).await.unwrap();
        let mut events = bus.events().unwrap();
        let channel = ChannelName::new("presence-room").unwrap();
        bus.watch(&channel).await.unwrap();
        let presence = RedisPresence::open(&url).await.unwrap();
        let (a, b) = (NodeId::new("a"), NodeId::new("b"));
        let alice = Member { user: UserId::new("alice"), info: None };
        let join = || Some(LiveFrame::Join { user: alice.user.clone(), info: None }.encode());
        let leave = || Some(LiveFrame::Leave { user: alice.user.clone() }.encode());

        assert!(presence.join_pushing(&a, &channel, &alice, 1, join()).await.unwrap());
        assert!(!presence.join_pushing(&a, &channel, &alice, 2, join()).await.unwrap());
        assert!(!presence.leave_pushing(&a, &channel, &alice.user, 2, leave()).await.unwrap());
        assert!(presence.leave_pushing(&a, &channel, &alice.user, 1, leave()).await.unwrap());
        assert!(presence.join_pushing(&b, &channel, &alice, 3, join()).await.unwrap());
        bus.publish(&channel, b"end".to_vec()).await.unwrap();

        let mut frames = Vec::new();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
            let BusEvent::Live { frame, .. } = event else { continue };
            if &frame[..] == b"end" {
                break;
            }
            frames.push(LiveFrame::decode(&frame).unwrap());
        }
        let kinds: Vec<&str> = frames
            .iter()
            .map(|f| match f {
                LiveFrame::Join { .. } => "join",
                LiveFrame::Leave { .. } => "leave",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["join", "leave", "join"]);
    }

    #[test]
    fn a_record_keeps_the_ids_json_type_and_the_info() {
        let number = Member { user: UserId::from_json(&json!(42)).unwrap(), info: None };
        let text = Member {
            user: UserId::new("a\nb"),
            info: Some(JsonData::from_value(&json!({"name": "line\nbreak"}))),
        };
        for member in [number, text] {
            let back = decode_record(&encode_record(&member)).unwrap();
            assert_eq!(back, member);
            assert_eq!(back.user.is_number(), member.user.is_number());
        }
    }
}
