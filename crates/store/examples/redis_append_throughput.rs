//! Appends to 1,000 channels with many appends in flight and prints the
//! rate. Starts a private `redis-server` unless `REDIS_URL` names one:
//! without persistence, or with `REDIS_PERSISTENCE=always` (AOF, fsync
//! before every reply) or `everysec`.
//!
//! `cargo run --release -p fanfare-store --example redis_append_throughput [appends]`

use std::future::IntoFuture;
use std::time::Instant;

use fanfare_protocol::{ChannelName, JsonData};
use fanfare_store::{AppendRequest, HistoryStore, RedisStore, RedisStoreOptions};

const CHANNELS: usize = 1_000;
const IN_FLIGHT: usize = 4_096;

#[tokio::main]
async fn main() {
    let total: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let persistence = match std::env::var("REDIS_PERSISTENCE").as_deref() {
        Ok("always") => fanfare_testkit::Persistence::AofAlways,
        Ok("everysec") => fanfare_testkit::Persistence::AofEverySec,
        _ => fanfare_testkit::Persistence::None,
    };
    let server =
        std::env::var("REDIS_URL").is_err().then(|| fanfare_testkit::RedisServer::start_with(persistence));
    let url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| server.as_ref().map(|s| s.url()).unwrap_or_default());
    let store = RedisStore::open(&url, RedisStoreOptions::default()).await.expect("redis is reachable");
    let channels: Vec<ChannelName> =
        (0..CHANNELS).map(|i| ChannelName::new(&format!("bench:room-{i}")).unwrap()).collect();
    let data =
        JsonData::parse(r#"{"text":"a message of about sixty bytes, like a chat line"}"#.into()).unwrap();

    let started = Instant::now();
    let mut receipts = std::collections::VecDeque::with_capacity(IN_FLIGHT);
    for n in 0..total {
        let request = AppendRequest::new(channels[n % CHANNELS].clone(), data.clone());
        receipts.push_back(store.enqueue(request).await.expect("queued"));
        if receipts.len() == IN_FLIGHT
            && let Some(receipt) = receipts.pop_front()
        {
            receipt.into_future().await.expect("appended");
        }
    }
    for receipt in receipts {
        receipt.into_future().await.expect("appended");
    }
    let elapsed = started.elapsed();
    println!(
        "{total} appends over {CHANNELS} channels, {IN_FLIGHT} in flight: {:.0} appends/s ({elapsed:.2?})",
        total as f64 / elapsed.as_secs_f64()
    );
    store.close().await.expect("closed");
}
