//! [`RedisDeadLetters`]: the cluster's one dead-letter log, in Redis.
//!
//! ```text
//! fanfare:{webhooks}:dead_letters        LIST letters, newest first
//! fanfare:{webhooks}:dead_letters_bytes  their total size in bytes
//! ```
//!
//! `dead_letter_append.lua` pushes a letter and trims the oldest in one
//! step, so the list never exceeds its bound (besides the newest letter)
//! even with every node appending at once. Both keys share the
//! `{webhooks}` hash tag.

use std::sync::Arc;

use bytes::Bytes;
use fanfare_protocol::cluster::KEY_PREFIX;
use redis::aio::ConnectionManager;

use super::scripts::{self, Lua};
use crate::{ClusterError, DeadLetterLog};

/// [`DeadLetterLog`] on Redis. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct RedisDeadLetters {
    conn: ConnectionManager,
    script: Arc<Lua>,
    bound: u64,
}

impl RedisDeadLetters {
    /// Connects to the Redis at `url`, keeping letters up to `bound` bytes.
    pub async fn open(url: &str, bound: u64) -> Result<Self, ClusterError> {
        Ok(Self::with_connection(scripts::connect(url).await?, bound))
    }

    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub(crate) fn with_connection(conn: ConnectionManager, bound: u64) -> Self {
        let script = Lua::new("dead_letter_append", include_str!("scripts/dead_letter_append.lua"));
        Self { conn, script: Arc::new(script), bound }
    }
}

fn list_key() -> String {
    format!("{KEY_PREFIX}:{{webhooks}}:dead_letters")
}

fn size_key() -> String {
    format!("{KEY_PREFIX}:{{webhooks}}:dead_letters_bytes")
}

#[async_trait::async_trait]
impl DeadLetterLog for RedisDeadLetters {
    async fn append(&self, letter: Bytes) -> Result<(), ClusterError> {
        let mut invocation = self.script.prepare();
        invocation.key(list_key()).key(size_key()).arg(letter.as_ref()).arg(self.bound);
        self.script.run::<u64>(&mut self.conn.clone(), &invocation).await.map(drop)
    }

    async fn recent(&self, limit: usize) -> Result<Vec<Bytes>, ClusterError> {
        let Some(last) = limit.checked_sub(1) else { return Ok(Vec::new()) };
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(list_key()).arg(0).arg(last);
        let letters: Vec<Vec<u8>> = scripts::query(&mut self.conn.clone(), &cmd).await?;
        Ok(letters.into_iter().map(Bytes::from).collect())
    }
}
