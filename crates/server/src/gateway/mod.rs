//! The WebSocket gateway: upgrade, one task per connection.
//!
//! `upgrade.rs` accepts the HTTP upgrade; `connection.rs` runs the
//! connection (its messages, its outbox, its timers) over `socket.rs`'s
//! framing; `session.rs` decodes native commands and `commands.rs` runs
//! them, `replies.rs` answers pipelined publishes in order (`pusher/` does
//! the same for Pusher); `closing.rs` ends it.

mod closing;
mod commands;
mod connection;
pub mod echo;
mod pusher;
mod rate;
mod replies;
mod session;
mod socket;
mod subscriptions;
mod upgrade;

pub(crate) use pusher::accept as accept_pusher;
pub(crate) use upgrade::accept;
