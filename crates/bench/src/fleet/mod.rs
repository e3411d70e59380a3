//! The fleet: every subscriber connection of a run, in this process
//! ([`LocalFleet`]) or spread over worker processes ([`WorkerFleet`]).
//! A scenario drives a fleet through the same steps either way:
//!
//! 1. start: the subscribers connect and subscribe, a bounded number at
//!    a time; [`Fleet::connected`] waits until all have tried;
//! 2. while publishing: [`Fleet::progress`] reads the counters (the
//!    publisher's flow control uses `delivered`), [`Fleet::cut`] drops
//!    every connection at once (they reconnect and resume by themselves);
//! 3. [`Fleet::drain`] tells each subscriber the last publication of its
//!    channel, and `progress().caught_up` counts those that have it all;
//!    `dm`: [`Fleet::chat`] has the users write, [`Fleet::list_unread`]
//!    and [`Fleet::mark_read`] have them catch up;
//! 4. [`Fleet::stop`] closes the connections and sums what each saw.

mod local;
mod subscriber;

use serde::{Deserialize, Serialize};

pub(crate) use self::local::LocalFleet;
use crate::dm_user::DmTally;
use crate::error_log::ErrorSummary;
use crate::live_tracker::LiveTally;
use crate::proc_stats::ProcSample;
use crate::tracker::Integrity;
use crate::workers::WorkerFleet;

/// Counters of a fleet while it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetProgress {
    pub connected: u64,
    pub connect_failed: u64,
    pub delivered: u64,
    pub caught_up: u64,
    /// Subscribers that resumed after a cut and received the whole gap.
    pub recovered: u64,
    pub reconnects: u64,
    pub errors: u64,
    /// `dm`: messages the users' publishes had acknowledged, or refused.
    #[serde(default)]
    pub messages_acked: u64,
    #[serde(default)]
    pub messages_failed: u64,
    /// `dm`: users whose `unread` was answered (or refused).
    #[serde(default)]
    pub listed: u64,
    /// `dm`: users that sent their `read`s, the reads sent and answered.
    #[serde(default)]
    pub readers: u64,
    #[serde(default)]
    pub reads_sent: u64,
    #[serde(default)]
    pub reads_answered: u64,
}

impl FleetProgress {
    pub fn add(&mut self, other: &FleetProgress) {
        self.connected += other.connected;
        self.connect_failed += other.connect_failed;
        self.delivered += other.delivered;
        self.caught_up += other.caught_up;
        self.recovered += other.recovered;
        self.reconnects += other.reconnects;
        self.errors += other.errors;
        self.messages_acked += other.messages_acked;
        self.messages_failed += other.messages_failed;
        self.listed += other.listed;
        self.readers += other.readers;
        self.reads_sent += other.reads_sent;
        self.reads_answered += other.reads_answered;
    }
}

/// How opening the connections went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectSummary {
    pub attempted: u64,
    pub connected: u64,
    pub failed: u64,
    /// From the first attempt to the last answer.
    pub elapsed_s: f64,
    /// This (worker) process's resident memory before and after.
    pub tool_rss_before_kib: u64,
    pub tool_rss_after_kib: u64,
}

impl ConnectSummary {
    pub fn add(&mut self, other: &ConnectSummary) {
        self.attempted += other.attempted;
        self.connected += other.connected;
        self.failed += other.failed;
        self.elapsed_s = self.elapsed_s.max(other.elapsed_s);
        self.tool_rss_before_kib += other.tool_rss_before_kib;
        self.tool_rss_after_kib += other.tool_rss_after_kib;
    }
}

/// What the subscribers saw, summed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FleetResult {
    pub integrity: Integrity,
    /// Publish → deliver latency, as histogram buckets (µs, count).
    pub latency: Vec<(u64, u64)>,
    /// `live`: the same for the priority lane alone.
    pub priority_latency: Vec<(u64, u64)>,
    /// `live`: what the viewers saw.
    pub live: LiveTally,
    /// `dm`: what the users did and saw.
    #[serde(default)]
    pub dm: DmTally,
    /// Cut → resumed with the whole gap, as histogram buckets (µs, count).
    pub recovery: Vec<(u64, u64)>,
    pub recovered_false: u64,
    pub reconnects: u64,
    pub reconnect_attempts: u64,
    /// Deliveries whose data was not a benchmark payload.
    pub foreign: u64,
    pub errors: ErrorSummary,
    /// The (worker) process at the end.
    pub tool: ProcSample,
}

impl FleetResult {
    pub fn add(&mut self, other: FleetResult) {
        use crate::stats::Latency;
        let merge = |a: &[(u64, u64)], b: &[(u64, u64)]| {
            let mut merged = Latency::from_buckets(a);
            merged.merge(&Latency::from_buckets(b));
            merged.to_buckets()
        };
        self.integrity.add(&other.integrity);
        self.latency = merge(&self.latency, &other.latency);
        self.priority_latency = merge(&self.priority_latency, &other.priority_latency);
        self.live.add(&other.live);
        self.dm.add(&other.dm);
        self.recovery = merge(&self.recovery, &other.recovery);
        self.recovered_false += other.recovered_false;
        self.reconnects += other.reconnects;
        self.reconnect_attempts += other.reconnect_attempts;
        self.foreign += other.foreign;
        crate::error_log::merge(&mut self.errors, &other.errors);
        self.tool.rss_kib += other.tool.rss_kib;
        self.tool.cpu_seconds += other.tool.cpu_seconds;
    }
}

/// Subscribers here or in worker processes; the same steps either way.
pub(crate) enum Fleet {
    Local(LocalFleet),
    Workers(WorkerFleet),
}

impl Fleet {
    pub(crate) async fn connected(&mut self) -> Result<ConnectSummary, crate::BenchError> {
        match self {
            Fleet::Local(fleet) => Ok(fleet.connected().await),
            Fleet::Workers(fleet) => fleet.connected().await,
        }
    }

    pub(crate) fn progress(&self) -> FleetProgress {
        match self {
            Fleet::Local(fleet) => fleet.progress(),
            Fleet::Workers(fleet) => fleet.progress(),
        }
    }

    pub(crate) fn cut(&self) {
        match self {
            Fleet::Local(fleet) => fleet.cut(),
            Fleet::Workers(fleet) => fleet.cut(),
        }
    }

    /// `live`: viewers send reactions while `on`.
    pub(crate) fn react(&self, on: bool) {
        match self {
            Fleet::Local(fleet) => fleet.react(on),
            Fleet::Workers(fleet) => fleet.react(on),
        }
    }

    /// `dm`: users write messages while `on`.
    pub(crate) fn chat(&self, on: bool) {
        match self {
            Fleet::Local(fleet) => fleet.chat(on),
            Fleet::Workers(fleet) => fleet.chat(on),
        }
    }

    /// `dm`: every user asks `unread`.
    pub(crate) fn list_unread(&self) {
        match self {
            Fleet::Local(fleet) => fleet.list_unread(),
            Fleet::Workers(fleet) => fleet.list_unread(),
        }
    }

    /// `dm`: every user marks read what `unread` listed.
    pub(crate) fn mark_read(&self) {
        match self {
            Fleet::Local(fleet) => fleet.mark_read(),
            Fleet::Workers(fleet) => fleet.mark_read(),
        }
    }

    /// `targets[c]`: the last key published in channel `c` (offset or seq).
    pub(crate) fn drain(&self, targets: &[u64]) {
        match self {
            Fleet::Local(fleet) => fleet.drain(targets),
            Fleet::Workers(fleet) => fleet.drain(targets),
        }
    }

    pub(crate) async fn stop(self) -> Result<FleetResult, crate::BenchError> {
        match self {
            Fleet::Local(fleet) => Ok(fleet.stop().await),
            Fleet::Workers(fleet) => fleet.stop().await,
        }
    }

    /// A cheap reader of the progress for other tasks (the publisher's
    /// flow control, the progress line).
    pub(crate) fn gauge(&self) -> ProgressGauge {
        match self {
            Fleet::Local(fleet) => fleet.gauge(),
            Fleet::Workers(fleet) => fleet.gauge(),
        }
    }
}

/// Reads a fleet's progress from anywhere.
pub(crate) type ProgressGauge = std::sync::Arc<dyn Fn() -> FleetProgress + Send + Sync>;
