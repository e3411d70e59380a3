//! Acknowledged appends survive the process dying without any cleanup, the
//! next open reports the unclean stop, and the epoch changes only when
//! buffered appends may really be gone (the machine restarted since).
//!
//! Each test re-runs this test binary as a child process (selected by an
//! environment variable) that appends, prints what was acknowledged, and
//! aborts: no destructor, no flush, no graceful close. The parent then
//! reopens the directory and checks that everything acknowledged is there.
//! A machine restart is played by reopening with another boot id.

use std::path::Path;
use std::process::Command;

use fanfare_protocol::{ChannelName, JsonData};
use fanfare_store::{
    AppendRequest, BootId, Durability, EmbeddedOptions, EmbeddedStore, HistoryQuery, HistoryStore, LastStop,
    Retention,
};

const CHILD_DIR: &str = "FANFARE_STORE_CRASH_CHILD_DIR";
const CHANNELS: usize = 7;
const APPENDS: usize = 700;
/// The boot the child runs in.
const CHILD_BOOT: BootId = BootId::Fixed("boot-of-the-child");
const LATER_BOOT: BootId = BootId::Fixed("a-later-boot");

#[tokio::test]
async fn appends_acknowledged_with_fsync_survive_an_abort() {
    let name = "appends_acknowledged_with_fsync_survive_an_abort";
    let Some(crashed) = run_parent_or_child(name, Durability::Fsync, CHILD_BOOT).await else { return };
    assert_eq!(crashed.store.epoch().as_str(), crashed.child_epoch);
}

#[tokio::test]
async fn appends_acknowledged_with_buffered_durability_survive_an_abort_and_keep_the_epoch() {
    let name = "appends_acknowledged_with_buffered_durability_survive_an_abort_and_keep_the_epoch";
    let Some(crashed) = run_parent_or_child(name, Durability::Buffered, CHILD_BOOT).await else { return };
    assert_eq!(crashed.store.epoch().as_str(), crashed.child_epoch, "the page cache kept the writes");
}

#[tokio::test]
async fn fsync_appends_keep_the_epoch_when_the_machine_restarted_after_the_crash() {
    let name = "fsync_appends_keep_the_epoch_when_the_machine_restarted_after_the_crash";
    let Some(crashed) = run_parent_or_child(name, Durability::Fsync, LATER_BOOT).await else { return };
    assert_eq!(crashed.store.epoch().as_str(), crashed.child_epoch, "nothing acknowledged was unsynced");
}

#[tokio::test]
async fn buffered_appends_and_a_machine_restart_after_the_crash_start_a_new_epoch() {
    let name = "buffered_appends_and_a_machine_restart_after_the_crash_start_a_new_epoch";
    let Some(crashed) = run_parent_or_child(name, Durability::Buffered, LATER_BOOT).await else { return };
    assert_ne!(crashed.store.epoch().as_str(), crashed.child_epoch, "lost offsets would be reused");
    let new_epoch = crashed.store.epoch().clone();
    drop(crashed.store);
    let store = EmbeddedStore::open(crashed.dir.path(), options(LATER_BOOT)).unwrap();
    assert_eq!(store.last_stop(), LastStop::Clean);
    assert_eq!(store.epoch(), &new_epoch, "the new epoch is kept from then on");
}

/// A directory a child crashed in, reopened by the parent.
struct Crashed {
    store: EmbeddedStore,
    child_epoch: String,
    dir: tempfile::TempDir,
}

/// In the child: appends, then aborts (never returns). In the parent: runs
/// the child, reopens its directory in `boot_after`, and checks that every
/// acknowledged append is there under the store's epoch, that offsets
/// continue, and that the stop is reported unclean.
async fn run_parent_or_child(test_name: &str, durability: Durability, boot_after: BootId) -> Option<Crashed> {
    match std::env::var(CHILD_DIR) {
        Ok(dir) => {
            append_then_abort(Path::new(&dir), durability).await;
            None
        }
        Err(_) => Some(crash_child_then_check(test_name, boot_after).await),
    }
}

async fn crash_child_then_check(test_name: &str, boot_after: BootId) -> Crashed {
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
    let epoch = stdout.lines().find_map(|line| line.split_once("child-epoch=")).expect("the child's epoch").1;

    let store = EmbeddedStore::open(dir.path(), options(boot_after)).unwrap();
    assert_eq!(store.last_stop(), LastStop::Unclean);
    for (index, chat) in channels().iter().enumerate() {
        let query =
            HistoryQuery { since: None, limit: usize::MAX, reverse: false, retention: Retention::default() };
        let page = store.read(chat, query).await.unwrap();
        let expected = (APPENDS / CHANNELS) as u64;
        assert_eq!(page.top_offset, expected, "channel {index}");
        assert_eq!(&page.epoch, store.epoch());
        let offsets: Vec<u64> = page.publications.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, (1..=expected).collect::<Vec<_>>());
        let after = request(chat, "\"after\"", Durability::Fsync);
        let appended = fanfare_store::append(&store, after).await.unwrap();
        assert_eq!(appended.publication.offset, expected + 1, "offsets continue after the crash");
    }
    Crashed { store, child_epoch: epoch.to_owned(), dir }
}

/// The child: every receipt awaited (so acknowledged), then an abort.
async fn append_then_abort(dir: &Path, durability: Durability) {
    let store = EmbeddedStore::open(dir, options(CHILD_BOOT)).unwrap();
    println!("child-epoch={}", store.epoch());
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

fn options(boot_id: BootId) -> EmbeddedOptions {
    EmbeddedOptions { boot_id, ..EmbeddedOptions::default() }
}

fn channels() -> Vec<ChannelName> {
    (0..CHANNELS).map(|i| ChannelName::new(&format!("crash:{i}")).unwrap()).collect()
}

fn request(channel: &ChannelName, data: &str, durability: Durability) -> AppendRequest {
    AppendRequest {
        durability,
        ..AppendRequest::new(channel.clone(), JsonData::parse(data.to_owned()).unwrap())
    }
}
