//! Moderators' actions against a real server, each seen from the actor,
//! the target and a bystander: ban (the target is kicked with 4506, may
//! not resubscribe or publish, other channels still work), mute (reads,
//! may not publish), kick, lifts and expiries, the `moderate` grant of a
//! token, Pusher connections under the same bans, a ban held across a
//! restart of the real binary, and across the nodes of a cluster.

use std::time::Duration;

use fanfare_testkit::RedisServer;
use serde_json::{Value, json};

use crate::process::spawn;
use crate::pusher_api::PusherConn;
use crate::support::{RawConn, TestServer, http, token};

const CONFIG: &str = r#"
[namespaces.live]
publish = "subscribers"
slow_mode = "1m"

[namespaces.open]
publish = "anyone"

[[pusher.apps]]
id = "app-1"
key = "key-1"
secret = "secret-1"
client_events = true
"#;

async fn as_user(server: &TestServer, user: &str, claims: Value) -> RawConn {
    RawConn::connected(server, Some(&token(user, claims))).await
}

async fn subscribe(conn: &mut RawConn, channel: &str) -> Value {
    conn.command(json!({"type": "subscribe", "channel": channel})).await
}

async fn publish(conn: &mut RawConn, channel: &str, text: &str) -> Value {
    conn.command(json!({"type": "publish", "channel": channel, "data": {"text": text}})).await
}

fn code(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or("ok")
}

async fn moderate(server: &TestServer, action: Value) -> (u16, Value) {
    server.post("/api/moderation", action).await
}

#[tokio::test]
async fn a_banned_user_is_kicked_and_refused_in_that_channel_only() {
    let server = TestServer::with_config(CONFIG).await;
    let mut bob = as_user(&server, "bob", json!({})).await;
    let mut viewer = as_user(&server, "viewer", json!({})).await;
    for conn in [&mut bob, &mut viewer] {
        assert_eq!(code(&subscribe(conn, "live:stage").await), "ok");
    }
    let ban = json!({"action": "ban", "user": "bob", "channel": "live:stage", "reason": "spam"});
    let (status, answer) = moderate(&server, ban).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["closed"], 1, "{answer}");
    assert_eq!(answer["sanction"]["by"], "api");
    assert_eq!(answer["sanction"]["reason"], "spam");

    let (close, disconnect) = bob.until_closed().await;
    assert_eq!(close, 4506, "kicked");
    assert_eq!(disconnect.unwrap()["reconnect"], true, "reconnect, and resume the other channels");

    let mut bob = as_user(&server, "bob", json!({})).await;
    let refused = subscribe(&mut bob, "live:stage").await;
    assert_eq!(code(&refused), "banned", "{refused}");
    assert_eq!(refused["error"]["retry"], false);
    assert_eq!(
        code(&publish(&mut bob, "live:stage", "let me in").await),
        "permission_denied",
        "not subscribed"
    );
    let (status, _) =
        moderate(&server, json!({"action": "ban", "user": "bob", "channel": "open:wall"})).await;
    assert_eq!(status, 200);
    assert_eq!(bob.until_closed().await.0, 4506, "every ban kicks");
    let mut bob = as_user(&server, "bob", json!({})).await;
    assert_eq!(code(&publish(&mut bob, "open:wall", "graffiti").await), "banned", "where anyone may publish");
    assert_eq!(code(&subscribe(&mut bob, "live:backstage").await), "ok", "another channel");
    assert_eq!(code(&publish(&mut bob, "live:backstage", "hi").await), "ok");

    // Nothing from bob reached the banned channel; the bystander is still in it.
    assert_eq!(code(&publish(&mut viewer, "live:stage", "still here").await), "ok");
    let (_, history) = server.get("/api/history?channel=live:stage").await;
    let texts: Vec<&Value> =
        history["publications"].as_array().unwrap().iter().map(|p| &p["data"]["text"]).collect();
    assert_eq!(texts, [&json!("still here")]);

    let (_, listed) = server.get("/api/moderation/sanctions?channel=live:stage").await;
    let sanctions = listed["sanctions"].as_array().unwrap();
    assert_eq!(
        (sanctions.len(), &sanctions[0]["kind"], &sanctions[0]["user"]),
        (1, &json!("ban"), &json!("bob"))
    );

    let (status, answer) =
        moderate(&server, json!({"action": "unban", "user": "bob", "channel": "live:stage"})).await;
    assert_eq!((status, &answer["lifted"]), (200, &json!(true)));
    assert_eq!(code(&subscribe(&mut bob, "live:stage").await), "ok", "lifted");
}

#[tokio::test]
async fn a_muted_user_reads_but_may_not_publish_until_the_mute_ends() {
    let server = TestServer::with_config(CONFIG).await;
    let mut ann = as_user(&server, "ann", json!({})).await;
    assert_eq!(code(&subscribe(&mut ann, "live:stage").await), "ok");
    let mute = json!({"action": "mute", "user": "ann", "namespace": "live", "duration_ms": 1000});
    let (status, answer) = moderate(&server, mute).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("closed").is_none(), "a mute kicks nobody: {answer}");
    assert!(answer["sanction"]["until_ms"].as_u64().unwrap() > answer["sanction"]["at_ms"].as_u64().unwrap());

    let refused = publish(&mut ann, "live:stage", "hello?").await;
    assert_eq!(code(&refused), "muted", "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("namespace \"live\""), "{refused}");
    let (status, _) = server.publish("live:stage", json!({"text": "from the stage"})).await;
    assert_eq!(status, 200);
    assert_eq!(ann.publications("live:stage", 1).await[0]["data"]["text"], "from the stage", "still reads");

    // The mute ends by itself; what is under test is the time passing.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(code(&publish(&mut ann, "live:stage", "back").await), "ok");
}

#[tokio::test]
async fn a_moderator_acts_only_where_its_token_grants_and_skips_slow_mode() {
    let server = TestServer::with_config(CONFIG).await;
    let mut moderator = as_user(&server, "mod", json!({"moderate": ["live:stage"]})).await;
    let mut plain = as_user(&server, "joe", json!({})).await;
    let mut bob = as_user(&server, "bob", json!({})).await;
    assert_eq!(code(&subscribe(&mut bob, "live:stage").await), "ok");

    let kick = json!({"type": "moderate", "action": "kick", "user": "bob", "channel": "live:stage"});
    let refused = plain.command(kick.clone()).await;
    assert_eq!(code(&refused), "permission_denied", "{refused}");
    let elsewhere = json!({"type": "moderate", "action": "mute", "user": "bob", "channel": "live:other"});
    assert_eq!(code(&moderator.command(elsewhere).await), "permission_denied", "not granted there");
    let whole = json!({"type": "moderate", "action": "mute", "user": "bob", "namespace": "live"});
    assert_eq!(code(&moderator.command(whole).await), "permission_denied", "a channel is not the namespace");

    let kicked = moderator.command(kick).await;
    assert_eq!(kicked["result"]["closed"], 1, "{kicked}");
    assert_eq!(bob.until_closed().await.0, 4506);

    let mute = json!({"type": "moderate", "action": "mute", "user": "bob", "channel": "live:stage"});
    let muted = moderator.command(mute).await;
    assert_eq!(muted["result"]["sanction"]["by"], "mod", "{muted}");

    assert_eq!(code(&subscribe(&mut moderator, "live:stage").await), "ok");
    for text in ["one", "two", "three"] {
        assert_eq!(
            code(&publish(&mut moderator, "live:stage", text).await),
            "ok",
            "no slow mode for moderators"
        );
    }
    assert_eq!(code(&subscribe(&mut plain, "live:stage").await), "ok");
    assert_eq!(code(&publish(&mut plain, "live:stage", "one").await), "ok");
    assert_eq!(code(&publish(&mut plain, "live:stage", "two").await), "slow_mode");

    let slow = json!({"type": "moderate", "action": "slow_mode", "channel": "live:stage", "interval_ms": 0});
    assert_eq!(moderator.command(slow).await["result"]["interval_ms"], 0);
    assert_eq!(code(&publish(&mut plain, "live:stage", "three").await), "ok", "slow mode off, live");
}

#[tokio::test]
async fn bad_moderation_requests_are_refused_with_a_clear_error() {
    let server = TestServer::with_config(CONFIG).await;
    for (body, expected) in [
        (json!({"action": "ban", "user": "bob"}), "one of \"channel\" and \"namespace\""),
        (json!({"action": "ban", "user": "", "channel": "live:a"}), "must not be empty"),
        (json!({"action": "smite", "user": "bob", "channel": "live:a"}), "unknown variant"),
        (json!({"action": "mute", "user": "bob", "channel": "live:a", "duration_ms": 0}), "at least 1"),
        (json!({"action": "ban", "user": "bob", "channel": "live:a", "why": "x"}), "unknown field"),
    ] {
        let (status, answer) = moderate(&server, body.clone()).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_request")), "{body}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(expected), "{body}: {answer}");
    }
    let unauthorized = http().post(server.url("/api/moderation")).json(&json!({})).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    let mut conn = as_user(&server, "joe", json!({})).await;
    let bad = conn.command(json!({"type": "moderate", "action": "ban", "user": "bob"})).await;
    assert_eq!(code(&bad), "bad_request", "{bad}");
}

#[tokio::test]
async fn pusher_connections_are_under_the_same_bans_and_mutes() {
    let server = TestServer::with_config(CONFIG).await;
    let (status, _) = moderate(&server, json!({"action": "ban", "user": "bob", "namespace": ""})).await;
    assert_eq!(status, 200);
    let (status, _) =
        moderate(&server, json!({"action": "mute", "user": "ann", "channel": "presence-room"})).await;
    assert_eq!(status, 200);

    let mut bob = PusherConn::open(&server, "key-1").await;
    let channel_data = json!({"user_id": "bob", "user_info": {}}).to_string();
    let signature = fanfare_protocol::pusher::sign(
        "secret-1",
        &format!("{}:presence-room:{channel_data}", bob.socket_id),
    );
    let data = json!({"channel": "presence-room", "auth": format!("key-1:{signature}"), "channel_data": channel_data});
    bob.send(json!({"event": "pusher:subscribe", "data": data})).await;
    let error = bob.next_event("pusher:subscription_error").await;
    let data: Value = serde_json::from_str(error["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["status"], 403, "{error}");
    assert!(data["error"].as_str().unwrap().contains("banned"), "{error}");

    let mut ann = PusherConn::open(&server, "key-1").await;
    ann.join_presence("presence-room", "ann").await;
    let mut cy = PusherConn::open(&server, "key-1").await;
    cy.join_presence("presence-room", "cy").await;
    ann.send(json!({"event": "client-hi", "channel": "presence-room", "data": {}})).await;
    let error = ann.next_event("pusher:error").await;
    assert!(error.to_string().contains("muted"), "{error}");
    cy.send(json!({"event": "client-hi", "channel": "presence-room", "data": {"from": "cy"}})).await;
    let relayed = ann.next_event("client-hi").await;
    assert!(relayed.to_string().contains("cy"), "ann still hears the room: {relayed}");
}

/// A sanction imposed through the HTTP API of the real binary, which is
/// then killed (-9) and started again on the same data directory: bob,
/// connected to the new process, and its address (issue 12: a sanction
/// survives a restart). The process lives as long as the returned child.
pub(crate) async fn sanctioned_then_restarted(
    dir: &std::path::Path,
    config_text: &str,
    sanction: Value,
) -> (tokio::process::Child, std::net::SocketAddr, RawConn) {
    let config = dir.join("fanfare.toml");
    let jwt = crate::support::JWT_SECRET;
    let text = format!(
        "api_key = \"{RESTART_API_KEY}\"\n[auth]\njwt_algorithm = \"HS256\"\njwt_secret = \"{jwt}\"\n{config_text}"
    );
    std::fs::write(&config, text).unwrap();
    let data = dir.join("data");
    let (mut child, addr, _log) = spawn(&config, &data).await;
    let answer = http()
        .post(format!("http://{addr}/api/moderation"))
        .bearer_auth(RESTART_API_KEY)
        .json(&sanction)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let (child, addr, _log) = spawn(&config, &data).await;
    let (socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/connection/websocket")).await.unwrap();
    let mut bob = RawConn::from_socket(socket);
    let connected = bob.command(json!({"type": "connect", "token": token("bob", json!({}))})).await;
    assert!(connected.get("result").is_some(), "{connected}");
    (child, addr, bob)
}

/// The API key of [`sanctioned_then_restarted`]'s server.
pub(crate) const RESTART_API_KEY: &str = "0123456789abcdef0123";

#[tokio::test]
async fn a_ban_survives_a_restart_of_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let ban = json!({"action": "ban", "user": "bob", "channel": "live:stage", "duration_ms": 3_600_000});
    let (_child, _addr, mut bob) = sanctioned_then_restarted(dir.path(), CONFIG, ban).await;
    assert_eq!(
        code(&subscribe(&mut bob, "live:stage").await),
        "banned",
        "the ban is still there after kill -9"
    );
}

#[tokio::test]
async fn in_a_cluster_a_ban_on_one_node_kicks_and_refuses_on_every_node() {
    let Some(redis) = RedisServer::start_or_skip() else { return };
    let a = TestServer::in_cluster(&redis.url(), CONFIG).await;
    let b = TestServer::in_cluster(&redis.url(), CONFIG).await;
    let mut on_b = as_user(&b, "bob", json!({})).await;
    assert_eq!(code(&subscribe(&mut on_b, "live:stage").await), "ok");
    let (status, answer) =
        moderate(&a, json!({"action": "ban", "user": "bob", "channel": "live:stage"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["closed"], 1, "bob's connection on the other node: {answer}");
    assert_eq!(on_b.until_closed().await.0, 4506);
    let mut again = as_user(&b, "bob", json!({})).await;
    assert_eq!(code(&subscribe(&mut again, "live:stage").await), "banned");
    let (_, listed) = b.get("/api/moderation/sanctions?channel=live:stage").await;
    assert_eq!(listed["sanctions"][0]["user"], "bob");
}

#[tokio::test]
async fn the_rust_client_moderates_with_its_token_grant() {
    use fanfare_client::{ModerationAction, ModerationTarget, SanctionAction};
    let server = TestServer::with_config(CONFIG).await;
    let moderator = server.client_as(token("mod", json!({"moderate": ["live:*"]}))).await;
    let mut bob = as_user(&server, "bob", json!({})).await;
    assert_eq!(code(&subscribe(&mut bob, "live:stage").await), "ok");
    let target = ModerationTarget::Namespace("live".into());
    let mute = ModerationAction::Impose {
        kind: SanctionAction::Mute,
        user: "bob".into(),
        target: target.clone(),
        duration_ms: None,
        reason: Some("caps lock".into()),
    };
    let result = moderator.moderate(mute).await.unwrap();
    assert_eq!(result["sanction"]["scope"], json!({"namespace": "live"}), "{result}");
    assert_eq!(code(&publish(&mut bob, "live:stage", "HELLO").await), "muted");
    let lifted = moderator
        .moderate(ModerationAction::Lift { kind: SanctionAction::Mute, user: "bob".into(), target })
        .await;
    assert_eq!(lifted.unwrap()["lifted"], true);
    assert_eq!(code(&publish(&mut bob, "live:stage", "hello").await), "ok");
    let refused = moderator
        .moderate(ModerationAction::Kick {
            user: "bob".into(),
            target: ModerationTarget::Namespace("chat".into()),
        })
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("permission_denied"), "{refused}");
}
