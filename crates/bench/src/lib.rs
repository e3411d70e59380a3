//! `fanfare bench`: load scenarios against a real server — Fanfare over
//! its native protocol, any Pusher-compatible server (Fanfare, Sockudo,
//! Soketi) over Pusher's, or a `nats-server` over NATS-on-WebSocket as a
//! fan-out reference — measuring it from outside, as its clients do.
//!
//! # What it measures
//!
//! | Scenario | Load | Reported |
//! |---|---|---|
//! | `idle` | N connections, each subscribed to a channel, held | server RSS per connection, connections/s, errors |
//! | `fanout` | N subscribers on one channel, publishing at R/s or as fast as they keep up | deliveries/s and per server CPU-second, publish → deliver latency, lost / duplicated / reordered deliveries |
//! | `rooms` | the same over many small channels (default N / 3) | the same |
//! | `reconnect-storm` | fanout; every connection cut at once; clients resume from their position with backoff and jitter while publishing goes on | time until all recovered, missed and duplicated |
//! | `history` | appends as fast as possible (many in flight, so group commit batches them), then range reads | appends/s, reads/s, latencies |
//! | `live` | N viewers on one channel, comments at R/s from publishing connections, reactions from the viewers, a priority publication through the HTTP API every interval | deliveries/s and per server CPU-second, server cores; priority lost and latency; comments delivered + `skipped` against published; reactions sent against aggregated |
//! | `dm` | N users on their feeds, C two-member direct channels (one message each through the HTTP API first), messages at R/s from the users, then `unread` and pipelined `read`s | server memory per channel and per user; messages/s, notices delivered per server CPU-second, message → notice latency, lost / duplicated / reordered notices per feed and per channel; cursor updates/s |
//!
//! # How
//!
//! Each publication carries its channel sequence number and its send time
//! (`payload.rs`), so every subscriber computes latency and checks what it
//! received by itself (`tracker.rs`: by offset for the native protocol, by
//! sequence number for Pusher, in 128 bytes per subscriber). Latencies go
//! into HdrHistograms (`stats.rs`). The server's memory and CPU come from
//! `/proc/<pid>` with `--server-pid` (`proc_stats.rs`).
//!
//! Subscribers are raw WebSockets with small buffers, one task each
//! (`driver/`, `fleet/`); `--workers K` spreads them over K child
//! processes of the program (`workers.rs`). Publications go through the
//! server's HTTP API on a keep-alive pool (over Pusher's, one trigger per
//! publication or `batch_events` of up to 10 with `--pusher-batch`), or
//! from WebSocket clients (`publisher.rs`).
//!
//! Every run is bounded: it stops after its duration or message count and
//! a drain timeout, under a hard timeout; it talks only to 127.0.0.0/8
//! unless allowed otherwise; and it closes every connection it opened.
//!
//! # Layout
//!
//! - `options.rs`: [`BenchOptions`] → checked [`Plan`].
//! - `scenario/`: one file per scenario, from a plan to a [`Report`].
//! - `fleet/`: the subscribers; `publisher.rs`: the publishers.
//! - `tracker.rs`, `live_tracker.rs`: what one subscriber (or viewer) saw.
//! - `tokens.rs`: the JWTs connections send.
//! - `driver/`: native, Pusher and NATS sockets, the HTTP APIs.
//! - `report.rs`: the summary table and the JSON.

mod conversations;
mod dm_report;
mod dm_user;
mod driver;
mod error;
mod error_log;
mod feed_metrics;
mod fleet;
mod live_tracker;
mod options;
mod payload;
mod proc_stats;
mod progress;
mod publisher;
mod report;
mod scenario;
mod server_writes;
mod stats;
mod tokens;
mod tracker;
mod workers;

pub use error::BenchError;
pub use error_log::{ErrorCount, ErrorSummary};
pub use options::{
    BenchOptions, DmOptions, Durability, LiveOptions, Plan, Protocol, PublishFrom, PusherApp, Scenario,
    WorkerProgram,
};
pub use report::{
    ConnectReport, DeliveryReport, DmCatchUp, DmChannels, DmMessages, DmReport, HistoryReport, LiveReport,
    OrdinaryReport, PriorityReport, PublishReport, ReactionReport, RecoveryReport, Report, ServerReport,
    ToolReport, count as thousands,
};
pub use stats::Percentiles;
pub use workers::run_worker;

/// Runs the scenario `options` describe and reports what it measured.
pub async fn run(options: &BenchOptions) -> Result<Report, BenchError> {
    let plan = options.plan().await?;
    let timeout = plan.timeout;
    tokio::time::timeout(timeout, scenario::run(plan)).await.map_err(|_| BenchError::TimedOut(timeout))?
}
