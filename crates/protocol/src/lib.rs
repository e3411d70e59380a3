//! Fanfare's wire vocabulary, shared by every other crate.
//!
//! This crate sits at the start of the message path: a WebSocket frame or an
//! HTTP body is decoded here into a typed command, and a publication is
//! encoded here, once, into the bytes every subscriber receives. It does no
//! I/O and knows no runtime.
//!
//! - [`channel`]: validated channel names and their namespace.
//! - [`cluster`]: the live frames nodes of a cluster exchange, and the engine key names.
//! - [`position`]: `(epoch, offset)`, the stream position that makes recovery possible.
//! - [`publication`]: what a channel carries, and the raw JSON payload type.
//! - [`error`]: the one error-code table (code → HTTP status → retry) and the close codes.
//! - [`native`]: the native protocol v1 codec (`docs/protocol.md`).
//! - [`pusher`]: the Pusher Channels v7 codec and signatures (`docs/pusher.md`).
//! - [`stamp`]: when a publication was accepted, carried by its frames to measure delivery latency.
//! - [`user_id`]: a user's id, keyed by its text, remembering whether it was a JSON number.
//! - [`websocket`]: WebSocket framing, server side (RFC 6455).

pub mod channel;
pub mod cluster;
pub mod direct;
pub mod error;
pub mod native;
pub mod position;
pub mod publication;
pub mod pusher;
pub mod stamp;
pub mod user_id;
pub mod websocket;

pub use channel::{ChannelName, ChannelNameError};
pub use error::{CloseCode, ErrorCode, ErrorInfo};
pub use position::{Epoch, StreamPosition};
pub use publication::{Deletion, Frame, JsonData, Publication};
pub use stamp::Stamp;
pub use user_id::UserId;
