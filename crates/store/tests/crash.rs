//! Acknowledged appends survive the process dying without any cleanup.
//!
//! Each test re-runs this test binary as a child process (selected by an
//! environment variable) that appends, prints what was acknowledged, and
//! aborts: no destructor, no flush, no graceful close. The parent then
//! reopens the directory and checks that everything acknowledged is there.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fanfare_protocol::{ChannelName, JsonData};
use fanfare_store::{
    AppendRequest, Durability, EmbeddedOptions, EmbeddedStore, HistoryQuery, HistoryStore, Retention,
    unix_time_ms,
};

const CHILD_DIR: &str = "FANFARE_STORE_CRASH_CHILD_DIR";
const CHANNELS: usize = 7;
const APPENDS: usize = 700;

#[tokio::test]
async fn appends_acknowledged_with_fsync_survive_an_abort() {
    run_parent_or_child("appends_acknowledged_with_fsync_survive_an_abort", Durability::Fsync).await;
}

#[tokio::test]
async fn appends_acknowledged_with_buffered_durability_survive_an_abort() {
    let name = "appends_acknowledged_with_buffered_durability_survive_an_abort";
    run_parent_or_child(name, Durability::Buffered).await;
}

async fn run_parent_or_child(test_name: &str, durability: Durability) {
    match std::env::var(CHILD_DIR) {
        Ok(dir) => append_then_abort(Path::new(&dir), durability).await,
        Err(_) => crash_child_then_check(test_name).await,
    }
}

async fn crash_child_then_check(test_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "the child must die, not finish");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("acknowledged {APPENDS}")), "child output: {stdout}");
    // The harness prints the test name on the same line, hence `split_once`.
    let epoch = stdout.lines().find_map(|line| line.split_once("epoch ")).expect("the child's epoch").1;

    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    assert_eq!(store.epoch().as_str(), epoch);
    for (index, chat) in channels().iter().enumerate() {
        let query =
            HistoryQuery { since: None, limit: usize::MAX, reverse: false, retention: Retention::default() };
        let page = store.read(chat, query).await.unwrap();
        let expected = (APPENDS / CHANNELS) as u64;
        assert_eq!(page.top_offset, expected, "channel {index}");
        let offsets: Vec<u64> = page.publications.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, (1..=expected).collect::<Vec<_>>());
        let after = request(chat, "\"after\"", Durability::Fsync);
        let appended = fanfare_store::append(&store, after).await.unwrap();
        assert_eq!(appended.publication.offset, expected + 1, "offsets continue after the crash");
    }
}

/// The child: every receipt awaited (so acknowledged), then an abort.
async fn append_then_abort(dir: &Path, durability: Durability) {
    let store = EmbeddedStore::open(dir, EmbeddedOptions::default()).unwrap();
    println!("epoch {}", store.epoch());
    let channels = channels();
    let mut receipts = Vec::new();
    for n in 0..APPENDS {
        let chat = &channels[n % CHANNELS];
        receipts.push(store.enqueue(request(chat, &n.to_string(), durability)).await.unwrap());
    }
    for receipt in receipts {
        receipt.await.unwrap();
    }
    println!("acknowledged {APPENDS}");
    std::process::abort();
}

fn channels() -> Vec<ChannelName> {
    (0..CHANNELS).map(|i| ChannelName::new(&format!("crash:{i}")).unwrap()).collect()
}

fn request(channel: &ChannelName, data: &str, durability: Durability) -> AppendRequest {
    AppendRequest {
        channel: channel.clone(),
        event: None,
        data: JsonData::parse(data.to_owned()).unwrap(),
        time_ms: unix_time_ms(),
        idempotency_key: None,
        idempotency_window: Duration::from_secs(300),
        retention: Retention::default(),
        durability,
    }
}
