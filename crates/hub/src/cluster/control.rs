//! Requests to every node, with replies: an answer either covers every
//! live node or names the nodes that did not answer in time. Used to close
//! a user's connections, or one connection, wherever they are; and,
//! without replies, to hand a shadow-banned user's publication to every
//! node (`shadow.rs`).
//!
//! 1. The asking node lists the live nodes (the registry), registers a
//!    request id, and sends the request to every node on the bus (itself
//!    included, so its own connections are handled the same way).
//! 2. Each node acts on it and replies to the asking node.
//! 3. The asking node waits until every listed node replied or
//!    `request_timeout` passed; the report lists who did not reply.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use fanfare_cluster::{ClusterError, NodeId};
use fanfare_protocol::cluster::LiveFrame;
use fanfare_protocol::{ChannelName, CloseCode};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::hub::Shared;
use crate::outbox::CloseReason;

/// What disconnecting a user across the cluster did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DisconnectReport {
    /// Connections closed, on every node that answered.
    pub disconnected: usize,
    /// Live nodes that did not answer in time: their connections of the
    /// user may still be open.
    pub unreached: Vec<NodeId>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ControlMessage {
    /// `code`: the close code (absent from older nodes: 4003).
    Disconnect {
        request: u64,
        from: NodeId,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
    },
    Disconnected {
        request: u64,
        node: NodeId,
        closed: usize,
    },
    /// Close the connection `conn` (whichever node holds it); replied to
    /// with `Disconnected`.
    CloseConnection {
        request: u64,
        from: NodeId,
        conn: u64,
        code: u16,
    },
    /// A shadow-banned user's publication, an ephemeral live frame (`E…`),
    /// for the subscribers of `channel` that are connections of `users`;
    /// with `others`, for every subscriber but those (`others.rs`). No
    /// reply. (A node older than `others` delivers it to `users` only.)
    Deliver {
        channel: ChannelName,
        users: Vec<String>,
        frame: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        others: bool,
    },
}

/// Requests this node is waiting on: id → where replies go.
#[derive(Default)]
pub(crate) struct Requests {
    next: std::sync::atomic::AtomicU64,
    waiting: Mutex<HashMap<u64, mpsc::Sender<(NodeId, usize)>>>,
}

/// Step 2 (and the replies of step 3): a control message from the bus.
pub(crate) fn on_message(shared: &std::sync::Arc<Shared>, message: Bytes) {
    let Some(cluster) = &shared.cluster else { return };
    let message: ControlMessage = match serde_json::from_slice(&message) {
        Ok(message) => message,
        Err(error) => {
            tracing::warn!(%error, "dropped a malformed control message");
            return;
        }
    };
    match message {
        ControlMessage::Disconnect { request, from, user, code } => {
            let code = code.and_then(CloseCode::from_code).unwrap_or(CloseCode::Disconnected);
            let closed = shared.connections.close_user(&user, CloseReason::new(code));
            reply_closed(shared, cluster.node().clone(), request, from, closed);
        }
        ControlMessage::CloseConnection { request, from, conn, code } => {
            let code = CloseCode::from_code(code).unwrap_or(CloseCode::Disconnected);
            let closed = shared.connections.close_connection(conn, CloseReason::new(code));
            reply_closed(shared, cluster.node().clone(), request, from, closed);
        }
        ControlMessage::Deliver { channel, users, frame, others } => {
            match LiveFrame::decode(frame.as_bytes()) {
                Ok(frame) if others => crate::others::deliver_to_others(shared, &channel, &users, &frame),
                Ok(frame) => crate::shadow::deliver_to_users(shared, &channel, &users, &frame),
                Err(error) => tracing::warn!(%error, "dropped a malformed ephemeral delivery"),
            }
        }
        ControlMessage::Disconnected { request, node, closed } => {
            if let Some(waiting) = cluster.requests.waiting.lock().get(&request) {
                let _ = waiting.try_send((node, closed));
            }
        }
    }
}

/// Step 2's reply: `closed` connections, to the asking node `to`.
fn reply_closed(shared: &std::sync::Arc<Shared>, node: NodeId, request: u64, to: NodeId, closed: usize) {
    let reply = ControlMessage::Disconnected { request, node, closed };
    let shared = shared.clone();
    tokio::spawn(async move {
        let Some(cluster) = &shared.cluster else { return };
        let bytes = serde_json::to_vec(&reply).unwrap_or_default();
        if let Err(error) = cluster.engines.bus.send(Some(&to), bytes).await {
            tracing::warn!(%error, "could not reply to a disconnect request");
        }
    });
}

/// Steps 1 and 3 for disconnecting a user.
pub(crate) async fn disconnect_user(
    shared: &Shared,
    user: &str,
    code: CloseCode,
) -> Result<DisconnectReport, ClusterError> {
    let message = |request, from| ControlMessage::Disconnect {
        request,
        from,
        user: user.to_owned(),
        code: Some(code.code()),
    };
    ask_every_node(shared, message, || shared.connections.close_user(user, CloseReason::new(code))).await
}

/// Steps 1 and 3 for closing the connection `conn`, wherever it is.
pub(crate) async fn close_connection(
    shared: &Shared,
    conn: u64,
    code: CloseCode,
) -> Result<DisconnectReport, ClusterError> {
    let message = |request, from| ControlMessage::CloseConnection { request, from, conn, code: code.code() };
    ask_every_node(shared, message, || shared.connections.close_connection(conn, CloseReason::new(code)))
        .await
}

/// Hands a shadow-banned user's publication (`shadow.rs`) to every node,
/// this one included; no reply is awaited.
pub(crate) async fn deliver_to_users(
    shared: &Shared,
    channel: &ChannelName,
    users: Vec<String>,
    frame: &LiveFrame,
) -> Result<(), ClusterError> {
    deliver(shared, channel, users, frame, false).await
}

/// Hands an ephemeral push for everyone but `users` (`others.rs`) to every
/// node, this one included; no reply is awaited.
pub(crate) async fn deliver_to_others(
    shared: &Shared,
    channel: &ChannelName,
    users: Vec<String>,
    frame: &LiveFrame,
) -> Result<(), ClusterError> {
    deliver(shared, channel, users, frame, true).await
}

async fn deliver(
    shared: &Shared,
    channel: &ChannelName,
    users: Vec<String>,
    frame: &LiveFrame,
    others: bool,
) -> Result<(), ClusterError> {
    let Some(cluster) = &shared.cluster else { return Ok(()) };
    let frame = String::from_utf8(frame.encode()).expect("a live frame of JSON and numbers is UTF-8");
    let message = ControlMessage::Deliver { channel: channel.clone(), users, frame, others };
    cluster.engines.bus.send(None, serde_json::to_vec(&message).unwrap_or_default()).await
}

/// Steps 1 and 3: sends `message(request, this node)` to every node and
/// adds up their replies; when it cannot be sent, `locally` closes this
/// node's connections at least.
async fn ask_every_node(
    shared: &Shared,
    message: impl FnOnce(u64, NodeId) -> ControlMessage,
    locally: impl FnOnce() -> usize,
) -> Result<DisconnectReport, ClusterError> {
    let Some(cluster) = &shared.cluster else { return Ok(DisconnectReport::default()) };
    let engines = &cluster.engines;
    let mut expected: BTreeSet<NodeId> = engines.registry.nodes().await?.into_iter().map(|n| n.id).collect();
    expected.insert(engines.node.clone());
    let request = cluster.requests.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (tx, mut replies) = mpsc::channel(expected.len().max(1) * 2);
    cluster.requests.waiting.lock().insert(request, tx);
    let message = message(request, engines.node.clone());
    let sent = engines.bus.send(None, serde_json::to_vec(&message).unwrap_or_default()).await;
    let mut report = DisconnectReport::default();
    if sent.is_ok() {
        let deadline = tokio::time::Instant::now() + cluster.options.request_timeout;
        while !expected.is_empty() {
            let Ok(Some((node, closed))) = tokio::time::timeout_at(deadline, replies.recv()).await else {
                break;
            };
            if expected.remove(&node) {
                report.disconnected += closed;
            }
        }
    }
    cluster.requests.waiting.lock().remove(&request);
    if let Err(error) = sent {
        // Nothing went out: close this node's own connections at least.
        tracing::warn!(%error, "the disconnect request could not be sent to the other nodes");
        report.disconnected += locally();
        expected.remove(&engines.node);
    }
    report.unreached = expected.into_iter().collect();
    Ok(report)
}
