//! From a workload and per-node figures to a fleet: nodes per region and
//! what each needs at the peak.
//!
//! Every region is planned alike: connections split evenly over the
//! regions; a live room's publications reach every region (each region's
//! viewers need them), a room's or a conversation's stay in one.

use serde::Serialize;

use crate::figures::NodeFigures;
use crate::workload::{range, whole};
use crate::{CapacityError, Shape, Workload};

/// The machines the fleet runs on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NodeSpec {
    pub cores: f64,
    /// Connections one node may hold (`limits.max_connections`).
    pub max_connections: f64,
    /// Share of CPU and connections kept free at the peak, 0 to 0.9.
    pub headroom: f64,
    /// Fewest nodes per region, for availability.
    pub min_nodes: f64,
}

/// `--cores-per-node`, `--max-connections-per-node`, `--headroom-percent`,
/// `--min-nodes`, as given.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeInputs {
    pub cores: Option<f64>,
    pub max_connections: Option<f64>,
    pub headroom_percent: Option<f64>,
    pub min_nodes: Option<f64>,
}

impl NodeSpec {
    pub fn from_inputs(inputs: &NodeInputs) -> Result<Self, CapacityError> {
        Ok(Self {
            cores: whole("cores-per-node", inputs.cores, 4.0, 1.0, 1024.0)?,
            max_connections: whole(
                "max-connections-per-node",
                inputs.max_connections,
                50_000.0,
                1.0,
                10_000_000.0,
            )?,
            headroom: range("headroom-percent", inputs.headroom_percent, 30.0, 0.0, 90.0)? / 100.0,
            min_nodes: whole("min-nodes", inputs.min_nodes, 2.0, 1.0, 100_000.0)?,
        })
    }
}

/// What the figures do not measure, assumed.
pub mod assumed {
    /// Kernel memory per connection (socket, buffers in use), KiB: not in
    /// the process's RSS.
    pub const KERNEL_KIB_PER_CONNECTION: f64 = 10.0;
    /// A node's memory before its first connection, MiB.
    pub const BASE_MIB_PER_NODE: f64 = 64.0;
    /// A publication frame's bytes besides its `data`: the JSON envelope
    /// with a 20-byte channel name, and the WebSocket header.
    pub const FRAME_OVERHEAD_BYTES: f64 = 120.0;
    /// TCP and IP headers of the segment carrying a delivery: every
    /// delivery is taken as a write of its own.
    pub const TCP_OVERHEAD_BYTES: f64 = 52.0;
    /// A kept publication's bytes besides its `data`, in the store.
    pub const RECORD_OVERHEAD_BYTES: f64 = 100.0;
    /// Redis memory over the bytes it holds (stream encoding, allocator).
    pub const REDIS_MEMORY_FACTOR: f64 = 1.5;
    /// A live frame's bytes through Redis besides the `data`.
    pub const REDIS_FRAME_OVERHEAD_BYTES: f64 = 150.0;
    /// Appends (one script call each) one Redis instance takes per second.
    pub const REDIS_APPENDS_PER_SECOND: f64 = 100_000.0;
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityPlan {
    pub workload: WorkloadSummary,
    pub node: NodeSpec,
    pub figures: NodeFigures,
    pub regions: u32,
    /// Every region's plan (all alike).
    pub region: RegionPlan,
    pub total_nodes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadSummary {
    pub peak_connections: f64,
    pub peak_publications_per_second: f64,
    pub subscribers_per_publication: f64,
    pub message_bytes: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionPlan {
    pub connections: f64,
    pub publications_per_second: f64,
    pub deliveries_per_second: f64,
    /// Channels with subscribers; unknown for conversations.
    pub channels: Option<f64>,
    /// CPU the peak takes, in cores, without headroom.
    pub cpu_cores: f64,
    pub nodes: u64,
    pub limited_by: Limit,
    /// Nodes if every node ran at full load, when writes carry many
    /// publications each: the floor, not a plan.
    pub nodes_at_saturation: u64,
    pub per_node: NodeLoad,
    pub egress_bytes_per_second: f64,
    pub history: HistoryPlan,
    /// With more than one node the region is a cluster on Redis.
    pub redis: Option<RedisPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Connections,
    Cpu,
    MinimumNodes,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeLoad {
    pub connections: f64,
    pub cpu_cores: f64,
    pub memory_bytes: f64,
    /// Memory to give the node: its peak with the headroom.
    pub memory_request_bytes: f64,
    pub egress_bytes_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPlan {
    pub publications_kept: f64,
    pub bytes: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedisPlan {
    pub appends_per_second: f64,
    /// Share of one instance's appends per second.
    pub instance_share: f64,
    /// Live frames Redis sends to nodes per second.
    pub live_frames_per_second: f64,
    pub egress_bytes_per_second: f64,
    pub memory_bytes: f64,
}

pub fn plan(workload: &Workload, node: &NodeSpec, figures: &NodeFigures) -> CapacityPlan {
    let regions = f64::from(workload.regions);
    let connections = workload.peak_connections / regions;
    let (publications, subscribers, channels) = match workload.shape {
        Shape::Live { rooms } => (workload.peak_publications_per_second, connections / rooms, Some(rooms)),
        Shape::Rooms { members_online } => (
            workload.peak_publications_per_second / regions,
            members_online,
            Some((connections / members_online).ceil()),
        ),
        Shape::Direct => (workload.peak_publications_per_second / regions, 2.0, None),
    };
    let deliveries = publications * subscribers;
    let region = region_plan(
        workload,
        node,
        figures,
        RegionLoad { connections, publications, deliveries, subscribers, channels },
    );
    CapacityPlan {
        workload: WorkloadSummary {
            peak_connections: workload.peak_connections,
            peak_publications_per_second: workload.peak_publications_per_second,
            subscribers_per_publication: subscribers,
            message_bytes: workload.message_bytes,
        },
        node: *node,
        figures: figures.clone(),
        regions: workload.regions,
        total_nodes: region.nodes * u64::from(workload.regions),
        region,
    }
}

struct RegionLoad {
    connections: f64,
    publications: f64,
    deliveries: f64,
    subscribers: f64,
    channels: Option<f64>,
}

fn region_plan(workload: &Workload, node: &NodeSpec, figures: &NodeFigures, load: RegionLoad) -> RegionPlan {
    let usable = 1.0 - node.headroom;
    let by_connections = (load.connections / (node.max_connections * usable)).ceil();
    let cpu_at = |per_cpu_second: f64| {
        load.deliveries / per_cpu_second + load.publications / figures.publishes_per_cpu_second.value
    };
    let nodes_for = |cpu: f64| (cpu / (node.cores * usable)).ceil().max(by_connections).max(node.min_nodes);

    let single = cpu_at(figures.paced_deliveries_per_cpu_second.value);
    // A cluster's node spends more per delivery; it is a cluster when one
    // node is not enough.
    let cluster = cpu_at(figures.paced_deliveries_per_cpu_second.value * figures.cluster_efficiency.value);
    let cpu = if nodes_for(single) > 1.0 { cluster } else { single };
    let nodes = nodes_for(cpu);
    let by_cpu = (cpu / (node.cores * usable)).ceil();
    let limited_by = if nodes > by_cpu.max(by_connections) {
        Limit::MinimumNodes
    } else if by_cpu >= by_connections {
        Limit::Cpu
    } else {
        Limit::Connections
    };
    let saturated = nodes_for(cpu_at(figures.saturated_deliveries_per_cpu_second.value));

    let egress = load.deliveries
        * (workload.message_bytes + assumed::FRAME_OVERHEAD_BYTES + assumed::TCP_OVERHEAD_BYTES);
    let per_node_connections = load.connections / nodes;
    let memory = assumed::BASE_MIB_PER_NODE * MIB
        + per_node_connections
            * (figures.rss_per_connection_kib.value + assumed::KERNEL_KIB_PER_CONNECTION)
            * KIB;
    let history = history_plan(workload, load.publications, load.channels);
    let redis = (nodes > 1.0).then(|| redis_plan(workload, &load, nodes, &history));
    RegionPlan {
        connections: load.connections,
        publications_per_second: load.publications,
        deliveries_per_second: load.deliveries,
        channels: load.channels,
        cpu_cores: cpu,
        nodes: nodes as u64,
        limited_by,
        nodes_at_saturation: saturated as u64,
        per_node: NodeLoad {
            connections: per_node_connections,
            cpu_cores: cpu / nodes,
            memory_bytes: memory,
            memory_request_bytes: memory / usable,
            egress_bytes_per_second: egress / nodes,
        },
        egress_bytes_per_second: egress,
        history,
        redis,
    }
}

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// History kept: the day's average rate over `history_ttl`, and no more
/// than `history_size` per channel where the channels are known.
fn history_plan(workload: &Workload, peak_publications: f64, channels: Option<f64>) -> HistoryPlan {
    let average = peak_publications / workload.peak_to_average;
    let by_age = average * workload.history_ttl.as_secs_f64();
    let kept = channels.map_or(by_age, |channels| by_age.min(channels * workload.history_size));
    let kept = if workload.history_size == 0.0 { 0.0 } else { kept };
    HistoryPlan {
        publications_kept: kept,
        bytes: kept * (workload.message_bytes + assumed::RECORD_OVERHEAD_BYTES),
    }
}

fn redis_plan(workload: &Workload, load: &RegionLoad, nodes: f64, history: &HistoryPlan) -> RedisPlan {
    // A node with subscribers of a channel gets its live frames: a live
    // room has them on every node, a room of five on at most five.
    let nodes_per_channel = nodes.min(load.subscribers);
    let frames = load.publications * nodes_per_channel;
    RedisPlan {
        appends_per_second: load.publications,
        instance_share: load.publications / assumed::REDIS_APPENDS_PER_SECOND,
        live_frames_per_second: frames,
        egress_bytes_per_second: frames * (workload.message_bytes + assumed::REDIS_FRAME_OVERHEAD_BYTES),
        memory_bytes: history.bytes * assumed::REDIS_MEMORY_FACTOR,
    }
}
