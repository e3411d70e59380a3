//! The WebSocket gateway: upgrade, one session per connection, its writer.
//!
//! `upgrade.rs` accepts the HTTP upgrade; `session.rs` reads and decodes
//! frames; `commands.rs` runs each command; `writer.rs` drains the outbox
//! into the socket.

mod commands;
mod connection;
mod pusher;
mod rate;
mod session;
mod upgrade;
mod writer;

pub(crate) use commands::{check_data, hub_error};
pub use pusher::accept as accept_pusher;
pub use upgrade::accept;
