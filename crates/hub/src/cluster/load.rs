//! How busy a cluster node's fan-out is: whether the receiver waits for
//! fuller batches before it fans out.

use std::time::Duration;

use tokio::time::Instant;

/// While this node makes more than [`LINGER_ABOVE`] deliveries per
/// second (publications times local subscribers, over [`LOAD_WINDOW`]),
/// the receiver (`receive.rs`) waits up to [`LINGER`] for more
/// publications before fanning out, until it holds [`LINGER_ENOUGH`]. Each fan-out costs every subscriber a socket
/// write, and at that rate the writes are what the CPU goes to: a single
/// node fans out what one group commit made durable, a dozen publications
/// at a time, where a bus delivers four or five, so without the wait a
/// cluster node made twice the writes per delivery (`docs/benchmarks.md`,
/// issue 10). Below the rate nothing waits: a quiet channel's latency is
/// the bus's.
pub(super) const LINGER: Duration = Duration::from_millis(10);
pub(super) const LINGER_ENOUGH: usize = 16;
const LINGER_ABOVE: u64 = 100_000;
const LOAD_WINDOW: Duration = Duration::from_millis(100);

/// Deliveries per second over the last [`LOAD_WINDOW`]: whether to linger.
pub(super) struct Load {
    window_start: Instant,
    delivered: u64,
    last_fan_out: Instant,
    busy: bool,
}

impl Load {
    pub(super) fn new() -> Self {
        let now = Instant::now();
        Self { window_start: now, delivered: 0, last_fan_out: now, busy: false }
    }

    pub(super) fn record(&mut self, delivered: u64) {
        let now = Instant::now();
        self.last_fan_out = now;
        self.delivered += delivered;
        let elapsed = now - self.window_start;
        if elapsed >= LOAD_WINDOW {
            self.busy = self.delivered as f64 / elapsed.as_secs_f64() > LINGER_ABOVE as f64;
            self.window_start = now;
            self.delivered = 0;
        }
    }

    /// Busy in the last window, and still fanning out.
    pub(super) fn busy(&self) -> bool {
        self.busy && self.last_fan_out.elapsed() < LOAD_WINDOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_receiver_lingers_only_while_it_delivers_fast() {
        let mut load = Load::new();
        assert!(!load.busy(), "a new node is quiet");
        // 2,000 deliveries every 10 ms: 200,000 per second.
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(10)).await;
            load.record(2_000);
        }
        assert!(load.busy());
        tokio::time::advance(LOAD_WINDOW).await;
        assert!(!load.busy(), "not once the fan-outs stopped");
        // 500 every 10 ms: 50,000 per second.
        for _ in 0..20 {
            tokio::time::advance(Duration::from_millis(10)).await;
            load.record(500);
        }
        assert!(!load.busy());
    }
}
