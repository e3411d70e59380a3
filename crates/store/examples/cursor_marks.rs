//! Marks read cursors and prints the rate: the issue's "≥ 20,000 cursor
//! updates per second". Each store gets `marks` forward marks (default
//! 20,000) spread over 1,000 users × 50 channels, first one at a time, then
//! from 64 tasks at once. The Redis store uses a private `redis-server`
//! (skipped when none is installed).
//!
//! `cargo run --release -p fanfare-store --example cursor_marks [marks]`

use std::sync::Arc;
use std::time::Instant;

use fanfare_protocol::{ChannelName, Epoch, StreamPosition, UserId};
use fanfare_store::{
    CursorStore, EmbeddedOptions, EmbeddedStore, MemoryStore, RedisStore, RedisStoreOptions,
};

const USERS: usize = 1_000;
const CHANNELS: usize = 50;
const TASKS: usize = 64;

#[tokio::main]
async fn main() {
    let marks: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    run("memory", Arc::new(MemoryStore::new()), marks).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let embedded = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens");
    run("embedded", Arc::new(embedded), marks).await;
    match fanfare_testkit::RedisServer::start_or_skip() {
        Some(server) => {
            let store = RedisStore::open(&server.url(), RedisStoreOptions::default()).await.expect("redis");
            run("redis", Arc::new(store), marks).await;
        }
        None => println!("redis: skipped (no redis-server)"),
    }
}

async fn run(name: &str, store: Arc<dyn CursorStore>, marks: usize) {
    let users: Arc<Vec<UserId>> = Arc::new((0..USERS).map(|n| UserId::new(format!("user-{n}"))).collect());
    let channels: Arc<Vec<ChannelName>> =
        Arc::new((0..CHANNELS).map(|n| ChannelName::new(&format!("room-{n}")).unwrap()).collect());
    let epoch = Epoch::new("bench");

    let started = Instant::now();
    for n in 0..marks {
        let read = StreamPosition::new(epoch.clone(), n as u64 + 1);
        store.mark_read(&users[n % USERS], &channels[n % CHANNELS], read).await.expect("marked");
    }
    report(name, "one at a time", marks, started);

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (store, users, channels, epoch) = (store.clone(), users.clone(), channels.clone(), epoch.clone());
        tasks.spawn(async move {
            for n in (task..marks).step_by(TASKS) {
                let read = StreamPosition::new(epoch.clone(), (marks + n) as u64 + 1);
                store.mark_read(&users[n % USERS], &channels[n % CHANNELS], read).await.expect("marked");
            }
        });
    }
    tasks.join_all().await;
    report(name, &format!("{TASKS} tasks"), marks, started);
}

fn report(name: &str, how: &str, marks: usize, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!("{name}: {marks} marks, {how}, {seconds:.3} s, {:.0} marks/s", marks as f64 / seconds);
}
