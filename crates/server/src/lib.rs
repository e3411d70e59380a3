//! The Fanfare server: configuration, authentication, the WebSocket
//! gateway, the HTTP API, metrics and shutdown around the hub.
//!
//! Where a message goes, by file:
//! - decoded: `gateway/session.rs` (WebSocket frames) and `api/native.rs`
//!   (HTTP) into typed commands of `fanfare-protocol`;
//! - given its offset and fanned out: `fanfare-hub` (`publish.rs`) over a
//!   `fanfare-store` history store;
//! - written to the socket: `gateway/connection.rs`, draining the outbox
//!   through `gateway/socket.rs` (our WebSocket framing).
//!
//! Modules:
//! - [`config`]: the `fanfare-config` crate (raw TOML + environment + flags
//!   → validated [`config::Settings`]), re-exported under its old path.
//! - `data_dir/`: the API key and default Pusher app generated on first start.
//! - `auth/`: JWT connection tokens → an `auth::Identity`.
//! - `gateway/`: WebSocket upgrade, one task per connection.
//! - `api/`: the native HTTP API, health, readiness, metrics.
//! - `pusher/`: Pusher Channels compatibility, all of it but the wire codec
//!   and the `[pusher]` settings: apps, the WebSocket session
//!   (`pusher/session/`, on the gateway's driver), the Pusher HTTP API,
//!   signed-in users, webhooks.
//! - [`webhooks`]: webhook delivery (batches, the signature, retries, the
//!   journal, dead letters) for the Pusher webhooks and the server's own
//!   `[[webhooks]]` (moderators' actions, refused publications).
//! - `members/`: members channels (who may read and write them, member
//!   changes) and the feed notices their messages send.
//! - `content/`: the namespaces' content rules on client publications
//!   (blocklist, links, the pre-publish hook), checked once before the hub.
//! - `policy.rs`: message checks, namespace permissions, and the one
//!   mapping of hub errors to wire errors, shared by the gateway and the
//!   HTTP APIs (which do not import each other); `http_error.rs`: the
//!   native HTTP error body, for the API and refused upgrades;
//!   `readiness.rs`: whether the node should get traffic (`/ready`).
//! - `telemetry/`: the Prometheus recorder, and the gauges sampled at each
//!   scrape (outboxes, store, disk, memory).
//! - [`engines`]: the store and, for a cluster node, the cluster's engines,
//!   opened from their URLs.
//! - [`server`]: assembling and running it all, and the graceful shutdown.
//! - `cli/`: `fanfare serve`, `fanfare config check`.

//! - `admin/`: the admin page at `/admin` and the API it reads
//!   (`/api/admin/…`: a server-sent-events stream of stats and a channel's
//!   tail, the recent slow consumers).
//! - `demo/`: `fanfare serve --demo`, the demo pages at `/demo/` (built
//!   on the TypeScript client) and their token endpoint.

// Public only where another target uses them: `main.rs` runs `cli`, the
// end-to-end tests build a server from `config`, `server` and `pusher`,
// the echo example serves `gateway::echo`. Everything else is crate-private
// so that the compiler reports what nothing calls.
pub(crate) mod admin;
pub(crate) mod api;
pub(crate) mod auth;
pub mod cli;
pub use fanfare_config as config;
pub(crate) mod content;
pub(crate) mod data_dir;
pub(crate) mod demo;
pub mod engines;
pub mod gateway;
pub(crate) mod http_error;
pub mod limits;
pub(crate) mod logging;
pub(crate) mod members;
pub mod moderation;
pub(crate) mod plain_listener;
pub(crate) mod policy;
pub mod pusher;
pub(crate) mod readiness;
pub mod server;
pub(crate) mod telemetry;
pub mod tls;
pub mod webhooks;
