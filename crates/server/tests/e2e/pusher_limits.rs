//! Per-app Pusher limits, each just under and just over, against a real
//! server: WebSocket refusals as Pusher sends them (`pusher:error`,
//! `pusher:subscription_error`, close codes) and HTTP API refusals with
//! their status and a JSON error, publishing nothing.

use fanfare_protocol::pusher::sign;
use serde_json::{Value, json};

use crate::pusher_api::{PusherConn, Sdk};
use crate::support::{TestServer, metric_value};

/// One app, `app-1`, with client events on and `limits` added.
async fn server_with(limits: &str) -> TestServer {
    TestServer::with_config(&format!(
        "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"secret-1\"\n{limits}\n"
    ))
    .await
}

fn sdk(server: &TestServer) -> Sdk<'_> {
    Sdk { server, app_id: "app-1", key: "key-1", secret: "secret-1" }
}

fn auth(conn: &PusherConn, channel: &str) -> String {
    format!("key-1:{}", sign("secret-1", &format!("{}:{channel}", conn.socket_id)))
}

/// Subscribes and returns the answer: `subscription_succeeded` or `subscription_error`.
async fn try_subscribe(
    conn: &mut PusherConn,
    channel: &str,
    auth: &str,
    channel_data: Option<&str>,
) -> Value {
    let mut data = json!({"channel": channel, "auth": auth});
    if let Some(channel_data) = channel_data {
        data["channel_data"] = json!(channel_data);
    }
    conn.send(json!({"event": "pusher:subscribe", "data": data})).await;
    loop {
        let frame = conn.next_event_of(channel).await;
        if frame["event"] == "pusher_internal:subscription_succeeded"
            || frame["event"] == "pusher:subscription_error"
        {
            return frame;
        }
    }
}

/// Two connections subscribed to the private `channel`.
async fn private_pair(server: &TestServer, channel: &str) -> (PusherConn, PusherConn) {
    let mut pair = Vec::new();
    for _ in 0..2 {
        let mut conn = PusherConn::open(server, "key-1").await;
        let auth = auth(&conn, channel);
        conn.subscribe(channel, &auth, None).await;
        pair.push(conn);
    }
    let second = pair.pop().unwrap();
    (pair.pop().unwrap(), second)
}

async fn client_event(conn: &mut PusherConn, channel: &str, event: &str) {
    conn.send(json!({"event": event, "channel": channel, "data": {"n": 1}})).await;
}

/// Pings, and returns the `pusher:error`s that came before the pong: once
/// it is back, the server has handled every frame sent before.
async fn fence(conn: &mut PusherConn) -> Vec<Value> {
    conn.send(json!({"event": "pusher:ping", "data": {}})).await;
    let mut errors = Vec::new();
    loop {
        let frame = conn.next().await.expect("closed while fencing");
        match frame["event"].as_str() {
            Some("pusher:pong") => return errors,
            Some("pusher:error") => errors.push(frame),
            _ => {}
        }
    }
}

async fn close_code(conn: &mut PusherConn) -> u16 {
    loop {
        if let Err(code) = conn.next().await {
            return code;
        }
    }
}

async fn top_offset(server: &TestServer, channel: &str) -> u64 {
    let (_, history) = server.get(&format!("/api/history?channel={channel}")).await;
    history["top_offset"].as_u64().unwrap()
}

#[tokio::test]
async fn client_events_over_the_apps_rate_get_4301_and_under_it_are_relayed() {
    let server = server_with("client_events = true\nmax_client_events_per_second = 1").await;
    let (mut alice, mut bob) = private_pair(&server, "private-chat").await;
    client_event(&mut alice, "private-chat", "client-first").await;
    client_event(&mut alice, "private-chat", "client-second").await;
    let error = alice.next_event("pusher:error").await;
    assert_eq!(error["data"]["code"], 4301, "{error}");
    assert_eq!(bob.next_event_of("private-chat").await["event"], "client-first");
    assert_eq!(sdk(&server).trigger(&["private-chat"], "marker", "m").await.0, 200);
    assert_eq!(bob.next_event_of("private-chat").await["event"], "marker", "the refused event was relayed");
    assert!(fence(&mut alice).await.is_empty(), "the socket stays open");
}

#[tokio::test]
async fn an_app_without_a_client_event_rate_relays_a_burst_pusher_would_refuse() {
    let server = server_with("client_events = true\nmax_client_events_per_second = 0").await;
    let (mut alice, mut bob) = private_pair(&server, "private-chat").await;
    for _ in 0..25 {
        client_event(&mut alice, "private-chat", "client-burst").await;
    }
    let errors = fence(&mut alice).await;
    assert!(errors.is_empty(), "{errors:?}");
    for n in 0..25 {
        assert_eq!(bob.next_event_of("private-chat").await["event"], "client-burst", "event {n}");
    }
}

#[tokio::test]
async fn events_triggered_over_the_apps_rate_are_refused_with_429_and_publish_nothing() {
    let server = server_with("max_backend_events_per_second = 2").await;
    let app = sdk(&server);
    assert_eq!(app.trigger(&["a", "b"], "e", "1").await.0, 200, "a second's worth");
    let (status, body) = app.trigger(&["a"], "e", "2").await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("2 events per second"), "{body}");
    // More than a second's worth in one request never passes.
    assert_eq!(app.trigger(&["c", "d", "e"], "e", "3").await.0, 429);
    let batch: Vec<Value> =
        ["c", "d", "e"].iter().map(|c| json!({"name": "e", "channel": c, "data": "4"})).collect();
    assert_eq!(app.post("/batch_events", json!({"batch": batch})).await.0, 429);
    assert_eq!((top_offset(&server, "a").await, top_offset(&server, "c").await), (1, 0));
    assert_eq!(refusals(&server, "pusher_api_events").await, 3.0, "each refusal is counted");
}

/// `fanfare_rate_limited_total{limit}` on `server`.
async fn refusals(server: &TestServer, limit: &str) -> f64 {
    let metrics = server.metrics().await;
    metric_value(&metrics, &format!("fanfare_rate_limited_total{{limit=\"{limit}\"}}"))
}

#[tokio::test]
async fn read_requests_over_the_apps_rate_are_refused_with_429_and_writes_are_not_counted() {
    let server = server_with("max_read_requests_per_second = 1").await;
    let app = sdk(&server);
    assert_eq!(app.get("/channels", &[]).await.0, 200);
    let (status, body) = app.get("/channels/news", &[]).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("read requests"), "{body}");
    assert_eq!(app.trigger(&["news"], "e", "x").await.0, 200, "a trigger is not a read");
    assert_eq!(refusals(&server, "pusher_api_reads").await, 1.0);
}

#[tokio::test]
async fn channel_names_longer_than_the_app_allows_are_refused_on_subscribe_and_trigger() {
    let server = server_with("max_channel_name_length = 12").await;
    let mut conn = PusherConn::open(&server, "key-1").await;
    let at_limit = "private-abcd";
    let signed = auth(&conn, at_limit);
    let answer = try_subscribe(&mut conn, at_limit, &signed, None).await;
    assert_eq!(answer["event"], "pusher_internal:subscription_succeeded", "{answer}");
    let over = "private-abcde";
    let signed = auth(&conn, over);
    let answer = try_subscribe(&mut conn, over, &signed, None).await;
    assert_eq!(answer["event"], "pusher:subscription_error", "{answer}");
    let error: Value = serde_json::from_str(answer["data"].as_str().unwrap()).unwrap();
    assert_eq!(error["status"], 400, "{error}");
    let app = sdk(&server);
    assert_eq!(app.trigger(&[at_limit], "e", "x").await.0, 200);
    assert_eq!(app.trigger(&[over], "e", "x").await.0, 400);
}

#[tokio::test]
async fn event_names_longer_than_the_app_allows_are_refused_from_the_api_and_from_clients() {
    let server = server_with("client_events = true\nmax_event_name_length = 10").await;
    let app = sdk(&server);
    assert_eq!(app.trigger(&["news"], "ten-chars!", "x").await.0, 200);
    let (status, body) = app.trigger(&["news"], "eleven-char", "x").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(top_offset(&server, "news").await, 1);

    let (mut alice, mut bob) = private_pair(&server, "private-chat").await;
    client_event(&mut alice, "private-chat", "client-abc").await;
    client_event(&mut alice, "private-chat", "client-abcd").await;
    let error = alice.next_event("pusher:error").await;
    assert!(error["data"]["message"].as_str().unwrap().contains("10 characters"), "{error}");
    assert_eq!(bob.next_event_of("private-chat").await["event"], "client-abc");
    assert_eq!(app.trigger(&["private-chat"], "marker", "m").await.0, 200);
    assert_eq!(bob.next_event_of("private-chat").await["event"], "marker", "the long name was relayed");
}

#[tokio::test]
async fn a_trigger_to_more_channels_than_the_app_allows_at_once_is_refused() {
    let server = server_with("max_event_channels_at_once = 2").await;
    let app = sdk(&server);
    assert_eq!(app.trigger(&["a", "b"], "e", "x").await.0, 200);
    let (status, body) = app.trigger(&["a", "b", "c"], "e", "x").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("at most 2"), "{body}");
    assert_eq!(top_offset(&server, "c").await, 0);
}

#[tokio::test]
async fn a_batch_larger_than_the_app_allows_is_refused_whole() {
    let server = server_with("max_event_batch_size = 2").await;
    let app = sdk(&server);
    let batch = |channels: &[&str]| {
        let events: Vec<Value> =
            channels.iter().map(|c| json!({"name": "e", "channel": c, "data": "x"})).collect();
        json!({ "batch": events })
    };
    assert_eq!(app.post("/batch_events", batch(&["a", "b"])).await.0, 200);
    let (status, body) = app.post("/batch_events", batch(&["c", "d", "e"])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(top_offset(&server, "c").await, 0, "nothing of the refused batch was published");
}

#[tokio::test]
async fn connections_that_do_not_authenticate_in_time_are_closed_with_4009_the_others_stay() {
    let server = server_with("user_authentication_timeout = \"1s\"").await;
    let mut signed_in = PusherConn::open(&server, "key-1").await;
    signed_in.sign_in("alice").await;
    let mut private = PusherConn::open(&server, "key-1").await;
    let auth = auth(&private, "private-room");
    private.subscribe("private-room", &auth, None).await;
    let mut public_only = PusherConn::open(&server, "key-1").await;
    public_only.subscribe("news", "", None).await;
    let mut idle = PusherConn::open(&server, "key-1").await;

    assert_eq!(close_code(&mut public_only).await, 4009, "a public channel does not authenticate");
    assert_eq!(close_code(&mut idle).await, 4009);
    // Both were opened after these two, whose deadline has passed as well.
    assert!(fence(&mut signed_in).await.is_empty());
    assert!(fence(&mut private).await.is_empty());
}

#[tokio::test]
async fn soketis_names_set_the_same_limits_in_soketis_units() {
    let server = server_with(
        "max_event_payload_in_kb = 1\nmax_presence_members_per_channel = 1\n\
         max_presence_member_size_in_kb = 0.0625",
    )
    .await;
    let app = sdk(&server);
    assert_eq!(app.trigger(&["news"], "e", &"x".repeat(1024)).await.0, 200);
    assert_eq!(app.trigger(&["news"], "e", &"x".repeat(1025)).await.0, 413, "1 KiB of data at most");

    let mut conn = PusherConn::open(&server, "key-1").await;
    let join = |conn: &PusherConn, user: &str, info: Value| {
        let channel_data = json!({"user_id": user, "user_info": info}).to_string();
        let signature = sign("secret-1", &format!("{}:presence-room:{channel_data}", conn.socket_id));
        (format!("key-1:{signature}"), channel_data)
    };
    let refusal = |answer: &Value| {
        assert_eq!(answer["event"], "pusher:subscription_error", "{answer}");
        let data: Value = serde_json::from_str(answer["data"].as_str().unwrap()).unwrap();
        data["status"].clone()
    };
    let (auth, data) = join(&conn, "alice", json!({"name": "x".repeat(60)}));
    let answer = try_subscribe(&mut conn, "presence-room", &auth, Some(&data)).await;
    assert_eq!(refusal(&answer), 413, "user_info over 64 bytes");
    let (auth, data) = join(&conn, "alice", json!({"name": "x".repeat(40)}));
    let answer = try_subscribe(&mut conn, "presence-room", &auth, Some(&data)).await;
    assert_eq!(answer["event"], "pusher_internal:subscription_succeeded", "{answer}");

    let mut second = PusherConn::open(&server, "key-1").await;
    let (auth, data) = join(&second, "bob", json!({}));
    let answer = try_subscribe(&mut second, "presence-room", &auth, Some(&data)).await;
    assert_eq!(refusal(&answer), 403, "one member at most");
}

#[tokio::test]
async fn a_connection_over_the_apps_quota_is_closed_with_4004() {
    let server = server_with("max_connections = 1").await;
    let mut first = PusherConn::open(&server, "key-1").await;
    let url = format!("ws://{}/app/key-1?protocol=7&client=js&version=8.6.0", server.addr);
    let (mut second, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let closed = loop {
        match tokio::time::timeout(crate::support::WAIT, futures_util::StreamExt::next(&mut second)).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed.map(|f| u16::from(f.code)), Some(4004));
    assert!(fence(&mut first).await.is_empty(), "the first connection stays");
}
