//! The [`NodeRegistry`] suite: one case per rule of its `# Contract`.
//!
//! ```ignore
//! mod redis {
//!     fanfare_cluster::node_registry_conformance!(super::redis_registry());
//! }
//! ```
//!
//! Leases are short (a few hundred ms) and expiry is awaited by polling
//! the engine with a bound, never by sleeping a fixed time: the engine's
//! clock decides, not the test's.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Barrier;

use super::Subject;
use crate::{NodeId, NodeInfo, NodeRegistry};

/// Generates one `#[tokio::test]` per case for the engine built by `$make`
/// (a future yielding `Option<Subject<dyn NodeRegistry>>`; `None` skips).
#[macro_export]
macro_rules! node_registry_conformance {
    ($make:expr) => {
        $crate::node_registry_conformance!(@cases $make;
            the_first_heartbeat_registers_and_later_ones_renew,
            nodes_are_sorted_by_id_as_their_last_heartbeat_described_them,
            a_lease_runs_out_by_the_engines_clock_and_is_claimed,
            a_heartbeat_after_being_claimed_answers_false,
            a_claimed_node_comes_back_only_after_its_claimer_released_it,
            a_resurrection_shows_even_when_a_late_heartbeat_registered_the_node_first,
            a_live_node_is_never_claimed,
            each_expired_node_is_claimed_by_exactly_one_of_two_claimers,
            a_node_that_leaves_is_gone_at_once,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(subject) = $make.await else { return };
                $crate::conformance::registry::$case(&subject).await;
            }
        )*
    };
}

type Engine = Subject<dyn NodeRegistry>;

const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(300);
/// How long an expired lease may take to show, at most.
const PATIENCE: Duration = Duration::from_secs(10);

fn info(id: &str) -> NodeInfo {
    NodeInfo {
        id: NodeId::new(id),
        advertise: Some(format!("{id}.example:8080")),
        version: "0.1.0".into(),
        started_at_ms: 1_700_000_000_000,
        heartbeat_ms: 0,
        connections: 3,
        subscriptions: 5,
        channels: 2,
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64
}

async fn ids(registry: &dyn NodeRegistry) -> Vec<String> {
    registry.nodes().await.unwrap().iter().map(|n| n.id.as_str().to_owned()).collect()
}

/// Polls until `id` is no longer listed; fails the test after [`PATIENCE`].
async fn wait_until_not_listed(registry: &dyn NodeRegistry, id: &str) {
    let deadline = Instant::now() + PATIENCE;
    while ids(registry).await.iter().any(|live| live == id) {
        assert!(Instant::now() < deadline, "{id}'s lease never ran out");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn the_first_heartbeat_registers_and_later_ones_renew(engine: &Engine) {
    let registry = engine.connect().await;
    assert!(!registry.heartbeat(&info("node-a"), LONG).await.unwrap(), "not registered before");
    assert!(registry.heartbeat(&info("node-a"), LONG).await.unwrap(), "a renewal");
    assert_eq!(ids(&*registry).await, ["node-a"]);
}

pub async fn nodes_are_sorted_by_id_as_their_last_heartbeat_described_them(engine: &Engine) {
    let (registry_a, registry_b) = (engine.connect().await, engine.connect().await);
    for id in ["node-c", "node-a"] {
        registry_a.heartbeat(&info(id), LONG).await.unwrap();
    }
    registry_b.heartbeat(&info("node-b"), LONG).await.unwrap();
    let busier = NodeInfo { connections: 900, advertise: None, ..info("node-a") };
    let (before, _) = (now_ms(), registry_b.heartbeat(&busier, LONG).await.unwrap());
    let nodes = registry_a.nodes().await.unwrap();
    assert_eq!(nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["node-a", "node-b", "node-c"]);
    assert_eq!(NodeInfo { heartbeat_ms: 0, ..nodes[0].clone() }, busier, "the last heartbeat's record");
    assert_eq!(NodeInfo { heartbeat_ms: 0, ..nodes[1].clone() }, info("node-b"));
    let written = nodes[0].heartbeat_ms;
    // The engine runs on this machine in tests: its clock is near ours.
    assert!(written.abs_diff(before) < 5_000, "heartbeat_ms {written} is the engine's time, near {before}");
}

pub async fn a_lease_runs_out_by_the_engines_clock_and_is_claimed(engine: &Engine) {
    let registry = engine.connect().await;
    registry.heartbeat(&info("node-brief"), SHORT).await.unwrap();
    registry.heartbeat(&info("node-lasting"), LONG).await.unwrap();
    assert_eq!(ids(&*registry).await, ["node-brief", "node-lasting"], "live until its lease runs out");
    wait_until_not_listed(&*registry, "node-brief").await;
    assert_eq!(ids(&*registry).await, ["node-lasting"]);
    assert_eq!(registry.claim_expired().await.unwrap(), [NodeId::new("node-brief")]);
    assert!(registry.claim_expired().await.unwrap().is_empty(), "claimed once, ever");
}

pub async fn a_heartbeat_after_being_claimed_answers_false(engine: &Engine) {
    let registry = engine.connect().await;
    registry.heartbeat(&info("node-paused"), SHORT).await.unwrap();
    wait_until_not_listed(&*registry, "node-paused").await;
    assert_eq!(registry.claim_expired().await.unwrap(), [NodeId::new("node-paused")]);
    registry.leave(&NodeId::new("node-paused")).await.unwrap();
    assert!(!registry.heartbeat(&info("node-paused"), LONG).await.unwrap(), "it must announce itself again");
    assert!(registry.heartbeat(&info("node-paused"), LONG).await.unwrap());
    assert_eq!(ids(&*registry).await, ["node-paused"]);
}

/// A paused node back while its claimer still removes its members must
/// not record them again yet: that removal would undo the record, and the
/// live node's members would stay unlisted.
pub async fn a_claimed_node_comes_back_only_after_its_claimer_released_it(engine: &Engine) {
    let (registry, claimer) = (engine.connect().await, engine.connect().await);
    registry.heartbeat(&info("node-paused"), SHORT).await.unwrap();
    wait_until_not_listed(&*claimer, "node-paused").await;
    assert_eq!(claimer.claim_expired().await.unwrap(), [NodeId::new("node-paused")]);
    for _ in 0..3 {
        assert!(
            registry.heartbeat(&info("node-paused"), LONG).await.unwrap(),
            "wait: being cleaned up after"
        );
        assert!(ids(&*claimer).await.is_empty(), "not registered while claimed");
        assert!(claimer.claim_expired().await.unwrap().is_empty(), "claimed once");
    }
    claimer.leave(&NodeId::new("node-paused")).await.unwrap();
    assert!(!registry.heartbeat(&info("node-paused"), LONG).await.unwrap(), "released: announce again now");
    assert_eq!(ids(&*claimer).await, ["node-paused"]);
}

/// After a silent partition, heartbeats the node gave up on may reach the
/// engine late, after the node was claimed and released: the first one
/// registers it again with nobody reading the answer. The node's next
/// heartbeat must still tell it to announce itself again.
pub async fn a_resurrection_shows_even_when_a_late_heartbeat_registered_the_node_first(engine: &Engine) {
    let (registry, late, claimer) = (engine.connect().await, engine.connect().await, engine.connect().await);
    assert!(!registry.heartbeat(&info("node-cut"), SHORT).await.unwrap());
    wait_until_not_listed(&*claimer, "node-cut").await;
    assert_eq!(claimer.claim_expired().await.unwrap(), [NodeId::new("node-cut")]);
    claimer.leave(&NodeId::new("node-cut")).await.unwrap();
    // The late heartbeat, sent before the claim: its answer is lost.
    let _ = late.heartbeat(&info("node-cut"), LONG).await.unwrap();
    assert!(!registry.heartbeat(&info("node-cut"), LONG).await.unwrap(), "it must announce itself again");
    assert!(registry.heartbeat(&info("node-cut"), LONG).await.unwrap(), "once");
}

pub async fn a_live_node_is_never_claimed(engine: &Engine) {
    let registry = engine.connect().await;
    registry.heartbeat(&info("node-a"), LONG).await.unwrap();
    for _ in 0..3 {
        registry.heartbeat(&info("node-renewing"), SHORT).await.unwrap();
        assert!(registry.claim_expired().await.unwrap().is_empty());
    }
    assert_eq!(ids(&*registry).await, ["node-a", "node-renewing"]);
}

pub async fn each_expired_node_is_claimed_by_exactly_one_of_two_claimers(engine: &Engine) {
    let registry = engine.connect().await;
    let expiring: BTreeSet<NodeId> = (0..20).map(|n| NodeId::new(&format!("node-{n:02}"))).collect();
    for id in &expiring {
        registry.heartbeat(&info(id.as_str()), SHORT).await.unwrap();
    }
    registry.heartbeat(&info("node-survivor"), LONG).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    while ids(&*registry).await != ["node-survivor"] {
        assert!(Instant::now() < deadline, "the short leases never ran out");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (registry, barrier) = (engine.connect().await, barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            registry.claim_expired().await.unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap());
    }
    let unique: BTreeSet<NodeId> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), unique.len(), "a node claimed twice: {claimed:?}");
    assert_eq!(unique, expiring);
    assert_eq!(ids(&*registry).await, ["node-survivor"]);
}

pub async fn a_node_that_leaves_is_gone_at_once(engine: &Engine) {
    let registry = engine.connect().await;
    registry.heartbeat(&info("node-a"), LONG).await.unwrap();
    registry.heartbeat(&info("node-b"), LONG).await.unwrap();
    registry.leave(&NodeId::new("node-a")).await.unwrap();
    assert_eq!(ids(&*registry).await, ["node-b"]);
    assert!(registry.claim_expired().await.unwrap().is_empty(), "a clean stop leaves nothing to claim");
    registry.leave(&NodeId::new("node-unknown")).await.unwrap();
    assert!(!registry.heartbeat(&info("node-a"), LONG).await.unwrap(), "registered anew");
}
