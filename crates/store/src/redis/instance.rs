//! Connecting to the Redis instance and deciding the connection's
//! generation (the rule is in the module doc of [`super`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

use super::RedisStoreOptions;
use super::scripts::{APPEND, INSTANCE_KEY, OBSERVE, READ};
use crate::memory::random_epoch;
use crate::unix_time_ms;

/// A connection and the generation it writes with. Cloning shares both:
/// readers use the writer's connection, so they write the same generation.
#[derive(Clone)]
pub(crate) struct Link {
    pub conn: MultiplexedConnection,
    /// Only grows: a stale-generation answer makes whoever got it observe
    /// again on this connection.
    generation: Arc<AtomicU64>,
}

impl Link {
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Observes the instance again on this connection after a script
    /// answered `STALEGEN floor`; returns the new generation, never lower
    /// than before (and higher if the instance record fell behind).
    pub async fn reobserve(&mut self, floor: u64) -> Result<u64, RedisError> {
        let floor = floor.max(self.generation());
        let observed = observe(&mut self.conn, floor).await?;
        Ok(self.generation.fetch_max(observed.generation, Ordering::AcqRel).max(observed.generation))
    }
}

/// What `INFO` and `CONFIG GET` say about the instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Instance {
    pub run_id: String,
    pub role: String,
    pub replid: String,
    pub replid2: String,
    /// AOF on with `appendfsync always`: an acknowledged write survives a
    /// restart. Unknown counts as not.
    pub durable: bool,
}

/// The outcome of observing: the instance and the generation to use.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub instance: Instance,
    pub generation: u64,
}

/// Opens a connection, makes sure it talks to a primary, observes the
/// instance and loads the scripts.
pub(crate) async fn connect(client: &Client, options: &RedisStoreOptions) -> Result<Link, RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.response_timeout));
    let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
    let observed = observe(&mut conn, 0).await?;
    for script in [&*APPEND, &*READ] {
        script.load_async(&mut conn).await?;
    }
    tracing::info!(generation = observed.generation, run_id = %observed.instance.run_id, "redis store connected");
    Ok(Link { conn, generation: Arc::new(AtomicU64::new(observed.generation)) })
}

/// Steps 1–2 of the generation rule: read the instance, then let the
/// observe script decide.
pub(crate) async fn observe(conn: &mut MultiplexedConnection, floor: u64) -> Result<Observed, RedisError> {
    let instance = read_instance(conn).await?;
    if instance.role != "master" {
        return Err(RedisError::from((
            redis::ErrorKind::Client,
            "the redis store needs a primary; this instance is a replica",
        )));
    }
    let generation: u64 = OBSERVE
        .key(INSTANCE_KEY)
        .arg(&instance.run_id)
        .arg(&instance.replid)
        .arg(&instance.replid2)
        .arg(if instance.durable { "1" } else { "0" })
        .arg(unix_time_ms())
        .arg(floor)
        .arg(random_epoch().as_str())
        .invoke_async(conn)
        .await?;
    Ok(Observed { instance, generation })
}

async fn read_instance(conn: &mut MultiplexedConnection) -> Result<Instance, RedisError> {
    let server: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    let replication: String = redis::cmd("INFO").arg("replication").query_async(conn).await?;
    let persistence: String = redis::cmd("INFO").arg("persistence").query_async(conn).await?;
    // Managed Redis often refuses CONFIG: then fsync is unknown, not always.
    let appendfsync: Option<Vec<String>> =
        redis::cmd("CONFIG").arg("GET").arg("appendfsync").query_async(conn).await.ok();
    let always = appendfsync.is_some_and(|reply| reply.get(1).is_some_and(|v| v == "always"));
    let policy: Option<Vec<String>> =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy").query_async(conn).await.ok();
    if let Some(policy) = policy.as_ref().and_then(|reply| reply.get(1))
        && policy != "noeviction"
    {
        tracing::warn!(%policy, "redis evicts keys: an evicted channel meta may come back under its old epoch");
    }
    Ok(instance_from_info(&server, &replication, &persistence, always))
}

/// Builds an [`Instance`] from the text of `INFO server`, `INFO
/// replication` and `INFO persistence`.
pub(crate) fn instance_from_info(
    server: &str,
    replication: &str,
    persistence: &str,
    fsync_always: bool,
) -> Instance {
    let field = |text: &str, name: &str| {
        text.lines()
            .filter_map(|line| line.trim_end().split_once(':'))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
            .unwrap_or_default()
    };
    Instance {
        run_id: field(server, "run_id"),
        role: field(replication, "role"),
        replid: field(replication, "master_replid"),
        replid2: field(replication, "master_replid2"),
        durable: field(persistence, "aof_enabled") == "1" && fsync_always,
    }
}
