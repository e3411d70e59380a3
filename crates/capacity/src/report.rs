//! The plan as text: the answer first, then how it was reached.

use std::fmt;

use fanfare_bench::thousands;

use crate::fleet::{Limit, assumed};
use crate::{CapacityPlan, Figure};

impl fmt::Display for CapacityPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let region = &self.region;
        let node = &region.per_node;
        let regions = if self.regions == 1 {
            String::new()
        } else {
            format!(" ({} regions x {})", self.regions, region.nodes)
        };
        writeln!(
            f,
            "Nodes: {}{regions}, {} cores each, limited by {}",
            self.total_nodes,
            self.node.cores,
            limit(region.limited_by)
        )?;
        writeln!(
            f,
            "  at saturation (writes carrying many publications each) {} per region would do",
            region.nodes_at_saturation
        )?;
        writeln!(f)?;
        writeln!(f, "Per node at the peak:")?;
        writeln!(f, "  connections       {}", count(node.connections))?;
        writeln!(f, "  CPU               {:.2} cores of {}", node.cpu_cores, self.node.cores)?;
        writeln!(
            f,
            "  memory            {} (give it {})",
            bytes(node.memory_bytes),
            bytes(node.memory_request_bytes)
        )?;
        writeln!(f, "  network egress    {}", bits(node.egress_bytes_per_second))?;
        writeln!(f)?;
        writeln!(f, "Per region at the peak:")?;
        writeln!(f, "  connections       {}", count(region.connections))?;
        writeln!(f, "  publications/s    {}", count(region.publications_per_second))?;
        writeln!(
            f,
            "  deliveries/s      {} ({} subscribers per publication)",
            count(region.deliveries_per_second),
            count(self.workload.subscribers_per_publication)
        )?;
        writeln!(f, "  CPU               {:.1} cores", region.cpu_cores)?;
        writeln!(f, "  network egress    {}", bits(region.egress_bytes_per_second))?;
        writeln!(
            f,
            "  history kept      {} publications, {}",
            count(region.history.publications_kept),
            bytes(region.history.bytes)
        )?;
        match &region.redis {
            Some(redis) => {
                writeln!(f, "Redis per region (the cluster engine):")?;
                writeln!(
                    f,
                    "  appends/s         {} ({:.0} % of one instance)",
                    count(redis.appends_per_second),
                    redis.instance_share * 100.0
                )?;
                writeln!(
                    f,
                    "  live frames out/s {}, {}",
                    count(redis.live_frames_per_second),
                    bits(redis.egress_bytes_per_second)
                )?;
                writeln!(f, "  memory            {} for history", bytes(redis.memory_bytes))?;
            }
            None => writeln!(f, "One node: the embedded store holds the history on its disk; no Redis.")?,
        }
        writeln!(f)?;
        self.write_assumptions(f)
    }
}

impl CapacityPlan {
    fn write_assumptions(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let figures = &self.figures;
        writeln!(f, "Figures per core:")?;
        figure(f, "memory per connection (KiB)", &figures.rss_per_connection_kib)?;
        figure(f, "deliveries per CPU-second, one write each", &figures.paced_deliveries_per_cpu_second)?;
        figure(f, "deliveries per CPU-second at saturation", &figures.saturated_deliveries_per_cpu_second)?;
        figure(f, "publications per CPU-second", &figures.publishes_per_cpu_second)?;
        figure(f, "a cluster node's share of that", &figures.cluster_efficiency)?;
        writeln!(f, "Assumed:")?;
        let headroom = self.node.headroom * 100.0;
        writeln!(
            f,
            "  - {headroom:.0} % of CPU and of max_connections ({}) kept free at the peak",
            count(self.node.max_connections)
        )?;
        writeln!(
            f,
            "  - at least {} nodes per region; a region of more than one node is a cluster on Redis",
            self.node.min_nodes
        )?;
        writeln!(
            f,
            "  - CPU figures scale with cores (worker_threads = cores); every delivery is a write of its own"
        )?;
        writeln!(f, "  - every publication goes to every subscriber of its channel, nothing sampled")?;
        writeln!(
            f,
            "  - {} KiB of kernel memory per connection, {} MiB per node besides",
            assumed::KERNEL_KIB_PER_CONNECTION,
            assumed::BASE_MIB_PER_NODE
        )?;
        writeln!(
            f,
            "  - a delivery is the {} B message + {} B of frame + {} B of TCP/IP",
            self.workload.message_bytes,
            assumed::FRAME_OVERHEAD_BYTES,
            assumed::TCP_OVERHEAD_BYTES
        )?;
        writeln!(
            f,
            "  - a kept publication is the message + {} B; Redis holds it in {}x that",
            assumed::RECORD_OVERHEAD_BYTES,
            assumed::REDIS_MEMORY_FACTOR
        )?;
        writeln!(f, "  - one Redis instance takes {} appends/s", count(assumed::REDIS_APPENDS_PER_SECOND))?;
        writeln!(
            f,
            "  - connections split evenly over regions; a live room's publications reach every region"
        )
    }
}

fn figure(f: &mut fmt::Formatter<'_>, what: &str, figure: &Figure) -> fmt::Result {
    writeln!(f, "  {what}: {} ({})", count_precise(figure.value), figure.source)
}

fn limit(limit: Limit) -> &'static str {
    match limit {
        Limit::Connections => "connections",
        Limit::Cpu => "CPU",
        Limit::MinimumNodes => "the minimum per region",
    }
}

/// A count with thousands separators, rounded up (but not for the last
/// bit of a float's error).
fn count(value: f64) -> String {
    let nearest = value.round();
    let value = if (value - nearest).abs() <= 1e-9 * nearest.max(1.0) { nearest } else { value.ceil() };
    thousands(value as u64)
}

fn count_precise(value: f64) -> String {
    if value.fract() == 0.0 { thousands(value as u64) } else { format!("{value}") }
}

fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = value;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Bytes per second as bits per second, the way links are sold.
fn bits(bytes_per_second: f64) -> String {
    let bits = bytes_per_second * 8.0;
    if bits >= 1e9 { format!("{:.2} Gbit/s", bits / 1e9) } else { format!("{:.1} Mbit/s", bits / 1e6) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_up_but_not_for_a_floats_last_bit() {
        assert_eq!(count(62_500_000.000_001), "62,500,000");
        assert_eq!(count(17_543.86), "17,544");
    }

    #[test]
    fn sizes_and_rates_take_the_largest_unit_below_them() {
        assert_eq!(bytes(512.0), "512.0 B");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(bits(125_000_000.0), "1.00 Gbit/s");
        assert_eq!(bits(1_250_000.0), "10.0 Mbit/s");
    }
}
