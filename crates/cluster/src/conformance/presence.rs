//! The [`PresenceStore`] suite: one case per rule of its `# Contract`.
//!
//! ```ignore
//! mod redis {
//!     fanfare_cluster::presence_store_conformance!(super::redis_presence());
//! }
//! ```
//!
//! Each handle the [`Subject`] opens plays a node; the concurrent cases
//! release two of them at once with a [`Barrier`].

use std::sync::Arc;

use fanfare_protocol::native::Member;
use fanfare_protocol::{ChannelName, JsonData, UserId};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use super::Subject;
use crate::{NodeId, PresenceChange, PresenceStore};

/// Generates one `#[tokio::test]` per case for the engine built by `$make`
/// (a future yielding `Option<Subject<dyn PresenceStore>>`; `None` skips).
#[macro_export]
macro_rules! presence_store_conformance {
    ($make:expr) => {
        $crate::presence_store_conformance!(@cases $make;
            first_join_and_last_leave_are_per_user_across_nodes,
            joining_the_same_connection_twice_counts_once,
            leaving_a_connection_that_is_not_there_answers_false,
            simultaneous_joins_and_leaves_from_two_nodes_have_one_winner_each,
            members_keep_the_json_type_of_their_id_and_their_first_info,
            members_are_listed_once_each_sorted_by_user_id,
            removing_a_dead_node_reports_each_last_connection_once,
            concurrent_removals_of_one_dead_node_report_each_member_once,
            a_node_joining_while_it_is_removed_leaves_nothing_after_its_next_removal,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(subject) = $make.await else { return };
                $crate::conformance::presence::$case(&subject).await;
            }
        )*
    };
}

type Engine = Subject<dyn PresenceStore>;

fn channel(name: &str) -> ChannelName {
    ChannelName::new(name).expect("a valid channel name")
}

fn member(user: Value) -> Member {
    Member { user: UserId::from_json(&user).expect("a user id"), info: None }
}

fn member_with(user: Value, info: Value) -> Member {
    Member { info: Some(JsonData::from_value(&info)), ..member(user) }
}

async fn users(store: &dyn PresenceStore, channel: &ChannelName) -> Vec<String> {
    let members = store.members(channel).await.unwrap();
    members.iter().map(|m| m.user.as_str().to_owned()).collect()
}

pub async fn first_join_and_last_leave_are_per_user_across_nodes(engine: &Engine) {
    let (store_a, store_b) = (engine.connect().await, engine.connect().await);
    let (a, b) = (NodeId::new("node-a"), NodeId::new("node-b"));
    let room = channel("conf:presence-first-last");
    let (alice, bob) = (member(json!("alice")), member(json!("bob")));
    assert!(store_a.join(&a, &room, &alice, 1).await.unwrap(), "alice's first connection");
    assert!(!store_b.join(&b, &room, &alice, 1).await.unwrap(), "alice's second, on another node");
    assert!(store_b.join(&b, &room, &bob, 2).await.unwrap(), "bob's first");
    assert_eq!(users(&*store_a, &room).await, ["alice", "bob"]);
    assert!(!store_a.leave(&a, &room, &alice.user, 1).await.unwrap(), "alice is still on node b");
    assert_eq!(users(&*store_b, &room).await, ["alice", "bob"]);
    assert!(store_b.leave(&b, &room, &alice.user, 1).await.unwrap(), "alice's last connection");
    assert_eq!(users(&*store_a, &room).await, ["bob"]);
    assert!(store_a.join(&a, &room, &alice, 1).await.unwrap(), "after her last leave, a first join again");
}

pub async fn joining_the_same_connection_twice_counts_once(engine: &Engine) {
    let store = engine.connect().await;
    let a = NodeId::new("node-a");
    let room = channel("conf:presence-idempotent");
    let alice = member(json!("alice"));
    assert!(store.join(&a, &room, &alice, 7).await.unwrap());
    assert!(!store.join(&a, &room, &alice, 7).await.unwrap(), "the same connection again");
    assert!(store.leave(&a, &room, &alice.user, 7).await.unwrap(), "one leave undoes both joins");
    assert!(!store.leave(&a, &room, &alice.user, 7).await.unwrap(), "leaving again is a no-op");
    assert!(store.members(&room).await.unwrap().is_empty());
}

pub async fn leaving_a_connection_that_is_not_there_answers_false(engine: &Engine) {
    let store = engine.connect().await;
    let (a, b) = (NodeId::new("node-a"), NodeId::new("node-b"));
    let room = channel("conf:presence-unknown-leave");
    let alice = member(json!("alice"));
    assert!(!store.leave(&a, &room, &alice.user, 1).await.unwrap(), "an empty channel");
    assert!(store.join(&a, &room, &alice, 1).await.unwrap());
    assert!(!store.leave(&a, &room, &alice.user, 2).await.unwrap(), "another connection id");
    assert!(!store.leave(&b, &room, &alice.user, 1).await.unwrap(), "the same id on another node");
    assert!(!store.leave(&a, &room, &UserId::new("bob"), 1).await.unwrap(), "another user's connection");
    assert_eq!(users(&*store, &room).await, ["alice"]);
}

pub async fn simultaneous_joins_and_leaves_from_two_nodes_have_one_winner_each(engine: &Engine) {
    const ROUNDS: usize = 100;
    let room = channel("conf:presence-race");
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for name in ["node-a", "node-b"] {
        let (store, barrier, room) = (engine.connect().await, barrier.clone(), room.clone());
        tasks.push(tokio::spawn(async move {
            let (node, alice) = (NodeId::new(name), member(json!("alice")));
            let mut answers = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                barrier.wait().await;
                let joined = store.join(&node, &room, &alice, 1).await.unwrap();
                barrier.wait().await;
                let left = store.leave(&node, &room, &alice.user, 1).await.unwrap();
                answers.push((joined, left));
            }
            answers
        }));
    }
    let b = tasks.pop().unwrap().await.unwrap();
    let a = tasks.pop().unwrap().await.unwrap();
    for (round, (a, b)) in a.iter().zip(&b).enumerate() {
        assert!(a.0 ^ b.0, "round {round}: exactly one first join, got {a:?} and {b:?}");
        assert!(a.1 ^ b.1, "round {round}: exactly one last leave, got {a:?} and {b:?}");
    }
    assert!(engine.connect().await.members(&room).await.unwrap().is_empty());
}

pub async fn members_keep_the_json_type_of_their_id_and_their_first_info(engine: &Engine) {
    let (store_a, store_b) = (engine.connect().await, engine.connect().await);
    let (a, b) = (NodeId::new("node-a"), NodeId::new("node-b"));
    let room = channel("conf:presence-types");
    let numeric = member_with(json!(42), json!({"name": "Ada", "tags": ["x"]}));
    let textual = member(json!("7"));
    assert!(store_a.join(&a, &room, &numeric, 1).await.unwrap());
    assert!(store_a.join(&a, &room, &textual, 2).await.unwrap());
    let later = member_with(json!("42"), json!({"name": "changed"}));
    assert!(!store_b.join(&b, &room, &later, 1).await.unwrap(), "the same user, written as a string");
    let members = store_b.members(&room).await.unwrap();
    assert_eq!(members, [numeric.clone(), textual.clone()]);
    assert!(members[0].user.is_number(), "42 was sent as a number first, on another node");
    assert_eq!(serde_json::to_string(&members[0].user.as_sent()).unwrap(), "42");
    assert!(!members[1].user.is_number());
    assert_eq!(members[0].info.as_ref().unwrap().as_str(), numeric.info.as_ref().unwrap().as_str());
    assert_eq!(members[1].info, None);
}

pub async fn members_are_listed_once_each_sorted_by_user_id(engine: &Engine) {
    let (store_a, store_b) = (engine.connect().await, engine.connect().await);
    let (a, b) = (NodeId::new("node-a"), NodeId::new("node-b"));
    let room = channel("conf:presence-sorted");
    for (conn, user) in (1..).zip(["carol", "alice", "dave", "bob"]) {
        store_a.join(&a, &room, &member(json!(user)), conn).await.unwrap();
        store_b.join(&b, &room, &member(json!(user)), conn).await.unwrap();
    }
    assert_eq!(users(&*store_a, &room).await, ["alice", "bob", "carol", "dave"]);
    assert!(users(&*store_a, &channel("conf:presence-sorted-other")).await.is_empty(), "channels are apart");
}

/// Node `dead` holds alice twice and bob once in `room`, carol in `hall`;
/// node `alive` holds bob in `room`.
async fn populate_with_a_dead_node(engine: &Engine) -> (NodeId, ChannelName, ChannelName) {
    let (dead_store, alive_store) = (engine.connect().await, engine.connect().await);
    let (dead, alive) = (NodeId::new("node-dead"), NodeId::new("node-alive"));
    let (room, hall) = (channel("conf:presence-dead-room"), channel("conf:presence-dead-hall"));
    dead_store.join(&dead, &room, &member_with(json!(1), json!({"n": 1})), 1).await.unwrap();
    dead_store.join(&dead, &room, &member(json!(1)), 2).await.unwrap();
    dead_store.join(&dead, &room, &member(json!("bob")), 3).await.unwrap();
    dead_store.join(&dead, &hall, &member(json!("carol")), 4).await.unwrap();
    alive_store.join(&alive, &room, &member(json!("bob")), 1).await.unwrap();
    (dead, room, hall)
}

fn expected_leaves(room: &ChannelName, hall: &ChannelName) -> Vec<PresenceChange> {
    vec![
        PresenceChange { channel: hall.clone(), member: member(json!("carol")) },
        PresenceChange { channel: room.clone(), member: member_with(json!(1), json!({"n": 1})) },
    ]
}

fn sorted(mut changes: Vec<PresenceChange>) -> Vec<PresenceChange> {
    changes.sort_by(|x, y| (&x.channel, &x.member.user).cmp(&(&y.channel, &y.member.user)));
    changes
}

pub async fn removing_a_dead_node_reports_each_last_connection_once(engine: &Engine) {
    let (dead, room, hall) = populate_with_a_dead_node(engine).await;
    let survivor = engine.connect().await;
    let leaves = sorted(survivor.remove_node(&dead).await.unwrap());
    assert_eq!(leaves, expected_leaves(&room, &hall));
    assert!(leaves[1].member.user.is_number(), "the leave shows the id as it was sent");
    assert_eq!(users(&*survivor, &room).await, ["bob"], "bob is still connected to the live node");
    assert!(survivor.members(&hall).await.unwrap().is_empty());
    assert!(survivor.remove_node(&dead).await.unwrap().is_empty(), "nothing is reported twice");
    assert!(!survivor.leave(&dead, &room, &UserId::new("bob"), 3).await.unwrap(), "its connections are gone");
}

pub async fn concurrent_removals_of_one_dead_node_report_each_member_once(engine: &Engine) {
    let (dead, room, hall) = populate_with_a_dead_node(engine).await;
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (store, barrier, dead) = (engine.connect().await, barrier.clone(), dead.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.remove_node(&dead).await.unwrap()
        }));
    }
    let mut leaves = Vec::new();
    for task in tasks {
        leaves.extend(task.await.unwrap());
    }
    assert_eq!(sorted(leaves), expected_leaves(&room, &hall), "each member once, across both callers");
    assert_eq!(users(&*engine.connect().await, &room).await, ["bob"]);
}

/// A paused node that wakes up while a survivor removes it (its lease ran
/// out) may join again meanwhile; whatever the interleaving, its next
/// removal leaves nothing of it behind: no ghost member.
pub async fn a_node_joining_while_it_is_removed_leaves_nothing_after_its_next_removal(engine: &Engine) {
    const ROUNDS: u64 = 50;
    let (paused, survivor) = (engine.connect().await, engine.connect().await);
    let node = NodeId::new("node-paused");
    let barrier = Arc::new(Barrier::new(2));
    for round in 0..ROUNDS {
        let room = channel(&format!("conf:presence-resurrection-{}", round % 5));
        paused.join(&node, &room, &member(json!("early")), 2 * round).await.unwrap();
        let joining = {
            let (paused, barrier, node, room) = (paused.clone(), barrier.clone(), node.clone(), room.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                paused.join(&node, &room, &member(json!("late")), 2 * round + 1).await.unwrap();
            })
        };
        barrier.wait().await;
        survivor.remove_node(&node).await.unwrap();
        joining.await.unwrap();
        survivor.remove_node(&node).await.unwrap();
        assert!(
            survivor.members(&room).await.unwrap().is_empty(),
            "round {round}: a ghost of the removed node"
        );
    }
}
