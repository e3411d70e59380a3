//! The one error-code table.
//!
//! Every error a client can see, over WebSocket or HTTP, is one row here:
//! its stable string code, the HTTP status it maps to, and whether retrying
//! the same request later can succeed. Library crates map their own error
//! enums onto these rows; nothing else invents codes. Close codes for
//! WebSocket connections are listed in [`CloseCode`].

use serde::{Deserialize, Serialize};

/// Declares a code enum and its table in one listing: each variant beside
/// its doc comment and its row, so no second list of the variants can fall
/// out of step. `ALL` holds the listed variants in order; a variant after
/// `not in ALL` has a row but is never sent (the one unknown codes decode to).
macro_rules! code_table {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $row:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $value:expr, )*
        }
        $( not in ALL { $(#[$extra_meta:meta])* $extra:ident => $extra_value:expr, } )?
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )*
            $( $(#[$extra_meta])* $extra, )?
        }

        impl $name {
            pub const ALL: [$name; [$(stringify!($variant)),*].len()] = [$($name::$variant),*];

            const fn row(self) -> $row {
                match self {
                    $( $name::$variant => $value, )*
                    $( $name::$extra => $extra_value, )?
                }
            }
        }
    };
}

/// What the error table says about a code.
struct ErrorRow {
    /// The stable string written on the wire (serde's name of the variant).
    code: &'static str,
    http_status: u16,
    retry: bool,
}

const fn error_row(code: &'static str, http_status: u16, retry: bool) -> ErrorRow {
    ErrorRow { code, http_status, retry }
}

code_table! {
    /// A row of the error table. `docs/protocol.md` §7 and `docs/api.md` §4
    /// list the same rows (`tests/docs.rs` checks them).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ErrorCode: ErrorRow {
        /// The frame or body is not valid JSON or misses a required field.
        BadRequest => error_row("bad_request", 400, false),
        /// The command type is not one this server knows.
        UnknownCommand => error_row("unknown_command", 400, false),
        /// The channel name is not valid.
        InvalidChannel => error_row("invalid_channel", 400, false),
        /// The message or payload is larger than the namespace or server allows.
        MessageTooLarge => error_row("message_too_large", 413, false),
        /// No credentials, or credentials that are not valid (bad signature, wrong key).
        Unauthorized => error_row("unauthorized", 401, false),
        /// The token was valid once but has expired.
        TokenExpired => error_row("token_expired", 401, false),
        /// Authenticated, but not allowed to do this on this channel.
        PermissionDenied => error_row("permission_denied", 403, false),
        /// A command that needs a connected session came before `connect`.
        NotConnected => error_row("not_connected", 400, false),
        /// `connect` sent twice.
        AlreadyConnected => error_row("already_connected", 409, false),
        /// Subscribing to a channel this connection is already subscribed to.
        AlreadySubscribed => error_row("already_subscribed", 409, false),
        /// A command about a channel this connection is not subscribed to.
        NotSubscribed => error_row("not_subscribed", 409, false),
        /// The connection holds the most channels it may.
        TooManyChannels => error_row("too_many_channels", 429, false),
        /// Too many requests; slow down (`retry_after_ms` says for how long).
        RateLimited => error_row("rate_limited", 429, true),
        /// Slow mode is on in this channel: one publication per user per
        /// interval (`retry_after_ms` says when the next one may go).
        SlowMode => error_row("slow_mode", 429, true),
        /// This user, IP or node holds the most connections it may.
        TooManyConnections => error_row("too_many_connections", 429, true),
        /// The user is banned from this channel or namespace.
        Banned => error_row("banned", 403, false),
        /// The user is muted in this channel or namespace: may read, may not publish.
        Muted => error_row("muted", 403, false),
        /// The members channel holds the most members it may (`members.max_members`).
        TooManyMembers => error_row("too_many_members", 409, false),
        /// A user to add is in the most members channels a user may be in
        /// (`members.max_channels_per_user`).
        TooManyMemberships => error_row("too_many_memberships", 409, false),
        /// The namespace's content rules, or its pre-publish hook, rejected the publication.
        ContentRejected => error_row("content_rejected", 422, false),
        /// The channel, user or resource does not exist.
        NotFound => error_row("not_found", 404, false),
        /// The feature is off for this channel's namespace (presence).
        NotAvailable => error_row("not_available", 403, false),
        /// A dependency (the store) failed or is overloaded; retry later.
        Unavailable => error_row("unavailable", 503, true),
        /// The server is shutting down.
        ShuttingDown => error_row("shutting_down", 503, true),
        /// An unexpected failure inside the server.
        Internal => error_row("internal", 500, true),
    }
    not in ALL {
        /// A code this version does not know (sent by a newer server); clients
        /// treat it by its `retry` flag.
        #[serde(other)]
        Unknown => error_row("unknown", 500, false),
    }
}

impl ErrorCode {
    /// The stable string written on the wire.
    pub fn as_str(self) -> &'static str {
        self.row().code
    }

    pub fn http_status(self) -> u16 {
        self.row().http_status
    }

    /// Whether the same request can succeed if sent again later unchanged.
    pub fn retry(self) -> bool {
        self.row().retry
    }
}

/// An error as sent to a client: `{"code", "message", "retry"}`, and
/// `retry_after_ms` when the server knows how long to wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default)]
    pub retry: bool,
    /// The least wait, in milliseconds, before the same request can succeed
    /// (rate limits, slow mode, handshake limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorInfo {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry: code.retry(), retry_after_ms: None }
    }

    /// The same error, saying how long to wait (rounded up to a millisecond).
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after_ms = Some(wait.as_nanos().div_ceil(1_000_000) as u64);
        self
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ErrorInfo {}

/// What the close-code table says about a code.
struct CloseRow {
    code: u16,
    /// The close frame's reason, also sent in the `disconnect` push.
    reason: &'static str,
}

const fn close_row(code: u16, reason: &'static str) -> CloseRow {
    CloseRow { code, reason }
}

code_table! {
    /// Why the server closed a native WebSocket connection.
    ///
    /// 4000–4499: do not reconnect without changing something (credentials,
    /// the client code). 4500–4999: reconnect with backoff and jitter, and
    /// resume every subscription from its last position.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum CloseCode: CloseRow {
        /// A normal close (the client left, or its session ended cleanly).
        Normal => close_row(1000, "normal closure"),
        /// A frame that is not a valid command (not JSON, no `id`, binary).
        BadFrame => close_row(4000, "bad frame"),
        /// The token given to `connect` is missing, invalid or expired.
        Unauthorized => close_row(4001, "unauthorized"),
        /// No `connect` command arrived within the handshake timeout.
        HandshakeTimeout => close_row(4504, "handshake timeout"),
        /// The server's HTTP API disconnected this user.
        Disconnected => close_row(4003, "disconnected by server"),
        /// The user holds the most connections this node allows
        /// (`limits.max_connections_per_user`): reconnect once another of
        /// theirs has closed, not by itself.
        TooManyConnections => close_row(4004, "too many connections"),
        /// A frame larger than the server's limit (the WebSocket standard code).
        MessageTooBig => close_row(1009, "message too big"),
        /// A frame that breaks the WebSocket framing rules (RFC 6455 code 1002).
        ProtocolError => close_row(1002, "protocol error"),
        /// A text message or close reason that is not valid UTF-8 (RFC 6455 code 1007).
        InvalidPayload => close_row(1007, "invalid payload data"),
        /// The server is shutting down: reconnect (with jitter) and resume.
        ShuttingDown => close_row(4500, "shutting down"),
        /// The connection could not keep up and its outbox overflowed: reconnect and recover.
        SlowConsumer => close_row(4501, "slow consumer"),
        /// No pong or other traffic within the idle timeout.
        IdleTimeout => close_row(4502, "idle timeout"),
        /// The server failed internally; reconnect with backoff.
        ServerError => close_row(4503, "server error"),
        /// The node lost part of a channel's stream (the cluster bus dropped
        /// publications that history no longer holds, or the channel's epoch
        /// changed under it): reconnect and resubscribe with the last
        /// position, which answers what could be recovered.
        InsufficientState => close_row(4505, "insufficient state"),
        /// A moderator removed this user (a kick, or a ban): reconnect with
        /// backoff and resume; channels the user is banned from refuse the
        /// subscription with `banned`.
        Kicked => close_row(4506, "kicked by a moderator"),
        /// The user was removed from a members channel: reconnect and
        /// resume; that channel now refuses the subscription with
        /// `permission_denied`.
        RemovedMember => close_row(4507, "removed from a channel"),
    }
}

impl CloseCode {
    pub fn code(self) -> u16 {
        self.row().code
    }

    pub fn reason(self) -> &'static str {
        self.row().reason
    }

    /// Whether a client should reconnect and resume by itself.
    pub fn reconnect(self) -> bool {
        matches!(self.code(), 4500..=4999)
    }

    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip_through_json() {
        let mut seen = std::collections::HashSet::new();
        assert_eq!(serde_json::from_str::<ErrorCode>("\"from_the_future\"").unwrap(), ErrorCode::Unknown);
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn close_codes_are_unique_and_classified() {
        let mut seen = std::collections::HashSet::new();
        for close in CloseCode::ALL {
            assert!(seen.insert(close.code()));
            assert_eq!(CloseCode::from_code(close.code()), Some(close));
        }
        assert!(CloseCode::SlowConsumer.reconnect());
        assert!(CloseCode::ShuttingDown.reconnect());
        assert!(!CloseCode::Unauthorized.reconnect());
        assert!(!CloseCode::Disconnected.reconnect());
        assert!(!CloseCode::TooManyConnections.reconnect());
    }
}
