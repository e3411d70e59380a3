//! `RedisBus` runs the bus conformance suite on a private Redis behind a
//! cuttable link, then the faults only Redis has.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fanfare_cluster::conformance::bus::BusSubject;
use fanfare_cluster::redis::{RedisBus, RedisBusOptions};
use fanfare_cluster::{BusEvent, ClusterBus, ClusterError, NodeId};
use fanfare_protocol::ChannelName;
use fanfare_testkit::{CutLink, RedisServer};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// Faster probes than production, so silence is noticed within a second.
fn options() -> RedisBusOptions {
    RedisBusOptions {
        ping_interval: Duration::from_millis(250),
        ping_timeout: Duration::from_secs(1),
        ..RedisBusOptions::default()
    }
}

/// A private Redis, and a link in front of it the tests can cut.
struct RedisSubject {
    server: Arc<Mutex<RedisServer>>,
    link: CutLink,
    direct_url: String,
}

async fn redis_subject() -> Option<RedisSubject> {
    let server = RedisServer::start_or_skip()?;
    let link = CutLink::start(SocketAddr::from(([127, 0, 0, 1], server.port()))).await;
    let direct_url = server.url();
    Some(RedisSubject { server: Arc::new(Mutex::new(server)), link, direct_url })
}

async fn open(url: &str, node: NodeId, options: RedisBusOptions) -> Arc<dyn ClusterBus> {
    Arc::new(RedisBus::open(url, node, options).await.expect("the bus opens"))
}

#[async_trait::async_trait]
impl BusSubject for RedisSubject {
    async fn open(&self, node: NodeId) -> Arc<dyn ClusterBus> {
        open(&self.link.redis_url(), node, options()).await
    }

    async fn open_direct(&self, node: NodeId) -> Arc<dyn ClusterBus> {
        open(&self.direct_url, node, options()).await
    }

    fn cut(&self) {
        self.link.cut();
    }

    fn heal(&self) {
        self.link.heal();
    }

    async fn kill_engine(&self) {
        let server = self.server.clone();
        tokio::task::spawn_blocking(move || server.lock().unwrap().kill()).await.unwrap();
    }

    async fn restart_engine(&self) {
        let server = self.server.clone();
        tokio::task::spawn_blocking(move || server.lock().unwrap().restart()).await.unwrap();
    }

    fn detection_limit(&self) -> Duration {
        options().ping_timeout + options().ping_interval
    }
}

#[path = "bus/fake_redis.rs"]
mod fake_redis;

use fake_redis::FakeRedis;

mod conformance {
    fanfare_cluster::cluster_bus_conformance!(super::redis_subject());
}

// --- what only Redis does ---

const PROMPT: Duration = Duration::from_secs(5);

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).unwrap()
}

async fn expect(events: &mut mpsc::Receiver<BusEvent>, expected: BusEvent, limit: Duration) {
    let event =
        timeout(limit, events.recv()).await.unwrap_or_else(|_| panic!("no {expected:?} within {limit:?}"));
    assert_eq!(event, Some(expected));
}

async fn next_frame(events: &mut mpsc::Receiver<BusEvent>) -> Bytes {
    match timeout(PROMPT, events.recv()).await.expect("a live frame") {
        Some(BusEvent::Live { frame, .. }) => frame,
        other => panic!("expected a live frame, got {other:?}"),
    }
}

#[tokio::test]
async fn redis_killing_the_pubsub_clients_is_a_dead_link_then_resumed() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let chat = channel("bus:client-kill");
    let a = open(&server.url(), NodeId::new("a"), options()).await;
    let mut events = a.events().unwrap();
    a.watch(&chat).await.unwrap();

    let killed = server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, "1", "one pub/sub connection: the bus's");
    let killed_at = Instant::now();
    expect(&mut events, BusEvent::Down, options().ping_timeout).await;
    expect(&mut events, BusEvent::Resumed, PROMPT).await;
    eprintln!("Down then Resumed {:?} after CLIENT KILL", killed_at.elapsed());
    a.publish(&chat, b"still watched".to_vec()).await.unwrap();
    assert_eq!(next_frame(&mut events).await, "still watched");
}

#[tokio::test]
async fn a_silent_redis_is_noticed_by_the_ping_probe() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let chat = channel("bus:paused");
    let a = open(&server.url(), NodeId::new("a"), options()).await;
    let mut events = a.events().unwrap();
    a.watch(&chat).await.unwrap();

    // The connection stays open but nothing is answered: only the probe can tell.
    assert_eq!(server.cli(&["CLIENT", "PAUSE", "3000", "ALL"]), "OK");
    let paused_at = Instant::now();
    let limit = options().ping_timeout + options().ping_interval + Duration::from_secs(1);
    expect(&mut events, BusEvent::Down, limit).await;
    eprintln!("Down {:?} after the pause began", paused_at.elapsed());
    assert!(!a.is_up());
    expect(&mut events, BusEvent::Resumed, PROMPT).await;
    eprintln!("Resumed {:?} after the pause began (it lasts 3 s)", paused_at.elapsed());
    a.publish(&chat, b"awake".to_vec()).await.unwrap();
    assert_eq!(next_frame(&mut events).await, "awake");
}

#[tokio::test]
async fn a_full_event_queue_stops_the_reads_and_loses_nothing() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let chat = channel("bus:slow-consumer");
    let small = RedisBusOptions { events_capacity: 16, ..options() };
    let a = open(&server.url(), NodeId::new("a"), small).await;
    let b = open(&server.url(), NodeId::new("b"), options()).await;
    let mut events = a.events().unwrap();
    a.watch(&chat).await.unwrap();
    for n in 0..2000 {
        b.publish(&chat, n.to_string().into_bytes()).await.unwrap();
    }
    // A watch while stalled: its confirmation waits behind the frames, and
    // the wait is not silence.
    let watching = tokio::spawn({
        let a = a.clone();
        async move { a.watch(&channel("bus:slow-consumer-too")).await }
    });
    // A consumer slower than the probe's patience: the stall is not a dead link.
    tokio::time::sleep(options().ping_timeout * 2).await;
    assert!(a.is_up());
    for n in 0..2000 {
        assert_eq!(next_frame(&mut events).await, n.to_string());
    }
    timeout(PROMPT, watching).await.unwrap().unwrap().expect("the watch is confirmed once the reads go on");
    assert!(a.is_up());
    assert!(events.try_recv().is_err(), "no Down, no Resumed");
}

#[tokio::test]
async fn a_watch_while_down_fails_after_its_timeout_but_is_kept() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let link = CutLink::start(SocketAddr::from(([127, 0, 0, 1], server.port()))).await;
    let chat = channel("bus:watch-while-down");
    let quick = RedisBusOptions { watch_timeout: Duration::from_millis(300), ..options() };
    let a = open(&link.redis_url(), NodeId::new("a"), quick).await;
    let publisher = open(&server.url(), NodeId::new("publisher"), options()).await;
    let mut events = a.events().unwrap();

    link.cut();
    expect(&mut events, BusEvent::Down, options().ping_timeout).await;
    let refused = a.watch(&chat).await.expect_err("no confirmation while down");
    assert!(matches!(refused, ClusterError::Unavailable { .. }) && refused.is_transient(), "{refused:?}");
    link.heal();
    expect(&mut events, BusEvent::Resumed, PROMPT).await;
    a.watch(&chat).await.unwrap();
    publisher.publish(&chat, b"kept".to_vec()).await.unwrap();
    assert_eq!(next_frame(&mut events).await, "kept");
}

#[tokio::test]
async fn open_refuses_what_it_cannot_serve() {
    let node = NodeId::new("a");
    for url in ["rediss://127.0.0.1:1", "redis+unix:///tmp/none.sock", "not a url"] {
        let refused = RedisBus::open(url, node.clone(), options()).await.err().expect(url);
        assert!(matches!(refused, ClusterError::Config { option: "url", .. }), "{url}: {refused:?}");
    }
    let empty = RedisBusOptions { events_capacity: 0, ..options() };
    let refused = RedisBus::open("redis://127.0.0.1:1", node.clone(), empty).await.err().unwrap();
    assert!(matches!(refused, ClusterError::Config { option: "events_capacity", .. }));
    let nobody = format!("redis://127.0.0.1:{}", fanfare_testkit::free_port());
    let refused = RedisBus::open(&nobody, node, options()).await.err().unwrap();
    assert!(refused.is_transient(), "{refused:?}");
}

#[tokio::test]
async fn a_consumer_too_slow_for_redis_is_dropped_and_told() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    assert_eq!(server.cli(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 0 0"]), "OK");
    let chat = channel("bus:too-slow");
    let small = RedisBusOptions { events_capacity: 16, ..options() };
    let a = open(&server.url(), NodeId::new("a"), small).await;
    let b = open(&server.url(), NodeId::new("b"), options()).await;
    let mut events = a.events().unwrap();
    a.watch(&chat).await.unwrap();

    // Far more than the socket buffers and the 256 KiB Redis keeps for us.
    let filler = "x".repeat(16 * 1024);
    for n in 0..2000 {
        b.publish(&chat, format!("{n} {filler}").into_bytes()).await.unwrap();
    }
    let mut next = 0;
    loop {
        match timeout(PROMPT, events.recv()).await.expect("frames, then Down") {
            Some(BusEvent::Live { frame, .. }) => {
                let n: usize =
                    std::str::from_utf8(&frame).unwrap().split(' ').next().unwrap().parse().unwrap();
                assert_eq!(n, next, "what arrives before the drop arrives in order");
                next += 1;
            }
            Some(BusEvent::Down) => break,
            other => panic!("expected frames then Down, got {other:?}"),
        }
    }
    eprintln!("Redis dropped the slow consumer after {next} of 2000 frames");
    assert!(next < 2000, "Redis dropped the slow consumer");
    expect(&mut events, BusEvent::Resumed, PROMPT).await;
    b.publish(&chat, b"caught up".to_vec()).await.unwrap();
    assert_eq!(next_frame(&mut events).await, "caught up");
}

#[tokio::test]
async fn a_password_in_the_url_is_used_and_a_missing_one_is_a_refusal() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    assert_eq!(server.cli(&["CONFIG", "SET", "requirepass", "s3cret"]), "OK");
    let refused = RedisBus::open(&server.url(), NodeId::new("a"), options()).await.err().unwrap();
    assert!(matches!(refused, ClusterError::Refused { .. }), "{refused:?}");

    let url = format!("redis://:s3cret@127.0.0.1:{}", server.port());
    let a = open(&url, NodeId::new("a"), options()).await;
    let mut events = a.events().unwrap();
    let chat = channel("bus:auth");
    a.watch(&chat).await.unwrap();
    a.publish(&chat, b"let in".to_vec()).await.unwrap();
    assert_eq!(next_frame(&mut events).await, "let in");
}

/// An ACL user for the bus that may use the control channels and `allowed`.
fn limit_bus_user(server: &RedisServer, allowed: &ChannelName) {
    let allowed = format!("&{}", fanfare_protocol::cluster::live_channel(allowed));
    let acl = ["ACL", "SETUSER", "bus", "on", ">pw", "~*", "+@all", "resetchannels", "&fanfare:node:*"];
    assert_eq!(server.cli(&[&acl[..], &["&fanfare:nodes", &allowed]].concat()), "OK");
}

#[tokio::test]
async fn a_watch_redis_refuses_is_refused_and_the_rest_carries_on() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let (allowed, denied) = (channel("bus:allowed"), channel("bus:denied"));
    limit_bus_user(&server, &allowed);
    let url = format!("redis://bus:pw@127.0.0.1:{}", server.port());
    let a = open(&url, NodeId::new("a"), options()).await;
    let mut events = a.events().unwrap();

    let refused = a.watch(&denied).await.expect_err("the ACL denies it");
    assert!(matches!(refused, ClusterError::Refused { .. }), "{refused:?}");
    a.watch(&allowed).await.unwrap();
    assert!(a.is_up());
    a.publish(&allowed, b"allowed".to_vec()).await.unwrap();
    assert_eq!(next_frame(&mut events).await, "allowed");
}

#[tokio::test]
async fn a_channel_refused_on_resubscription_is_dropped_alone() {
    let Some(server) = RedisServer::start_or_skip() else { return };
    let (allowed, revoked) = (channel("bus:still-allowed"), channel("bus:revoked"));
    assert_eq!(server.cli(&["ACL", "SETUSER", "bus", "on", ">pw", "~*", "+@all", "allchannels"]), "OK");
    let url = format!("redis://bus:pw@127.0.0.1:{}", server.port());
    let a = open(&url, NodeId::new("a"), options()).await;
    let mut events = a.events().unwrap();
    a.watch(&allowed).await.unwrap();
    a.watch(&revoked).await.unwrap();

    // Redis drops the pub/sub clients of a user who loses a channel; the
    // bus re-subscribes both in one command, which Redis refuses whole.
    limit_bus_user(&server, &allowed);
    server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    expect(&mut events, BusEvent::Down, options().ping_timeout).await;
    expect(&mut events, BusEvent::Resumed, PROMPT).await;
    a.publish(&allowed, b"still here".to_vec()).await.unwrap();
    assert_eq!(next_frame(&mut events).await, "still here");
}

/// Centrifugo #1189: after a failover the re-subscription wedged, delivery
/// stopped, and health stayed green. Here a server that confirms the
/// control channels but never a watched channel (nor a `PING`) must keep
/// the bus down and retrying, until the subscription really goes through.
#[tokio::test]
async fn a_wedged_resubscription_never_looks_healthy() {
    let chat = channel("bus:wedged");
    let server = FakeRedis::start().await;
    let a = open(&server.url(), NodeId::new("a"), options()).await;
    let mut events = a.events().unwrap();
    a.watch(&chat).await.unwrap();

    server.wedge(true);
    server.drop_connections();
    expect(&mut events, BusEvent::Down, options().ping_timeout).await;
    let wedged_until = Instant::now() + options().ping_timeout * 3;
    let connections_before = server.connections();
    while Instant::now() < wedged_until {
        assert!(!a.is_up(), "a wedged re-subscription must not look healthy");
        if let Ok(event) = timeout(Duration::from_millis(50), events.recv()).await {
            panic!("nothing may arrive while wedged, got {event:?}");
        }
    }
    assert!(server.connections() > connections_before, "the bus gave up on the wedged link and tried again");

    server.wedge(false);
    expect(&mut events, BusEvent::Resumed, PROMPT).await;
    assert!(a.is_up());
}

/// Watch, unwatch, watch again, all in flight at once: the first
/// `subscribe` confirmation answers the first watch, not the last one,
/// which must wait for its own (the unsubscribe lies between them).
#[tokio::test]
async fn a_rewatch_waits_for_its_own_confirmation() {
    let chat = channel("bus:rewatch");
    let server = FakeRedis::start().await;
    let a = open(&server.url(), NodeId::new("a"), options()).await;

    server.hold(true);
    let spawn_watch = |watch: bool| {
        let (a, chat) = (a.clone(), chat.clone());
        tokio::spawn(async move { if watch { a.watch(&chat).await } else { a.unwatch(&chat).await } })
    };
    let mut steps = Vec::new();
    for (n, watch) in [true, false, true].into_iter().enumerate() {
        steps.push(spawn_watch(watch));
        server.wait_for_held(n + 1).await;
    }
    server.release(1);
    let last = steps.pop().unwrap();
    let mut last = last;
    let early = timeout(Duration::from_millis(200), &mut last).await;
    assert!(early.is_err(), "the re-watch returned on the confirmation of the first watch");
    server.release(2);
    for step in steps.into_iter().chain([last]) {
        timeout(PROMPT, step).await.unwrap().unwrap().unwrap();
    }
}
