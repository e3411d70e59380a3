//! Pusher continuity at the protocol level (`docs/pusher.md`,
//! "Continuity"): a signed-in user who loses a connection and subscribes
//! again within `pusher.continuity_window` gets the private-channel events
//! it missed, in order, before live ones, without any client change.
//! Exact after the server closes the connection (a drain); after an abrupt
//! loss, replayed from the last answered ping (none missing, duplicates
//! possible); nothing pretended outside the window or for a connection
//! that never signed in; across the nodes of a cluster through Redis.
//!
//! The clients are raw WebSockets speaking Pusher as pusher-js does, and
//! answering pings as every WebSocket library does. The pusher-js side is
//! `clients/js/test/continuity.test.mjs`.

use std::time::Duration;

use fanfare::config::StoreKind;
use fanfare_protocol::pusher::sign;
use fanfare_store::{EmbeddedOptions, EmbeddedStore};
use fanfare_testkit::{CutLink, RedisServer};
use serde_json::json;

use crate::pusher_api::{PusherConn, Sdk};
use crate::support::{TestServer, eventually, metric_value};

const APP: &str = "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\n";
const CHANNEL: &str = "private-chat";

/// The app, a continuity window and a ping interval.
fn config(window: &str, ping_interval: &str) -> String {
    format!(
        "[pusher]\ncontinuity_window = \"{window}\"\n{APP}[limits]\nping_interval = \"{ping_interval}\"\n"
    )
}

fn sdk(server: &TestServer) -> Sdk<'_> {
    Sdk { server, app_id: "app-1", key: "key-1", secret: "secret-1" }
}

async fn trigger(server: &TestServer, data: &str) {
    let (status, body) = sdk(server).trigger(&[CHANNEL], "msg", data).await;
    assert_eq!(status, 200, "{body}");
}

async fn subscribe_private(conn: &mut PusherConn, channel: &str) {
    let signature = sign("secret-1", &format!("{}:{channel}", conn.socket_id));
    conn.subscribe(channel, &format!("key-1:{signature}"), None).await;
}

/// A connection to `addr` signed in as `user`, subscribed to [`CHANNEL`].
async fn alice_at(addr: std::net::SocketAddr, user: &str) -> PusherConn {
    let mut conn = PusherConn::open_at(addr, "key-1").await;
    conn.sign_in(user).await;
    subscribe_private(&mut conn, CHANNEL).await;
    conn
}

/// The data of the next `count` `msg` events of [`CHANNEL`].
async fn messages(conn: &mut PusherConn, count: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < count {
        let frame = conn.next_event_of(CHANNEL).await;
        if frame["event"] == "msg" {
            got.push(frame["data"].as_str().unwrap().to_owned());
        }
    }
    got
}

/// Reads until the server closes; the close code.
async fn closed_with(conn: &mut PusherConn) -> u16 {
    loop {
        if let Err(code) = conn.next().await {
            return code;
        }
    }
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn points_saved(server: &TestServer) -> f64 {
    let metrics = server.metrics().await;
    match metrics.contains("fanfare_pusher_continuity_points_saved_total ") {
        true => metric_value(&metrics, "fanfare_pusher_continuity_points_saved_total"),
        false => 0.0,
    }
}

/// Waits for two more saves than now: the second was at a ping sent
/// after everything already received was queued. `conn` keeps being read
/// meanwhile (a WebSocket library answers pings as it reads).
async fn a_ping_answered_after_what_was_received(server: &TestServer, conn: &mut PusherConn) {
    let before = points_saved(server).await;
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while points_saved(server).await < before + 2.0 {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for two more answered pings");
        conn.send(json!({"event": "pusher:ping", "data": {}})).await;
        conn.next_event("pusher:pong").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn after_a_drain_the_next_server_on_the_same_data_replays_exactly_what_was_missed() {
    let data = tempfile::tempdir().unwrap();
    let store = StoreKind::Embedded(data.path().join("store"));
    let on_the_data = |settings: &mut fanfare::config::Settings| settings.store.kind = store.clone();
    // Pings far apart: only the drain's own save can make this exact.
    let mut first = TestServer::with_settings(&config("2m", "1h"), on_the_data).await;
    let mut alice = alice_at(first.addr, "alice").await;
    trigger(&first, "one").await;
    trigger(&first, "two").await;
    assert_eq!(messages(&mut alice, 2).await, texts(&["one", "two"]));

    let stopping = first.begin_shutdown();
    assert_eq!(closed_with(&mut alice).await, 4200, "the drain sends pusher-js back at once");
    stopping.await.unwrap().unwrap();
    drop(first);
    // The first server's last tasks let go of the store's directory lock a
    // moment after it stopped.
    let path = data.path().join("store");
    eventually("the stopped server to let go of its store", || async {
        EmbeddedStore::open(&path, EmbeddedOptions::default()).is_ok()
    })
    .await;

    let second = TestServer::with_settings(&config("2m", "1h"), |s| s.store.kind = store.clone()).await;
    trigger(&second, "three").await;
    trigger(&second, "four").await;
    let mut back = alice_at(second.addr, "alice").await;
    trigger(&second, "five").await;
    assert_eq!(messages(&mut back, 3).await, texts(&["three", "four", "five"]), "exact: none twice");
}

#[tokio::test]
async fn after_an_abrupt_loss_nothing_is_missing_and_the_replay_is_in_order() {
    let server = TestServer::with_config(&config("2m", "200ms")).await;
    let link = CutLink::start(server.addr).await;
    let proxied = std::net::SocketAddr::from(([127, 0, 0, 1], link.port()));
    let mut alice = alice_at(proxied, "alice").await;
    for n in 1..=3 {
        trigger(&server, &format!("m{n}")).await;
    }
    assert_eq!(messages(&mut alice, 3).await, texts(&["m1", "m2", "m3"]));
    a_ping_answered_after_what_was_received(&server, &mut alice).await;

    // A silent partition: the server keeps writing to a socket whose bytes
    // never arrive, and cannot know it.
    link.stall();
    for n in 4..=6 {
        trigger(&server, &format!("m{n}")).await;
    }
    let mut back = alice_at(server.addr, "alice").await;
    trigger(&server, "m7").await;
    let mut got = Vec::new();
    while got.last().map(String::as_str) != Some("m7") {
        got.extend(messages(&mut back, 1).await);
    }
    // From wherever the replay starts (a duplicate of m3 at most, here),
    // every later message comes once, in order.
    let first: usize = got[0][1..].parse().unwrap();
    assert!(first <= 4, "m4 was missed: {got:?}");
    let expected: Vec<String> = (first..=7).map(|n| format!("m{n}")).collect();
    assert_eq!(got, expected);
    drop(alice);
}

#[tokio::test]
async fn outside_the_window_or_without_a_signin_nothing_is_pretended() {
    let server = TestServer::with_config(&config("1s", "100ms")).await;
    let mut alice = alice_at(server.addr, "alice").await;
    let mut anonymous = PusherConn::open(&server, "key-1").await;
    subscribe_private(&mut anonymous, CHANNEL).await;
    trigger(&server, "before").await;
    assert_eq!(messages(&mut alice, 1).await, texts(&["before"]));
    assert_eq!(messages(&mut anonymous, 1).await, texts(&["before"]));
    a_ping_answered_after_what_was_received(&server, &mut alice).await;
    drop((alice, anonymous));
    trigger(&server, "missed").await;

    // Never signed in: a plain subscription, as with any Pusher server.
    let mut anonymous = PusherConn::open(&server, "key-1").await;
    subscribe_private(&mut anonymous, CHANNEL).await;
    // Past the window (1 s, plus the ping interval a point saved at a
    // ping is given): the point is gone.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut late = alice_at(server.addr, "alice").await;
    trigger(&server, "after").await;
    assert_eq!(messages(&mut late, 1).await, texts(&["after"]), "no replay of \"missed\"");
    assert_eq!(messages(&mut anonymous, 1).await, texts(&["after"]));
}

#[tokio::test]
async fn an_unsubscribe_forgets_the_point_and_another_user_never_gets_it() {
    let server = TestServer::with_config(&config("2m", "100ms")).await;
    let mut alice = alice_at(server.addr, "alice").await;
    trigger(&server, "before").await;
    assert_eq!(messages(&mut alice, 1).await, texts(&["before"]));
    a_ping_answered_after_what_was_received(&server, &mut alice).await;
    drop(alice);
    trigger(&server, "missed").await;

    let mut bob = alice_at(server.addr, "bob").await;
    trigger(&server, "live").await;
    assert_eq!(messages(&mut bob, 1).await, texts(&["live"]), "alice's point is hers");

    let mut alice = alice_at(server.addr, "alice").await;
    assert_eq!(messages(&mut alice, 2).await, texts(&["missed", "live"]));
    a_ping_answered_after_what_was_received(&server, &mut alice).await;
    alice.send(json!({"event": "pusher:unsubscribe", "data": {"channel": CHANNEL}})).await;
    // Frames are handled in order: the pong comes after the unsubscribe.
    alice.send(json!({"event": "pusher:ping", "data": {}})).await;
    alice.next_event("pusher:pong").await;
    drop(alice);
    trigger(&server, "after unsubscribe").await;
    let mut again = alice_at(server.addr, "alice").await;
    trigger(&server, "last").await;
    assert_eq!(messages(&mut again, 1).await, texts(&["last"]), "unsubscribed: nothing to resume");
}

#[tokio::test]
async fn a_presence_channel_resumes_too_and_only_its_stored_events_are_replayed() {
    let server = TestServer::with_config(&config("2m", "100ms")).await;
    let room = "presence-room";
    let next_msg = async |conn: &mut PusherConn| loop {
        let frame = conn.next_event_of(room).await;
        if frame["event"] == "msg" {
            return frame["data"].as_str().unwrap().to_owned();
        }
    };
    let mut alice = PusherConn::open(&server, "key-1").await;
    alice.sign_in("alice").await;
    alice.join_presence(room, "alice").await;
    sdk(&server).trigger(&[room], "msg", "before").await;
    assert_eq!(next_msg(&mut alice).await, "before");
    a_ping_answered_after_what_was_received(&server, &mut alice).await;
    drop(alice);
    sdk(&server).trigger(&[room], "msg", "missed").await;

    let mut back = PusherConn::open(&server, "key-1").await;
    back.sign_in("alice").await;
    back.join_presence(room, "alice").await;
    sdk(&server).trigger(&[room], "msg", "live").await;
    assert_eq!(next_msg(&mut back).await, "missed");
    assert_eq!(next_msg(&mut back).await, "live");
}

/// pusher-js sends its signin and its subscriptions when it connects, in
/// whichever order its auth requests answer: a subscription made before
/// the signin, and given nothing yet, still resumes.
#[tokio::test]
async fn a_signin_that_comes_after_the_subscription_still_resumes_it() {
    let server = TestServer::with_config(&config("2m", "100ms")).await;
    let mut alice = alice_at(server.addr, "alice").await;
    trigger(&server, "before").await;
    assert_eq!(messages(&mut alice, 1).await, texts(&["before"]));
    a_ping_answered_after_what_was_received(&server, &mut alice).await;
    drop(alice);
    trigger(&server, "missed 1").await;
    trigger(&server, "missed 2").await;

    let mut back = PusherConn::open(&server, "key-1").await;
    subscribe_private(&mut back, CHANNEL).await;
    back.sign_in("alice").await;
    trigger(&server, "live").await;
    assert_eq!(messages(&mut back, 3).await, texts(&["missed 1", "missed 2", "live"]));
}

/// Alice drops off node A (drained) and comes back on node B: B replays
/// what she missed from the point A left in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_drained_off_one_node_gets_what_she_missed_on_another() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let toml = config("2m", "1h");
    let a = TestServer::in_cluster(&redis.url(), &toml).await;
    let b = TestServer::in_cluster(&redis.url(), &toml).await;
    let mut alice = alice_at(a.addr, "alice").await;
    trigger(&b, "one").await;
    assert_eq!(messages(&mut alice, 1).await, texts(&["one"]));

    let mut a = a;
    let stopping = a.begin_shutdown();
    assert_eq!(closed_with(&mut alice).await, 4200, "drained");
    stopping.await.unwrap().unwrap();
    trigger(&b, "two").await;
    trigger(&b, "three").await;
    let mut back = alice_at(b.addr, "alice").await;
    trigger(&b, "four").await;
    assert_eq!(messages(&mut back, 3).await, texts(&["two", "three", "four"]));
}
