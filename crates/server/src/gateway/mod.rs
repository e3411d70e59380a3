//! The WebSocket gateway: upgrade, one task per connection.
//!
//! `upgrade.rs` accepts the HTTP upgrade; `connection.rs` runs the
//! connection (its messages, its outbox, its timers) over `socket.rs`'s
//! framing, holding a place of `capacity.rs` (the node's connection limit);
//! before the upgrade, `handshake_rate.rs` paces handshakes per
//! client address (`client_addr.rs`) and per node, and
//! `connection_counts.rs` counts connections per address and per user;
//! `session.rs` decodes native commands and `commands.rs` runs
//! them, `replies.rs` answers pipelined publishes in order; `closing.rs`
//! ends it. The Pusher session (`crate::pusher::session`) runs on the same
//! driver: `upgrade`, `connection`, `closing`, `rate` and `subscriptions`
//! are shared with it.

pub(crate) mod capacity;
pub(crate) mod client_addr;
pub(crate) mod closing;
mod commands;
pub(crate) mod connection;
pub(crate) mod connection_counts;
mod conversation;
pub mod echo;
pub(crate) mod handshake_rate;
mod message_actions;
pub(crate) mod rate;
mod replies;
mod session;
pub(crate) mod slow_consumers;
mod socket;
pub(crate) mod subscriptions;
pub(crate) mod upgrade;

pub(crate) use upgrade::accept;
