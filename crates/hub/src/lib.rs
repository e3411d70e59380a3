//! The hub: where a publication meets its subscribers.
//!
//! On the message path the hub sits between the gateway (one session per
//! connection, in the server crate) and the history store:
//!
//! ```text
//! session / HTTP API ──▶ Hub::publish(_many) ──▶ publish pipeline (publish.rs)
//!                                          ├─▶ HistoryStore::enqueue_many → offsets, durable
//!                                          └─▶ fan-out: encode once, push the same bytes
//!                                              into every subscriber's Outbox (registry.rs)
//! Outbox ──▶ the session's writer task (server crate) ──▶ socket
//! ```
//!
//! - [`Outbox`] (`outbox.rs`): a connection's bounded frame queue; overflow
//!   disconnects the slow consumer instead of slowing the channel.
//! - `registry.rs`: channels and their subscribers, sharded; fan-out.
//! - `publish.rs`: per-shard pipelines that keep each channel in offset order.
//! - `subscribe.rs`: subscribe with recovery from `(epoch, offset)`.
//! - `presence.rs`: members keyed by user, join on first connection, leave on last.
//! - `shaping.rs`: huge-room shaping, a channel's publications sampled once
//!   for all its subscribers; `batch.rs`: the kept ones written together;
//!   `reactions.rs`: reactions counted per window and pushed as one
//!   aggregate.
//! - `shadow.rs`: a shadow-banned user's publications, for that user's eyes only.
//! - `encode.rs`: a message encoded once per protocol among its subscribers.
//! - [`HubEvent`] (`events.rs`): channel lifecycle events for webhooks.
//! - [`Connections`]: every connection, to close by user, one by one, or all
//!   at shutdown.
//! - `cluster/`: the same in a cluster of nodes: fan-out from the cluster
//!   bus with gaps healed from history, presence and occupancy through the
//!   cluster's engines, node leases, requests to every node.
//!
//! The hub knows no sockets, HTTP or wire format beyond "a subscriber has an
//! outbox of encoded frames".

mod appends;
mod batch;
mod close_one;
mod cluster;
mod connections;
mod encode;
mod error;
mod events;
mod hub;
mod options;
mod others;
mod outbox;
mod presence;
mod publish;
mod reactions;
mod registry;
mod shadow;
mod shaping;
mod subscribe;
mod telemetry;

pub use appends::ObservedAppend;
pub use cluster::{ClusterEngines, ClusterOptions, DisconnectReport};
pub use connections::{Connections, OutboxDepth};
pub use encode::{DEFAULT_PUSHER_EVENT, Protocol};
pub use error::HubError;
pub use events::HubEvent;
pub use hub::{ChannelInfo, Hub, Publish, PublishReceipt, Published};
pub use options::{ChannelOptions, ChannelPolicy, HubOptions};
pub use outbox::{CloseReason, Outbox, OutboxLimits, Pushed};
pub use reactions::{MAX_REACTION_BYTES, MAX_REACTION_KINDS, REACTIONS_EVENT};
pub use registry::{ConnId, Subscriber};
pub use shaping::Shaping;
pub use subscribe::Subscribe;
