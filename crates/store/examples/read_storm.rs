//! Measures a reconnect storm against the embedded store: 15,000 clients
//! resubscribing at once, each reading its channel's position and its
//! last 50 publications, spread over 1,000 channels of 200 publications.
//!
//! ```text
//! cargo run -p fanfare-store --release --example read_storm
//! ```

use std::sync::Arc;
use std::time::Instant;

use fanfare_protocol::{ChannelName, JsonData};
use fanfare_store::{
    AppendRequest, Durability, EmbeddedOptions, EmbeddedStore, HistoryQuery, HistoryStore, Retention,
};

const CHANNELS: usize = 1_000;
const PER_CHANNEL: usize = 200;
const CLIENTS: usize = 15_000;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store =
        Arc::new(EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens"));
    let channels: Vec<ChannelName> =
        (0..CHANNELS).map(|i| ChannelName::new(&format!("storm:{i}")).expect("valid name")).collect();
    fill(&store, &channels).await;

    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (store, channel) = (store.clone(), channels[client % CHANNELS].clone());
            tokio::spawn(async move {
                let position = store.position(&channel).await.expect("position");
                let query = HistoryQuery {
                    since: Some(position.offset.saturating_sub(50)),
                    limit: 50,
                    reverse: false,
                    retention: Retention::default(),
                };
                let page = store.read(&channel, query).await.expect("read");
                assert_eq!(page.publications.len(), 50);
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client task");
    }
    let elapsed = started.elapsed();
    println!(
        "{CLIENTS} clients read position + 50 publications in {:.3} s: {:.0} resubscribes/s",
        elapsed.as_secs_f64(),
        CLIENTS as f64 / elapsed.as_secs_f64()
    );
}

async fn fill(store: &EmbeddedStore, channels: &[ChannelName]) {
    let data = JsonData::parse(format!(r#"{{"text":"{}"}}"#, "x".repeat(180))).expect("valid JSON");
    let mut receipts = Vec::with_capacity(CHANNELS * PER_CHANNEL);
    for _ in 0..PER_CHANNEL {
        for channel in channels {
            let request = AppendRequest {
                durability: Durability::Buffered,
                ..AppendRequest::new(channel.clone(), data.clone())
            };
            receipts.push(store.enqueue(request).await.expect("store open"));
        }
    }
    for receipt in receipts {
        receipt.await.expect("append succeeds");
    }
}
