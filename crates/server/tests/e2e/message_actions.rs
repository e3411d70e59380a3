//! Acting on messages already sent: an author (or a moderator) edits or
//! deletes a publication by offset, appended as an update or delete record
//! so live subscribers and recovering clients learn of it in order; and
//! typing indicators, pushed to everyone but the typist.

use fanfare_testkit::RedisServer;
use serde_json::{Value, json};

use crate::support::{RawConn, TestServer, offsets, token};

const CHAT: &str = "[namespaces.chat]\npublish = \"subscribers\"\ntyping_interval = \"1m\"\n";
const ROOM: &str = "chat:room";

async fn subscribed(server: &TestServer, user: Option<&str>, channel: &str) -> (RawConn, Value) {
    let token = user.map(|user| match user {
        "mod" => token("mod", json!({"moderate": ["chat:*"]})),
        user => token(user, json!({})),
    });
    let mut conn = RawConn::connected(server, token.as_deref()).await;
    let reply = conn.command(json!({"type": "subscribe", "channel": channel})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    (conn, reply["result"].clone())
}

async fn ok(conn: &mut RawConn, command: Value) -> Value {
    let reply = conn.command(command.clone()).await;
    assert!(reply.get("result").is_some(), "{command}: {reply}");
    reply["result"].clone()
}

async fn publish(conn: &mut RawConn, data: Value) -> u64 {
    ok(conn, json!({"type": "publish", "channel": ROOM, "data": data})).await["offset"].as_u64().unwrap()
}

fn edit(offset: u64, data: Value) -> Value {
    json!({"type": "edit", "channel": ROOM, "offset": offset, "data": data})
}

fn delete(offset: u64) -> Value {
    json!({"type": "delete", "channel": ROOM, "offset": offset})
}

fn fields(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

async fn history(server: &TestServer) -> Vec<Value> {
    let (status, history) = server.get(&format!("/api/history?channel={ROOM}")).await;
    assert_eq!(status, 200, "{history}");
    history["publications"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_edit_reaches_live_and_recovering_subscribers_in_order_and_history_serves_the_newest_version() {
    let server = TestServer::with_config(CHAT).await;
    let (mut alice, _) = subscribed(&server, Some("alice"), ROOM).await;
    let (mut bob, _) = subscribed(&server, Some("bob"), ROOM).await;
    let (mut watcher, _) = subscribed(&server, None, ROOM).await;
    let (mut away, position) = subscribed(&server, None, ROOM).await;
    assert_eq!(publish(&mut alice, json!({"text": "helo"})).await, 1);
    assert_eq!(offsets(&away.publications(ROOM, 1).await), [1]);
    drop(away);
    assert_eq!(publish(&mut bob, json!("other")).await, 2);
    let edited = ok(&mut alice, edit(1, json!({"text": "hello"}))).await;
    assert_eq!((&edited["offset"], edited["epoch"].is_string()), (&json!(3), true), "{edited}");
    assert_eq!(publish(&mut alice, json!("after")).await, 4);

    let live = watcher.publications(ROOM, 4).await;
    assert_eq!(offsets(&live), [1, 2, 3, 4], "the update record comes in offset order");
    assert_eq!(
        fields(&live[2]),
        ["channel", "data", "epoch", "offset", "time", "type", "updates"],
        "{}",
        live[2]
    );
    assert_eq!((&live[2]["updates"], &live[2]["data"]), (&json!(1), &json!({"text": "hello"})));

    let publications = history(&server).await;
    assert_eq!(offsets(&publications), [1, 2, 3, 4]);
    assert_eq!(fields(&publications[0]), ["data", "edited", "offset", "time"], "{}", publications[0]);
    assert_eq!(publications[0]["data"], json!({"text": "hello"}), "the newest version");
    assert_eq!(publications[0]["time"], live[0]["time"], "with its original time");
    assert_eq!(publications[2]["updates"], 1);

    let mut back = RawConn::connected(&server, None).await;
    let since = json!({"epoch": position["epoch"], "offset": 1});
    let reply = back.command(json!({"type": "subscribe", "channel": ROOM, "since": since})).await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    let replayed = back.publications(ROOM, 3).await;
    assert_eq!(offsets(&replayed), [2, 3, 4], "recovery replays the update record in order");
    assert_eq!((&replayed[1]["updates"], &replayed[1]["data"]), (&json!(1), &json!({"text": "hello"})));

    let (status, body) =
        server.post("/api/edit", json!({"channel": ROOM, "offset": 2, "data": "by the backend"})).await;
    assert_eq!((status, &body["offset"]), (200, &json!(5)), "{body}");
    assert_eq!(history(&server).await[1]["data"], "by the backend");
    let (status, body) = server.post("/api/moderation/delete", json!({"channel": ROOM, "offset": 2})).await;
    assert_eq!((status, &body["deleted"]), (200, &json!([2, 5])), "with its update record: {body}");
}

#[tokio::test]
async fn a_delete_by_the_author_reaches_live_and_recovering_subscribers_and_history_shows_it_deleted() {
    let server = TestServer::with_config(CHAT).await;
    let (mut alice, position) = subscribed(&server, Some("alice"), ROOM).await;
    let (mut watcher, _) = subscribed(&server, None, ROOM).await;
    assert_eq!(publish(&mut alice, json!("regretted")).await, 1);
    assert_eq!(ok(&mut alice, edit(1, json!("regretted twice"))).await["offset"], 2);
    assert_eq!(publish(&mut alice, json!("kept")).await, 3);
    let deleted = ok(&mut alice, delete(1)).await;
    assert_eq!(
        (&deleted["offset"], &deleted["deleted"]),
        (&json!(4), &json!([1, 2])),
        "with its update record: {deleted}"
    );

    let live = watcher.publications(ROOM, 4).await;
    assert_eq!(offsets(&live), [1, 2, 3, 4]);
    assert_eq!(live[3]["deletes"], json!([1, 2]), "{}", live[3]);

    let publications = history(&server).await;
    let gone: Vec<bool> = publications.iter().map(|p| p["deleted"] == true).collect();
    assert_eq!(gone, [true, true, false, false], "{publications:?}");
    assert_eq!(fields(&publications[0]), ["deleted", "offset", "time"]);

    let mut back = RawConn::connected(&server, None).await;
    let since = json!({"epoch": position["epoch"], "offset": 0});
    let reply = back.command(json!({"type": "subscribe", "channel": ROOM, "since": since})).await;
    assert_eq!(reply["result"]["recovered"], true, "{reply}");
    let replayed = back.publications(ROOM, 4).await;
    assert_eq!(offsets(&replayed), [1, 2, 3, 4]);
    assert_eq!(replayed[3]["deletes"], json!([1, 2]));
    assert!(!replayed.iter().any(|p| p.to_string().contains("regretted")), "{replayed:?}");

    let again = alice.command(edit(1, json!("back"))).await;
    assert_eq!(again["error"]["code"], "not_found", "an edit of a deleted publication: {again}");
    assert_eq!(alice.command(delete(1)).await["error"]["code"], "not_found");
}

#[tokio::test]
async fn others_may_neither_edit_nor_delete_and_a_moderator_may() {
    let server = TestServer::with_config(CHAT).await;
    let (mut alice, _) = subscribed(&server, Some("alice"), ROOM).await;
    let (mut bob, _) = subscribed(&server, Some("bob"), ROOM).await;
    let (mut moderator, _) = subscribed(&server, Some("mod"), ROOM).await;
    let (mut anonymous, _) = subscribed(&server, None, ROOM).await;
    assert_eq!(publish(&mut alice, json!("mine")).await, 1);
    for conn in [&mut bob, &mut anonymous] {
        for command in [edit(1, json!("theirs")), delete(1)] {
            let refused = conn.command(command.clone()).await;
            assert_eq!(refused["error"]["code"], "permission_denied", "{command}: {refused}");
        }
    }
    assert_eq!(offsets(&history(&server).await), [1], "nothing appended");
    for command in [edit(9, json!("x")), edit(0, json!("x")), delete(9)] {
        let missing = alice.command(command.clone()).await;
        assert_eq!(missing["error"]["code"], "not_found", "{command}: {missing}");
    }
    let (status, body) = server.post("/api/edit", json!({"channel": ROOM, "offset": 9, "data": 1})).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")), "{body}");

    assert_eq!(ok(&mut moderator, edit(1, json!("moderated"))).await["offset"], 2);
    let update = alice.command(edit(2, json!("an update record is no message"))).await;
    assert_eq!(update["error"]["code"], "not_found", "{update}");
    assert_eq!(ok(&mut moderator, delete(1)).await["deleted"], json!([1, 2]));
    assert_eq!(offsets(&history(&server).await), [1, 2, 3]);
}

#[tokio::test]
async fn typing_reaches_the_others_once_per_interval_and_never_the_typists_own_connections() {
    let server = TestServer::with_config(CHAT).await;
    let (mut typist, _) = subscribed(&server, Some("alice"), ROOM).await;
    let (mut typists_phone, _) = subscribed(&server, Some("alice"), ROOM).await;
    let (mut bob, _) = subscribed(&server, Some("bob"), ROOM).await;
    assert_eq!(ok(&mut typist, json!({"type": "typing", "channel": ROOM})).await, json!({}));
    let typing = bob.publications(ROOM, 1).await.remove(0);
    assert_eq!(fields(&typing), ["channel", "data", "event", "time", "type"], "ephemeral: {typing}");
    assert_eq!(typing["event"], "fanfare:typing");
    assert_eq!(typing["data"], json!({"user": "alice", "expires_ms": 62_000}));

    let throttled = ok(&mut typist, json!({"type": "typing", "channel": ROOM})).await;
    assert_eq!(throttled, json!({}), "a throttled typing is answered too");
    server.publish(ROOM, json!("marker")).await;
    for conn in [&mut bob, &mut typist, &mut typists_phone] {
        let next = conn.publications(ROOM, 1).await.remove(0);
        assert_eq!(next["data"], "marker", "no second indicator, none to the typist: {next}");
    }
    let (mut outsider, _) = subscribed(&server, Some("carol"), "chat:other").await;
    let refused = outsider.command(json!({"type": "typing", "channel": ROOM})).await;
    assert_eq!(refused["error"]["code"], "permission_denied", "only where it may publish: {refused}");
}

/// In a cluster the edit runs in the Redis append script, which publishes
/// the update record like a publication; typing goes to every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_an_edit_and_typing_on_one_node_reach_subscribers_on_another() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let a = TestServer::in_cluster(&redis.url(), CHAT).await;
    let b = TestServer::in_cluster(&redis.url(), CHAT).await;
    let (mut alice, _) = subscribed(&a, Some("alice"), ROOM).await;
    let (mut bob, _) = subscribed(&b, Some("bob"), ROOM).await;
    assert_eq!(publish(&mut alice, json!("helo")).await, 1);
    assert_eq!(ok(&mut alice, edit(1, json!("hello"))).await["offset"], 2);
    let live = bob.publications(ROOM, 2).await;
    assert_eq!((&live[1]["updates"], &live[1]["data"]), (&json!(1), &json!("hello")), "{}", live[1]);
    let publications = history(&b).await;
    assert_eq!((&publications[0]["data"], &publications[0]["edited"]), (&json!("hello"), &json!(true)));

    ok(&mut alice, json!({"type": "typing", "channel": ROOM})).await;
    let typing = bob.publications(ROOM, 1).await.remove(0);
    assert_eq!((&typing["event"], &typing["data"]["user"]), (&json!("fanfare:typing"), &json!("alice")));
}

#[tokio::test]
async fn a_muted_user_may_neither_type_nor_edit_but_may_delete_their_own() {
    let server = TestServer::with_config(CHAT).await;
    let (mut alice, _) = subscribed(&server, Some("alice"), ROOM).await;
    let (mut moderator, _) = subscribed(&server, Some("mod"), ROOM).await;
    assert_eq!(publish(&mut alice, json!("before")).await, 1);
    ok(&mut moderator, json!({"type": "moderate", "action": "mute", "user": "alice", "channel": ROOM})).await;
    for command in [json!({"type": "typing", "channel": ROOM}), edit(1, json!("after"))] {
        let refused = alice.command(command.clone()).await;
        assert_eq!(refused["error"]["code"], "muted", "{command}: {refused}");
    }
    assert_eq!(ok(&mut alice, delete(1)).await["deleted"], json!([1]));
}
