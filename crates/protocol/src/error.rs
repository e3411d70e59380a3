//! The one error-code table.
//!
//! Every error a client can see, over WebSocket or HTTP, is one row here:
//! its stable string code, the HTTP status it maps to, and whether retrying
//! the same request later can succeed. Library crates map their own error
//! enums onto these rows; nothing else invents codes. Close codes for
//! WebSocket connections are listed in [`CloseCode`].

use serde::{Deserialize, Serialize};

/// A row of the error table. `docs/protocol.md` lists the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame or body is not valid JSON or misses a required field.
    BadRequest,
    /// The command type is not one this server knows.
    UnknownCommand,
    /// The channel name is not valid.
    InvalidChannel,
    /// The message or payload is larger than the namespace or server allows.
    MessageTooLarge,
    /// No credentials, or credentials that are not valid (bad signature, wrong key).
    Unauthorized,
    /// The token was valid once but has expired.
    TokenExpired,
    /// Authenticated, but not allowed to do this on this channel.
    PermissionDenied,
    /// A command that needs a connected session came before `connect`.
    NotConnected,
    /// `connect` sent twice.
    AlreadyConnected,
    /// Subscribing to a channel this connection is already subscribed to.
    AlreadySubscribed,
    /// A command about a channel this connection is not subscribed to.
    NotSubscribed,
    /// The connection holds the most channels it may.
    TooManyChannels,
    /// Too many requests; slow down.
    RateLimited,
    /// The channel, user or resource does not exist.
    NotFound,
    /// The feature is off for this channel's namespace (presence).
    NotAvailable,
    /// A dependency (the store) failed or is overloaded; retry later.
    Unavailable,
    /// The server is shutting down.
    ShuttingDown,
    /// An unexpected failure inside the server.
    Internal,
    /// A code this version does not know (sent by a newer server); clients
    /// treat it by its `retry` flag.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The stable string written on the wire.
    pub fn as_str(self) -> &'static str {
        self.row().0
    }

    pub fn http_status(self) -> u16 {
        self.row().1
    }

    /// Whether the same request can succeed if sent again later unchanged.
    pub fn retry(self) -> bool {
        self.row().2
    }

    fn row(self) -> (&'static str, u16, bool) {
        use ErrorCode::*;
        match self {
            BadRequest => ("bad_request", 400, false),
            UnknownCommand => ("unknown_command", 400, false),
            InvalidChannel => ("invalid_channel", 400, false),
            MessageTooLarge => ("message_too_large", 413, false),
            Unauthorized => ("unauthorized", 401, false),
            TokenExpired => ("token_expired", 401, false),
            PermissionDenied => ("permission_denied", 403, false),
            NotConnected => ("not_connected", 400, false),
            AlreadyConnected => ("already_connected", 409, false),
            AlreadySubscribed => ("already_subscribed", 409, false),
            NotSubscribed => ("not_subscribed", 409, false),
            TooManyChannels => ("too_many_channels", 429, false),
            RateLimited => ("rate_limited", 429, true),
            NotFound => ("not_found", 404, false),
            NotAvailable => ("not_available", 403, false),
            Unavailable => ("unavailable", 503, true),
            ShuttingDown => ("shutting_down", 503, true),
            Internal => ("internal", 500, true),
            Unknown => ("unknown", 500, false),
        }
    }

    pub const ALL: [ErrorCode; 18] = {
        use ErrorCode::*;
        [
            BadRequest,
            UnknownCommand,
            InvalidChannel,
            MessageTooLarge,
            Unauthorized,
            TokenExpired,
            PermissionDenied,
            NotConnected,
            AlreadyConnected,
            AlreadySubscribed,
            NotSubscribed,
            TooManyChannels,
            RateLimited,
            NotFound,
            NotAvailable,
            Unavailable,
            ShuttingDown,
            Internal,
        ]
    };
}

/// An error as sent to a client: `{"code", "message", "retry"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default)]
    pub retry: bool,
}

impl ErrorInfo {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry: code.retry() }
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ErrorInfo {}

/// Why the server closed a native WebSocket connection.
///
/// 4000–4499: do not reconnect without changing something (credentials,
/// the client code). 4500–4999: reconnect with backoff and jitter, and
/// resume every subscription from its last position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// A normal close (the client left, or its session ended cleanly).
    Normal,
    /// A frame that is not a valid command (not JSON, no `id`, binary).
    BadFrame,
    /// The token given to `connect` is missing, invalid or expired.
    Unauthorized,
    /// No `connect` command arrived within the handshake timeout.
    HandshakeTimeout,
    /// The server's HTTP API disconnected this user.
    Disconnected,
    /// A frame larger than the server's limit (the WebSocket standard code).
    MessageTooBig,
    /// A frame that breaks the WebSocket framing rules (RFC 6455 code 1002).
    ProtocolError,
    /// A text message or close reason that is not valid UTF-8 (RFC 6455 code 1007).
    InvalidPayload,
    /// The server is shutting down: reconnect (with jitter) and resume.
    ShuttingDown,
    /// The connection could not keep up and its outbox overflowed: reconnect and recover.
    SlowConsumer,
    /// No pong or other traffic within the idle timeout.
    IdleTimeout,
    /// The server failed internally; reconnect with backoff.
    ServerError,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        self.row().0
    }

    pub fn reason(self) -> &'static str {
        self.row().1
    }

    /// Whether a client should reconnect and resume by itself.
    pub fn reconnect(self) -> bool {
        matches!(self.code(), 4500..=4999)
    }

    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    fn row(self) -> (u16, &'static str) {
        use CloseCode::*;
        match self {
            Normal => (1000, "normal closure"),
            BadFrame => (4000, "bad frame"),
            Unauthorized => (4001, "unauthorized"),
            HandshakeTimeout => (4504, "handshake timeout"),
            Disconnected => (4003, "disconnected by server"),
            MessageTooBig => (1009, "message too big"),
            ProtocolError => (1002, "protocol error"),
            InvalidPayload => (1007, "invalid payload data"),
            ShuttingDown => (4500, "shutting down"),
            SlowConsumer => (4501, "slow consumer"),
            IdleTimeout => (4502, "idle timeout"),
            ServerError => (4503, "server error"),
        }
    }

    pub const ALL: [CloseCode; 12] = {
        use CloseCode::*;
        [
            Normal,
            BadFrame,
            Unauthorized,
            HandshakeTimeout,
            Disconnected,
            MessageTooBig,
            ProtocolError,
            InvalidPayload,
            ShuttingDown,
            SlowConsumer,
            IdleTimeout,
            ServerError,
        ]
    };
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
    }
}
