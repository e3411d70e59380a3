//! Prometheus metrics: one process-wide recorder, installed before the hub
//! registers its handles, rendered at `/metrics`.

pub mod sampled;

use std::sync::OnceLock;

use metrics::counter;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of the publish → fan-out latency histogram, in seconds.
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The histograms of seconds on the message path, which share
/// [`LATENCY_BUCKETS`].
const LATENCY_HISTOGRAMS: &[&str] = &[
    "fanfare_publish_fanout_seconds",
    "fanfare_delivery_latency_seconds",
    "fanfare_redis_roundtrip_seconds",
    "fanfare_history_append_seconds",
    "fanfare_history_read_seconds",
];

/// Buckets of the connection duration histogram, in seconds: from a
/// second to a day.
const DURATION_BUCKETS: &[f64] = &[1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 4.0 * 3600.0, 24.0 * 3600.0];

/// Buckets of the pre-publish hook's call time, in seconds: up to the
/// longest hook timeout accepted (10 s).
const HOOK_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

#[derive(Clone)]
pub struct ServerMetrics {
    handle: PrometheusHandle,
}

impl ServerMetrics {
    /// Installs the recorder on first use (every server in the process
    /// shares it) and registers the server's own metrics.
    pub fn install() -> Self {
        let handle = RECORDER.get_or_init(|| {
            let buckets = LATENCY_HISTOGRAMS.iter().map(|name| (*name, LATENCY_BUCKETS)).chain([
                ("fanfare_connection_duration_seconds", DURATION_BUCKETS),
                ("fanfare_content_hook_seconds", HOOK_BUCKETS),
            ]);
            let recorder = buckets
                .fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
                    builder
                        .set_buckets_for_metric(Matcher::Full(name.into()), buckets)
                        .expect("the bucket list is not empty")
                })
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            spawn_upkeep(handle.clone());
            handle
        });
        // Counted by the gateway's sockets (`gateway/socket.rs`); registered
        // here so they show from the start.
        counter!("fanfare_ws_writes_total").increment(0);
        counter!("fanfare_ws_frames_written_total").increment(0);
        metrics::gauge!("fanfare_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        for protocol in ["native", "pusher"] {
            counter!("fanfare_connections_opened_total", "protocol" => protocol).increment(0);
        }
        Self { handle: handle.clone() }
    }

    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// Histograms need periodic upkeep to drain their buffers.
fn spawn_upkeep(handle: PrometheusHandle) {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                handle.run_upkeep();
            }
        })
        .expect("spawning a thread");
}
