//! Deleting publications (`POST /api/moderation/delete` and `/purge`): the
//! delete is appended with its own offset, so live subscribers and every
//! recovering client learn of it, and history serves a tombstone; on one
//! node and across a cluster's nodes.

use fanfare_testkit::RedisServer;
use serde_json::{Value, json};

use crate::support::{RawConn, TestServer, offsets, token};

const CHAT: &str = "[namespaces.chat]\npublish = \"subscribers\"\n";

async fn subscribed(server: &TestServer, token: Option<&str>, channel: &str) -> (RawConn, Value) {
    let mut conn = RawConn::connected(server, token).await;
    let reply = conn.command(json!({"type": "subscribe", "channel": channel})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    (conn, reply["result"].clone())
}

fn fields(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn a_live_subscriber_gets_the_delete_record_in_order_and_history_shows_the_tombstone() {
    let server = TestServer::start().await;
    let (mut conn, _) = subscribed(&server, None, "news").await;
    for n in 1..=3 {
        server.publish("news", json!({"n": n})).await;
    }
    let (status, deleted) =
        server.post("/api/moderation/delete", json!({"channel": "news", "offset": 2})).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!((&deleted["offset"], &deleted["deleted"]), (&json!(4), &json!([2])), "{deleted}");
    assert!(deleted["epoch"].is_string(), "{deleted}");
    server.publish("news", json!({"n": 5})).await;

    let pushes = conn.publications("news", 5).await;
    assert_eq!(offsets(&pushes), [1, 2, 3, 4, 5], "the delete record comes in offset order");
    let record = &pushes[3];
    assert_eq!(fields(record), ["channel", "deletes", "epoch", "offset", "time", "type"], "{record}");
    assert_eq!(record["deletes"], json!([2]));

    let (_, history) = server.get("/api/history?channel=news").await;
    let publications = history["publications"].as_array().unwrap();
    assert_eq!(offsets(publications), [1, 2, 3, 4, 5], "no gap: {history}");
    assert_eq!(fields(&publications[1]), ["deleted", "offset", "time"], "{history}");
    assert_eq!(publications[1]["deleted"], true);
    assert_eq!(fields(&publications[3]), ["deletes", "offset", "time"], "{history}");
    assert_eq!(publications[2]["data"], json!({"n": 3}));
}

#[tokio::test]
async fn a_recovering_client_after_a_delete_gets_the_tombstone_not_the_original_data() {
    let server = TestServer::start().await;
    let (mut away, position) = subscribed(&server, None, "news").await;
    server.publish("news", json!("seen")).await;
    assert_eq!(offsets(&away.publications("news", 1).await), [1]);
    drop(away);

    server.publish("news", json!("regretted")).await;
    server.publish("news", json!("kept")).await;
    let (status, body) = server.post("/api/moderation/delete", json!({"channel": "news", "offset": 2})).await;
    assert_eq!(status, 200, "{body}");

    let mut back = RawConn::connected(&server, None).await;
    let since = json!({"epoch": position["epoch"], "offset": 1});
    let reply = back.command(json!({"type": "subscribe", "channel": "news", "since": since})).await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    let replayed = back.publications("news", 3).await;
    assert_eq!(offsets(&replayed), [2, 3, 4]);
    assert_eq!(replayed[0]["deleted"], true, "{}", replayed[0]);
    assert!(replayed[0].get("data").is_none(), "{}", replayed[0]);
    assert_eq!(replayed[1]["data"], "kept");
    assert_eq!(replayed[2]["deletes"], json!([2]));
    assert!(!replayed.iter().any(|p| p.to_string().contains("regretted")), "{replayed:?}");
}

#[tokio::test]
async fn purging_a_user_deletes_only_their_publications_in_that_channel() {
    let server = TestServer::with_config(CHAT).await;
    let (alice, bob) = (token("alice", json!({})), token("bob", json!({})));
    let (mut a, _) = subscribed(&server, Some(&alice), "chat:room").await;
    let (mut b, _) = subscribed(&server, Some(&bob), "chat:room").await;
    let (mut elsewhere, _) = subscribed(&server, Some(&alice), "chat:other").await;
    let (mut watcher, _) = subscribed(&server, None, "chat:room").await;
    for (by_alice, text) in [(true, "a1"), (false, "b1"), (true, "a2")] {
        let conn = if by_alice { &mut a } else { &mut b };
        let reply = conn.command(json!({"type": "publish", "channel": "chat:room", "data": text})).await;
        assert!(reply.get("result").is_some(), "{reply}");
    }
    elsewhere.command(json!({"type": "publish", "channel": "chat:other", "data": "a-other"})).await;
    server.publish("chat:room", json!("from the backend")).await;

    let (status, purged) =
        server.post("/api/moderation/purge", json!({"channel": "chat:room", "user": "alice"})).await;
    assert_eq!(status, 200, "{purged}");
    assert_eq!((&purged["offset"], &purged["deleted"]), (&json!(5), &json!([1, 3])), "{purged}");
    let record = watcher.publications("chat:room", 5).await.pop().unwrap();
    assert_eq!(record["deletes"], json!([1, 3]), "{record}");

    let (_, history) = server.get("/api/history?channel=chat:room").await;
    let data: Vec<&Value> = history["publications"].as_array().unwrap().iter().map(|p| &p["data"]).collect();
    assert_eq!(data, [&Value::Null, &json!("b1"), &Value::Null, &json!("from the backend"), &Value::Null]);
    let (_, other) = server.get("/api/history?channel=chat:other").await;
    assert_eq!(other["publications"][0]["data"], "a-other", "a purge is per channel");

    let (status, body) =
        server.post("/api/moderation/purge", json!({"channel": "chat:room", "user": "alice"})).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")), "{body}");
}

#[tokio::test]
async fn deleting_by_idempotency_key_and_what_is_refused() {
    let server = TestServer::start().await;
    let (status, _) =
        server.post("/api/publish", json!({"channel": "news", "data": 1, "idempotency_key": "k1"})).await;
    assert_eq!(status, 200);
    let (status, body) =
        server.post("/api/moderation/delete", json!({"channel": "news", "idempotency_key": "k1"})).await;
    assert_eq!((status, &body["deleted"]), (200, &json!([1])), "{body}");

    for missing in [json!({"channel": "news", "offset": 1}), json!({"channel": "news", "offset": 9})] {
        let (status, body) = server.post("/api/moderation/delete", missing.clone()).await;
        assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")), "{missing}: {body}");
    }
    for bad in [
        json!({"channel": "news"}),
        json!({"channel": "news", "offset": 1, "idempotency_key": "k1"}),
        json!({"channel": "news", "offset": 0}),
        json!({"channel": "news", "idempotency_key": ""}),
        json!({"offset": 1}),
    ] {
        let (status, body) = server.post("/api/moderation/delete", bad.clone()).await;
        assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "{bad}: {body}");
    }
    let (status, body) = server.post("/api/moderation/purge", json!({"channel": "news", "user": ""})).await;
    assert_eq!(status, 400, "{body}");
    let (_, position) = server.get("/api/history?channel=news").await;
    assert_eq!(position["top_offset"], 2, "refused deletes consume no offset");
}

#[tokio::test]
async fn a_moderator_deletes_and_purges_with_the_moderate_command() {
    let server = TestServer::with_config(CHAT).await;
    let moderator = token("mod", json!({"moderate": ["chat:*"]}));
    let (mut moderator, _) = subscribed(&server, Some(&moderator), "chat:room").await;
    let bob = token("bob", json!({}));
    let (mut bob, _) = subscribed(&server, Some(&bob), "chat:room").await;
    for text in ["one", "two", "three"] {
        let reply = bob.command(json!({"type": "publish", "channel": "chat:room", "data": text})).await;
        assert!(reply.get("result").is_some(), "{reply}");
    }
    let delete = json!({"type": "moderate", "action": "delete", "channel": "chat:room", "offset": 1});
    let deleted = moderator.command(delete).await;
    assert_eq!(
        (&deleted["result"]["offset"], &deleted["result"]["deleted"]),
        (&json!(4), &json!([1])),
        "{deleted}"
    );
    let purge = json!({"type": "moderate", "action": "purge", "channel": "chat:room", "user": "bob"});
    let purged = moderator.command(purge).await;
    assert_eq!(purged["result"]["deleted"], json!([2, 3]), "{purged}");
    let refused = bob
        .command(json!({"type": "moderate", "action": "delete", "channel": "chat:room", "offset": 4}))
        .await;
    assert_eq!(refused["error"]["code"], "permission_denied", "{refused}");
    let nothing = json!({"type": "moderate", "action": "purge", "channel": "chat:room", "user": "bob"});
    assert_eq!(moderator.command(nothing).await["error"]["code"], "not_found");

    let (_, history) = server.get("/api/history?channel=chat:room").await;
    let deleted: Vec<bool> =
        history["publications"].as_array().unwrap().iter().map(|p| p["deleted"] == true).collect();
    assert_eq!(deleted, [true, true, true, false, false], "{history}");
}

#[tokio::test]
async fn a_pusher_trigger_of_fanfare_delete_deletes_and_pusher_subscribers_are_told() {
    let app = "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\n";
    let server = TestServer::with_config(app).await;
    let sdk = crate::pusher_api::Sdk { server: &server, app_id: "app-1", key: "key-1", secret: "secret-1" };
    let mut pusher = crate::pusher_api::PusherConn::open(&server, "key-1").await;
    pusher.send(json!({"event": "pusher:subscribe", "data": {"channel": "news"}})).await;
    pusher.next_event("pusher_internal:subscription_succeeded").await;
    let (mut native, _) = subscribed(&server, None, "news").await;
    assert_eq!(sdk.trigger(&["news"], "headline", "\"first\"").await.0, 200);
    assert_eq!(sdk.trigger(&["news"], "headline", "\"second\"").await.0, 200);

    let (status, body) = sdk.trigger(&["news"], "fanfare:delete", r#"{"offset":1}"#).await;
    assert_eq!(status, 200, "{body}");
    let told = pusher.next_event("fanfare:delete").await;
    let data: Value = serde_json::from_str(told["data"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({"offsets": [1]}), "{told}");
    let pushes = native.publications("news", 3).await;
    assert_eq!(pushes[2]["deletes"], json!([1]));

    let (status, body) = sdk.trigger(&["news"], "fanfare:delete", r#"{"offset":1}"#).await;
    assert_eq!(status, 404, "already deleted: {body}");
    let (status, body) = sdk.trigger(&["news"], "fanfare:delete", r#"{"what":1}"#).await;
    assert_eq!(status, 400, "{body}");
}

/// In a cluster the delete runs in the Redis append script, which
/// publishes the record like a publication: node B fans it out in order,
/// tombstones its cache of recent publications (so a resume served from
/// it gets no deleted data), and reads the tombstone from history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_a_delete_on_one_node_reaches_subscribers_and_resumes_on_another() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let a = TestServer::in_cluster(&redis.url(), "").await;
    let b = TestServer::in_cluster(&redis.url(), "").await;
    let (mut watcher, _) = subscribed(&b, None, "news").await;
    let (mut away, position) = subscribed(&b, None, "news").await;
    a.publish("news", json!("seen")).await;
    assert_eq!(offsets(&away.publications("news", 1).await), [1]);
    drop(away);

    a.publish("news", json!("regretted")).await;
    a.publish("news", json!("kept")).await;
    let (status, deleted) = a.post("/api/moderation/delete", json!({"channel": "news", "offset": 2})).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!((&deleted["offset"], &deleted["deleted"]), (&json!(4), &json!([2])), "{deleted}");
    a.publish("news", json!("after")).await;

    let pushes = watcher.publications("news", 5).await;
    assert_eq!(offsets(&pushes), [1, 2, 3, 4, 5], "the record comes in offset order on node B");
    assert_eq!(
        fields(&pushes[3]),
        ["channel", "deletes", "epoch", "offset", "time", "type"],
        "{}",
        pushes[3]
    );
    assert_eq!(pushes[3]["deletes"], json!([2]));

    let mut back = RawConn::connected(&b, None).await;
    let since = json!({"epoch": position["epoch"], "offset": 1});
    let reply = back.command(json!({"type": "subscribe", "channel": "news", "since": since})).await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    let replayed = back.publications("news", 4).await;
    assert_eq!(offsets(&replayed), [2, 3, 4, 5]);
    assert_eq!(
        fields(&replayed[0]),
        ["channel", "deleted", "epoch", "offset", "time", "type"],
        "{}",
        replayed[0]
    );
    assert_eq!(replayed[1]["data"], "kept");
    assert_eq!(replayed[2]["deletes"], json!([2]));
    assert!(!replayed.iter().any(|p| p.to_string().contains("regretted")), "{replayed:?}");

    let (_, history) = b.get("/api/history?channel=news").await;
    let publications = history["publications"].as_array().unwrap();
    assert_eq!(offsets(publications), [1, 2, 3, 4, 5], "no gap: {history}");
    assert_eq!(fields(&publications[1]), ["deleted", "offset", "time"], "{history}");
    assert_eq!(publications[3]["deletes"], json!([2]));
}
