//! The Pusher Channels protocol, version 7: the wire codec and the
//! signatures, so that unmodified pusher-js clients and Pusher server SDKs
//! can talk to Fanfare.
//!
//! Every WebSocket frame is one JSON object, the *envelope*:
//! `{"event": String, "channel"?: String, "data"?: String|Object, "user_id"?: String}`.
//! Events named `pusher:*` are the protocol's own (subscribe, ping, signin…),
//! `pusher_internal:*` are server-to-client bookkeeping (presence members,
//! subscription counts, watchlists), `client-*` are events one client sends
//! to the others on a private or presence channel, and any other name is an
//! application event triggered through the HTTP API.
//!
//! **Double encoding.** The server sends `data` as a JSON *string* holding
//! JSON text (`"data":"{\"socket_id\":\"1.2\"}"`); pusher-js parses the
//! envelope, then tries to parse `data` again and keeps the raw string if
//! that fails. Clients send `data` of `pusher:*` events as plain objects,
//! though some send strings; the decoder accepts both.
//!
//! - [`PusherChannel`], [`ChannelKind`]: channel kinds by name prefix; name and event-name rules.
//! - [`ClientFrame`]: decoding client → server frames.
//! - `encode_*`: server → client frames, each built once into a [`Frame`](crate::Frame).
//! - [`PresenceMember`], [`UserData`]: what presence `channel_data` and signin `user_data` carry.
//! - [`sign`], [`verify_channel_auth`], [`verify_user_auth`], [`sign_webhook`]: HMAC-SHA256.
//! - [`verify_api_request`]: the HTTP API's `auth_signature` (auth_version 1.0).
//! - [`SocketId`]: `<u64>.<u64>`, the id the signatures bind to.
//! - [`PusherCloseCode`], [`PusherErrorCode`]: the codes clients can see.
//!
//! Pure functions, no I/O. Where the published reference and pusher-js
//! disagree, this module follows pusher-js 8.x.

mod api_request;
mod channel;
mod client_frame;
mod error;
mod server_frame;
mod signature;
mod socket_id;
mod user_data;

pub use api_request::{
    API_AUTH_VERSION, API_TIMESTAMP_TOLERANCE_SECS, ApiAuthError, ApiRequest, sign_api_request,
    verify_api_request,
};
pub use channel::{
    ChannelKind, EventNameError, MAX_EVENT_NAME_LEN, MAX_PUSHER_CHANNEL_NAME_LEN, PusherChannel,
    PusherChannelError, SERVER_TO_USER_PREFIX, validate_client_event_name, validate_event_name,
};
pub use client_frame::ClientFrame;
pub use error::{PusherCloseCode, PusherDecodeError, PusherErrorCode};
pub use server_frame::{
    WatchlistEvent, WatchlistStatus, encode_cache_miss, encode_connection_established, encode_error,
    encode_error_waiting, encode_event, encode_member_added, encode_member_removed, encode_ping, encode_pong,
    encode_presence_subscription_succeeded, encode_signin_success, encode_subscription_count,
    encode_subscription_error, encode_subscription_succeeded, encode_watchlist_events, event_data_string,
};
pub use signature::{sign, sign_webhook, verify_channel_auth, verify_user_auth, verify_webhook};
pub use socket_id::{SocketId, SocketIdError};
pub use user_data::{MAX_WATCHLIST_LEN, PresenceMember, UserData};
