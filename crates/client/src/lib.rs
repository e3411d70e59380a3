//! The Fanfare Rust client for the native protocol.
//!
//! It stands at the far end of the message path: it sends the commands the
//! gateway decodes, and it receives the frames the hub fanned out. The
//! server binary's `fanfare bench` and the end-to-end tests use it, and so
//! can applications.
//!
//! ```no_run
//! # async fn example() -> Result<(), fanfare_client::ClientError> {
//! use fanfare_client::{Client, ClientOptions, PublishOptions, SubscriptionEvent};
//!
//! let client = Client::connect(ClientOptions::new("ws://127.0.0.1:6001/connection/websocket")).await?;
//! // Clients may publish only where the namespace allows it, e.g. a `chat`
//! // namespace with `publish = "subscribers"` (by default only the HTTP API may).
//! let mut lobby = client.subscribe("chat:lobby", None).await?;
//! client.publish("chat:lobby", &serde_json::json!({"text": "hello"}), PublishOptions::default()).await?;
//! while let Some(event) = lobby.next().await {
//!     if let SubscriptionEvent::Publication { publication, .. } = event {
//!         println!("{}: {:?}", publication.offset, publication.data);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `client.rs`: [`Client`], the cheap, cloneable handle. Each call becomes
//!   a request on a bounded channel to the connection task and waits for its
//!   answer on a oneshot, within `request_timeout`.
//! - `connection.rs`: the task that owns the socket, matches replies to
//!   commands by `id`, routes pushes to subscriptions, and reconnects.
//! - `socket.rs`: one WebSocket: open + `connect`, read with an idle timer,
//!   decide from the close code whether to reconnect.
//! - `subscription.rs`: [`Subscription`] and the task's sending half, which
//!   tracks the position and drops duplicates.
//! - `tls.rs`: the TLS of `wss://` URLs ([`default_tls`], [`trusting`]).
//! - `backoff.rs`, `options.rs`, `state.rs`, `error.rs`: the settings
//!   ([`Backoff`], [`ClientOptions`]), the observable [`ConnectionState`],
//!   and the one [`ClientError`].
//!
//! # Reconnecting
//!
//! A connection ends for one of three reasons:
//!
//! 1. a close code in 4000–4499 (or 1000 and 1009, which the protocol's
//!    close-code table also marks "do not reconnect"), a `disconnect` push
//!    with `reconnect: false` and no close frame, or [`Client::close`]: the
//!    client stops. The state
//!    becomes [`ConnectionState::Closed`], waiting calls fail with
//!    [`ClientError::Closed`], and every subscription ends with
//!    `Unsubscribed`;
//! 2. a close code in 4500–4999 (or any other code outside 4000–4499 the
//!    table does not list, such as 1001 or 1011), a network error, or a
//!    socket that closed without a close frame: the client reconnects;
//! 3. silence: the server pings every `ping_interval_ms` (from the `connect`
//!    reply), so hearing nothing for twice that plus
//!    [`ClientOptions::ping_margin`] means the connection is dead: reconnect.
//!
//! To reconnect, calls waiting for a reply fail with
//! [`ClientError::Disconnected`] (the command may or may not have been
//! applied; an idempotency key makes a retried publish safe). Then attempt
//! `n` waits a delay drawn from `[c/2, c]` with
//! `c = min(backoff.initial × 2^(n-1), backoff.max)` ("equal jitter", see
//! [`Backoff`]), but never less than a `reconnect_after_ms` the server sent
//! in its `disconnect` push. Calls made while waiting fail at once with
//! `Disconnected`. It then opens a socket and sends `connect`, to the
//! endpoint the last connection used; each failed attempt moves on to the
//! next one of [`ClientOptions::url`] and [`ClientOptions::fallback_urls`]
//! (round-robin), so the client of a cluster node that died reaches
//! another node. A refusal that
//! cannot succeed unchanged (bad or expired token) stops the client with
//! code 4001, any other failure counts as a failed attempt. Once connected,
//! every live subscription is resubscribed with `since` = the position of
//! the last publication the client queued for it, so the server replays
//! what was missed; its `Subscribed { recovered }` event tells the
//! application whether the replay is complete. Attempts count up until a
//! connection is restored with every resubscribe answered.
//!
//! Whatever the server sends, a subscription never yields a publication at
//! or below the last offset it yielded in the same epoch.
//!
//! # Backpressure
//!
//! Every queue is bounded: requests (`command_buffer`) and each
//! subscription's events (`subscription_buffer`). When an application
//! stops reading a subscription, the connection task waits for room rather
//! than drop anything, so it stops reading the socket; the server then
//! disconnects the connection as a slow consumer (4501) and the client
//! reconnects and resumes from the last publication it queued. A slow
//! reader costs a reconnect and a replay, never a lost message. While the
//! task waits, other calls on the same client wait too (up to their
//! timeout), so read subscriptions in their own tasks.

mod backoff;
mod client;
mod connection;
mod error;
mod options;
mod socket;
mod state;
mod subscription;
mod tls;

pub use backoff::Backoff;
pub use client::Client;
pub use error::ClientError;
pub use fanfare_protocol::native::moderation::{ModerationAction, ModerationTarget, SanctionAction};
pub use fanfare_protocol::native::{
    ConnectResult, HistoryParams, HistoryResult, Member, PresenceResult, PublishResult, SubscribeResult,
};
pub use fanfare_protocol::{Epoch, ErrorCode, ErrorInfo, JsonData, Publication, StreamPosition};
pub use options::{ClientOptions, PublishOptions};
/// The TLS library of [`ClientOptions::tls`], for applications that build
/// their own configuration.
pub use rustls;
pub use state::ConnectionState;
pub use subscription::{Subscription, SubscriptionEvent, UnsubscribeReason};
pub use tls::{default_tls, trusting};
