//! Durability with the real binary: SIGKILL loses no acknowledged
//! publication, SIGTERM always stops cleanly (store closed), the next start
//! says how the last one stopped, and the first start generates the API key.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fanfare_store::{EmbeddedOptions, EmbeddedStore, LastStop};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::support::{WAIT, http, listening_addr};

const KEY: &str = "durability-test-key-0123";

/// A `fanfare serve` process on 127.0.0.1:0.
struct Process {
    child: Child,
    addr: SocketAddr,
    /// Everything it printed on stdout before it said where it listens.
    banner: Vec<String>,
    _stdout: Lines<BufReader<ChildStdout>>,
    /// Everything it logs, once it has exited (only from [`spawn_logging`]).
    log: Option<JoinHandle<String>>,
}

async fn spawn(data_dir: &Path, api_key: Option<&str>) -> Process {
    spawn_with(data_dir, api_key, None, "text").await
}

/// Like [`spawn`], with the log at info level collected.
async fn spawn_logging(data_dir: &Path, api_key: Option<&str>) -> Process {
    spawn_with(data_dir, api_key, Some("info"), "text").await
}

async fn spawn_with(data_dir: &Path, api_key: Option<&str>, log: Option<&str>, log_format: &str) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fanfare"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("FANFARE_API_KEY")
        .env_remove("FANFARE_CONFIG")
        .env("FANFARE_LOG", log.unwrap_or("warn"))
        .env("FANFARE_LOG_FORMAT", log_format)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if log.is_some() {
        command.stderr(Stdio::piped());
    }
    if let Some(key) = api_key {
        command.env("FANFARE_API_KEY", key);
    }
    let mut child = command.spawn().unwrap();
    // Read as it comes, so a chatty server never blocks on a full pipe.
    let log = child.stderr.take().map(|mut stderr| {
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        })
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let addr = listening_addr(&mut lines, |line| banner.push(line)).await;
    Process { child, addr, banner, _stdout: lines, log }
}

impl Process {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM (no waiting before it) and waits for the exit.
    async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("still running").to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("exits in time").unwrap()
    }

    /// What it logged, after it has exited.
    async fn log(&mut self) -> String {
        let log = self.log.take().expect("started with spawn_logging");
        tokio::time::timeout(WAIT, log).await.expect("the log ends with the process").unwrap()
    }
}

/// How the server's embedded store last stopped, as the store itself
/// reports on open (opening and closing it records a clean stop again).
fn last_stop(data_dir: &Path) -> LastStop {
    let store = EmbeddedStore::open(&data_dir.join("store"), EmbeddedOptions::default()).unwrap();
    store.last_stop()
}

#[tokio::test]
async fn sigterm_right_after_the_listening_line_exits_0_and_closes_the_store_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut slowest = Duration::ZERO;
    for start in 1..=20 {
        let mut server = spawn_logging(dir.path(), Some(KEY)).await;
        let signalled = Instant::now();
        let status = server.terminate().await;
        slowest = slowest.max(signalled.elapsed());
        assert!(status.success(), "start {start}: {status}");
        let log = server.log().await;
        assert!(log.contains("history store closed"), "start {start}: the server closed the store\n{log}");
        assert_eq!(last_stop(dir.path()), LastStop::Clean, "start {start}");
    }
    // With no connection to drain, nothing waits for the 30 s grace period.
    assert!(slowest < Duration::from_secs(5), "slowest shutdown took {slowest:?}");
}

#[tokio::test]
async fn after_sigkill_the_next_start_logs_an_unclean_stop_and_after_sigterm_a_clean_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(dir.path(), Some(KEY)).await;
    let (status, _) = post(&server, "/api/publish", json!({"channel": "ledger", "data": 1})).await;
    assert_eq!(status, 200);
    server.child.start_kill().unwrap(); // SIGKILL
    server.child.wait().await.unwrap();

    let mut after_kill = spawn_logging(dir.path(), Some(KEY)).await;
    assert!(after_kill.terminate().await.success());
    let log = after_kill.log().await;
    assert!(log.contains("WARN") && log.contains("the last stop was not clean"), "{log}");
    assert!(log.contains("history store closed"), "{log}");

    let mut after_term = spawn_logging(dir.path(), Some(KEY)).await;
    assert!(after_term.terminate().await.success());
    let log = after_term.log().await;
    assert!(log.contains("the last stop was clean"), "{log}");
    assert_eq!(last_stop(dir.path()), LastStop::Clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_publication_and_offsets_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(dir.path(), Some(KEY)).await;
    let acked: Arc<Mutex<Vec<(u64, String, Value)>>> = Arc::default();
    let enough = Arc::new(tokio::sync::Notify::new());
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let url = server.url("/api/publish");
            let acked = acked.clone();
            let enough = enough.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let data = json!({"publisher": p, "i": i});
                    let body = json!({"channel": "ledger", "data": data});
                    let Ok(response) = http().post(&url).bearer_auth(KEY).json(&body).send().await else {
                        return;
                    };
                    let Ok(reply) = response.json::<Value>().await else { return };
                    let (Some(offset), Some(epoch)) = (reply["offset"].as_u64(), reply["epoch"].as_str())
                    else {
                        return;
                    };
                    let mut acked = acked.lock().unwrap();
                    acked.push((offset, epoch.to_string(), data));
                    if acked.len() >= 200 {
                        enough.notify_one();
                    }
                }
            })
        })
        .collect();
    tokio::time::timeout(WAIT, enough.notified()).await.expect("publishing is too slow");
    server.child.start_kill().unwrap(); // SIGKILL
    server.child.wait().await.unwrap();
    for publisher in publishers {
        publisher.await.unwrap();
    }

    let restarted = spawn(dir.path(), Some(KEY)).await;
    let (status, history): (u16, Value) = get(&restarted, "/api/history?channel=ledger&limit=1000").await;
    assert_eq!(status, 200);
    let acked = acked.lock().unwrap().clone();
    let epoch = &acked[0].1;
    assert_eq!(history["epoch"], json!(epoch), "same epoch after the crash");
    let stored: std::collections::HashMap<u64, Value> = history["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["offset"].as_u64().unwrap(), p["data"].clone()))
        .collect();
    for (offset, _, data) in &acked {
        assert_eq!(stored.get(offset), Some(data), "acknowledged offset {offset} lost");
    }
    let top = history["top_offset"].as_u64().unwrap();
    let (_, next) = post(&restarted, "/api/publish", json!({"channel": "ledger", "data": "after"})).await;
    assert_eq!(next["offset"], top + 1, "offsets continue");
    assert_eq!(next["epoch"], json!(epoch));
}

#[tokio::test]
async fn the_first_start_generates_an_api_key_prints_it_once_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn(dir.path(), None).await;
    let printed = first.banner.join("\n");
    assert!(printed.contains("Generated an HTTP API key"), "{printed}");
    let announced = first.banner.iter().position(|l| l.contains("Generated an HTTP API key")).unwrap();
    let key = first.banner[announced + 1].trim().to_string();
    let ok = http().get(first.url("/api/channels")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    drop(first);

    let second = spawn(dir.path(), None).await;
    assert!(!second.banner.join("\n").contains("Generated"), "printed only once");
    let ok = http().get(second.url("/api/channels")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(ok.status(), 200, "the stored key still works");
}

async fn get(server: &Process, path: &str) -> (u16, Value) {
    let response = http().get(server.url(path)).bearer_auth(KEY).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn post(server: &Process, path: &str, body: Value) -> (u16, Value) {
    let response = http().post(server.url(path)).bearer_auth(KEY).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn sigterm_tells_clients_to_reconnect_and_the_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(dir.path(), Some(KEY)).await;
    let url = format!("ws://{}/connection/websocket", server.addr);
    let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut conn = crate::support::RawConn::from_socket(socket);
    conn.command(json!({"type": "connect"})).await;
    let pid = server.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let (code, push) = conn.until_closed().await;
    assert_eq!(code, 4500, "shutting down: reconnect");
    assert!(push.unwrap()["reconnect_after_ms"].is_u64());
    let status = tokio::time::timeout(WAIT, server.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exits cleanly: {status}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_level_target_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_with(dir.path(), Some("0123456789abcdef0123"), Some("info"), "json").await;
    assert!(server.terminate().await.success());
    let log = server.log().await;
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: not JSON: {line}")))
        .collect();
    let open =
        lines.iter().find(|line| line["message"] == "embedded history store open").expect("the store's line");
    assert_eq!(open["level"], "INFO");
    assert_eq!(open["target"], "fanfare_store::embedded");
    assert!(open["epoch"].is_string() && open["timestamp"].is_string(), "fields at the top level: {open}");
    assert!(lines.iter().any(|line| line["message"] == "history store closed"), "{log}");
}

#[tokio::test]
async fn config_check_names_the_bad_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[namespaces.chat]\npublish = \"everyone\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_fanfare"))
        .args(["config", "check", "--config"])
        .arg(&path)
        .env_remove("FANFARE_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("namespaces.chat.publish"), "{stderr}");

    std::fs::write(&path, "[namespaces.chat]\npublish = \"subscribers\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_fanfare"))
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("subscribers"));
}
