//! What the Redis engines share: one connection per handle, the Lua
//! scripts that make every cross-node decision atomically, and how Redis
//! errors become [`ClusterError`]s.
//!
//! Each script touches the keys of one hash tag only (a channel's, or the
//! registry's), so it runs unchanged on Redis Cluster.

use std::time::Duration;

use metrics::counter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisError, Script, ScriptInvocation};

use crate::ClusterError;

const BACKEND: &str = "redis";

/// A Lua script and the name its errors are counted under
/// (`fanfare_redis_script_errors_total{script=…}`).
pub(crate) struct Lua {
    name: &'static str,
    script: Script,
}

impl Lua {
    pub(crate) fn new(name: &'static str, code: &str) -> Self {
        Self { name, script: Script::new(code) }
    }

    /// An invocation to add keys and arguments to.
    pub(crate) fn prepare(&self) -> ScriptInvocation<'_> {
        self.script.prepare_invoke()
    }

    /// Runs `invocation` of this script (loading it first if the engine
    /// does not have it, e.g. after a restart).
    pub(crate) async fn run<T: FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, ClusterError> {
        invocation.invoke_async(conn).await.map_err(|e| {
            counter!("fanfare_redis_script_errors_total", "script" => self.name).increment(1);
            redis_error(e)
        })
    }
}

/// How long a reply may take. Longer than the client's default (500 ms):
/// a reply that times out leaves the caller not knowing whether the script
/// ran, so only a stalled engine, not a busy one, should get there.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects to `url` (`redis://host:port[/db]`). The connection manager
/// reconnects by itself; a command sent while the link is down fails
/// with [`ClusterError::Unavailable`].
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, ClusterError> {
    let client = redis::Client::open(url)
        .map_err(|e| ClusterError::Config { option: "url", reason: e.to_string() })?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(CONNECTION_TIMEOUT));
    ConnectionManager::new_with_config(client, config).await.map_err(redis_error)
}

/// Runs one plain command.
pub(crate) async fn query<T: FromRedisValue>(
    conn: &mut ConnectionManager,
    cmd: &redis::Cmd,
) -> Result<T, ClusterError> {
    cmd.query_async(conn).await.map_err(redis_error)
}

/// Runs a pipeline.
pub(crate) async fn query_pipe<T: FromRedisValue>(
    conn: &mut ConnectionManager,
    pipe: &redis::Pipeline,
) -> Result<T, ClusterError> {
    pipe.query_async(conn).await.map_err(redis_error)
}

/// A lost or refused link is worth retrying; an answered error is not.
pub(crate) fn redis_error(e: RedisError) -> ClusterError {
    let source = std::sync::Arc::new(e);
    if source.is_io_error() || source.is_timeout() || source.is_connection_dropped() {
        ClusterError::Unavailable { backend: BACKEND, source }
    } else {
        ClusterError::Refused { backend: BACKEND, source }
    }
}

/// A record in the engine that does not decode.
pub(crate) fn corrupt(what: &'static str, reason: impl ToString) -> ClusterError {
    ClusterError::Corrupt { what, reason: reason.to_string() }
}
