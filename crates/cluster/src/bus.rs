//! The [`ClusterBus`]: live frames between the nodes of a cluster.

use bytes::Bytes;
use fanfare_protocol::ChannelName;
use tokio::sync::mpsc;

use crate::{ClusterError, NodeId};

/// What arrives from the bus, in the order the engine delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// A live frame of a watched channel (`fanfare_protocol::cluster`).
    Live { channel: ChannelName, frame: Bytes },
    /// A control message for this node (sent to it, or to every node).
    Control { message: Bytes },
    /// The link to the engine is lost: frames published from now until
    /// [`BusEvent::Resumed`] may never arrive.
    Down,
    /// The link is back and every watch is active again. Frames published
    /// while it was down may be lost: every watched channel's position
    /// must be checked against the store.
    Resumed,
}

/// Live frames of channels between nodes, and control messages.
///
/// # Contract
/// - **Watch before read.** [`watch`](ClusterBus::watch) returns only once
///   the engine has confirmed the subscription: every frame published to
///   the channel after it returns is delivered, unless the link breaks
///   (then [`BusEvent::Down`] and later [`BusEvent::Resumed`] are
///   delivered, in that order). Watching a watched channel is a no-op.
/// - **Order.** Frames of one channel arrive in the order the engine
///   accepted them, from every publisher (the store's append script
///   included), and each at most once.
/// - **Loopback.** A node receives its own frames for channels it watches;
///   nodes filter by content (offsets, excluded connections), never by
///   sender.
/// - **Lossy.** A frame may be lost, but never without the loss being
///   detectable: either by a gap in offsets, or by `Down`/`Resumed`.
/// - **Bounded.** Events go through one bounded queue; when the consumer
///   falls behind, the bus stops reading (the engine then drops the link,
///   which is reported as above), it never buffers without bound.
/// - **Control.** [`send`](ClusterBus::send) reaches the named node, or
///   every node (this one included) when `to` is `None`, at most once.
#[async_trait::async_trait]
pub trait ClusterBus: Send + Sync + 'static {
    /// Starts delivering `channel`'s live frames to this node.
    async fn watch(&self, channel: &ChannelName) -> Result<(), ClusterError>;

    /// Stops delivering `channel`'s live frames (some already on their way
    /// may still arrive).
    async fn unwatch(&self, channel: &ChannelName) -> Result<(), ClusterError>;

    /// Publishes a live frame (ephemeral, join, leave) to every node that
    /// watches the channel, this one included. Durable publications are
    /// published by the store's append, not through this.
    async fn publish(&self, channel: &ChannelName, frame: Vec<u8>) -> Result<(), ClusterError>;

    /// Sends a control message to one node, or to every node.
    async fn send(&self, to: Option<&NodeId>, message: Vec<u8>) -> Result<(), ClusterError>;

    /// The receiving end of the bus; only the first caller gets it.
    fn events(&self) -> Option<mpsc::Receiver<BusEvent>>;

    /// Whether the link is up now (for `/ready`).
    fn is_up(&self) -> bool;
}
