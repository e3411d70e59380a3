//! What the docs promise, checked against the running server: clients are
//! written from `docs/api.md`, `docs/openapi.json` (served at
//! `/openapi.json`) and `docs/protocol.md` alone.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{RawConn, TestServer, http};

#[tokio::test]
async fn the_openapi_request_schemas_list_exactly_the_fields_the_server_accepts() {
    let server = TestServer::start().await;
    let openapi: Value = http().get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let schemas = &openapi["components"]["schemas"];
    for (path, schema) in [
        ("/api/publish", "PublishRequest"),
        ("/api/broadcast", "BroadcastRequest"),
        ("/api/edit", "EditRequest"),
        ("/api/disconnect", "DisconnectRequest"),
        ("/api/moderation/slow_mode", "SlowModeRequest"),
        ("/api/moderation/delete", "DeleteRequest"),
        ("/api/moderation/purge", "PurgeRequest"),
        ("/api/members", "MembersChangeRequest"),
        ("/api/read", "ReadRequest"),
    ] {
        let schema = &schemas[schema];
        assert_eq!(schema["additionalProperties"], false, "{path}: the server refuses unknown fields");
        let documented: BTreeSet<String> =
            schema["properties"].as_object().unwrap().keys().cloned().collect();
        let accepted = accepted_fields(&server, path).await;
        assert_eq!(documented, accepted, "{path}: the OpenAPI schema (left) and the server (right) differ");
    }
}

/// The fields a body of `path` may have, as the server lists them when it
/// refuses an unknown one ("… expected one of `a`, `b` …" or "… expected `a` …").
async fn accepted_fields(server: &TestServer, path: &str) -> BTreeSet<String> {
    let (status, body) = server.post(path, json!({"no_such_field": 1})).await;
    assert_eq!(status, 400, "{path}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    let (_, expected) = message.split_once("expected").unwrap_or_else(|| panic!("{path}: {message}"));
    expected.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[tokio::test]
async fn an_event_name_given_to_publish_comes_back_in_pushes_and_in_history() {
    let server = TestServer::with_config("[namespaces.chat]\npublish = \"subscribers\"\n").await;
    let mut conn = RawConn::connected(&server, None).await;
    conn.command(json!({"type": "subscribe", "channel": "chat:lobby"})).await;

    let (status, body) =
        server.post("/api/publish", json!({"channel": "chat:lobby", "event": "message", "data": 1})).await;
    assert_eq!(status, 200, "{body}");
    let push = &conn.publications("chat:lobby", 1).await[0];
    assert_eq!(push["event"], "message", "{push}");

    let reply =
        conn.command(json!({"type": "publish", "channel": "chat:lobby", "event": "typed", "data": 2})).await;
    assert!(reply.get("result").is_some(), "{reply}");
    let (status, body) =
        server.post("/api/broadcast", json!({"channels": ["chat:lobby"], "event": "news", "data": 3})).await;
    assert_eq!(status, 200, "{body}");
    server.publish("chat:lobby", json!(4)).await;

    let (_, history) = server.get("/api/history?channel=chat:lobby").await;
    let events: Vec<&Value> =
        history["publications"].as_array().unwrap().iter().map(|p| &p["event"]).collect();
    assert_eq!(events, [&json!("message"), &json!("typed"), &json!("news"), &Value::Null], "{history}");
    let without = &history["publications"][3];
    assert!(without.get("event").is_none(), "no `event` field when published without one: {without}");
}

#[tokio::test]
async fn a_history_limit_beyond_u64_is_refused_not_capped() {
    let server = TestServer::start().await;
    for limit in ["18446744073709551616", "-1"] {
        let (status, body) = server.get(&format!("/api/history?channel=a&limit={limit}")).await;
        assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "limit={limit}: {body}");
    }
    let (status, _) = server.get("/api/history?channel=a&limit=18446744073709551615").await;
    assert_eq!(status, 200, "the largest u64 is capped at the read limit");

    let mut conn = RawConn::connected(&server, None).await;
    // Written out: 2^64 does not fit in a `serde_json::Value`.
    for limit in ["18446744073709551616", "-1", "2.5"] {
        conn.send_text(&format!(r#"{{"id":90,"type":"history","channel":"a","limit":{limit}}}"#)).await;
        let reply = conn.next_json().await.expect("an error reply, and the connection stays");
        assert_eq!((&reply["id"], &reply["error"]["code"]), (&json!(90), &json!("bad_request")), "{reply}");
    }
}

#[tokio::test]
async fn allow_anonymous_off_keeps_anonymous_connections_from_subscribing_not_from_publishing_to_anyone() {
    let config = "[namespaces.open]\npublish = \"anyone\"\nallow_anonymous = false\n\
                  [namespaces.members]\npublish = \"subscribers\"\nallow_anonymous = false\n";
    let server = TestServer::with_config(config).await;
    let mut anonymous = RawConn::connected(&server, None).await;
    for command in [
        json!({"type": "subscribe", "channel": "open:a"}),
        json!({"type": "history", "channel": "open:a"}),
        json!({"type": "publish", "channel": "members:a", "data": 1}),
    ] {
        let reply = anonymous.command(command.clone()).await;
        assert_eq!(reply["error"]["code"], "permission_denied", "{command}: {reply}");
    }
    let reply = anonymous.command(json!({"type": "publish", "channel": "open:a", "data": 1})).await;
    assert_eq!(reply["result"]["offset"], 1, "`publish = \"anyone\"` alone decides: {reply}");
}
