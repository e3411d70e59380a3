//! [`RedisBus`]: the [`ClusterBus`] on Redis pub/sub.
//!
//! - Receiving: one pub/sub connection, owned by one task (`link.rs`);
//!   the handle talks to it through a bounded command queue. The task
//!   subscribes the node's control channels (`fanfare:node:<id>`,
//!   `fanfare:nodes`) and each watched channel's live channel
//!   (`fanfare:{<channel>}:live`), and turns messages into [`BusEvent`]s
//!   in one bounded queue. One connection read in order keeps each
//!   channel's frames in the order Redis accepted them.
//! - Sending: `PUBLISH` on a separate multiplexed connection (redis-rs
//!   `ConnectionManager`, which reconnects by itself).
//!
//! The task reads the socket itself, with a small RESP2 reader
//! (`resp.rs`), rather than through redis-rs's `aio::PubSub`: that one's
//! driver forwards every message into an unbounded queue, so a slow
//! consumer would grow memory instead of stopping the reads. Frames are
//! slices of the connection's 64 KiB read blocks (no copy): a consumer
//! that keeps frames for long should copy what it keeps.
//!
//! # Watching while the link is down
//! `watch` returns once Redis confirmed the subscription *on the current
//! connection*. While the link is down (and until its re-subscriptions
//! are confirmed) every watch is unconfirmed: a `watch` is recorded at
//! once, subscribed when the link comes back, and answered then — or, if
//! that takes longer than [`RedisBusOptions::watch_timeout`], answered
//! with [`ClusterError::Unavailable`]. The watch stays recorded either way
//! (until `unwatch`), so retrying after the error is cheap and safe.
//! A watch Redis refuses (an ACL) fails with [`ClusterError::Refused`],
//! which retrying will not fix, and is dropped.
//! `unwatch` waits for Redis's confirmation while up (so nothing of the
//! channel follows it), and returns at once while down.
//!
//! # Noticing a dead link
//! A closed or failing connection is noticed at once. A silent one (a
//! paused or partitioned server) by the probe: a `PING` every
//! `ping_interval`, and the link is dead when a reply has been awaited for
//! `ping_timeout` with nothing heard, so between `ping_timeout` and
//! `ping_interval + ping_timeout` after the silence began (4 s at most
//! with the defaults). While the event queue is full the task does not
//! read, and that wait is not counted as silence.
//!
//! # Metrics
//! `fanfare_bus_up` (gauge), `fanfare_bus_frames_received_total` (live
//! frames), `fanfare_bus_frames_ignored_total` (messages on a pub/sub
//! channel that is neither a live channel nor a control channel),
//! `fanfare_redis_reconnects_total{engine="bus"}` (times the link came
//! back after being down).

mod backoff;
mod link;
mod resp;
mod session;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fanfare_protocol::ChannelName;
use fanfare_protocol::cluster::{KEY_PREFIX, live_channel};
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, RedisError};
use tokio::sync::{mpsc, oneshot};

use self::link::{Channels, Command, Link};
use self::session::{LinkError, Target};
use crate::{BusEvent, ClusterBus, ClusterError, NodeId};

const BACKEND: &str = "redis";
/// Commands waiting for the link task; callers wait when it is full.
const COMMAND_QUEUE: usize = 1024;

/// How a [`RedisBus`] behaves; [`Default`] gives the production values.
#[derive(Debug, Clone)]
pub struct RedisBusOptions {
    /// Room in the event queue (default 65,536). When it is full the bus
    /// stops reading; Redis drops a pub/sub client whose output buffer
    /// passes its limit, which is then a dead link like any other.
    pub events_capacity: usize,
    /// How often the pub/sub connection is probed with `PING` (default 1 s).
    pub ping_interval: Duration,
    /// How long a reply may be awaited, with nothing at all heard, before
    /// the link counts as dead (default 3 s). Also bounds connecting,
    /// each write, and a publish.
    pub ping_timeout: Duration,
    /// How long `watch` and `unwatch` wait for Redis's confirmation
    /// (default 5 s), then fail with [`ClusterError::Unavailable`].
    pub watch_timeout: Duration,
    /// The first reconnect delay (default 100 ms); it doubles after every
    /// failed attempt, with jitter.
    pub reconnect_min: Duration,
    /// The largest reconnect delay (default 1 s: a node back on its Redis is ready within about a second).
    pub reconnect_max: Duration,
}

impl Default for RedisBusOptions {
    fn default() -> Self {
        Self {
            events_capacity: 65_536,
            ping_interval: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(3),
            watch_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(1),
        }
    }
}

impl RedisBusOptions {
    fn validate(&self) -> Result<(), ClusterError> {
        let positive = [
            ("ping_interval", self.ping_interval),
            ("ping_timeout", self.ping_timeout),
            ("watch_timeout", self.watch_timeout),
            ("reconnect_min", self.reconnect_min),
            ("reconnect_max", self.reconnect_max),
        ];
        if let Some((option, _)) = positive.iter().find(|(_, value)| value.is_zero()) {
            return Err(ClusterError::Config { option, reason: "must be longer than zero".into() });
        }
        if self.events_capacity == 0 {
            return Err(ClusterError::Config {
                option: "events_capacity",
                reason: "must be at least 1".into(),
            });
        }
        if self.reconnect_max < self.reconnect_min {
            let reason = "must not be shorter than reconnect_min".into();
            return Err(ClusterError::Config { option: "reconnect_max", reason });
        }
        Ok(())
    }
}

/// The [`ClusterBus`] on one Redis server (standalone, `redis://` URLs).
pub struct RedisBus {
    node: NodeId,
    commands: mpsc::Sender<Command>,
    events: Mutex<Option<mpsc::Receiver<BusEvent>>>,
    up: Arc<AtomicBool>,
    publisher: ConnectionManager,
    options: RedisBusOptions,
    /// Dropped with the bus, which stops the link task.
    _shutdown: oneshot::Sender<()>,
}

impl RedisBus {
    /// Connects, subscribes the node's control channels, and returns once
    /// Redis has confirmed them. Fails with [`ClusterError::Unavailable`]
    /// if that first connection fails (later ones are retried for ever),
    /// and with [`ClusterError::Config`] for a URL other than `redis://`.
    pub async fn open(url: &str, node: NodeId, options: RedisBusOptions) -> Result<Self, ClusterError> {
        options.validate()?;
        let client = redis::Client::open(url).map_err(|e| config("url", &e))?;
        let target = target(client.get_connection_info(), &node)?;
        let publisher_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.ping_timeout))
            .set_response_timeout(Some(options.ping_timeout))
            .set_number_of_retries(1)
            .set_min_delay(options.reconnect_min)
            .set_max_delay(options.reconnect_max);
        let publisher = ConnectionManager::new_lazy_with_config(client, publisher_config)
            .map_err(|e| config("url", &e))?;

        let (commands, command_queue) = mpsc::channel(COMMAND_QUEUE);
        let (event_queue, events) = mpsc::channel(options.events_capacity);
        let (opened, first) = oneshot::channel();
        let (shutdown, stop) = oneshot::channel();
        let up = Arc::new(AtomicBool::new(false));
        let channels =
            Channels { commands: command_queue, events: event_queue, shutdown: stop, opened, up: up.clone() };
        let control = [node_channel(&node), broadcast_channel()];
        tokio::spawn(Link::new(target, control, options.clone(), channels).run());
        first.await.map_err(|_| ClusterError::Closed)??;
        Ok(Self {
            node,
            commands,
            events: Mutex::new(Some(events)),
            up,
            publisher,
            options,
            _shutdown: shutdown,
        })
    }

    /// The node this bus receives control messages for.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Sends `command` to the link task and waits for Redis's answer, at
    /// most `watch_timeout`.
    async fn ask(&self, command: impl FnOnce(link::Waiter) -> Command) -> Result<(), ClusterError> {
        let (reply, answer) = oneshot::channel();
        let asked = async {
            self.commands.send(command(reply)).await.map_err(|_| ClusterError::Closed)?;
            answer.await.map_err(|_| ClusterError::Closed)?
        };
        let limit = self.options.watch_timeout;
        tokio::time::timeout(limit, asked).await.map_err(|_| LinkError::NotConfirmed(limit).unavailable())?
    }

    async fn publish_to(&self, name: String, payload: Vec<u8>) -> Result<(), ClusterError> {
        let mut connection = self.publisher.clone();
        redis::cmd("PUBLISH")
            .arg(name)
            .arg(payload)
            .query_async::<i64>(&mut connection)
            .await
            .map(drop)
            .map_err(engine_error)
    }
}

#[async_trait::async_trait]
impl ClusterBus for RedisBus {
    async fn watch(&self, channel: &ChannelName) -> Result<(), ClusterError> {
        let name = live_channel(channel);
        self.ask(|reply| Command::Watch { name, reply }).await
    }

    async fn unwatch(&self, channel: &ChannelName) -> Result<(), ClusterError> {
        let name = live_channel(channel);
        self.ask(|reply| Command::Unwatch { name, reply }).await
    }

    async fn publish(&self, channel: &ChannelName, frame: Vec<u8>) -> Result<(), ClusterError> {
        self.publish_to(live_channel(channel), frame).await
    }

    async fn send(&self, to: Option<&NodeId>, message: Vec<u8>) -> Result<(), ClusterError> {
        self.publish_to(to.map_or_else(broadcast_channel, node_channel), message).await
    }

    fn events(&self) -> Option<mpsc::Receiver<BusEvent>> {
        self.events.lock().take()
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

/// Control messages for one node.
fn node_channel(node: &NodeId) -> String {
    format!("{KEY_PREFIX}:node:{node}")
}

/// Control messages for every node.
fn broadcast_channel() -> String {
    format!("{KEY_PREFIX}:nodes")
}

fn target(info: &redis::ConnectionInfo, node: &NodeId) -> Result<Target, ClusterError> {
    let ConnectionAddr::Tcp(host, port) = info.addr() else {
        let reason = "the Redis bus supports redis://host:port URLs only (no TLS, no Unix socket)".into();
        return Err(ClusterError::Config { option: "url", reason });
    };
    let settings = info.redis_settings();
    let safe_id: String =
        node.as_str().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    Ok(Target {
        host: host.clone(),
        port: *port,
        username: settings.username().map(str::to_owned),
        password: settings.password().map(str::to_owned),
        client_name: format!("fanfare-bus-{safe_id}"),
    })
}

fn config(option: &'static str, error: &RedisError) -> ClusterError {
    ClusterError::Config { option, reason: error.to_string() }
}

fn engine_error(error: RedisError) -> ClusterError {
    let unreachable = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal();
    let source = Arc::new(error);
    if unreachable {
        ClusterError::Unavailable { backend: BACKEND, source }
    } else {
        ClusterError::Refused { backend: BACKEND, source }
    }
}
