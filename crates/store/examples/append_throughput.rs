//! Measures the embedded store's append throughput with fsync group commit.
//!
//! 200,000 appends of ~200-byte JSON across 1,000 channels, from one task
//! per channel (as the hub publishes: one ordered pipeline per channel), each
//! keeping up to 32 appends in flight. Every append is acknowledged only
//! after its group commit's fsync.
//!
//! ```text
//! cargo run -p fanfare-store --release --example append_throughput [fsync|buffered] [in-flight per channel]
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use fanfare_protocol::{ChannelName, JsonData};
use fanfare_store::{AppendRequest, Durability, EmbeddedOptions, EmbeddedStore, HistoryStore};

const APPENDS: usize = 200_000;
const CHANNELS: usize = 1_000;
/// The default for appends in flight per channel: a burst on a busy channel.
/// (The hub itself allows up to 4,096 in flight per pipeline, across all of
/// that pipeline's channels.)
const IN_FLIGHT_PER_CHANNEL: usize = 32;

#[tokio::main]
async fn main() {
    let durability = match std::env::args().nth(1).as_deref() {
        Some("buffered") => Durability::Buffered,
        _ => Durability::Fsync,
    };
    let in_flight =
        std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(IN_FLIGHT_PER_CHANNEL).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store =
        Arc::new(EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens"));
    let data = JsonData::parse(format!(r#"{{"user":"alice","text":"{}","n":1}}"#, "x".repeat(160)))
        .expect("valid JSON");

    let started = Instant::now();
    let tasks: Vec<_> = (0..CHANNELS)
        .map(|index| {
            let channel = ChannelName::new(&format!("bench:{index}")).expect("valid name");
            let count = APPENDS / CHANNELS;
            let pipeline =
                publish_to_one_channel(store.clone(), channel, data.clone(), count, in_flight, durability);
            tokio::spawn(pipeline)
        })
        .collect();
    for task in tasks {
        task.await.expect("publisher task");
    }
    let elapsed = started.elapsed();

    let stats = store.stats();
    let per_second = stats.appended as f64 / elapsed.as_secs_f64();
    println!(
        "{} appends ({durability:?}, {in_flight} in flight per channel) across {CHANNELS} channels \
         in {:.2} s: {per_second:.0} appends/s; \
         {} group commits, {} fsyncs, {:.0} appends per commit on average",
        stats.appended,
        elapsed.as_secs_f64(),
        stats.commits,
        stats.fsyncs,
        stats.appended as f64 / stats.commits.max(1) as f64,
    );
}

/// One channel's ordered pipeline: enqueue in order, await receipts oldest
/// first, never more than `max_in_flight` outstanding.
async fn publish_to_one_channel(
    store: Arc<EmbeddedStore>,
    channel: ChannelName,
    data: JsonData,
    count: usize,
    max_in_flight: usize,
    durability: Durability,
) {
    let mut in_flight = VecDeque::with_capacity(max_in_flight);
    for _ in 0..count {
        if in_flight.len() == max_in_flight {
            let receipt: fanfare_store::AppendReceipt = in_flight.pop_front().expect("non-empty");
            receipt.await.expect("append succeeds");
        }
        let request = AppendRequest { durability, ..AppendRequest::new(channel.clone(), data.clone()) };
        in_flight.push_back(store.enqueue(request).await.expect("store open"));
    }
    for receipt in in_flight {
        receipt.await.expect("append succeeds");
    }
}
