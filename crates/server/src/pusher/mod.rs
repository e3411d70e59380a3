//! Pusher Channels protocol v7 compatibility: apps, the Pusher HTTP API,
//! signed-in users and watchlists, and webhooks. The Pusher WebSocket
//! session lives with the other sessions in `gateway/pusher.rs`.
//!
//! Pusher apps map onto the same hub as the native protocol: a Pusher
//! channel `name` of an app with prefix `p` is the hub channel `p` + `name`,
//! so native and Pusher clients of the same channel see each other's
//! messages.

pub mod api;
pub mod apps;
pub mod users;
pub mod webhooks;
