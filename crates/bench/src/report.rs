//! The result of a run: one [`Report`], printed as a summary table
//! (`Display`) or as JSON (`serde`), the same numbers either way.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::dm_report::{DmCatchUp, DmChannels, DmMessages, DmReport};
use crate::error_log::ErrorSummary;
use crate::options::{Protocol, Scenario};
use crate::stats::Percentiles;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: Scenario,
    pub protocol: Protocol,
    pub url: String,
    pub connections: usize,
    pub channels: usize,
    pub workers: usize,
    /// Publications per second asked for; 0 = as fast as possible.
    pub rate: f64,
    pub size: usize,
    /// Pusher `batch_events` of this many publications (`--pusher-batch`);
    /// absent: one publish request per publication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher_batch: Option<usize>,
    pub elapsed_s: f64,
    pub connect: Option<ConnectReport>,
    /// With `--server-pid`.
    pub server: Option<ServerReport>,
    pub tool: ToolReport,
    pub publish: Option<PublishReport>,
    pub delivery: Option<DeliveryReport>,
    pub recovery: Option<RecoveryReport>,
    pub history: Option<HistoryReport>,
    /// The `live` scenario's room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveReport>,
    /// The `dm` scenario's messenger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm: Option<DmReport>,
    pub errors: ErrorSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectReport {
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    pub elapsed_s: f64,
    /// Connections opened and subscribed per second.
    pub per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    pub pid: u32,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// (after − before) / connections opened.
    pub rss_per_connection_kib: Option<f64>,
    /// CPU (user + system) the server used while publications flowed.
    pub cpu_seconds: f64,
    /// Frames per socket write while publishing, from the server's
    /// `/metrics` (Fanfare's `fanfare_ws_*` counters; absent for others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_per_write: Option<f64>,
}

impl ServerReport {
    /// The server `pid` between two samples: its memory before and after,
    /// the CPU it used in between.
    pub fn between(
        pid: u32,
        before: crate::proc_stats::ProcSample,
        after: crate::proc_stats::ProcSample,
    ) -> Self {
        Self {
            pid,
            rss_before_kib: before.rss_kib,
            rss_after_kib: after.rss_kib,
            rss_per_connection_kib: None,
            cpu_seconds: after.cpu_seconds - before.cpu_seconds,
            frames_per_write: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolReport {
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub rss_per_connection_kib: Option<f64>,
    /// CPU of this process and its workers over the whole run.
    pub cpu_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishReport {
    pub attempted: u64,
    pub acked: u64,
    pub failed: u64,
    pub elapsed_s: f64,
    pub per_second: f64,
    /// Request → acknowledgement.
    pub ack_latency: Percentiles,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub subscribers: u64,
    /// Deliveries the acknowledged publications owed the subscribers.
    pub expected: u64,
    pub delivered: u64,
    /// From the first publish until every subscriber had everything (or
    /// the drain timeout).
    pub elapsed_s: f64,
    pub per_second: f64,
    pub per_server_cpu_second: Option<f64>,
    /// Publish (the payload's timestamp) → delivered.
    pub latency: Percentiles,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Subscribers that had every publication of their channel in the end.
    pub caught_up: u64,
    pub reconnects: u64,
    /// Deliveries whose data was not a benchmark payload.
    pub foreign: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryReport {
    pub clients: u64,
    /// Clients resubscribed with the whole gap replayed.
    pub recovered: u64,
    /// Cut → the last client recovered.
    pub all_recovered_after_ms: Option<f64>,
    /// Cut → recovered, per client.
    pub time_to_recover: Percentiles,
    /// Resubscribes answered `recovered: false` (their gap is lost).
    pub recovered_false: u64,
    pub reconnect_attempts: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryReport {
    /// `http` (through a server) or `embedded` (the store in process).
    pub mode: String,
    pub appends: u64,
    pub append_failures: u64,
    pub appends_per_second: f64,
    pub append_latency: Percentiles,
    pub reads: u64,
    pub read_failures: u64,
    pub reads_per_second: f64,
    pub publications_read: u64,
    pub publications_read_per_second: f64,
    pub read_latency: Percentiles,
}

/// The `live` scenario: deliveries over the publishing window, and each
/// lane checked on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveReport {
    pub channel: String,
    /// Viewers subscribed.
    pub viewers: u64,
    /// Asked for: comments and reactions per second, the priority interval.
    pub comment_rate: f64,
    pub reaction_rate: f64,
    pub priority_interval_ms: u64,
    /// The publishing window, over which deliveries and CPU are counted.
    pub window_s: f64,
    /// Publications received by viewers in the window (both lanes and
    /// reaction aggregates).
    pub deliveries: u64,
    pub deliveries_per_second: f64,
    pub deliveries_per_server_cpu_second: Option<f64>,
    /// The server's CPU-seconds per wall-clock second of the window.
    pub server_cores: Option<f64>,
    /// Publish (the payload's timestamp) → delivered, every publication
    /// of both lanes.
    pub latency: Percentiles,
    pub priority: PriorityReport,
    pub ordinary: OrdinaryReport,
    pub reactions: ReactionReport,
    /// Viewers that reached the last offset in the end.
    pub caught_up: u64,
    pub reconnects: u64,
}

/// Publications through the HTTP API (the server: the priority lane).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorityReport {
    /// Acknowledged by the API.
    pub sent: u64,
    pub failed: u64,
    /// Received, summed over viewers (distinct by sequence number).
    pub received: u64,
    pub received_by_every_viewer: bool,
    /// viewers × sent − received.
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Deliveries the server marked `"priority":true`.
    pub flagged: u64,
    pub latency: Percentiles,
    /// Request → acknowledgement.
    pub ack_latency: Percentiles,
}

/// Comments from publishing connections (the ordinary lane).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdinaryReport {
    /// Acknowledged, the closing comment included.
    pub published: u64,
    pub failed: u64,
    /// Received, summed over viewers.
    pub delivered: u64,
    /// Per viewer, over the window.
    pub per_viewer_per_second_mean: f64,
    pub per_viewer_per_second_max: f64,
    /// The most one viewer received in one wall-clock second.
    pub busiest_second_max: u64,
    /// The `skipped` counts, summed over viewers.
    pub skipped: u64,
    /// Per viewer: delivered + skipped, the smallest and the largest.
    pub accounted_min: u64,
    pub accounted_max: u64,
    /// Every viewer's delivered + skipped equals `published`.
    pub adds_up: bool,
    /// Offsets missing that no `skipped` accounted for (all viewers).
    pub unreported: u64,
    /// `skipped` beyond the offset gap it came with.
    pub overreported: u64,
    /// Deliveries at or below an offset already received.
    pub repeated: u64,
    /// Comments the server marked as priority (must be 0).
    pub flagged_priority: u64,
}

/// `react` commands from the viewers and the aggregates they received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactionReport {
    pub sent: u64,
    pub acked: u64,
    pub refused: u64,
    /// Aggregate pushes received, summed over viewers.
    pub aggregates: u64,
    /// The sum of the aggregates' counts one viewer received.
    pub received_per_viewer_min: u64,
    pub received_per_viewer_max: u64,
    pub received_per_viewer_mean: f64,
}

impl LiveReport {
    /// What the issue asks of a shaped room: no priority publication
    /// lost, and every viewer's comments accounted for.
    pub fn consistent(&self) -> bool {
        self.priority.lost == 0
            && self.priority.received_by_every_viewer
            && self.priority.duplicated == 0
            && self.priority.out_of_order == 0
            && self.ordinary.adds_up
            && self.ordinary.unreported == 0
            && self.ordinary.overreported == 0
            && self.ordinary.repeated == 0
    }

    fn rows(&self) -> Rows {
        let per_cpu = self
            .deliveries_per_server_cpu_second
            .map_or(String::new(), |v| format!(", {} per server CPU-second", count(v as u64)));
        let cores = self.server_cores.map_or(String::new(), |c| format!(", server {c:.2} cores"));
        let p = &self.priority;
        let o = &self.ordinary;
        let r = &self.reactions;
        let every =
            if p.received_by_every_viewer { "every viewer got all" } else { "NOT every viewer got all" };
        vec![
            (
                "room",
                format!(
                    "{} viewers on {}: comments {}/s, reactions {}/s, priority every {} ms",
                    count(self.viewers),
                    self.channel,
                    count(self.comment_rate as u64),
                    count(self.reaction_rate as u64),
                    self.priority_interval_ms
                ),
            ),
            (
                "deliveries",
                format!(
                    "{} in {:.1} s ({}/s{per_cpu}{cores})",
                    count(self.deliveries),
                    self.window_s,
                    count(self.deliveries_per_second as u64)
                ),
            ),
            ("latency", percentiles(&self.latency)),
            (
                "priority",
                format!(
                    "{} sent ({} failed), {} received, {every}; lost {}, duplicated {}, out of order {}, {} flagged",
                    count(p.sent),
                    count(p.failed),
                    count(p.received),
                    count(p.lost),
                    count(p.duplicated),
                    count(p.out_of_order),
                    count(p.flagged)
                ),
            ),
            ("priority latency", percentiles(&p.latency)),
            (
                "comments",
                format!(
                    "{} published ({} failed); per viewer {:.1}/s mean, {:.1}/s max, busiest second {}",
                    count(o.published),
                    count(o.failed),
                    o.per_viewer_per_second_mean,
                    o.per_viewer_per_second_max,
                    count(o.busiest_second_max)
                ),
            ),
            (
                "accounted",
                format!(
                    "delivered {} + skipped {}; per viewer {}–{} of {} ({}); unreported {}, overreported {}, repeated {}, flagged priority {}",
                    count(o.delivered),
                    count(o.skipped),
                    count(o.accounted_min),
                    count(o.accounted_max),
                    count(o.published),
                    if o.adds_up { "adds up" } else { "does NOT add up" },
                    count(o.unreported),
                    count(o.overreported),
                    count(o.repeated),
                    count(o.flagged_priority)
                ),
            ),
            (
                "reactions",
                format!(
                    "{} sent, {} acked, {} refused; {} aggregates; per viewer {}–{} counted (mean {:.0})",
                    count(r.sent),
                    count(r.acked),
                    count(r.refused),
                    count(r.aggregates),
                    count(r.received_per_viewer_min),
                    count(r.received_per_viewer_max),
                    r.received_per_viewer_mean
                ),
            ),
            (
                "viewers",
                format!("{} caught up, {} reconnects", count(self.caught_up), count(self.reconnects)),
            ),
        ]
    }
}

impl Report {
    /// No publication lost, duplicated or reordered.
    pub fn integrity_ok(&self) -> bool {
        self.delivery.as_ref().is_none_or(|d| d.lost == 0 && d.duplicated == 0 && d.out_of_order == 0)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialize")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = if self.rate > 0.0 { format!("{}/s", count(self.rate as u64)) } else { "max".into() };
        let workers = if self.workers > 1 { format!(", {} workers", self.workers) } else { String::new() };
        let batch = self.pusher_batch.map_or(String::new(), |n| format!(", batches of {n}"));
        writeln!(
            f,
            "fanfare bench {} — {} protocol, {} connections, {} channels, rate {rate}{batch}, {} B, {:.1} s, {}{workers}",
            self.scenario,
            self.protocol,
            count(self.connections as u64),
            count(self.channels as u64),
            self.size,
            self.elapsed_s,
            self.url,
        )?;
        let mut rows = Vec::new();
        rows.extend(self.connect.iter().flat_map(ConnectReport::rows));
        rows.extend(self.server.iter().flat_map(ServerReport::rows));
        rows.extend(self.tool.rows());
        rows.extend(self.publish.iter().flat_map(PublishReport::rows));
        rows.extend(self.delivery.iter().flat_map(DeliveryReport::rows));
        rows.extend(self.recovery.iter().flat_map(RecoveryReport::rows));
        rows.extend(self.history.iter().flat_map(HistoryReport::rows));
        rows.extend(self.live.iter().flat_map(LiveReport::rows));
        rows.extend(self.dm.iter().flat_map(DmReport::rows));
        if self.errors.is_empty() {
            rows.push(("errors", "none".to_string()));
        }
        for (kind, e) in &self.errors {
            rows.push(("errors", format!("{} {kind} (e.g. {})", count(e.count), e.samples.join("; "))));
        }
        rows.iter().try_for_each(|(name, value)| writeln!(f, "  {name:<16} {value}"))
    }
}

/// The summary table's rows of each section: (name, value).
pub(crate) type Rows = Vec<(&'static str, String)>;

impl ConnectReport {
    fn rows(&self) -> Rows {
        let (connected, attempted) = (count(self.connected), count(self.attempted));
        let rate = count(self.per_second as u64);
        let line = format!(
            "{connected}/{attempted} subscribed in {:.2} s ({rate}/s), {} failed",
            self.elapsed_s,
            count(self.failed)
        );
        vec![("connections", line)]
    }
}

impl ServerReport {
    fn rows(&self) -> Rows {
        let per = per_connection(self.rss_per_connection_kib);
        let (before, after) = (mib(self.rss_before_kib), mib(self.rss_after_kib));
        let frames = self.frames_per_write.map_or(String::new(), |f| format!(", {f:.1} frames per write"));
        vec![(
            "server",
            format!("pid {}: RSS {before} → {after}{per}, CPU {:.2} s{frames}", self.pid, self.cpu_seconds),
        )]
    }
}

impl ToolReport {
    fn rows(&self) -> Rows {
        let per = per_connection(self.rss_per_connection_kib);
        let (before, after) = (mib(self.rss_before_kib), mib(self.rss_after_kib));
        vec![("tool", format!("RSS {before} → {after}{per}, CPU {:.2} s", self.cpu_seconds))]
    }
}

impl PublishReport {
    fn rows(&self) -> Rows {
        let (acked, attempted, rate) =
            (count(self.acked), count(self.attempted), count(self.per_second as u64));
        let line = format!(
            "{acked} acked of {attempted} in {:.1} s ({rate}/s), {} failed",
            self.elapsed_s,
            count(self.failed)
        );
        vec![("published", line), ("ack latency", percentiles(&self.ack_latency))]
    }
}

impl DeliveryReport {
    fn rows(&self) -> Rows {
        let per_cpu = self
            .per_server_cpu_second
            .map_or(String::new(), |v| format!("; {} per server CPU-second", count(v as u64)));
        let (delivered, expected, subscribers) =
            (count(self.delivered), count(self.expected), count(self.subscribers));
        let rate = count(self.per_second as u64);
        let foreign =
            if self.foreign > 0 { format!(", {} foreign", count(self.foreign)) } else { String::new() };
        vec![
            (
                "delivered",
                format!(
                    "{delivered} of {expected} to {subscribers} subscribers in {:.1} s ({rate}/s{per_cpu})",
                    self.elapsed_s
                ),
            ),
            ("latency", percentiles(&self.latency)),
            (
                "integrity",
                format!(
                    "lost {}, duplicated {}, out of order {}; {} caught up, {} reconnects{foreign}",
                    count(self.lost),
                    count(self.duplicated),
                    count(self.out_of_order),
                    count(self.caught_up),
                    count(self.reconnects),
                ),
            ),
        ]
    }
}

impl RecoveryReport {
    fn rows(&self) -> Rows {
        let all =
            self.all_recovered_after_ms.map_or("not all".to_string(), |ms| format!("all after {ms:.0} ms"));
        let (recovered, clients) = (count(self.recovered), count(self.clients));
        let line = format!(
            "{recovered}/{clients} recovered ({all}), {} recovered:false, {} attempts",
            count(self.recovered_false),
            count(self.reconnect_attempts)
        );
        vec![("recovery", line), ("time to recover", percentiles(&self.time_to_recover))]
    }
}

impl HistoryReport {
    fn rows(&self) -> Rows {
        let appends = format!(
            "{} ({}/s, {} failed) [{}]",
            count(self.appends),
            count(self.appends_per_second as u64),
            count(self.append_failures),
            self.mode
        );
        let reads = format!(
            "{} ({}/s, {} publications/s, {} failed)",
            count(self.reads),
            count(self.reads_per_second as u64),
            count(self.publications_read_per_second as u64),
            count(self.read_failures)
        );
        vec![
            ("appends", appends),
            ("append latency", percentiles(&self.append_latency)),
            ("range reads", reads),
            ("read latency", percentiles(&self.read_latency)),
        ]
    }
}

fn per_connection(kib: Option<f64>) -> String {
    kib.map_or(String::new(), |k| format!(" ({k:.1} KiB/connection)"))
}

pub(crate) fn percentiles(p: &Percentiles) -> String {
    if p.count == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
        micros(p.p50_us),
        micros(p.p90_us),
        micros(p.p99_us),
        micros(p.p999_us),
        micros(p.max_us),
        count(p.count)
    )
}

/// `1234567` → `1,234,567` (also the capacity planner's).
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds in the unit that reads best.
pub(crate) fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(micros(999), "999 µs");
        assert_eq!(micros(1_500), "1.50 ms");
        assert_eq!(micros(2_500_000), "2.50 s");
        assert_eq!(mib(2048), "2.0 MiB");
    }

    fn sample() -> Report {
        Report {
            scenario: Scenario::Fanout,
            protocol: Protocol::Native,
            url: "http://127.0.0.1:6001".into(),
            connections: 1000,
            channels: 1,
            workers: 1,
            rate: 0.0,
            size: 100,
            pusher_batch: None,
            elapsed_s: 10.0,
            connect: Some(ConnectReport {
                attempted: 1000,
                connected: 1000,
                failed: 0,
                elapsed_s: 0.5,
                per_second: 2000.0,
            }),
            server: None,
            tool: ToolReport {
                rss_before_kib: 1000,
                rss_after_kib: 9000,
                rss_per_connection_kib: Some(8.0),
                cpu_seconds: 1.0,
            },
            publish: None,
            delivery: Some(DeliveryReport {
                subscribers: 1000,
                expected: 5000,
                delivered: 5000,
                elapsed_s: 1.0,
                per_second: 5000.0,
                per_server_cpu_second: None,
                latency: Percentiles { count: 5000, p50_us: 900, p99_us: 2_000, ..Percentiles::default() },
                lost: 0,
                duplicated: 0,
                out_of_order: 0,
                caught_up: 1000,
                reconnects: 0,
                foreign: 0,
            }),
            recovery: None,
            history: None,
            live: None,
            dm: None,
            errors: ErrorSummary::new(),
        }
    }

    #[test]
    fn the_table_shows_the_numbers_and_json_round_trips() {
        let report = sample();
        let table = report.to_string();
        for expected in
            ["fanfare bench fanout", "1,000/1,000 subscribed", "5,000 of 5,000", "p50 900 µs", "lost 0"]
        {
            assert!(table.contains(expected), "{expected:?} missing in\n{table}");
        }
        let back: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back, report);
        assert!(report.integrity_ok());
    }

    #[test]
    fn a_batched_run_says_its_batch_size_and_older_reports_still_read() {
        let mut report = sample();
        report.protocol = Protocol::Pusher;
        report.pusher_batch = Some(10);
        assert!(report.to_string().contains("rate max, batches of 10, 100 B"), "{report}");
        let json = report.to_json();
        assert!(json.contains("\"pusher_batch\": 10"), "{json}");
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);

        let unbatched = sample().to_json();
        assert!(!unbatched.contains("pusher_batch"), "no batch, no field");
        assert_eq!(serde_json::from_str::<Report>(&unbatched).unwrap().pusher_batch, None);
    }

    #[test]
    fn any_loss_duplicate_or_reordering_fails_integrity() {
        let changes: [fn(&mut DeliveryReport); 3] =
            [|d| d.lost = 1, |d| d.duplicated = 1, |d| d.out_of_order = 1];
        for change in changes {
            let mut report = sample();
            change(report.delivery.as_mut().unwrap());
            assert!(!report.integrity_ok());
        }
    }
}
