//! `fanfare serve --demo` (`crates/server/src/demo`): the token endpoint
//! the demo pages sign in with, and the pages themselves. What the pages
//! do in a browser is tested by `scripts/test-demos` (headless Chromium);
//! the loopback-only rule is a configuration test (`crates/config`).

use serde_json::{Value, json};

use crate::support::{RawConn, TestServer, http};

/// A demo server: `--demo` with its `team` namespace (as the configuration
/// adds it; the test servers are built from TOML, not from the flag).
async fn demo_server() -> TestServer {
    let team = "[namespaces.team]\nsubscribe = \"members\"\npublish = \"members\"\npresence = true\n";
    TestServer::with_settings(team, |settings| settings.demo = true).await
}

async fn ask_token(server: &TestServer, body: Value) -> (u16, Value) {
    let response = http().post(server.url("/demo/token")).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_demo_token_signs_in_a_made_up_user_who_joins_the_team_channels_with_nothing_unread() {
    let server = demo_server().await;
    // Something said before Alice arrives is not unread for her.
    let (status, body) = ask_token(&server, json!({"user": "carol"})).await;
    assert_eq!(status, 200, "{body}");
    server.post("/api/publish", json!({"channel": "team:general", "data": {"text": "early"}})).await;

    let (status, body) = ask_token(&server, json!({"user": " Alice "})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "alice", "names are trimmed and lowercased");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["team"], json!(["team:general", "team:random", "team:engineering"]));

    let mut alice = RawConn::connected(&server, body["token"].as_str()).await;
    let reply = alice.command(json!({"type": "subscribe", "channel": "team:general"})).await;
    assert!(reply.get("result").is_some(), "a member may subscribe: {reply}");
    let reply = alice.command(json!({"type": "unread"})).await;
    let channels = reply["result"]["channels"].as_array().unwrap_or_else(|| panic!("{reply}"));
    let names: Vec<&str> = channels.iter().map(|c| c["channel"].as_str().unwrap()).collect();
    assert_eq!(names, ["team:engineering", "team:general", "team:random"], "{reply}");
    assert!(channels.iter().all(|c| c["unread"] == 0), "a new member has read everything before: {reply}");

    // Asking again changes nothing: no second `fanfare:members` publication.
    let (_, before) = server.get("/api/history?channel=team:random").await;
    assert_eq!(ask_token(&server, json!({"user": "alice"})).await.0, 200);
    let (_, after) = server.get("/api/history?channel=team:random").await;
    assert_eq!(before["publications"], after["publications"]);
}

#[tokio::test]
async fn a_demo_token_is_refused_for_a_name_that_is_not_a_plain_made_up_user() {
    let server = demo_server().await;
    for user in ["", "a,b", "dm:x", "ünï", &"x".repeat(33)] {
        let (status, body) = ask_token(&server, json!({ "user": user })).await;
        assert_eq!(status, 400, "{user:?}: {body}");
        assert_eq!(body["error"]["code"], "bad_request");
    }
    let (status, _) = ask_token(&server, json!({"user": "alice", "admin": true})).await;
    assert_eq!(status, 400, "unknown fields are refused");
}

#[tokio::test]
async fn demo_tokens_are_rate_limited() {
    let server = demo_server().await;
    let mut limited = None;
    for n in 0..100 {
        let (status, body) = ask_token(&server, json!({"user": "not,a,name"})).await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited");
            limited = Some(n);
            break;
        }
    }
    let limited = limited.expect("a hundred requests at once are not all served");
    assert!(limited >= 10, "a burst is served first ({limited})");
}

#[tokio::test]
async fn demo_pages_are_served_with_a_strict_content_security_policy() {
    let server = demo_server().await;
    for (path, kind) in [
        ("/demo/", "text/html"),
        ("/demo/live", "text/html"),
        ("/demo/team", "text/html"),
        ("/demo/dm", "text/html"),
        ("/demo/assets/fanfare-client.js", "text/javascript"),
        ("/demo/assets/chat.js", "text/javascript"),
        ("/demo/assets/demo.css", "text/css"),
    ] {
        let response = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{path}");
    }
    let missing = http().get(server.url("/demo/assets/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn without_demo_there_are_neither_pages_nor_tokens() {
    let server = TestServer::start().await;
    assert_eq!(http().get(server.url("/demo/team")).send().await.unwrap().status(), 404);
    assert_eq!(ask_token(&server, json!({"user": "alice"})).await.0, 404);
}

#[test]
fn the_binary_refuses_a_demo_on_an_address_other_machines_can_reach() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fanfare"))
        .args(["serve", "--demo", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(data_dir.path())
        .env_remove("FANFARE_LISTEN")
        .output()
        .unwrap();
    assert!(!output.status.success(), "it must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback") && stderr.contains("--listen"), "{stderr}");
}
