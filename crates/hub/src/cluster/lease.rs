//! Node leases: every node renews its own and cleans up after dead ones.
//!
//! Every `heartbeat`:
//! 1. Renew this node's lease in the [`NodeRegistry`](fanfare_cluster::NodeRegistry)
//!    with what `/api/nodes` shows about it.
//! 2. If the registry registered this node anew since its last answered
//!    heartbeat (it was silent longer than the lease — paused, cut off —
//!    and a survivor removed its members; a late heartbeat it had given up
//!    on may have done the re-registering), record everything it holds
//!    again: its members (announcing those who are new again) and its
//!    subscription counts.
//! 3. Claim the nodes whose lease expired. The registry gives each to one
//!    claimer only; that node removes the dead node's members and counts
//!    and announces each leave and vacated channel exactly once, then
//!    releases the claim. Until then a claimed node that comes back from a
//!    pause is told it is registered (step 2 waits), so it records its
//!    members again after their removal, never before it (which the
//!    removal would undo, leaving a live node's members unlisted).

use std::sync::Arc;

use fanfare_cluster::{NodeId, NodeInfo};
use fanfare_protocol::native::Member;
use metrics::counter;

use crate::cluster::members;
use crate::cluster::occupancy;
use crate::events::HubEvent;
use crate::hub::{Shared, now_ms};

pub(crate) async fn run(shared: Arc<Shared>) {
    let Some(cluster) = &shared.cluster else { return };
    let mut ticks = tokio::time::interval(cluster.options.heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        beat(&shared).await;
    }
}

/// One heartbeat: steps 1–3.
pub(crate) async fn beat(shared: &Arc<Shared>) {
    let Some(cluster) = &shared.cluster else { return };
    let registry = &cluster.engines.registry;
    match registry.heartbeat(&node_info(shared), cluster.options.node_lease).await {
        Ok(true) => {}
        Ok(false) => {
            if cluster.started_at_ms + 1000 < now_ms() {
                tracing::warn!("this node's lease had expired: recording its members and counts again");
                counter!("fanfare_cluster_lease_resurrections_total").increment(1);
            }
            announce_again(shared).await;
        }
        Err(error) => {
            tracing::warn!(%error, "heartbeat failed");
            return;
        }
    }
    match registry.claim_expired().await {
        Ok(dead) => {
            for node in dead {
                clean_up_after(shared, &node).await;
            }
        }
        Err(error) => tracing::warn!(%error, "could not claim expired nodes"),
    }
}

fn node_info(shared: &Shared) -> NodeInfo {
    let cluster = shared.cluster.as_ref().expect("only clustered hubs beat");
    let (channels, subscriptions) = shared.registry.totals();
    NodeInfo {
        id: cluster.engines.node.clone(),
        advertise: cluster.options.advertise.clone(),
        version: cluster.options.version.clone(),
        started_at_ms: cluster.started_at_ms,
        heartbeat_ms: now_ms(),
        connections: shared.connections.len() as u64,
        subscriptions: subscriptions as u64,
        channels: channels as u64,
    }
}

/// Step 2.
async fn announce_again(shared: &Arc<Shared>) {
    let Some(cluster) = &shared.cluster else { return };
    for (channel, members) in shared.registry.joined_members() {
        let options = (shared.policy)(&channel);
        for (conn, member) in members {
            match members::join(shared, &channel, &member, conn, options.join_leave).await {
                Ok(_) => {}
                Err(error) => tracing::warn!(%channel, %error, "could not record a member again"),
            }
        }
    }
    for (channel, _) in shared.registry.channels("") {
        cluster.occupancy.mark(&channel);
    }
}

/// A clean stop: this node's members and counts go at once (announced
/// like a dead node's), held closings are released now, then its lease.
pub(crate) async fn leave(shared: &Arc<Shared>) {
    let Some(cluster) = &shared.cluster else { return };
    let node = cluster.engines.node.clone();
    clean_up_after(shared, &node).await;
    super::announce::flush(shared).await;
}

/// Step 3 for one dead node (or this one, stopping), then its release
/// from the registry.
async fn clean_up_after(shared: &Arc<Shared>, node: &NodeId) {
    let Some(cluster) = &shared.cluster else { return };
    tracing::warn!(%node, "a node's lease expired: removing its members and subscriptions");
    let engines = &cluster.engines;
    match engines.presence.remove_node(node).await {
        Ok(leaves) => {
            for leave in leaves {
                let announce = (shared.policy)(&leave.channel).join_leave;
                let Member { user, .. } = leave.member;
                members::announce_leave(shared, &leave.channel, &user, announce).await;
            }
        }
        Err(error) => tracing::error!(%node, %error, "could not remove a dead node's members"),
    }
    match engines.occupancy.remove_node(node).await {
        Ok(changes) => {
            for change in &changes {
                occupancy::emit(shared, change).await;
            }
        }
        Err(error) => tracing::error!(%node, %error, "could not remove a dead node's subscriptions"),
    }
    if let Err(error) = engines.registry.leave(node).await {
        tracing::warn!(%node, %error, "could not release a node from the registry; its claim will expire");
    }
    if *node != engines.node {
        shared.events.emit_surely(HubEvent::NodeGone { node: node.clone() }).await;
    }
}
