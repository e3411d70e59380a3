//! The log filter changed while the server runs: `PUT /api/log`, and
//! SIGHUP re-reading `log.level` from the file. The real binary.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::http;

const KEY: &str = "0123456789abcdef0123";
const WAIT: Duration = Duration::from_secs(15);

fn write_config(path: &Path, level: &str) {
    write_config_as(path, level, "text");
}

fn write_config_as(path: &Path, level: &str, format: &str) {
    let text = format!("api_key = \"{KEY}\"\n\n[log]\nlevel = \"{level}\"\nformat = \"{format}\"\n");
    std::fs::write(path, text).unwrap();
}

async fn spawn(config: &Path, data_dir: &Path) -> (Child, SocketAddr, tokio::task::JoinHandle<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fanfare"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .env_remove("FANFARE_LOG")
        .env_remove("FANFARE_LOG_FORMAT")
        .env_remove("FANFARE_API_KEY")
        .env_remove("FANFARE_CONFIG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(WAIT, async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the server exited before listening");
            if let Some(addr) = line.strip_prefix("fanfare listening on ") {
                return addr.trim().parse::<SocketAddr>().unwrap();
            }
        }
    })
    .await
    .expect("the server did not start in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr, log)
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

fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args([name, &pid]).status().unwrap().success());
}

/// Polls the node until its filter reads `expected` (SIGHUP is handled
/// by a task of its own, so there is no reply to wait for).
async fn until_level(addr: SocketAddr, expected: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = level(addr).await;
        if now == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the filter never became {expected}: {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    // A file that no longer loads: nothing changes, and the next good one
    // (handled after it, in order) applies.
    write_config(&config, "info,fanfare=loud");
    signal(&child, "-HUP");
    write_config(&config, "warn,fanfare=info");
    signal(&child, "-HUP");
    // Read back as the filter orders its directives: the most specific first.
    until_level(addr, "fanfare=info,warn").await;

    signal(&child, "-TERM");
    let status = tokio::time::timeout(WAIT, child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    let log = tokio::time::timeout(WAIT, log).await.unwrap().unwrap();
    assert!(log.contains("log filter changed"), "{log}");
    assert!(log.contains("SIGHUP: the configuration does not load; nothing changed"), "{log}");
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
    let log = tokio::time::timeout(WAIT, log).await.unwrap().unwrap();
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
