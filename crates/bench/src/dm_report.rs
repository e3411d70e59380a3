//! The `dm` scenario's part of a [`Report`](crate::Report): one section
//! per phase (`scenario/dm.rs`), each figure over its own phase.

use serde::{Deserialize, Serialize};

use crate::report::{Rows, count, percentiles};
use crate::stats::Percentiles;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DmReport {
    /// Users connected, each subscribed to its feed.
    pub users: u64,
    pub channels: DmChannels,
    /// Server memory growth while the users connected, per user.
    pub server_rss_per_user_bytes: Option<f64>,
    pub messages: DmMessages,
    pub catch_up: DmCatchUp,
}

/// Phase 1: one message in every direct channel, through the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DmChannels {
    pub channels: u64,
    /// Direct channels per user (2 × channels / users).
    pub per_user: f64,
    pub created: u64,
    pub failed: u64,
    /// Publishing them (one HTTP request each), and per second.
    pub publish_s: f64,
    pub created_per_second: f64,
    /// Notices the server appended for them (2 per channel), and lost.
    pub notices_appended: u64,
    pub notices_dropped: u64,
    /// From the first message until every notice was appended.
    pub settled_s: f64,
    /// Server memory growth over the phase, per channel: the channel's
    /// message and its two notices included.
    pub server_rss_per_channel_bytes: Option<f64>,
    /// The same over the second half of the channels alone (sampled
    /// halfway, notices settled): the growth per further channel.
    #[serde(default)]
    pub second_half_rss_per_channel_bytes: Option<f64>,
    /// The data bytes of that message and its two notices.
    pub stored_bytes_per_channel: u64,
}

/// Phase 3: users writing, notices flowing, over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DmMessages {
    /// Messages per second asked for, over all users.
    pub rate: f64,
    pub window_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    /// Acknowledged messages per second.
    pub per_second: f64,
    /// From the server's `/metrics`: notices appended, and dropped or
    /// failed, over the phase.
    pub notices_appended: u64,
    pub notices_dropped: u64,
    /// Notices the users received (every acknowledged message owes one).
    pub notices_received: u64,
    pub deliveries_per_second: f64,
    pub deliveries_per_server_cpu_second: Option<f64>,
    pub server_cores: Option<f64>,
    /// Message sent (the text's timestamp) → its notice received.
    pub latency: Percentiles,
    /// Notices without a benchmark payload in their preview.
    pub untimed: u64,
    /// Acknowledged messages without a notice, plus gaps in feed offsets.
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Notices of one channel that skipped or repeated a message offset.
    pub channel_gaps: u64,
    pub channel_repeats: u64,
    /// Every acknowledged message's notice came before the drain timeout.
    pub drained: bool,
    pub reconnects: u64,
}

/// Phase 4: `unread`, then every `read` at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DmCatchUp {
    /// Users whose `unread` was answered, and refused ones.
    pub listed: u64,
    pub list_refused: u64,
    pub list_s: f64,
    pub unread_per_second: f64,
    /// Channels listed with something unread, and the publications unread.
    pub unread_channels: u64,
    pub unread_publications: u64,
    pub reads_sent: u64,
    pub reads_moved: u64,
    pub reads_not_moved: u64,
    pub reads_refused: u64,
    /// From the order to the last answer.
    pub read_s: f64,
    /// Answered `read`s per second.
    pub reads_per_second: f64,
    pub reads_per_server_cpu_second: Option<f64>,
}

impl DmReport {
    /// Every acknowledged message's notice arrived, once, in order.
    pub fn intact(&self) -> bool {
        let m = &self.messages;
        m.lost == 0
            && m.duplicated == 0
            && m.out_of_order == 0
            && m.channel_gaps == 0
            && m.channel_repeats == 0
            && m.notices_received == m.acked
    }

    pub(crate) fn rows(&self) -> Rows {
        let c = &self.channels;
        let m = &self.messages;
        let r = &self.catch_up;
        let bytes = |b: Option<f64>| b.map_or("n/a".to_string(), |b| format!("{b:.0} B"));
        let per_cpu = m
            .deliveries_per_server_cpu_second
            .map_or(String::new(), |v| format!(", {} per server CPU-second", count(v as u64)));
        let cores = m.server_cores.map_or(String::new(), |c| format!(", server {c:.2} cores"));
        let read_cpu = r
            .reads_per_server_cpu_second
            .map_or(String::new(), |v| format!(", {} per server CPU-second", count(v as u64)));
        let verdict = if self.intact() { "intact" } else { "NOT intact" };
        vec![
            (
                "channels",
                format!(
                    "{} created ({} failed, {:.1} per user) in {:.1} s ({}/s), notices appended {} (dropped {}) after {:.1} s",
                    count(c.created),
                    count(c.failed),
                    c.per_user,
                    c.publish_s,
                    count(c.created_per_second as u64),
                    count(c.notices_appended),
                    count(c.notices_dropped),
                    c.settled_s
                ),
            ),
            (
                "memory",
                format!(
                    "server {} per channel ({} over the second half; {} B of it data: its message and two notices), {} per connected user",
                    bytes(c.server_rss_per_channel_bytes),
                    bytes(c.second_half_rss_per_channel_bytes),
                    c.stored_bytes_per_channel,
                    bytes(self.server_rss_per_user_bytes)
                ),
            ),
            (
                "messages",
                format!(
                    "{} acked of {} sent ({} failed) in {:.1} s: {}/s asked {}/s",
                    count(m.acked),
                    count(m.sent),
                    count(m.failed),
                    m.window_s,
                    count(m.per_second as u64),
                    count(m.rate as u64)
                ),
            ),
            (
                "notices",
                format!(
                    "{} received, {} appended ({} dropped); {}/s{per_cpu}{cores}",
                    count(m.notices_received),
                    count(m.notices_appended),
                    count(m.notices_dropped),
                    count(m.deliveries_per_second as u64)
                ),
            ),
            ("notice latency", percentiles(&m.latency)),
            (
                "integrity",
                format!(
                    "{verdict}: lost {}, duplicated {}, out of order {}, channel gaps {}, channel repeats {}, untimed {}, {} reconnects{}",
                    count(m.lost),
                    count(m.duplicated),
                    count(m.out_of_order),
                    count(m.channel_gaps),
                    count(m.channel_repeats),
                    count(m.untimed),
                    count(m.reconnects),
                    if m.drained { "" } else { ", drain timed out" }
                ),
            ),
            (
                "unread",
                format!(
                    "{} users answered ({} refused) in {:.2} s ({}/s): {} channels with {} unread",
                    count(r.listed),
                    count(r.list_refused),
                    r.list_s,
                    count(r.unread_per_second as u64),
                    count(r.unread_channels),
                    count(r.unread_publications)
                ),
            ),
            (
                "reads",
                format!(
                    "{} sent, {} moved, {} not moved, {} refused in {:.2} s: {}/s{read_cpu}",
                    count(r.reads_sent),
                    count(r.reads_moved),
                    count(r.reads_not_moved),
                    count(r.reads_refused),
                    r.read_s,
                    count(r.reads_per_second as u64)
                ),
            ),
        ]
    }
}
