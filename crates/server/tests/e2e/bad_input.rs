//! Bad input gets a clear, documented error and loses nothing.

use serde_json::json;

use crate::support::{API_KEY, RawConn, TestServer, http, token};

#[tokio::test]
async fn malformed_json_closes_with_bad_frame() {
    let server = TestServer::start().await;
    let mut conn = RawConn::connected(&server, None).await;
    conn.send_text("{this is not json").await;
    assert_eq!(conn.until_closed().await.0, 4000);
}

#[tokio::test]
async fn a_json_array_frame_closes_with_bad_frame_even_when_it_spells_out_a_command() {
    let server = TestServer::start().await;
    // An array of every command field in order, which a struct decoder
    // would read by position as `ping` with id 8.
    for frame in ["[7]", r#"[8,"ping",null,null,null,null,null,null,null,null,null]"#] {
        let mut conn = RawConn::connected(&server, None).await;
        conn.send_text(frame).await;
        let first = conn.next().await.expect("a disconnect push before the close");
        assert_eq!(first["type"], "disconnect", "{frame} was answered: {first}");
        assert_eq!(conn.until_closed().await.0, 4000, "{frame}");
    }
}

#[tokio::test]
async fn a_binary_frame_closes_with_bad_frame() {
    let server = TestServer::start().await;
    let mut conn = RawConn::connected(&server, None).await;
    use futures_util::SinkExt;
    conn.socket.send(tokio_tungstenite::tungstenite::Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(conn.until_closed().await.0, 4000);
}

#[tokio::test]
async fn an_unknown_command_gets_an_error_reply_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut conn = RawConn::connected(&server, None).await;
    let reply = conn.command(json!({"type": "dance"})).await;
    assert_eq!(reply["error"]["code"], "unknown_command");
    let pong = conn.command(json!({"type": "ping"})).await;
    assert_eq!(pong["result"], json!({}));
}

#[tokio::test]
async fn an_oversize_frame_closes_with_1009() {
    let server = TestServer::with_config("[limits]\nmax_frame_bytes = 1024\n").await;
    let mut conn = RawConn::connected(&server, None).await;
    let big = json!({"id": 5, "type": "publish", "channel": "a", "data": "x".repeat(4096)});
    conn.send_text(&big.to_string()).await;
    assert_eq!(conn.until_closed().await.0, 1009);
}

#[tokio::test]
async fn a_message_over_the_namespace_limit_is_refused_and_not_stored() {
    let server =
        TestServer::with_config("[namespaces.small]\nmax_message_bytes = 10\npublish = \"anyone\"\n").await;
    let mut conn = RawConn::connected(&server, None).await;
    let reply = conn
        .command(json!({"type": "publish", "channel": "small:a", "data": "far too long a message"}))
        .await;
    assert_eq!(reply["error"]["code"], "message_too_large");
    let (status, body) = server.publish("small:a", json!("also far too long")).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "message_too_large");
    let (_, history) = server.get("/api/history?channel=small:a").await;
    assert_eq!(history["top_offset"], 0);
}

#[tokio::test]
async fn commands_before_connect_are_refused() {
    let server = TestServer::start().await;
    let mut conn = RawConn::open(&server).await;
    let reply = conn.command(json!({"type": "subscribe", "channel": "a"})).await;
    assert_eq!(reply["error"]["code"], "not_connected");
}

#[tokio::test]
async fn no_connect_within_the_handshake_timeout_closes_with_4504() {
    let server = TestServer::with_config("[limits]\nhandshake_timeout = \"200ms\"\n").await;
    let mut conn = RawConn::open(&server).await;
    assert_eq!(conn.until_closed().await.0, 4504);
}

#[tokio::test]
async fn subscribing_without_the_token_claim_is_permission_denied() {
    let server = TestServer::with_config("[namespaces.private]\nsubscribe = \"token_claim\"\n").await;
    let mut anonymous = RawConn::connected(&server, None).await;
    let reply = anonymous.command(json!({"type": "subscribe", "channel": "private:x"})).await;
    assert_eq!(reply["error"]["code"], "permission_denied");

    let granted = token("bob", json!({"channels": ["private:*"]}));
    let mut bob = RawConn::connected(&server, Some(&granted)).await;
    let reply = bob.command(json!({"type": "subscribe", "channel": "private:x"})).await;
    assert!(reply.get("result").is_some(), "{reply}");

    let other = token("eve", json!({"channels": ["public:*"]}));
    let mut eve = RawConn::connected(&server, Some(&other)).await;
    let reply = eve.command(json!({"type": "subscribe", "channel": "private:x"})).await;
    assert_eq!(reply["error"]["code"], "permission_denied");
}

#[tokio::test]
async fn client_publish_in_a_server_only_namespace_is_permission_denied() {
    let server = TestServer::start().await;
    let mut conn = RawConn::connected(&server, None).await;
    conn.command(json!({"type": "subscribe", "channel": "news"})).await;
    let reply = conn.command(json!({"type": "publish", "channel": "news", "data": 1})).await;
    assert_eq!(reply["error"]["code"], "permission_denied");
}

#[tokio::test]
async fn a_bad_jwt_is_unauthorized_and_closes_with_4001() {
    let server = TestServer::start().await;
    let mut conn = RawConn::open(&server).await;
    let reply = conn.command(json!({"type": "connect", "token": "not.a.jwt"})).await;
    assert_eq!(reply["error"]["code"], "unauthorized");
    assert_eq!(conn.until_closed().await.0, 4001);
}

#[tokio::test]
async fn an_expired_jwt_is_token_expired_and_closes_with_4001() {
    let server = TestServer::start().await;
    let expired = token("late", json!({"exp": 1_000_000}));
    let mut conn = RawConn::open(&server).await;
    let reply = conn.command(json!({"type": "connect", "token": expired})).await;
    assert_eq!(reply["error"]["code"], "token_expired");
    assert_eq!(conn.until_closed().await.0, 4001);
}

#[tokio::test]
async fn a_jwt_signed_with_another_key_is_unauthorized() {
    let server = TestServer::start().await;
    let key = jsonwebtoken::EncodingKey::from_secret(b"some other secret entirely");
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "x", "exp": 4_000_000_000u64}),
        &key,
    )
    .unwrap();
    let mut conn = RawConn::open(&server).await;
    let reply = conn.command(json!({"type": "connect", "token": forged})).await;
    assert_eq!(reply["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn http_api_without_or_with_a_wrong_key_is_401() {
    let server = TestServer::start().await;
    let body = json!({"channel": "a", "data": 1});
    let none = http().post(server.url("/api/publish")).json(&body).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let error: serde_json::Value = none.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    let wrong =
        http().post(server.url("/api/publish")).bearer_auth("wrong").json(&body).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right =
        http().post(server.url("/api/publish")).bearer_auth(API_KEY).json(&body).send().await.unwrap();
    assert_eq!(right.status(), 200);
    let any_case = format!("bEARER {API_KEY}");
    let any_case =
        http().post(server.url("/api/publish")).header("authorization", any_case).json(&body).send().await;
    assert_eq!(any_case.unwrap().status(), 200, "the scheme is matched in any case");
}

#[tokio::test]
async fn http_api_rejects_bad_bodies_and_channels_with_400() {
    let server = TestServer::start().await;
    let response = http()
        .post(server.url("/api/publish"))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, body) = server.post("/api/publish", json!({"channel": "bad name", "data": 1})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.get("/api/history?channel=bad%20name").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_channel");
    for path in ["/api/history", "/api/presence"] {
        let (status, body) = server.get(path).await;
        assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "{path} without channel");
    }
}

#[tokio::test]
async fn an_http_body_over_the_limit_is_413() {
    let server = TestServer::with_config("[limits]\nmax_http_body_bytes = 1000\n").await;
    let (status, body) = server.publish("a", json!("y".repeat(5000))).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "message_too_large");
}

#[tokio::test]
async fn too_many_channels_on_one_connection_is_refused() {
    let server = TestServer::with_config("[limits]\nmax_channels_per_connection = 2\n").await;
    let mut conn = RawConn::connected(&server, None).await;
    for name in ["a", "b"] {
        assert!(conn.command(json!({"type": "subscribe", "channel": name})).await.get("result").is_some());
    }
    let reply = conn.command(json!({"type": "subscribe", "channel": "c"})).await;
    assert_eq!(reply["error"]["code"], "too_many_channels");
}

#[tokio::test]
async fn a_command_flood_is_answered_with_rate_limited_and_the_connection_stays() {
    let server = TestServer::with_config("[limits]\nmax_commands_per_second = 20\n").await;
    let mut conn = RawConn::connected(&server, None).await;
    for id in 100..300 {
        conn.send_text(&json!({"id": id, "type": "ping"}).to_string()).await;
    }
    let (mut answered, mut limited) = (0, 0);
    while answered + limited < 200 {
        let reply = conn.next_json().await.expect("the connection stays open");
        match reply["error"]["code"].as_str() {
            Some("rate_limited") => {
                assert_eq!(reply["error"]["retry"], true);
                limited += 1;
            }
            Some(other) => panic!("unexpected error {other}"),
            None => answered += 1,
        }
    }
    assert!(limited > 0, "the flood was limited");
    assert!(answered >= 19, "a burst of the rate (less the connect) went through");
    let metrics = server.metrics().await;
    let counted =
        crate::support::metric_value(&metrics, "fanfare_rate_limited_total{limit=\"native_commands\"}");
    assert_eq!(counted, f64::from(limited), "every refusal is counted");
}
