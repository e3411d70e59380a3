//! Presence in a cluster: the engine decides first join and last leave.
//!
//! 1. A subscription that joins presence records its connection in the
//!    [`PresenceStore`](fanfare_cluster::PresenceStore) before the
//!    subscribe is answered. The engine answers whether it was the user's
//!    first connection anywhere; the engine publishes the `join` frame in
//!    the same atomic step (so the pushes of a channel reach every node in
//!    the order the engine decided them: a leave decided on one node and a
//!    join on another never arrive swapped), and only the node that got
//!    `true` emits `member_added`: of two nodes that see the user join at
//!    once, exactly one announces it.
//! 2. The subscribe reply lists the channel's members as the engine has
//!    them, this connection included.
//! 3. Leaves are queued (an unsubscribe or a closing connection must not
//!    wait for the engine) and applied in order by one task; the engine
//!    publishes the `leave` frame of the user's last connection, and the
//!    node whose leave it was emits `member_removed`.
//! 4. A leave that fails because the engine is unreachable is retried
//!    until it succeeds, so a member is never left behind by a live node.

use std::sync::Arc;
use std::time::Duration;

use fanfare_cluster::{Announced, ClusterError};
use fanfare_protocol::cluster::LiveFrame;
use fanfare_protocol::native::Member;
use fanfare_protocol::{ChannelName, UserId};
use metrics::counter;
use tokio::sync::mpsc;

use crate::events::HubEvent;
use crate::hub::Shared;

/// Leaves waiting to be applied.
const LEAVE_QUEUE: usize = 65_536;

/// A retry of a failed leave waits this long, doubling up to 5 s.
const FIRST_RETRY: Duration = Duration::from_millis(100);

pub(crate) struct Leave {
    pub channel: ChannelName,
    pub user: UserId,
    pub conn: u64,
    pub announce: bool,
}

pub(crate) type LeaveQueue = mpsc::Sender<Leave>;
pub(crate) type LeaveReceiver = mpsc::Receiver<Leave>;

pub(crate) fn leave_queue() -> (LeaveQueue, LeaveReceiver) {
    mpsc::channel(LEAVE_QUEUE)
}

/// Step 1 and 2: returns the members, this one included.
pub(crate) async fn join(
    shared: &Shared,
    channel: &ChannelName,
    member: &Member,
    conn: u64,
    announce: bool,
) -> Result<Vec<Member>, ClusterError> {
    let Some(cluster) = &shared.cluster else { return Ok(Vec::new()) };
    let engines = &cluster.engines;
    let push =
        announce.then(|| LiveFrame::Join { user: member.user.clone(), info: member.info.clone() }.encode());
    if engines.presence.join_pushing(&engines.node, channel, member, conn, push).await? {
        let event = HubEvent::MemberAdded { channel: channel.clone(), user: member.user.to_string() };
        super::announce::opened(shared, Announced::Member(channel.clone(), member.user.clone()), event).await;
    }
    engines.presence.members(channel).await
}

/// The channel's members, as the engine has them.
pub(crate) async fn members_of(shared: &Shared, channel: &ChannelName) -> Result<Vec<Member>, ClusterError> {
    let Some(cluster) = &shared.cluster else { return Ok(Vec::new()) };
    cluster.engines.presence.members(channel).await
}

pub(crate) async fn announce_leave(
    shared: &Arc<Shared>,
    channel: &ChannelName,
    user: &UserId,
    announce: bool,
) {
    if announce {
        publish_frame(shared, channel, LiveFrame::Leave { user: user.clone() }).await;
    }
    leave_event(shared, channel, user).await;
}

/// `member_removed` for the hub's events (the push went already).
async fn leave_event(shared: &Arc<Shared>, channel: &ChannelName, user: &UserId) {
    let event = HubEvent::MemberRemoved { channel: channel.clone(), user: user.to_string() };
    super::announce::closed(shared, Announced::Member(channel.clone(), user.clone()), event).await;
}

async fn publish_frame(shared: &Shared, channel: &ChannelName, frame: LiveFrame) {
    let Some(cluster) = &shared.cluster else { return };
    if let Err(error) = cluster.engines.bus.publish(channel, frame.encode()).await {
        tracing::warn!(%channel, %error, "a presence push could not be published");
    }
}

/// Step 3: queues a leave.
pub(crate) fn queue_leave(shared: &Shared, leave: Leave) {
    let Some(cluster) = &shared.cluster else { return };
    if cluster.leaves.try_send(leave).is_err() {
        counter!("fanfare_cluster_leaves_dropped_total").increment(1);
        tracing::error!("the presence leave queue is full: a member may stay listed until this node stops");
    }
}

/// Steps 3 and 4: the task applying leaves in order.
pub(crate) async fn run_leaves(shared: Arc<Shared>, mut leaves: LeaveReceiver) {
    let Some(cluster) = &shared.cluster else { return };
    let engines = &cluster.engines;
    while let Some(leave) = leaves.recv().await {
        let mut retry = FIRST_RETRY;
        let last = loop {
            let push = leave.announce.then(|| LiveFrame::Leave { user: leave.user.clone() }.encode());
            match engines
                .presence
                .leave_pushing(&engines.node, &leave.channel, &leave.user, leave.conn, push)
                .await
            {
                Ok(last) => break last,
                Err(error) => {
                    tracing::debug!(channel = %leave.channel, %error, "presence leave failed; retrying");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(Duration::from_secs(5));
                }
            }
        };
        if last {
            leave_event(&shared, &leave.channel, &leave.user).await;
        }
    }
}
