//! Shadow-bans and kicks of one connection against a real server: what
//! the shadow-banned author, its other connections and a bystander see
//! (live, in history, on recovery), the moderator's listing, the lift, a
//! shadow-ban held across a restart of the real binary and across the
//! nodes of a cluster; a kick that closes one native or Pusher connection
//! and leaves the user's others open.

use fanfare_testkit::RedisServer;
use serde_json::{Value, json};

use crate::pusher_api::PusherConn;
use crate::support::{RawConn, TestServer, http, token};

const CONFIG: &str = r#"
[namespaces.live]
publish = "subscribers"

[[pusher.apps]]
id = "app-1"
key = "key-1"
secret = "secret-1"
client_events = true
"#;

/// A native connection of `user`, and its connection id (the `client` of
/// the `connect` reply).
async fn connect_as(server: &TestServer, user: &str, claims: Value) -> (RawConn, String) {
    let mut conn = RawConn::open(server).await;
    let reply = conn.command(json!({"type": "connect", "token": token(user, claims)})).await;
    let client = reply["result"]["client"].as_str().unwrap_or_else(|| panic!("connect: {reply}")).to_owned();
    (conn, client)
}

async fn subscribed(server: &TestServer, user: &str, channel: &str) -> RawConn {
    let (mut conn, _) = connect_as(server, user, json!({})).await;
    let reply = conn.command(json!({"type": "subscribe", "channel": channel})).await;
    assert!(reply.get("result").is_some(), "subscribe: {reply}");
    conn
}

/// Publishes from a subscribed connection: the reply's result and the
/// connection's own push, which may come in either order.
async fn publish(conn: &mut RawConn, channel: &str, text: &str) -> (Value, Value) {
    conn.send_text(
        &json!({"id": 0, "type": "publish", "channel": channel, "data": {"text": text}}).to_string(),
    )
    .await;
    let (mut result, mut push) = (None, None);
    while result.is_none() || push.is_none() {
        let frame = conn.next_json().await.expect("closed while publishing");
        if frame["id"] == 0 {
            assert!(frame.get("result").is_some(), "publish {text}: {frame}");
            result = Some(frame["result"].clone());
        } else if frame["type"] == "publication" && frame["data"]["text"] == text {
            push = Some(frame);
        }
    }
    (result.unwrap(), push.unwrap())
}

/// The next publication push of `channel`, skipping other frames.
async fn next_publication(conn: &mut RawConn, channel: &str) -> Value {
    conn.publications(channel, 1).await.remove(0)
}

fn texts(history: &Value) -> Vec<String> {
    let publications = history["publications"].as_array().unwrap_or_else(|| panic!("history: {history}"));
    publications.iter().map(|p| p["data"]["text"].as_str().unwrap_or("").to_owned()).collect()
}

async fn moderate(server: &TestServer, action: Value) -> Value {
    let (status, answer) = server.post("/api/moderation", action.clone()).await;
    assert_eq!(status, 200, "{action}: {answer}");
    answer
}

#[tokio::test]
async fn a_shadow_banned_user_sees_its_own_publications_and_nobody_else_does() {
    let server = TestServer::with_config(CONFIG).await;
    let room = "live:stage";
    let mut bob = subscribed(&server, "bob", room).await;
    let mut bobs_phone = subscribed(&server, "bob", room).await;
    let mut viewer = subscribed(&server, "viewer", room).await;
    let (before, _) = publish(&mut viewer, room, "before").await;
    for conn in [&mut bob, &mut bobs_phone] {
        assert_eq!(next_publication(conn, room).await["data"]["text"], "before");
    }

    let shadow = json!({"action": "shadow_ban", "user": "bob", "channel": room, "reason": "spam"});
    let answer = moderate(&server, shadow).await;
    assert_eq!(answer["sanction"]["kind"], "shadow_ban", "{answer}");
    assert_eq!(answer["sanction"]["reason"], "spam");
    assert!(answer.get("closed").is_none(), "a shadow-ban closes nothing: {answer}");

    // The author is told what a durable publish is told: the channel's epoch
    // and its current top offset (no offset is taken).
    let (hidden, own) = publish(&mut bob, room, "hidden").await;
    assert_eq!(hidden, json!({"epoch": before["epoch"], "offset": before["offset"]}), "{hidden}");
    let on_phone = next_publication(&mut bobs_phone, room).await;
    for push in [own, on_phone] {
        assert_eq!(push["data"]["text"], "hidden", "the author's own connections: {push}");
        assert!(push.get("offset").is_none() && push.get("epoch").is_none(), "like an ephemeral: {push}");
    }
    let typing = json!({"type": "publish", "channel": room, "data": {"text": "typing"}, "ephemeral": true});
    assert_eq!(bob.command(typing).await["result"], json!({}), "an ephemeral one as usual");
    assert_eq!(next_publication(&mut bobs_phone, room).await["data"]["text"], "typing");

    let (status, _) = server.publish(room, json!({"text": "marker"})).await;
    assert_eq!(status, 200);
    let marker = next_publication(&mut viewer, room).await;
    assert_eq!(marker["data"]["text"], "marker", "the bystander got none of bob's: {marker}");
    assert_eq!(next_publication(&mut bob, room).await["data"]["text"], "marker", "bob sees everyone else");
    let (after, seen) = publish(&mut viewer, room, "after").await;
    assert_eq!(after["offset"], before["offset"].as_u64().unwrap() + 2, "no offset went to bob: {after}");
    assert_eq!(seen["offset"], after["offset"], "the bystander's stream has no gap: {seen}");
    assert_eq!(next_publication(&mut bob, room).await["data"]["text"], "after");

    let (_, history) = server.get(&format!("/api/history?channel={room}")).await;
    assert_eq!(texts(&history), ["before", "marker", "after"]);
    let mut late = RawConn::connected(&server, Some(&token("late", json!({})))).await;
    let since = json!({"epoch": before["epoch"], "offset": 0});
    let resumed = late.command(json!({"type": "subscribe", "channel": room, "since": since})).await;
    assert_eq!(resumed["result"]["recovered"], true, "{resumed}");
    let replayed = late.publications(room, 3).await;
    assert_eq!(crate::support::offsets(&replayed), [1, 2, 3], "recovery has no gap");
    let replayed: Vec<&Value> = replayed.iter().map(|p| &p["data"]["text"]).collect();
    assert_eq!(replayed, [&json!("before"), &json!("marker"), &json!("after")], "and no shadow");

    let (_, listed) = server.get(&format!("/api/moderation/sanctions?channel={room}")).await;
    let sanctions = listed["sanctions"].as_array().unwrap();
    assert_eq!(
        (sanctions.len(), &sanctions[0]["kind"], &sanctions[0]["user"]),
        (1, &json!("shadow_ban"), &json!("bob"))
    );

    let lifted = moderate(&server, json!({"action": "unshadow_ban", "user": "bob", "channel": room})).await;
    assert_eq!(lifted["lifted"], true, "{lifted}");
    let (visible, _) = publish(&mut bob, room, "visible").await;
    assert_eq!(visible["offset"], after["offset"].as_u64().unwrap() + 1, "{visible}");
    assert_eq!(next_publication(&mut viewer, room).await["data"]["text"], "visible");
}

#[tokio::test]
async fn a_moderator_shadow_bans_a_namespace_with_the_native_command() {
    let server = TestServer::with_config(CONFIG).await;
    let room = "live:side";
    let (mut moderator, _) = connect_as(&server, "mod", json!({"moderate": ["live:*"]})).await;
    let mut bob = subscribed(&server, "bob", room).await;
    let mut viewer = subscribed(&server, "viewer", room).await;
    let shadow = json!({"type": "moderate", "action": "shadow_ban", "user": "bob", "namespace": "live", "duration_ms": 600_000});
    let reply = moderator.command(shadow).await;
    assert_eq!(reply["result"]["sanction"]["scope"], json!({"namespace": "live"}), "{reply}");
    assert_eq!(reply["result"]["sanction"]["by"], "mod");
    let (_, own) = publish(&mut bob, room, "hidden").await;
    assert!(own.get("offset").is_none(), "{own}");
    let (status, _) = server.publish(room, json!({"text": "marker"})).await;
    assert_eq!(status, 200);
    assert_eq!(next_publication(&mut viewer, room).await["data"]["text"], "marker");
    let (_, listed) = server.get("/api/moderation/sanctions?namespace=live").await;
    assert_eq!(listed["sanctions"][0]["kind"], "shadow_ban", "{listed}");
    let (mut plain, _) = connect_as(&server, "joe", json!({})).await;
    let refused = plain
        .command(json!({"type": "moderate", "action": "unshadow_ban", "user": "bob", "namespace": "live"}))
        .await;
    assert_eq!(refused["error"]["code"], "permission_denied", "{refused}");
}

#[tokio::test]
async fn a_shadow_banned_pusher_user_reaches_only_its_own_other_connections() {
    let server = TestServer::with_config(CONFIG).await;
    let room = "presence-room";
    moderate(&server, json!({"action": "shadow_ban", "user": "ann", "channel": room})).await;
    let mut ann = PusherConn::open(&server, "key-1").await;
    ann.join_presence(room, "ann").await;
    let mut anns_tab = PusherConn::open(&server, "key-1").await;
    anns_tab.join_presence(room, "ann").await;
    let mut cy = PusherConn::open(&server, "key-1").await;
    cy.join_presence(room, "cy").await;
    ann.send(json!({"event": "client-said", "channel": room, "data": {"text": "hidden"}})).await;
    let relayed = anns_tab.next_event("client-said").await;
    assert!(relayed["data"].to_string().contains("hidden"), "ann's other tab: {relayed}");
    cy.send(json!({"event": "client-said", "channel": room, "data": {"text": "from cy"}})).await;
    let heard = ann.next_event("client-said").await;
    assert!(heard["data"].to_string().contains("from cy"), "ann hears the room: {heard}");
    anns_tab.send(json!({"event": "client-said", "channel": room, "data": {"text": "marker"}})).await;
    let next = ann.next_event("client-said").await;
    assert!(next["data"].to_string().contains("marker"), "{next}");
    let (status, _) = server.publish(room, json!({"text": "server"})).await;
    assert_eq!(status, 200);
    let next = cy.next_event_of(room).await;
    assert!(next.to_string().contains("server"), "cy never heard ann: {next}");
}

#[tokio::test]
async fn kicking_one_connection_closes_that_one_and_leaves_the_others() {
    let server = TestServer::with_config(CONFIG).await;
    let (mut laptop, laptop_id) = connect_as(&server, "bob", json!({})).await;
    let (mut phone, _) = connect_as(&server, "bob", json!({})).await;
    let kick = json!({"action": "kick", "connection": laptop_id, "channel": "live:stage"});
    assert_eq!(moderate(&server, kick.clone()).await["closed"], 1);
    assert_eq!(laptop.until_closed().await.0, 4506, "kicked");
    let reply = phone.command(json!({"type": "subscribe", "channel": "live:stage"})).await;
    assert!(reply.get("result").is_some(), "the user's other connection stays: {reply}");
    assert_eq!(moderate(&server, kick).await["closed"], 0, "already gone");

    let mut tab = PusherConn::open(&server, "key-1").await;
    tab.sign_in("ann").await;
    let mut other_tab = PusherConn::open(&server, "key-1").await;
    other_tab.sign_in("ann").await;
    let (mut moderator, _) = connect_as(&server, "mod", json!({"moderate": ["live:*"]})).await;
    let kick =
        json!({"type": "moderate", "action": "kick", "connection": tab.socket_id, "namespace": "live"});
    let reply = moderator.command(kick).await;
    assert_eq!(reply["result"]["closed"], 1, "{reply}");
    loop {
        match tab.next().await {
            Ok(_) => continue,
            Err(code) => break assert_eq!(code, 4100, "Pusher's kick code"),
        }
    }
    other_tab.send(json!({"event": "pusher:ping", "data": {}})).await;
    other_tab.next_event("pusher:pong").await;
}

#[tokio::test]
async fn bad_kicks_and_unknown_connections_get_clear_answers() {
    let server = TestServer::with_config(CONFIG).await;
    for (body, expected) in [
        (json!({"action": "kick", "user": "bob", "connection": "7", "channel": "live:a"}), "one of \"user\""),
        (json!({"action": "kick", "channel": "live:a"}), "one of \"user\""),
        (json!({"action": "kick", "connection": "seven", "channel": "live:a"}), "is not a connection"),
        (json!({"action": "kick", "connection": "7"}), "one of \"channel\" and \"namespace\""),
        (json!({"action": "shadow_ban", "user": "bob", "channel": "live:a", "duration_ms": 0}), "at least 1"),
    ] {
        let (status, answer) = server.post("/api/moderation", body.clone()).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_request")), "{body}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(expected), "{body}: {answer}");
    }
    let unknown =
        moderate(&server, json!({"action": "kick", "connection": "424242", "channel": "live:a"})).await;
    assert_eq!(unknown, json!({"closed": 0}));
    let (mut conn, _) = connect_as(&server, "joe", json!({"moderate": ["live:*"]})).await;
    let bad = conn.command(json!({"type": "moderate", "action": "kick", "user": "bob", "connection": "1.2", "channel": "live:a"})).await;
    assert_eq!(bad["error"]["code"], "bad_request", "{bad}");
}

#[tokio::test]
async fn a_shadow_ban_survives_a_restart_of_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let shadow = json!({"action": "shadow_ban", "user": "bob", "channel": "live:stage"});
    let (_child, addr, mut bob) =
        crate::moderation::sanctioned_then_restarted(dir.path(), CONFIG, shadow).await;
    let api_key = crate::moderation::RESTART_API_KEY;
    let reply = bob.command(json!({"type": "subscribe", "channel": "live:stage"})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let (hidden, own) = publish(&mut bob, "live:stage", "hidden").await;
    assert_eq!(hidden["offset"], 0, "nothing was ever appended: {hidden}");
    assert!(own.get("offset").is_none(), "{own}");
    let history: Value = http()
        .get(format!("http://{addr}/api/history?channel=live:stage"))
        .bearer_auth(api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(texts(&history), Vec::<String>::new(), "still shadow-banned after kill -9");
}

#[tokio::test]
async fn in_a_cluster_the_authors_connections_on_every_node_see_it_and_nobody_else() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let a = TestServer::in_cluster(&redis.url(), CONFIG).await;
    let b = TestServer::in_cluster(&redis.url(), CONFIG).await;
    let room = "live:stage";
    let mut bob_on_a = subscribed(&a, "bob", room).await;
    let mut bob_on_b = subscribed(&b, "bob", room).await;
    let mut viewer_on_b = subscribed(&b, "viewer", room).await;
    moderate(&a, json!({"action": "shadow_ban", "user": "bob", "channel": room})).await;

    let (_, own) = publish(&mut bob_on_a, room, "hidden").await;
    let on_b = next_publication(&mut bob_on_b, room).await;
    for push in [own, on_b] {
        assert_eq!(push["data"]["text"], "hidden", "{push}");
        assert!(push.get("offset").is_none(), "{push}");
    }
    // Node B has delivered bob's publication (to bob's connection there): a
    // publication after it reaches the bystander on B first.
    let (status, marker) = b.publish(room, json!({"text": "marker"})).await;
    assert_eq!(status, 200, "{marker}");
    assert_eq!(marker["offset"], 1, "bob's took no offset: {marker}");
    assert_eq!(next_publication(&mut viewer_on_b, room).await["data"]["text"], "marker");

    let (mut bobs_laptop, laptop_id) = connect_as(&b, "bob", json!({})).await;
    let kicked = moderate(&a, json!({"action": "kick", "connection": laptop_id, "channel": room})).await;
    assert_eq!(kicked["closed"], 1, "asked every node: {kicked}");
    assert_eq!(bobs_laptop.until_closed().await.0, 4506);
    let reply = bob_on_b.command(json!({"type": "presence", "channel": room})).await;
    assert!(
        reply.get("error").is_some() || reply.get("result").is_some(),
        "bob's other connection on B is open: {reply}"
    );
}
