//! This node's numbers for the admin page: a `stats` event of the stream
//! each second, and the recent slow consumers.
//!
//! Rates are differences of the Prometheus counters the hub keeps anyway
//! (`fanfare_publications_total`, `fanfare_deliveries_total`, summed over
//! their labels), read from the recorder's text once a second per open
//! stream: nothing is added to the message path.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::extract::ApiKey;
use crate::gateway::capacity::Capacity;
use crate::server::AppState;

/// `GET /api/admin/slow_consumers`: the connections this node most
/// recently closed as slow consumers, newest first.
pub(super) async fn slow_consumers(_: ApiKey, State(capacity): State<Arc<Capacity>>) -> Json<Value> {
    Json(json!({ "slow_consumers": capacity.slow_consumers.recent() }))
}

/// The body of a `stats` event.
#[derive(Debug, Serialize)]
pub(super) struct Stats {
    /// This node's id in its cluster; `null` on a single node.
    pub node: Option<String>,
    pub time_ms: u64,
    pub connections: usize,
    pub subscriptions: u64,
    pub channels: u64,
    pub publications_per_s: f64,
    pub deliveries_per_s: f64,
    /// Since the process started.
    pub slow_consumer_disconnects: u64,
    /// Publications of the tailed channel this stream dropped because the
    /// reader fell behind (0 without a tail).
    pub tail_dropped: u64,
}

/// The counters a `stats` event reads, summed over their labels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Totals {
    publications: f64,
    deliveries: f64,
    slow_consumers: f64,
    subscriptions: f64,
    channels: f64,
}

impl Totals {
    /// From Prometheus text: every sample of each metric, added up.
    fn read(text: &str) -> Self {
        let mut totals = Totals::default();
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else { continue };
            let slot = match &line[..name_end] {
                "fanfare_publications_total" => &mut totals.publications,
                "fanfare_deliveries_total" => &mut totals.deliveries,
                "fanfare_slow_consumer_disconnects_total" => &mut totals.slow_consumers,
                "fanfare_subscriptions" => &mut totals.subscriptions,
                "fanfare_channels" => &mut totals.channels,
                _ => continue,
            };
            *slot += value;
        }
        totals
    }
}

/// Turns successive readings of the counters into rates per second.
pub(super) struct Sampler {
    last: Totals,
    at: Instant,
}

impl Sampler {
    pub fn new(app: &AppState) -> Self {
        Self { last: Totals::read(&app.telemetry.render()), at: Instant::now() }
    }

    /// The node now, with the rates since the last call (or since `new`).
    pub fn sample(&mut self, app: &AppState, tail_dropped: u64) -> Stats {
        let (now, at) = (Totals::read(&app.telemetry.render()), Instant::now());
        let seconds = at.duration_since(self.at).as_secs_f64().max(1e-3);
        let rate = |now: f64, then: f64| ((now - then).max(0.0) / seconds * 10.0).round() / 10.0;
        let stats = Stats {
            node: app.hub.node_id().map(ToString::to_string),
            time_ms: now_ms(),
            connections: app.hub.connections().len(),
            subscriptions: now.subscriptions.max(0.0) as u64,
            channels: now.channels.max(0.0) as u64,
            publications_per_s: rate(now.publications, self.last.publications),
            deliveries_per_s: rate(now.deliveries, self.last.deliveries),
            slow_consumer_disconnects: now.slow_consumers as u64,
            tail_dropped,
        };
        (self.last, self.at) = (now, at);
        stats
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_every_label_of_a_metric_and_ignore_the_rest() {
        let text = "\
# TYPE fanfare_publications_total counter
fanfare_publications_total{kind=\"durable\",namespace=\"other\"} 5
fanfare_publications_total{kind=\"ephemeral\",namespace=\"other\"} 2
fanfare_publications_total_bogus 100
fanfare_deliveries_total{namespace=\"chat\"} 7
fanfare_slow_consumer_disconnects_total 1
fanfare_subscriptions 3
fanfare_channels 2
fanfare_delivery_latency_seconds_bucket{le=\"0.1\"} 9
";
        let totals = Totals::read(text);
        assert_eq!(
            totals,
            Totals {
                publications: 7.0,
                deliveries: 7.0,
                slow_consumers: 1.0,
                subscriptions: 3.0,
                channels: 2.0
            }
        );
    }
}
