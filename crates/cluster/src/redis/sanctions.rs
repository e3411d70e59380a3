//! [`RedisSanctions`]: bans, mutes and shadow-bans in Redis.
//!
//! ```text
//! fanfare:{<channel>}:sanctions        HASH  <kind>:<user> → sanction (JSON)
//! fanfare:{ns:<namespace>}:sanctions   HASH  the same, for a whole namespace
//! ```
//!
//! A check reads the user's fields (one per kind) of both hashes in one
//! round trip.
//! An expired sanction is skipped when read and deleted when its scope is
//! listed. Hashes have no expiry: they hold until lifted or expired and
//! listed (a moderation record is small and rare).

use fanfare_protocol::ChannelName;
use fanfare_protocol::cluster::{KEY_PREFIX, channel_key};
use redis::aio::ConnectionManager;

use super::scripts::{self, redis_error};
use crate::{ClusterError, Sanction, SanctionKind, Sanctions, Scope};

const KINDS: [SanctionKind; 3] = [SanctionKind::Ban, SanctionKind::Mute, SanctionKind::ShadowBan];

/// [`Sanctions`] on Redis. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct RedisSanctions {
    conn: ConnectionManager,
}

impl RedisSanctions {
    pub async fn open(url: &str) -> Result<Self, ClusterError> {
        Ok(Self::with_connection(scripts::connect(url).await?))
    }

    pub(crate) fn with_connection(conn: ConnectionManager) -> Self {
        Self { conn }
    }
}

fn scope_key(scope: &Scope) -> String {
    match scope {
        Scope::Channel(channel) => channel_key(channel, "sanctions"),
        Scope::Namespace(namespace) => format!("{KEY_PREFIX}:{{ns:{namespace}}}:sanctions"),
    }
}

fn field(kind: SanctionKind, user: &str) -> String {
    format!("{}:{user}", kind.as_str())
}

fn decode(bytes: &[u8]) -> Result<Sanction, ClusterError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ClusterError::Corrupt { what: "sanction", reason: e.to_string() })
}

#[async_trait::async_trait]
impl Sanctions for RedisSanctions {
    async fn impose(&self, sanction: Sanction) -> Result<(), ClusterError> {
        let json = serde_json::to_vec(&sanction).expect("a sanction serializes");
        redis::cmd("HSET")
            .arg(scope_key(&sanction.scope))
            .arg(field(sanction.kind, &sanction.user))
            .arg(json)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(redis_error)
    }

    async fn in_force(
        &self,
        user: &str,
        channel: &ChannelName,
        now_ms: u64,
    ) -> Result<Vec<Sanction>, ClusterError> {
        let fields: Vec<String> = KINDS.iter().map(|kind| field(*kind, user)).collect();
        let scopes = [Scope::Channel(channel.clone()), Scope::Namespace(channel.namespace().to_owned())];
        let mut pipe = redis::pipe();
        for scope in &scopes {
            pipe.cmd("HMGET").arg(scope_key(scope)).arg(&fields);
        }
        let found: Vec<Vec<Option<Vec<u8>>>> =
            pipe.query_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        let mut sanctions = Vec::new();
        for bytes in found.into_iter().flatten().flatten() {
            let sanction = decode(&bytes)?;
            if sanction.in_force(now_ms) {
                sanctions.push(sanction);
            }
        }
        Ok(sanctions)
    }

    async fn lift(
        &self,
        kind: SanctionKind,
        user: &str,
        scope: &Scope,
        now_ms: u64,
    ) -> Result<bool, ClusterError> {
        let (key, field) = (scope_key(scope), field(kind, user));
        let mut pipe = redis::pipe();
        pipe.cmd("HGET").arg(&key).arg(&field).cmd("HDEL").arg(&key).arg(&field);
        let (found, _): (Option<Vec<u8>>, u64) =
            pipe.query_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        Ok(found.map(|bytes| decode(&bytes)).transpose()?.is_some_and(|s| s.in_force(now_ms)))
    }

    async fn list(&self, scope: &Scope, now_ms: u64) -> Result<Vec<Sanction>, ClusterError> {
        let key = scope_key(scope);
        let all: Vec<(String, Vec<u8>)> =
            redis::cmd("HGETALL").arg(&key).query_async(&mut self.conn.clone()).await.map_err(redis_error)?;
        let mut in_force = Vec::with_capacity(all.len());
        let mut expired = Vec::new();
        for (field, bytes) in all {
            let sanction = decode(&bytes)?;
            if sanction.in_force(now_ms) {
                in_force.push(sanction);
            } else {
                expired.push(field);
            }
        }
        if !expired.is_empty() {
            redis::cmd("HDEL")
                .arg(&key)
                .arg(&expired)
                .query_async::<()>(&mut self.conn.clone())
                .await
                .map_err(redis_error)?;
        }
        Sanction::sort_for_listing(&mut in_force);
        Ok(in_force)
    }
}
