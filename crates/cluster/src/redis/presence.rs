//! [`RedisPresence`]: presence keyed by user, in Redis.
//!
//! Keys of a channel (one hash tag, so each script touches one slot):
//!
//! ```text
//! fanfare:{<channel>}:presence:conns:<node>  HASH conn -> user text     connections the node holds
//! fanfare:{<channel>}:presence:users         HASH user text -> count    connections per user, all nodes
//! fanfare:{<channel>}:presence:info          HASH user text -> record   "<user as sent, JSON>\n<info JSON or empty>"
//! fanfare:node:<node>:presence               SET  channel names         where the node may hold connections
//! ```
//!
//! 1. `join` adds the channel to the node's set, then runs
//!    `presence_join.lua`: a connection already there counts once; the
//!    user's count going 0 → 1 is the first join, and stores the record.
//! 2. `leave` runs `presence_leave.lua`: the count going 1 → 0 is the last
//!    leave, and drops the record.
//! 3. `remove_node` runs `presence_remove_node.lua` for every channel in
//!    the node's set (the script deletes the node's connections and
//!    returns the records of users left with none, so a second caller gets
//!    nothing), then removes exactly those channels from the set.
//!
//! The node's set is a superset: `leave` never shrinks it (a shrink racing
//! the node's own next join could hide a connection from `remove_node`),
//! so it holds every channel the node joined until the node is removed.

use fanfare_protocol::cluster::{KEY_PREFIX, channel_key};
use fanfare_protocol::native::Member;
use fanfare_protocol::{ChannelName, JsonData, UserId};
use redis::aio::ConnectionManager;

use super::scripts::{self, Lua, corrupt};
use crate::{ClusterError, NodeId, PresenceChange, PresenceStore};

/// The scripts, built once (each keeps its SHA for `EVALSHA`).
struct Scripts {
    join: Lua,
    leave: Lua,
    remove_node: Lua,
}

impl Scripts {
    fn new() -> Self {
        Self {
            join: Lua::new("presence_join", include_str!("scripts/presence_join.lua")),
            leave: Lua::new("presence_leave", include_str!("scripts/presence_leave.lua")),
            remove_node: Lua::new("presence_remove_node", include_str!("scripts/presence_remove_node.lua")),
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

fn node_channels_key(node: &NodeId) -> String {
    format!("{KEY_PREFIX}:node:{node}:presence")
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
        let mut link = self.conn.clone();
        // Indexed before the connection exists, so `remove_node` never
        // misses a connection it holds.
        let () =
            scripts::query(&mut link, redis::cmd("SADD").arg(node_channels_key(node)).arg(channel.as_str()))
                .await?;
        let mut invocation = self.scripts.join.prepare();
        invocation.key(&Self::keys(channel, node)[..]);
        invocation.arg(conn).arg(member.user.as_str()).arg(encode_record(member));
        self.scripts.join.run(&mut link, &invocation).await
    }

    async fn leave(
        &self,
        node: &NodeId,
        channel: &ChannelName,
        user: &UserId,
        conn: u64,
    ) -> Result<bool, ClusterError> {
        let mut invocation = self.scripts.leave.prepare();
        invocation.key(&Self::keys(channel, node)[..]);
        invocation.arg(conn).arg(user.as_str());
        self.scripts.leave.run(&mut self.conn.clone(), &invocation).await
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
        let mut link = self.conn.clone();
        let index = node_channels_key(node);
        let mut names: Vec<String> = scripts::query(&mut link, redis::cmd("SMEMBERS").arg(&index)).await?;
        names.sort();
        let mut changes = Vec::new();
        for name in &names {
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
        if !names.is_empty() {
            // Only the channels cleaned up: one the node joined meanwhile stays.
            let () = scripts::query(&mut link, redis::cmd("SREM").arg(&index).arg(&names)).await?;
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
