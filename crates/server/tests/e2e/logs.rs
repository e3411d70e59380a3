//! The log filter changed while the server runs: `PUT /api/log`, and
//! SIGHUP re-reading `log.level` from the file. The real binary.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::{signal, spawn, write_whole};
use crate::support::{eventually, http};

const KEY: &str = "0123456789abcdef0123";
const WAIT: Duration = Duration::from_secs(15);

fn write_config(path: &Path, level: &str) {
    write_config_as(path, level, "text");
}

fn write_config_as(path: &Path, level: &str, format: &str) {
    let text = format!("api_key = \"{KEY}\"\n\n[log]\nlevel = \"{level}\"\nformat = \"{format}\"\n");
    write_whole(path, &text);
}

async fn level(addr: SocketAddr) -> String {
    let response = http().get(format!("http://{addr}/api/log")).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["level"].as_str().unwrap().to_owned()
}

async fn put_level(addr: SocketAddr, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut request = http().put(format!("http://{addr}/api/log")).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Waits until the node's filter reads `expected` (SIGHUP is handled by a
/// task of its own, so there is no reply to wait for).
async fn until_level(addr: SocketAddr, expected: &str) {
    eventually(&format!("the filter {expected}"), || async move { level(addr).await == expected }).await;
}

#[tokio::test]
async fn the_api_and_sighup_change_the_log_filter_and_a_bad_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fanfare.toml");
    write_config(&config, "error");
    let (mut child, addr, log) = spawn(&config, &dir.path().join("data")).await;
    assert_eq!(level(addr).await, "error");

    let (status, body) = put_level(addr, json!({"level": "info,fanfare=debug"}), Some(KEY)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["level"].as_str().unwrap().contains("fanfare=debug"), "{body}");
    let (status, body) = put_level(addr, json!({"level": "info,fanfare=loud"}), Some(KEY)).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "{body}");
    let (status, _) = put_level(addr, json!({"level": "warn"}), None).await;
    assert_eq!(status, 401);
    let (status, _) = put_level(addr, json!({"level": "warn", "extra": 1}), Some(KEY)).await;
    assert_eq!(status, 400);
    assert!(level(addr).await.contains("fanfare=debug"), "refused requests changed nothing");

    write_config(&config, "warn");
    signal(&child, "-HUP");
    until_level(addr, "warn").await;
    // A file that no longer loads: nothing changes.
    let mut log = log;
    write_config(&config, "info,fanfare=loud");
    signal(&child, "-HUP");
    log.until("SIGHUP: the configuration does not load; nothing changed").await;
    assert_eq!(level(addr).await, "warn");
    write_config(&config, "warn,fanfare=info");
    signal(&child, "-HUP");
    // Read back as the filter orders its directives: the most specific first.
    until_level(addr, "fanfare=info,warn").await;

    signal(&child, "-TERM");
    let status = tokio::time::timeout(WAIT, child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    let log = log.all().await;
    assert!(log.contains("log filter changed filter=fanfare=info,warn"), "{log}");
}

#[tokio::test]
async fn every_line_about_a_connection_names_it() {
    use futures_util::StreamExt;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fanfare.toml");
    write_config_as(&config, "warn,fanfare::gateway=debug", "json");
    let (mut child, addr, log) = spawn(&config, &dir.path().join("data")).await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/connection/websocket")).await.unwrap();
    socket.close(None).await.unwrap();
    // The server's close frame ends it.
    tokio::time::timeout(WAIT, async { while socket.next().await.is_some() {} }).await.unwrap();

    signal(&child, "-TERM");
    assert!(tokio::time::timeout(WAIT, child.wait()).await.unwrap().unwrap().success());
    let log = log.all().await;
    let lines: Vec<Value> = log.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let find = |message: &str| {
        lines
            .iter()
            .find(|line| line["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {log}"))
            .clone()
    };
    let opened = find("connection opened");
    let closed = find("connection closed");
    assert!(opened["connection"].is_u64(), "{opened}");
    assert_eq!(opened["connection"], closed["connection"], "{opened} {closed}");
    assert_eq!(opened["protocol"], "native");
    assert_eq!(closed["reason"], "client_closed", "{closed}");
}
