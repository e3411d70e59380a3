//! Members channels, direct channels, feeds and read state against a real
//! server (issue 13, `docs/members.md`): only members read and write a
//! members channel; member changes are publications in order; a removed
//! member's connections close with 4507; `dm:` names hold their two
//! members and nothing else passes; a user's feed gets one notice per
//! message of each of their channels, in order, and recovers by position;
//! read cursors and unread counts survive reconnects and restarts.

use std::collections::BTreeMap;

use fanfare::config::StoreKind;
use fanfare_store::{EmbeddedOptions, EmbeddedStore};
use serde_json::{Value, json};

use crate::support::{RawConn, TestServer, eventually, token};

const CONFIG: &str = r#"
[limits]
max_commands_per_second = 10000

[namespaces.team]
subscribe = "members"
publish = "members"
presence = true
receipt_interval = "300ms"

[namespaces.club]
subscribe = "members"
publish = "members"
manage_members = "grant"
"#;

async fn add(server: &TestServer, channel: &str, users: &[&str]) -> Value {
    let (status, body) = server.post("/api/members", json!({"channel": channel, "add": users})).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn as_user(server: &TestServer, user: &str) -> RawConn {
    RawConn::connected(server, Some(&token(user, json!({})))).await
}

fn error_code(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or_else(|| panic!("expected an error, got {reply}"))
}

#[tokio::test]
async fn non_members_are_refused_subscribe_history_presence_and_publish() {
    let server = TestServer::with_config(CONFIG).await;
    add(&server, "team:general", &["alice"]).await;
    let mut bob = as_user(&server, "bob").await;
    for command in [
        json!({"type": "subscribe", "channel": "team:general"}),
        json!({"type": "history", "channel": "team:general"}),
        json!({"type": "presence", "channel": "team:general"}),
        json!({"type": "publish", "channel": "team:general", "data": "hi"}),
        json!({"type": "members", "channel": "team:general", "action": "list"}),
        json!({"type": "read", "channel": "team:general", "epoch": "x", "offset": 1}),
    ] {
        assert_eq!(error_code(&bob.command(command.clone()).await), "permission_denied", "{command}");
    }
    let mut anonymous = RawConn::connected(&server, None).await;
    let reply = anonymous.command(json!({"type": "subscribe", "channel": "team:general"})).await;
    assert_eq!(error_code(&reply), "permission_denied");

    let mut alice = as_user(&server, "alice").await;
    let reply = alice.command(json!({"type": "subscribe", "channel": "team:general"})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let reply = alice.command(json!({"type": "publish", "channel": "team:general", "data": "hi"})).await;
    assert!(reply["result"]["offset"].is_u64(), "{reply}");
    for event in ["fanfare:members", "fanfare:notice"] {
        let forged = json!({"type": "publish", "channel": "team:general", "event": event, "data": {"removed": ["bob"]}});
        assert_eq!(error_code(&alice.command(forged).await), "bad_request", "{event}");
        let (status, _) = server
            .post(
                "/api/publish",
                json!({"channel": "team:general", "event": event, "data": {"added": ["x"]}}),
            )
            .await;
        assert_eq!(status, 400, "{event} over HTTP");
    }
    let (_, history) = server.get("/api/history?channel=team:general").await;
    let events: Vec<&Value> =
        history["publications"].as_array().unwrap().iter().map(|p| &p["event"]).collect();
    assert_eq!(events, [&json!("fanfare:members"), &Value::Null], "{history}");
    server.stop().await;
}

#[tokio::test]
async fn member_changes_reach_members_in_order_and_a_removed_member_is_closed_and_refused() {
    let server = TestServer::with_config(CONFIG).await;
    add(&server, "team:ops", &["alice", "carol"]).await;
    let mut alice = as_user(&server, "alice").await;
    alice.command(json!({"type": "subscribe", "channel": "team:ops"})).await;
    let mut carol = as_user(&server, "carol").await;
    carol.command(json!({"type": "subscribe", "channel": "team:ops"})).await;

    let added = add(&server, "team:ops", &["dave", "alice"]).await;
    assert_eq!(added, json!({"added": ["dave"], "count": 3}));
    let (status, removed) =
        server.post("/api/members", json!({"channel": "team:ops", "remove": ["carol", "nobody"]})).await;
    assert_eq!((status, removed), (200, json!({"removed": ["carol"], "count": 2})));

    let pushes = alice.publications("team:ops", 2).await;
    assert_eq!(pushes[0]["event"], "fanfare:members");
    assert_eq!(pushes[0]["data"], json!({"added": ["dave"]}));
    assert_eq!(pushes[1]["data"], json!({"removed": ["carol"]}));
    assert_eq!(pushes[1]["offset"].as_u64(), pushes[0]["offset"].as_u64().map(|o| o + 1));

    let (code, _) = carol.until_closed().await;
    assert_eq!(code, 4507, "a removed member's connection closes with 4507");
    let mut carol = as_user(&server, "carol").await;
    let reply = carol.command(json!({"type": "subscribe", "channel": "team:ops"})).await;
    assert_eq!(error_code(&reply), "permission_denied");

    let (_, page) = server.get("/api/members?channel=team:ops").await;
    assert_eq!(page, json!({"members": ["alice", "dave"], "count": 2}));
    let (_, first) = server.get("/api/members?channel=team:ops&limit=1").await;
    assert_eq!(first, json!({"members": ["alice"], "count": 2, "next": "alice"}));
    let (_, rest) = server.get("/api/members?channel=team:ops&limit=1&after=alice").await;
    assert_eq!(rest["members"], json!(["dave"]));
    server.stop().await;
}

#[tokio::test]
async fn members_with_the_grant_manage_only_where_the_namespace_allows_it() {
    let server = TestServer::with_config(CONFIG).await;
    add(&server, "club:chess", &["alice", "bob"]).await;
    add(&server, "team:ops", &["alice"]).await;
    let owner = token("alice", json!({"members": ["club:*", "team:*"]}));
    let mut alice = RawConn::connected(&server, Some(&owner)).await;
    let reply = alice
        .command(json!({"type": "members", "channel": "club:chess", "action": "add", "users": ["erin"]}))
        .await;
    assert_eq!(reply["result"], json!({"added": ["erin"], "count": 3}), "{reply}");
    let reply = alice.command(json!({"type": "members", "channel": "club:chess", "action": "list"})).await;
    assert_eq!(reply["result"]["members"], json!(["alice", "bob", "erin"]));

    let mut bob = as_user(&server, "bob").await;
    let reply = bob
        .command(json!({"type": "members", "channel": "club:chess", "action": "remove", "users": ["erin"]}))
        .await;
    assert_eq!(error_code(&reply), "permission_denied", "a member without the grant");
    let reply = alice
        .command(json!({"type": "members", "channel": "team:ops", "action": "add", "users": ["x"]}))
        .await;
    assert_eq!(error_code(&reply), "permission_denied", "team's members are the server's to manage");
    let reply = alice
        .command(json!({"type": "members", "channel": "club:chess", "action": "add", "users": []}))
        .await;
    assert_eq!(error_code(&reply), "bad_request");
    server.stop().await;
}

#[tokio::test]
async fn a_direct_channel_has_its_two_members_and_other_names_are_invalid() {
    let server = TestServer::with_config(CONFIG).await;
    let mut alice = as_user(&server, "alice").await;
    let reply = alice.command(json!({"type": "subscribe", "channel": "dm:alice,bob"})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let mut carol = as_user(&server, "carol").await;
    let reply = carol.command(json!({"type": "subscribe", "channel": "dm:alice,bob"})).await;
    assert_eq!(error_code(&reply), "permission_denied");
    for bad in ["dm:bob,alice", "dm:alice,alice", "dm:alice", "dm:a,b,c", "dm:,alice"] {
        let reply = alice.command(json!({"type": "subscribe", "channel": bad})).await;
        assert_eq!(error_code(&reply), "invalid_channel", "{bad}");
        let (status, body) = server.publish(bad, json!("x")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_channel")), "{bad}");
    }
    let (status, body) =
        server.post("/api/members", json!({"channel": "dm:alice,bob", "add": ["carol"]})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")));
    let (_, page) = server.get("/api/members?channel=dm:alice,bob").await;
    assert_eq!(page, json!({"members": ["alice", "bob"], "count": 2}));
    server.stop().await;
}

#[tokio::test]
async fn member_limits_refuse_a_channel_too_big_and_a_user_in_too_many() {
    let server = TestServer::with_config(&format!(
        "{CONFIG}\n[members]\nmax_members = 3\nmax_channels_per_user = 2\nfeed_max_members = 3\n"
    ))
    .await;
    add(&server, "team:a", &["u1", "u2", "u3"]).await;
    let (status, body) = server.post("/api/members", json!({"channel": "team:a", "add": ["u4"]})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("too_many_members")), "{body}");
    add(&server, "team:b", &["u1"]).await;
    let (status, body) = server.post("/api/members", json!({"channel": "team:c", "add": ["u1"]})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("too_many_memberships")), "{body}");
    let (_, page) = server.get("/api/members?channel=team:c").await;
    assert_eq!(page["count"], 0, "a refused add adds no one");
    server.stop().await;
}

/// The feed's notices of `n` publications, by channel, in arrival order.
async fn notices(conn: &mut RawConn, feed: &str, n: usize) -> (Vec<Value>, BTreeMap<String, Vec<u64>>) {
    let pushes = conn.publications(feed, n).await;
    let mut by_channel: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for push in &pushes {
        assert_eq!(push["event"], "fanfare:notice", "{push}");
        let notice = &push["data"];
        by_channel
            .entry(notice["channel"].as_str().unwrap().to_owned())
            .or_default()
            .push(notice["offset"].as_u64().unwrap());
    }
    (pushes, by_channel)
}

#[tokio::test]
async fn a_user_in_200_channels_gets_one_notice_per_publication_in_order_and_recovers_the_feed() {
    const CHANNELS: usize = 200;
    let server = TestServer::with_config(CONFIG).await;
    for n in 0..CHANNELS {
        add(&server, &format!("team:c{n}"), &["alice", "bob"]).await;
    }
    let mut alice = as_user(&server, "alice").await;
    let reply = alice.command(json!({"type": "subscribe", "channel": "feed:alice"})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let mut bob = as_user(&server, "bob").await;
    for round in 0..2 {
        for n in 0..CHANNELS {
            let reply = bob.command(json!({"type": "publish", "channel": format!("team:c{n}"), "data": {"text": format!("m{round}")}})).await;
            assert!(reply["result"]["offset"].is_u64(), "{reply}");
        }
    }
    let (pushes, by_channel) = notices(&mut alice, "feed:alice", 2 * CHANNELS).await;
    assert_eq!(by_channel.len(), CHANNELS);
    for (channel, offsets) in &by_channel {
        // Offset 1 is the member change adding alice and bob; it sends no notice.
        assert_eq!(offsets, &[2, 3], "{channel}");
    }
    assert_eq!(pushes[0]["data"]["from"], "bob");
    assert_eq!(pushes[0]["data"]["preview"], "m0");
    let feed_offsets: Vec<u64> = pushes.iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    assert!(feed_offsets.windows(2).all(|w| w[1] == w[0] + 1), "the feed's own offsets are consecutive");
    let last = (pushes[0]["epoch"].as_str().unwrap().to_owned(), *feed_offsets.last().unwrap());
    drop(alice);

    for n in 0..CHANNELS {
        bob.command(json!({"type": "publish", "channel": format!("team:c{n}"), "data": "while away"})).await;
    }
    // bob's own publications send bob no notice.
    let mut bob_feed = as_user(&server, "bob").await;
    let reply = bob_feed.command(json!({"type": "history", "channel": "feed:bob"})).await;
    assert_eq!(reply["result"]["publications"], json!([]), "{reply}");

    let mut alice = as_user(&server, "alice").await;
    let reply = alice.command(json!({"type": "subscribe", "channel": "feed:alice", "since": {"epoch": last.0, "offset": last.1}})).await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    let (_, by_channel) = notices(&mut alice, "feed:alice", CHANNELS).await;
    assert!(by_channel.values().all(|offsets| offsets == &[4]), "each channel's missed notice, once");

    let reply = alice.command(json!({"type": "subscribe", "channel": "feed:bob"})).await;
    assert_eq!(error_code(&reply), "permission_denied", "only bob reads bob's feed");
    server.stop().await;
}

#[tokio::test]
async fn read_cursors_and_unread_counts_survive_reconnects_and_restarts() {
    let store_dir = tempfile::tempdir().unwrap();
    let embedded = |settings: &mut fanfare::config::Settings| {
        settings.store.kind = StoreKind::Embedded(store_dir.path().to_path_buf());
    };
    let server = TestServer::with_settings(CONFIG, embedded).await;
    add(&server, "team:a", &["alice", "bob"]).await;
    let mut bob = as_user(&server, "bob").await;
    let mut epoch = String::new();
    for n in 0..5 {
        let reply = bob.command(json!({"type": "publish", "channel": "team:a", "data": n})).await;
        epoch = reply["result"]["epoch"].as_str().unwrap().to_owned();
    }
    let reply = bob.command(json!({"type": "publish", "channel": "dm:alice,bob", "data": "psst"})).await;
    assert!(reply["result"]["offset"].is_u64(), "{reply}");
    let unread = |page: &Value| -> BTreeMap<String, (u64, u64)> {
        page["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["channel"].as_str().unwrap().to_owned(),
                    (c["read"].as_u64().unwrap(), c["unread"].as_u64().unwrap()),
                )
            })
            .collect()
    };
    // The direct channel is listed, and bob's cursors moved, after the publications (asynchronously).
    let bob_done = BTreeMap::from([("dm:alice,bob".to_owned(), (1, 0)), ("team:a".to_owned(), (6, 0))]);
    eventually("bob's cursors at his own publications", || async {
        unread(&server.get("/api/unread?user=bob").await.1) == bob_done
    })
    .await;

    let mut alice = as_user(&server, "alice").await;
    let reply =
        alice.command(json!({"type": "read", "channel": "team:a", "epoch": epoch, "offset": 4})).await;
    assert_eq!(reply["result"], json!({"moved": true}), "{reply}");
    let reply =
        alice.command(json!({"type": "read", "channel": "team:a", "epoch": epoch, "offset": 2})).await;
    assert_eq!(reply["result"], json!({"moved": false}), "a cursor moves forward only");
    let reply =
        alice.command(json!({"type": "read", "channel": "team:a", "epoch": "another", "offset": 2})).await;
    assert_eq!(error_code(&reply), "bad_request");
    drop(alice);

    let mut alice = as_user(&server, "alice").await;
    let reply = alice.command(json!({"type": "unread"})).await;
    let expected = BTreeMap::from([("dm:alice,bob".to_owned(), (0, 1)), ("team:a".to_owned(), (4, 2))]);
    assert_eq!(unread(&reply["result"]), expected, "{reply}");
    // Every connection gone first: a session holds the server, and the server the store's lock.
    drop((alice, bob));
    server.stop().await;
    // The server's tasks let go of the store as they wind down, after `run` returned.
    eventually("the stopped server to release the store", || async {
        EmbeddedStore::open(store_dir.path(), EmbeddedOptions::default()).is_ok()
    })
    .await;

    let server = TestServer::with_settings(CONFIG, embedded).await;
    let (_, after_restart) = server.get("/api/unread?user=alice").await;
    assert_eq!(unread(&after_restart), expected, "cursors are in the store: {after_restart}");
    let (status, marked) = server
        .post("/api/read", json!({"channel": "team:a", "user": "alice", "epoch": epoch, "offset": 99}))
        .await;
    assert_eq!((status, marked), (200, json!({"moved": true})));
    let (_, now) = server.get("/api/unread?user=alice&limit=1&after=dm:alice,bob").await;
    assert_eq!(
        unread(&now),
        BTreeMap::from([("team:a".to_owned(), (6, 0))]),
        "a mark past the end stops at the end"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_offline_webhook_lists_exactly_the_members_without_a_connection() {
    let mut receiver = crate::moderation_webhook::Receiver::start(&[], 200).await;
    let hook = format!(
        "[[webhooks]]\nurl = \"{}\"\nsecret = \"offline-secret\"\nevents = [\"offline\"]\n",
        receiver.url
    );
    let server = TestServer::with_webhooks(&format!("{CONFIG}\n{hook}"), |_| {}).await;
    add(&server, "team:room", &["alice", "bob", "carol", "dave", "erin"]).await;
    let mut alice = as_user(&server, "alice").await;
    alice.command(json!({"type": "subscribe", "channel": "feed:alice"})).await;
    let mut bob = as_user(&server, "bob").await;
    bob.command(json!({"type": "subscribe", "channel": "team:room"})).await;
    // carol is connected, to neither the channel nor her feed; dave and erin are not connected.
    let mut carol = as_user(&server, "carol").await;
    carol.command(json!({"type": "ping"})).await;

    let mut erin = as_user(&server, "erin").await;
    let reply =
        erin.command(json!({"type": "publish", "channel": "team:room", "data": {"text": "lunch?"}})).await;
    let offset = reply["result"]["offset"].as_u64().unwrap();
    let event = receiver.next_named("offline_members").await;
    assert_eq!(event["channel"], "team:room");
    assert_eq!(event["offset"], offset);
    assert_eq!(event["from"], "erin");
    assert_eq!(event["preview"], "lunch?");
    assert_eq!(event["users"], json!(["carol", "dave"]), "{event}");

    // Once carol opens her feed and bob leaves the channel, the next message names bob and dave.
    carol.command(json!({"type": "subscribe", "channel": "feed:carol"})).await;
    bob.command(json!({"type": "unsubscribe", "channel": "team:room"})).await;
    server.publish("team:room", json!("second")).await;
    let event = receiver.next_named("offline_members").await;
    assert_eq!(event["users"], json!(["bob", "dave", "erin"]), "{event}");
    assert!(event.get("from").is_none(), "the HTTP API has no author: {event}");
    server.stop().await;
}

#[tokio::test]
async fn a_members_namespace_without_presence_answers_presence_not_available_even_with_an_offline_webhook() {
    let receiver = crate::moderation_webhook::Receiver::start(&[], 200).await;
    let hook = format!(
        "[[webhooks]]\nurl = \"{}\"\nsecret = \"offline-secret\"\nevents = [\"offline\"]\n",
        receiver.url
    );
    let server = TestServer::with_webhooks(&format!("{CONFIG}\n{hook}"), |_| {}).await;
    let mut alice = as_user(&server, "alice").await;
    alice.command(json!({"type": "subscribe", "channel": "dm:alice,bob"})).await;
    let reply = alice.command(json!({"type": "presence", "channel": "dm:alice,bob"})).await;
    assert_eq!(error_code(&reply), "not_available");
    let (status, body) = server.get("/api/presence?channel=dm:alice,bob").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("not_available")));
    server.stop().await;
}

#[tokio::test]
async fn in_a_cluster_members_notices_cursors_and_removals_reach_every_node() {
    let Some(redis) = fanfare_testkit::RedisServer::start_or_skip() else { return };
    let a = TestServer::in_cluster(&redis.url(), CONFIG).await;
    let b = TestServer::in_cluster(&redis.url(), CONFIG).await;
    add(&a, "team:ops", &["alice", "bob", "carol"]).await;
    let (_, page) = b.get("/api/members?channel=team:ops").await;
    assert_eq!(page["members"], json!(["alice", "bob", "carol"]), "node b reads what node a wrote");

    let mut alice = as_user(&b, "alice").await;
    alice.command(json!({"type": "subscribe", "channel": "feed:alice"})).await;
    let mut carol = as_user(&b, "carol").await;
    let reply = carol.command(json!({"type": "subscribe", "channel": "team:ops"})).await;
    assert!(reply.get("result").is_some(), "{reply}");

    let mut bob = as_user(&a, "bob").await;
    let reply = bob.command(json!({"type": "publish", "channel": "dm:alice,bob", "data": "hi from a"})).await;
    let dm_offset = reply["result"]["offset"].as_u64().unwrap();
    let reply =
        bob.command(json!({"type": "publish", "channel": "team:ops", "data": {"text": "standup"}})).await;
    let epoch = reply["result"]["epoch"].as_str().unwrap().to_owned();
    let (_, by_channel) = notices(&mut alice, "feed:alice", 2).await;
    assert_eq!(by_channel.get("dm:alice,bob"), Some(&vec![dm_offset]));
    assert_eq!(by_channel.get("team:ops"), Some(&vec![2]));

    let reply =
        alice.command(json!({"type": "read", "channel": "team:ops", "epoch": epoch, "offset": 2})).await;
    assert_eq!(reply["result"], json!({"moved": true}), "{reply}");
    eventually("node a to list alice's direct channel and cursor", || async {
        let (_, state) = a.get("/api/unread?user=alice").await;
        state["channels"] == json!([
            {"channel": "dm:alice,bob", "epoch": state["channels"][0]["epoch"], "offset": dm_offset, "read": 0, "unread": dm_offset},
            {"channel": "team:ops", "epoch": epoch, "offset": 2, "read": 2, "unread": 0},
        ])
    })
    .await;

    let (status, _) = a.post("/api/members", json!({"channel": "team:ops", "remove": ["carol"]})).await;
    assert_eq!(status, 200);
    let (code, _) = carol.until_closed().await;
    assert_eq!(code, 4507, "the removal on node a closes carol's connection on node b");
    drop((alice, bob));
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn receipts_reach_the_other_members_not_the_reader_and_the_newest_survives_the_throttle() {
    let server = TestServer::with_config(CONFIG).await;
    add(&server, "team:r", &["alice", "bob"]).await;
    let mut bob = as_user(&server, "bob").await;
    bob.command(json!({"type": "subscribe", "channel": "team:r"})).await;
    let mut alice = as_user(&server, "alice").await;
    alice.command(json!({"type": "subscribe", "channel": "team:r"})).await;
    let mut alice_phone = as_user(&server, "alice").await;
    alice_phone.command(json!({"type": "subscribe", "channel": "team:r"})).await;
    let mut epoch = String::new();
    for n in 0..3 {
        let (_, reply) = server.publish("team:r", json!(n)).await;
        epoch = reply["epoch"].as_str().unwrap().to_owned();
    }
    // Offsets 2..4 are the messages (1 is the member change).
    for offset in [2, 3, 4] {
        let reply = alice
            .command(json!({"type": "read", "channel": "team:r", "epoch": epoch, "offset": offset}))
            .await;
        assert_eq!(reply["result"], json!({"moved": true}), "{reply}");
    }
    let receipt = |push: &Value| (push["event"].clone(), push["data"].clone());
    let first = next_ephemeral(&mut bob, "team:r").await;
    assert_eq!(
        receipt(&first),
        (json!("fanfare:read"), json!({"user": "alice", "epoch": epoch, "offset": 2}))
    );
    assert!(first.get("offset").is_none(), "a receipt is ephemeral: {first}");
    let second = next_ephemeral(&mut bob, "team:r").await;
    assert_eq!(
        second["data"]["offset"], 4,
        "the newest position at the end of the interval, 3 skipped: {second}"
    );

    let reply =
        bob.command(json!({"type": "delivered", "channel": "team:r", "epoch": epoch, "offset": 4})).await;
    assert_eq!(reply["result"], json!({}));
    let ack = next_ephemeral(&mut alice, "team:r").await;
    assert_eq!(
        receipt(&ack),
        (json!("fanfare:delivered"), json!({"user": "bob", "epoch": epoch, "offset": 4}))
    );

    // alice's other connection got the messages and bob's acknowledgement, never alice's own receipts.
    server.publish("team:r", json!("sentinel")).await;
    loop {
        let frame = alice_phone.next_json().await.unwrap();
        assert_ne!(frame["event"], "fanfare:read", "the reader's own connection got its receipt: {frame}");
        if frame["data"] == "sentinel" {
            break;
        }
    }
    server.stop().await;
}

/// The next ephemeral publication of `channel` (no offset), skipping durable ones.
async fn next_ephemeral(conn: &mut RawConn, channel: &str) -> Value {
    loop {
        let frame = conn.next_json().await.expect("closed before an ephemeral push");
        if frame["type"] == "publication" && frame["channel"] == channel && frame.get("offset").is_none() {
            return frame;
        }
    }
}
