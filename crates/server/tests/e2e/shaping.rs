//! Huge-room shaping against a real server (issue 12, `docs/moderation.md`
//! §6): a crowd of subscribers under a flood of comments, a priority
//! publication every second and a stream of reactions. Every priority
//! publication reaches everyone, in order; each subscriber's ordinary
//! deliveries stay within its budget in every window; `skipped` plus what
//! arrived accounts for every offset; reactions arrive as aggregates whose
//! counts add up to the taps. A recovery replays the same sample the live
//! subscribers got, and two cluster nodes deliver the same sample.

use std::collections::BTreeMap;
use std::time::Duration;

use fanfare_client::PublishOptions;
use fanfare_testkit::RedisServer;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{RawConn, TestServer, metric_value, token};

const CONFIG: &str = r#"
[limits]
max_commands_per_second = 10000     # the reactor taps as fast as the server answers

[namespaces.live]
publish = "anyone"
durability = "buffered"

[namespaces.live.shaping]
budget = 20
window = "1s"
reactions = "250ms"

[namespaces.replay]
publish = "anyone"
durability = "buffered"

[namespaces.replay.shaping]
budget = 5
priority = ["hosts"]

[namespaces.batched]
publish = "anyone"

[namespaces.batched.shaping]
budget = 100
batch = "1s"
priority = ["hosts"]
"#;

const VIEWERS: usize = 1_500;
const BUDGET: u64 = 20;
const PUBLISHERS: usize = 10;
/// Each publisher's comments per second, and for how long.
const PER_PUBLISHER_RATE: u64 = 50;
const FLOOD: Duration = Duration::from_secs(3);
const REACTIONS: [&str; 3] = ["👍", "❤️", "😂"];
const TAPS_EACH: u64 = 100;

/// What one subscriber received.
#[derive(Debug, Default)]
struct Tally {
    /// Ordinary deliveries per window (publication time / 1 s).
    per_window: BTreeMap<u64, u64>,
    ordinary: u64,
    skipped: u64,
    /// The `n` of each priority publication, in arrival order.
    priority: Vec<u64>,
    /// Every durable offset received, in arrival order.
    offsets: Vec<u64>,
    reactions: BTreeMap<String, u64>,
    aggregates: u64,
}

impl Tally {
    /// Counts one frame; `true` once the final priority publication came.
    fn count(&mut self, frame: &Value) -> bool {
        if frame["type"] != "publication" {
            return false;
        }
        let Some(offset) = frame["offset"].as_u64() else {
            assert_eq!(frame["event"], "fanfare:reactions", "the only ephemeral pushes: {frame}");
            assert!(frame["data"]["window_ms"] == 250, "{frame}");
            for (reaction, count) in frame["data"]["counts"].as_object().unwrap() {
                *self.reactions.entry(reaction.clone()).or_default() += count.as_u64().unwrap();
            }
            self.aggregates += 1;
            return false;
        };
        self.offsets.push(offset);
        self.skipped += frame["skipped"].as_u64().unwrap_or(0);
        if frame["priority"] == true {
            self.priority.push(frame["data"]["n"].as_u64().unwrap());
            return frame["data"]["end"] == true;
        }
        assert!(frame.get("priority").is_none(), "`priority` only when true: {frame}");
        self.ordinary += 1;
        *self.per_window.entry(frame["time"].as_u64().unwrap() / 1000).or_default() += 1;
        false
    }
}

/// A subscriber of `channel` counting what it gets until the final
/// priority publication; returns its tally and its position at subscribe.
async fn viewer(server_ws: String, channel: &'static str) -> tokio::task::JoinHandle<(Tally, u64)> {
    let (mut socket, _) = tokio_tungstenite::connect_async(server_ws).await.unwrap();
    let mut conn = RawConn::from_socket(socket);
    assert!(conn.command(json!({"type": "connect"})).await.get("result").is_some());
    let reply = conn.command(json!({"type": "subscribe", "channel": channel})).await;
    let start = reply["result"]["offset"].as_u64().unwrap_or_else(|| panic!("{reply}"));
    socket = conn.socket;
    tokio::spawn(async move {
        let mut tally = Tally::default();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(60), socket.next())
                .await
                .expect("a viewer waited a minute for a frame");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    if tally.count(&serde_json::from_str(text.as_str()).unwrap()) {
                        return (tally, start);
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {} // heartbeats, answered by the library
                other => panic!("a viewer's socket ended: {other:?}"),
            }
        }
    })
}

async fn priority(server: &TestServer, channel: &str, data: Value) -> u64 {
    let (status, reply) = server.publish(channel, data).await;
    assert_eq!(status, 200, "{reply}");
    reply["offset"].as_u64().unwrap()
}

#[tokio::test]
async fn a_crowd_gets_every_priority_publication_a_budgeted_sample_of_comments_and_reaction_aggregates() {
    let server = TestServer::with_config(CONFIG).await;
    let mut viewers = Vec::with_capacity(VIEWERS);
    for _ in 0..VIEWERS {
        viewers.push(viewer(server.ws_url(), "live:stage").await);
    }
    let mut monitor = RawConn::connected(&server, None).await;
    monitor.command(json!({"type": "subscribe", "channel": "live:stage"})).await;

    // The flood: PUBLISHERS connections, each PER_PUBLISHER_RATE comments a second.
    let flood = (0..PUBLISHERS).map(|p| {
        let options = server.client_options();
        tokio::spawn(async move {
            let client = fanfare_client::Client::connect(options).await.unwrap();
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / PER_PUBLISHER_RATE));
            let count = PER_PUBLISHER_RATE * FLOOD.as_secs();
            for n in 0..count {
                tick.tick().await;
                let comment = json!({"from": p, "n": n});
                client.publish("live:stage", &comment, PublishOptions::default()).await.unwrap();
            }
            count
        })
    });
    let flood: Vec<_> = flood.collect();
    // Reactions, from one connection, while the flood goes on.
    let mut reactor = RawConn::connected(&server, None).await;
    for tap in 0..TAPS_EACH * REACTIONS.len() as u64 {
        let reaction = REACTIONS[(tap % REACTIONS.len() as u64) as usize];
        let reply =
            reactor.command(json!({"type": "react", "channel": "live:stage", "reaction": reaction})).await;
        assert_eq!(reply["result"], json!({}), "{reply}");
    }
    // A priority publication every second.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for n in 0..FLOOD.as_secs() {
        tick.tick().await;
        priority(&server, "live:stage", json!({"n": n})).await;
    }
    let mut comments = 0;
    for publisher in flood {
        comments += publisher.await.unwrap();
    }
    // Every tap is in an aggregate once the monitor has seen them all.
    let mut monitor_tally = Tally::default();
    while monitor_tally.reactions.values().sum::<u64>() < TAPS_EACH * REACTIONS.len() as u64 {
        monitor_tally.count(&monitor.next().await.expect("the monitor's socket ended"));
    }
    let end = priority(&server, "live:stage", json!({"n": FLOOD.as_secs(), "end": true})).await;

    let priorities: Vec<u64> = (0..=FLOOD.as_secs()).collect();
    let mut delivered = 0;
    for viewer in viewers {
        let (tally, start) = viewer.await.unwrap();
        assert_eq!(tally.priority, priorities, "every priority publication, in order");
        assert!(
            tally.offsets.is_sorted() && tally.offsets.windows(2).all(|w| w[0] < w[1]),
            "offsets increase"
        );
        assert_eq!(
            tally.offsets.len() as u64 + tally.skipped,
            end - start,
            "what arrived and what was skipped account for every offset"
        );
        for (window, count) in &tally.per_window {
            assert!(
                *count <= BUDGET,
                "window {window}: {count} ordinary deliveries over a budget of {BUDGET}"
            );
        }
        assert!(tally.skipped > 0 && tally.ordinary < comments, "{} of {comments}: sampled", tally.ordinary);
        assert!(tally.ordinary >= BUDGET, "a sample, not nothing: {}", tally.ordinary);
        for reaction in REACTIONS {
            assert_eq!(tally.reactions.get(reaction), Some(&TAPS_EACH), "{reaction}: {:?}", tally.reactions);
        }
        assert!(tally.aggregates < TAPS_EACH, "aggregates, not one push per tap: {}", tally.aggregates);
        delivered += tally.ordinary;
    }
    let metrics = server.metrics().await;
    assert!(metric_value(&metrics, "fanfare_publications_sampled_out_total{namespace=\"live\"}") > 0.0);
    assert_eq!(
        metric_value(&metrics, "fanfare_reactions_total"),
        (TAPS_EACH * REACTIONS.len() as u64) as f64
    );
    eprintln!(
        "shaping: {VIEWERS} viewers, {comments} comments in {FLOOD:?}: {} ordinary deliveries per viewer",
        delivered / VIEWERS as u64
    );
    server.stop().await;
}

/// Publishes `count` ordinary publications through the HTTP API (the
/// server is not in `replay`'s priority lane), a host's priority one after
/// every tenth; returns the host publications' offsets.
async fn publish_mix(server: &TestServer, host: &fanfare_client::Client, count: u64) -> Vec<u64> {
    let mut hosts = Vec::new();
    for n in 1..=count {
        let (status, reply) = server.publish("replay:stage", json!({"n": n})).await;
        assert_eq!(status, 200, "{reply}");
        if n % 10 == 0 {
            let published =
                host.publish("replay:stage", &json!({"host": n}), PublishOptions::default()).await.unwrap();
            hosts.push(published.offset.unwrap());
        }
    }
    hosts
}

/// Offsets and `skipped` of the next `n` durable publications on `conn`.
async fn durable(conn: &mut RawConn, n: usize) -> Vec<(u64, u64, bool)> {
    let mut out = Vec::new();
    while out.len() < n {
        let frame = conn.next().await.expect("closed while waiting for publications");
        if let Some(offset) = frame["offset"].as_u64() {
            out.push((offset, frame["skipped"].as_u64().unwrap_or(0), frame["priority"] == true));
        }
    }
    out
}

#[tokio::test]
async fn a_recovery_replays_the_sample_live_subscribers_got_and_counts_what_it_skipped() {
    let server = TestServer::with_config(CONFIG).await;
    let host = server.client_as(token("stage-host", json!({"host": ["replay:*"]}))).await;
    let mut live = RawConn::connected(&server, None).await;
    let reply = live.command(json!({"type": "subscribe", "channel": "replay:stage"})).await;
    let epoch = reply["result"]["epoch"].clone();

    let hosts = publish_mix(&server, &host, 60).await;
    let top = *hosts.last().unwrap();
    let mut got = Vec::new();
    while got.last().map(|(offset, _, _)| *offset) != Some(top) {
        let next = durable(&mut live, 1).await;
        got.extend(next);
    }
    // Every host publication, flagged; the rest sampled with `skipped` counting the gaps.
    let flagged: Vec<u64> = got.iter().filter(|(_, _, p)| *p).map(|(o, _, _)| *o).collect();
    assert_eq!(flagged, hosts);
    let mut last = 0;
    for (offset, skipped, _) in &got {
        assert_eq!(*skipped, offset - last - 1, "skipped is the gap before {offset}");
        last = *offset;
    }
    assert!(got.len() < 60, "sampled: {} of {}", got.len(), top);

    // A client that was at offset 0 recovers the same sample.
    let mut late = RawConn::connected(&server, None).await;
    let since = json!({"epoch": epoch, "offset": 0});
    let reply = late.command(json!({"type": "subscribe", "channel": "replay:stage", "since": since})).await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    let replayed = durable(&mut late, got.len()).await;
    assert_eq!(replayed, got, "the replay takes the live sample's decisions");

    // A client recovering from the middle counts its skips from its own position.
    let from = got[got.len() / 2].0 - 1;
    let mut middle = RawConn::connected(&server, None).await;
    let since = json!({"epoch": epoch, "offset": from});
    middle.command(json!({"type": "subscribe", "channel": "replay:stage", "since": since})).await;
    let first = durable(&mut middle, 1).await[0];
    assert!(first.0 > from);
    assert_eq!(first.1, first.0 - from - 1);
    server.stop().await;
}

#[tokio::test]
async fn reactions_and_priority_are_refused_or_ignored_where_the_namespace_is_not_shaped() {
    let server = TestServer::with_config(
        r#"
[namespaces.plain]
publish = "anyone"
"#,
    )
    .await;
    let mut conn = RawConn::connected(&server, None).await;
    let reply = conn.command(json!({"type": "react", "channel": "plain:x", "reaction": "👍"})).await;
    assert_eq!(reply["error"]["code"], "not_available", "{reply}");
    let reply = conn.command(json!({"type": "react", "channel": "plain:x"})).await;
    assert_eq!(reply["error"]["code"], "bad_request", "{reply}");
    conn.command(json!({"type": "subscribe", "channel": "plain:x"})).await;
    server.publish("plain:x", json!({"n": 1})).await;
    let push = &conn.publications("plain:x", 1).await[0];
    assert!(push.get("priority").is_none() && push.get("skipped").is_none(), "{push}");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_reaction_is_refused_and_counts_nothing() {
    let server = TestServer::with_config(CONFIG).await;
    let mut conn = RawConn::connected(&server, None).await;
    for bad in ["", "a\nb", &"x".repeat(33)] {
        let reply = conn.command(json!({"type": "react", "channel": "live:x", "reaction": bad})).await;
        assert_eq!(reply["error"]["code"], "bad_request", "{bad:?}: {reply}");
    }
    let reply = conn.command(json!({"type": "react", "channel": "news:x", "reaction": "👍"})).await;
    assert_eq!(reply["error"]["code"], "permission_denied", "where clients may not publish: {reply}");
    assert_eq!(metric_value(&server.metrics().await, "fanfare_reactions_total"), 0.0);
    server.stop().await;
}

#[tokio::test]
async fn two_cluster_nodes_deliver_the_same_sample() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let a = TestServer::in_cluster(&redis.url(), CONFIG).await;
    let b = TestServer::in_cluster(&redis.url(), CONFIG).await;
    let mut on_a = RawConn::connected(&a, None).await;
    let mut on_b = RawConn::connected(&b, None).await;
    for conn in [&mut on_a, &mut on_b] {
        let reply = conn.command(json!({"type": "subscribe", "channel": "replay:stage"})).await;
        assert!(reply.get("result").is_some(), "{reply}");
    }
    let host = a.client_as(token("stage-host", json!({"host": ["replay:*"]}))).await;
    let hosts = publish_mix(&b, &host, 40).await;
    let last_host = *hosts.last().unwrap();
    let until_last_host = |got: &Vec<(u64, u64, bool)>| got.last().map(|g| g.0) == Some(last_host);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    while !until_last_host(&got_a) {
        got_a.extend(durable(&mut on_a, 1).await);
    }
    while !until_last_host(&got_b) {
        got_b.extend(durable(&mut on_b, 1).await);
    }
    assert_eq!(got_a, got_b, "both nodes sampled alike");
    assert!(got_a.len() < 40, "sampled: {}", got_a.len());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_rust_client_sees_skipped_counts_and_reacts() {
    use fanfare_client::SubscriptionEvent;
    let server = TestServer::with_config(CONFIG).await;
    let client = server.client().await;
    let mut replay = client.subscribe("replay:c", None).await.unwrap();
    let mut live = client.subscribe("live:c", None).await.unwrap();
    let mut last = 0;
    for n in 1..=30 {
        let (_, reply) = server.publish("replay:c", json!({"n": n})).await;
        last = reply["offset"].as_u64().unwrap();
    }
    let host = server.client_as(token("stage-host", json!({"host": ["replay:*"]}))).await;
    let flagged = host.publish("replay:c", &json!({"host": true}), PublishOptions::default()).await.unwrap();
    let (mut received, mut skipped) = (0, 0);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), replay.next()).await.unwrap() {
            Some(SubscriptionEvent::Publication { publication, skipped: s, .. }) => {
                received += 1;
                skipped += s;
                if publication.offset == flagged.offset.unwrap() {
                    assert!(publication.priority, "a host's publication is flagged");
                    break;
                }
            }
            Some(_) => {}
            None => panic!("the subscription ended"),
        }
    }
    assert_eq!(received + skipped, last + 1, "every offset received or counted");
    assert!(skipped > 0, "30 at once against a budget of 5 a second");

    client.react("live:c", "👏").await.unwrap();
    client.react("live:c", "👏").await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), live.next()).await.unwrap() {
            Some(SubscriptionEvent::Publication { epoch: None, publication, .. }) => {
                assert_eq!(publication.event.as_deref(), Some("fanfare:reactions"));
                assert_eq!(publication.data.as_str(), r#"{"counts":{"👏":2},"window_ms":250}"#);
                break;
            }
            Some(_) => {}
            None => panic!("the subscription ended"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn kept_comments_wait_for_their_batch_and_a_priority_publication_takes_them_along() {
    let server = TestServer::with_config(CONFIG).await;
    let mut conn = RawConn::connected(&server, None).await;
    conn.command(json!({"type": "subscribe", "channel": "batched:stage"})).await;
    let published = std::time::Instant::now();
    let (_, reply) = server.publish("batched:stage", json!({"n": 1})).await;
    let first = reply["offset"].as_u64().unwrap();
    assert_eq!(durable(&mut conn, 1).await[0].0, first);
    let waited = published.elapsed();
    assert!(waited >= Duration::from_millis(500), "held for the batch of 1 s: {waited:?}");

    // A host's publication does not wait, and the held comment goes first.
    let host = server.client_as(token("stage-host", json!({"host": ["batched:*"]}))).await;
    let (_, reply) = server.publish("batched:stage", json!({"n": 2})).await;
    let comment = reply["offset"].as_u64().unwrap();
    let flagged =
        host.publish("batched:stage", &json!({"host": true}), PublishOptions::default()).await.unwrap();
    let got = durable(&mut conn, 2).await;
    assert_eq!(got, [(comment, 0, false), (flagged.offset.unwrap(), 0, true)]);
    server.stop().await;
}

#[tokio::test]
async fn pusher_triggers_take_the_priority_lane_and_pusher_subscribers_get_reaction_aggregates() {
    use crate::pusher_api::{APPS, PusherConn, Sdk};
    let config =
        format!("{APPS}\n[namespaces.two]\npublish = \"anyone\"\n\n[namespaces.two.shaping]\nbudget = 1\n");
    let server = TestServer::with_config(&config).await;
    let mut native = RawConn::connected(&server, None).await;
    native.command(json!({"type": "subscribe", "channel": "two:stage"})).await;
    let mut pusher = PusherConn::open(&server, "key-2").await;
    pusher.subscribe("stage", "", None).await;

    let sdk = Sdk { server: &server, app_id: "app-2", key: "key-2", secret: "secret-2" };
    for n in 0..3 {
        let (status, reply) = sdk.trigger(&["stage"], "update", &format!("{{\"n\":{n}}}")).await;
        assert_eq!(status, 200, "{reply}");
    }
    let pushes = native.publications("two:stage", 3).await;
    assert!(pushes.iter().all(|p| p["priority"] == true), "none sampled out: {pushes:?}");
    for n in 0..3 {
        let event = pusher.next_event("update").await;
        assert_eq!(event["data"], format!("{{\"n\":{n}}}"));
    }

    native.command(json!({"type": "react", "channel": "two:stage", "reaction": "🎉"})).await;
    let aggregate = pusher.next_event("fanfare:reactions").await;
    assert_eq!(aggregate["channel"], "stage");
    assert_eq!(aggregate["data"], r#"{"counts":{"🎉":1},"window_ms":250}"#);
    server.stop().await;
}
