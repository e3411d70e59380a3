//! The [`Occupancy`] suite: one case per rule of its `# Contract`.
//!
//! ```ignore
//! mod redis {
//!     fanfare_cluster::occupancy_conformance!(super::redis_occupancy());
//! }
//! ```

use std::sync::Arc;

use fanfare_protocol::ChannelName;
use tokio::sync::Barrier;

use super::Subject;
use crate::{NodeId, Occupancy, OccupancyChange};

/// Generates one `#[tokio::test]` per case for the engine built by `$make`
/// (a future yielding `Option<Subject<dyn Occupancy>>`; `None` skips).
#[macro_export]
macro_rules! occupancy_conformance {
    ($make:expr) => {
        $crate::occupancy_conformance!(@cases $make;
            set_reports_the_cluster_wide_totals_before_and_after,
            an_unknown_channel_counts_zero,
            concurrent_rounds_occupy_and_vacate_exactly_once_each,
            channels_lists_occupied_channels_by_prefix_sorted_by_name,
            removing_a_dead_node_returns_one_change_per_channel_it_held,
            concurrent_removals_of_one_dead_node_return_each_change_once,
            a_node_counting_while_it_is_removed_leaves_nothing_after_its_next_removal,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(subject) = $make.await else { return };
                $crate::conformance::occupancy::$case(&subject).await;
            }
        )*
    };
}

type Engine = Subject<dyn Occupancy>;

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).expect("a valid channel name")
}

fn change(channel: &ChannelName, before: u64, after: u64) -> OccupancyChange {
    OccupancyChange { channel: channel.clone(), before, after }
}

pub async fn set_reports_the_cluster_wide_totals_before_and_after(engine: &Engine) {
    let (occupancy_a, occupancy_b) = (engine.connect().await, engine.connect().await);
    let (a, b) = (NodeId::new("node-a"), NodeId::new("node-b"));
    let room = channel("conf:occupancy-totals");
    let first = occupancy_a.set(&a, &room, 2).await.unwrap();
    assert_eq!(first, change(&room, 0, 2));
    assert!(first.occupied() && !first.vacated());
    assert_eq!(occupancy_b.set(&b, &room, 3).await.unwrap(), change(&room, 2, 5));
    assert_eq!(occupancy_a.set(&a, &room, 1).await.unwrap(), change(&room, 5, 4), "a count is replaced");
    assert_eq!(occupancy_a.set(&a, &room, 1).await.unwrap(), change(&room, 4, 4), "the same count again");
    assert_eq!(occupancy_b.count(&room).await.unwrap(), 4);
    assert_eq!(occupancy_a.set(&a, &room, 0).await.unwrap(), change(&room, 4, 3));
    let last = occupancy_b.set(&b, &room, 0).await.unwrap();
    assert_eq!(last, change(&room, 3, 0));
    assert!(last.vacated() && !last.occupied());
    assert_eq!(occupancy_a.count(&room).await.unwrap(), 0);
    let nothing = occupancy_b.set(&b, &room, 0).await.unwrap();
    assert!(!nothing.occupied() && !nothing.vacated(), "0 → 0 is no transition: {nothing:?}");
}

pub async fn an_unknown_channel_counts_zero(engine: &Engine) {
    let occupancy = engine.connect().await;
    assert_eq!(occupancy.count(&channel("conf:occupancy-never")).await.unwrap(), 0);
    assert!(occupancy.channels("").await.unwrap().is_empty());
}

pub async fn concurrent_rounds_occupy_and_vacate_exactly_once_each(engine: &Engine) {
    const ROUNDS: usize = 100;
    let room = channel("conf:occupancy-race");
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for name in ["node-a", "node-b"] {
        let (occupancy, barrier, room) = (engine.connect().await, barrier.clone(), room.clone());
        tasks.push(tokio::spawn(async move {
            let node = NodeId::new(name);
            let mut answers = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                barrier.wait().await;
                let occupied = occupancy.set(&node, &room, 1).await.unwrap().occupied();
                barrier.wait().await;
                let vacated = occupancy.set(&node, &room, 0).await.unwrap().vacated();
                answers.push((occupied, vacated));
            }
            answers
        }));
    }
    let b = tasks.pop().unwrap().await.unwrap();
    let a = tasks.pop().unwrap().await.unwrap();
    for (round, (a, b)) in a.iter().zip(&b).enumerate() {
        assert!(a.0 ^ b.0, "round {round}: exactly one sees it occupied, got {a:?} and {b:?}");
        assert!(a.1 ^ b.1, "round {round}: exactly one sees it vacated, got {a:?} and {b:?}");
    }
    assert_eq!(engine.connect().await.count(&room).await.unwrap(), 0);
}

pub async fn channels_lists_occupied_channels_by_prefix_sorted_by_name(engine: &Engine) {
    let (occupancy_a, occupancy_b) = (engine.connect().await, engine.connect().await);
    let (a, b) = (NodeId::new("node-a"), NodeId::new("node-b"));
    let (zoo, general, empty, news) =
        (channel("chat:zoo"), channel("chat:general"), channel("chat:empty"), channel("news"));
    occupancy_a.set(&a, &zoo, 1).await.unwrap();
    occupancy_b.set(&b, &zoo, 2).await.unwrap();
    occupancy_b.set(&b, &general, 4).await.unwrap();
    occupancy_a.set(&a, &empty, 5).await.unwrap();
    occupancy_a.set(&a, &empty, 0).await.unwrap();
    occupancy_a.set(&a, &news, 1).await.unwrap();
    assert_eq!(occupancy_a.channels("chat:").await.unwrap(), [(general.clone(), 4), (zoo.clone(), 3)]);
    assert_eq!(
        occupancy_b.channels("").await.unwrap(),
        [(general.clone(), 4), (zoo.clone(), 3), (news.clone(), 1)]
    );
    assert_eq!(occupancy_b.channels("chat:z").await.unwrap(), [(zoo.clone(), 3)]);
    assert!(occupancy_b.channels("missing").await.unwrap().is_empty());
    occupancy_b.set(&b, &general, 0).await.unwrap();
    assert_eq!(occupancy_a.channels("chat:").await.unwrap(), [(zoo, 3)], "a vacated channel is not listed");
}

/// Node `dead` holds 2 in `room` (where `alive` holds 1) and 3 in `hall`.
async fn populate_with_a_dead_node(engine: &Engine) -> (NodeId, ChannelName, ChannelName) {
    let (dead_occupancy, alive_occupancy) = (engine.connect().await, engine.connect().await);
    let (dead, alive) = (NodeId::new("node-dead"), NodeId::new("node-alive"));
    let (room, hall) = (channel("conf:occupancy-dead-room"), channel("conf:occupancy-dead-hall"));
    dead_occupancy.set(&dead, &room, 2).await.unwrap();
    dead_occupancy.set(&dead, &hall, 3).await.unwrap();
    dead_occupancy.set(&dead, &channel("conf:occupancy-dead-left"), 1).await.unwrap();
    dead_occupancy.set(&dead, &channel("conf:occupancy-dead-left"), 0).await.unwrap();
    alive_occupancy.set(&alive, &room, 1).await.unwrap();
    (dead, room, hall)
}

fn sorted(mut changes: Vec<OccupancyChange>) -> Vec<OccupancyChange> {
    changes.sort_by(|x, y| x.channel.cmp(&y.channel));
    changes
}

pub async fn removing_a_dead_node_returns_one_change_per_channel_it_held(engine: &Engine) {
    let (dead, room, hall) = populate_with_a_dead_node(engine).await;
    let survivor = engine.connect().await;
    let changes = sorted(survivor.remove_node(&dead).await.unwrap());
    assert_eq!(changes, [change(&hall, 3, 0), change(&room, 3, 1)], "nothing for a channel it had left");
    assert!(changes[0].vacated() && !changes[1].vacated());
    assert_eq!(survivor.count(&room).await.unwrap(), 1);
    assert_eq!(survivor.channels("conf:occupancy-dead").await.unwrap(), [(room, 1)]);
    assert!(survivor.remove_node(&dead).await.unwrap().is_empty(), "nothing is returned twice");
}

pub async fn concurrent_removals_of_one_dead_node_return_each_change_once(engine: &Engine) {
    let (dead, room, hall) = populate_with_a_dead_node(engine).await;
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (occupancy, barrier, dead) = (engine.connect().await, barrier.clone(), dead.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            occupancy.remove_node(&dead).await.unwrap()
        }));
    }
    let mut changes = Vec::new();
    for task in tasks {
        changes.extend(task.await.unwrap());
    }
    assert_eq!(sorted(changes), [change(&hall, 3, 0), change(&room, 3, 1)]);
    assert_eq!(engine.connect().await.count(&hall).await.unwrap(), 0);
}

/// A paused node that wakes up while a survivor removes it may set counts
/// meanwhile; whatever the interleaving, its next removal leaves none.
pub async fn a_node_counting_while_it_is_removed_leaves_nothing_after_its_next_removal(engine: &Engine) {
    const ROUNDS: u64 = 50;
    let (paused, survivor) = (engine.connect().await, engine.connect().await);
    let node = NodeId::new("node-paused");
    let barrier = Arc::new(Barrier::new(2));
    for round in 0..ROUNDS {
        let (room, hall) =
            (channel("conf:occupancy-resurrection-room"), channel("conf:occupancy-resurrection-hall"));
        paused.set(&node, &room, 1).await.unwrap();
        let counting = {
            let (paused, barrier, node, hall) = (paused.clone(), barrier.clone(), node.clone(), hall.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                paused.set(&node, &hall, round + 1).await.unwrap();
            })
        };
        barrier.wait().await;
        survivor.remove_node(&node).await.unwrap();
        counting.await.unwrap();
        survivor.remove_node(&node).await.unwrap();
        assert_eq!(survivor.count(&hall).await.unwrap(), 0, "round {round}: a count of the removed node");
        assert!(survivor.channels("conf:occupancy-resurrection").await.unwrap().is_empty(), "round {round}");
    }
}
