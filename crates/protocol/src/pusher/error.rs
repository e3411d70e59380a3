//! The codes a Pusher client can see, and the decode errors that lead to them.
//!
//! Two channels carry them. A *close code* ends the connection, and
//! pusher-js picks its next step from the range alone
//! (`src/core/connection/protocol/protocol.ts`, `getCloseAction`):
//! 4000 switch to TLS, 4001–4099 give up, 4100–4199 reconnect with backoff,
//! 4200–4299 reconnect at once, and **4300 and above give up**, as an
//! unknown code. So the 43xx codes are never close codes: they travel in a
//! `pusher:error` event on a connection that stays open ([`PusherErrorCode`]).
//! Each code also names its row in the crate's one [`ErrorCode`] table.

use crate::ErrorCode;

use super::channel::{EventNameError, PusherChannelError};

/// Why the server closed a Pusher connection (protocol ≥ 6: the close code
/// alone is authoritative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PusherCloseCode {
    /// The key in `/app/<key>` names no app.
    AppNotFound,
    /// The app exists but is disabled.
    AppDisabled,
    /// The app is over its connection quota (not 4100: the client must not
    /// come back by itself).
    OverQuota,
    /// The `protocol` query parameter is not a number.
    InvalidVersionFormat,
    /// The `protocol` version is one this server does not speak.
    UnsupportedProtocol,
    /// No `protocol` query parameter.
    NoProtocol,
    /// Signin refused, or a connection that must authenticate did not in time.
    Unauthorized,
    /// The server is over capacity (or the connection could not keep up);
    /// the client reconnects after a backoff.
    OverCapacity,
    /// The server is going away; the client reconnects immediately.
    ShuttingDown,
    /// No pong (or any other frame) within the pong timeout.
    PongTimeout,
    /// A moderator removed this user (a kick, or a ban): the client
    /// reconnects after a backoff (4100's range), and channels the user is
    /// banned from refuse the subscription.
    Kicked,
    /// The server lost this connection's channel state; the client
    /// reconnects immediately. 4200, Pusher's generic "reconnect
    /// immediately" (4202 is Pusher's "closed after inactivity").
    Reconnect,
}

impl PusherCloseCode {
    pub fn code(self) -> u16 {
        self.row().0
    }

    /// The close frame's reason text.
    pub fn reason(self) -> &'static str {
        self.row().1
    }

    /// The row of the crate's error table this close belongs to.
    pub fn error_code(self) -> ErrorCode {
        self.row().2
    }

    fn row(self) -> (u16, &'static str, ErrorCode) {
        use PusherCloseCode::*;
        match self {
            AppNotFound => (4001, "app does not exist", ErrorCode::NotFound),
            AppDisabled => (4003, "app disabled", ErrorCode::PermissionDenied),
            OverQuota => (4004, "over connection quota", ErrorCode::PermissionDenied),
            InvalidVersionFormat => (4006, "invalid version string format", ErrorCode::BadRequest),
            UnsupportedProtocol => (4007, "unsupported protocol version", ErrorCode::BadRequest),
            NoProtocol => (4008, "no protocol version supplied", ErrorCode::BadRequest),
            Unauthorized => (4009, "unauthorized", ErrorCode::Unauthorized),
            OverCapacity => (4100, "over capacity", ErrorCode::Unavailable),
            ShuttingDown => (4200, "server shutting down", ErrorCode::ShuttingDown),
            PongTimeout => (4201, "pong reply not received", ErrorCode::Unavailable),
            Reconnect => (4200, "reconnect", ErrorCode::Unavailable),
            Kicked => (4100, "kicked by a moderator", ErrorCode::PermissionDenied),
        }
    }

    pub const ALL: [PusherCloseCode; 12] = {
        use PusherCloseCode::*;
        [
            AppNotFound,
            AppDisabled,
            OverQuota,
            InvalidVersionFormat,
            UnsupportedProtocol,
            NoProtocol,
            Unauthorized,
            OverCapacity,
            ShuttingDown,
            PongTimeout,
            Reconnect,
            Kicked,
        ]
    };
}

/// A non-fatal error, sent as `pusher:error` `{"message", "code"}` while the
/// connection stays open. Pusher itself sends `"code": null` for refused
/// messages and client events; only the 43xx rows have a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PusherErrorCode {
    /// A frame that is not a valid Pusher message: bad JSON, unknown or
    /// reserved event, invalid channel name, missing field.
    InvalidMessage,
    /// A client event refused: bad name, wrong channel kind, not subscribed,
    /// client events disabled, or too large.
    ClientEventRejected,
    /// A signin refused while the connection stays open.
    Unauthorized,
    /// More than the allowed client events per second (4301).
    ClientEventRateLimit,
    /// The signin's watchlist was longer than allowed; the extra ids were
    /// dropped (4302).
    WatchlistLimit,
    /// A signin refused because the user holds the most connections
    /// (4004, the code of the close that follows).
    TooManyConnections,
    /// A client event refused by the namespace's content rules or its
    /// pre-publish hook (4303, Fanfare's: Pusher has no content rules).
    ContentRejected,
}

impl PusherErrorCode {
    /// The number sent as `code`, or `None` for `null`.
    pub fn code(self) -> Option<u16> {
        self.row().0
    }

    /// The row of the crate's error table this error belongs to.
    pub fn error_code(self) -> ErrorCode {
        self.row().1
    }

    fn row(self) -> (Option<u16>, ErrorCode) {
        use PusherErrorCode::*;
        match self {
            InvalidMessage => (None, ErrorCode::BadRequest),
            ClientEventRejected => (None, ErrorCode::PermissionDenied),
            Unauthorized => (Some(4009), ErrorCode::Unauthorized),
            ClientEventRateLimit => (Some(4301), ErrorCode::RateLimited),
            WatchlistLimit => (Some(4302), ErrorCode::BadRequest),
            TooManyConnections => (Some(4004), ErrorCode::TooManyConnections),
            ContentRejected => (Some(4303), ErrorCode::ContentRejected),
        }
    }

    pub const ALL: [PusherErrorCode; 7] = {
        use PusherErrorCode::*;
        [
            InvalidMessage,
            ClientEventRejected,
            Unauthorized,
            ClientEventRateLimit,
            WatchlistLimit,
            TooManyConnections,
            ContentRejected,
        ]
    };
}

/// Why a client frame, a presence `channel_data` or a signin `user_data`
/// could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PusherDecodeError {
    #[error("not a Pusher message (a JSON object with a string \"event\"): {0}")]
    NotAMessage(String),
    #[error("{event} needs a string {field:?}")]
    MissingField { event: &'static str, field: &'static str },
    #[error("the data of {event} is not a JSON object with the expected fields: {reason}")]
    BadData { event: &'static str, reason: String },
    #[error("clients may not send {0:?}: the pusher: and pusher_internal: namespaces are the protocol's")]
    ReservedEvent(String),
    #[error("unknown event {0:?}: events sent by clients must start with \"client-\"")]
    UnknownEvent(String),
    #[error(transparent)]
    InvalidChannel(#[from] PusherChannelError),
    #[error("invalid client event name: {0}")]
    InvalidEventName(#[from] EventNameError),
    #[error("invalid presence channel_data: {0}")]
    BadChannelData(&'static str),
    #[error("invalid signin user_data: {0}")]
    BadUserData(&'static str),
}

impl PusherDecodeError {
    /// What to send back in `pusher:error`.
    pub fn pusher_code(&self) -> PusherErrorCode {
        match self {
            PusherDecodeError::InvalidEventName(_) => PusherErrorCode::ClientEventRejected,
            PusherDecodeError::BadUserData(_) => PusherErrorCode::Unauthorized,
            _ => PusherErrorCode::InvalidMessage,
        }
    }

    /// The row of the crate's error table.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            PusherDecodeError::UnknownEvent(_) | PusherDecodeError::ReservedEvent(_) => {
                ErrorCode::UnknownCommand
            }
            PusherDecodeError::InvalidChannel(_) => ErrorCode::InvalidChannel,
            other => other.pusher_code().error_code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_never_43xx_because_pusher_js_would_give_up() {
        for code in PusherCloseCode::ALL {
            assert!((4000..4300).contains(&code.code()), "{code:?}");
        }
    }

    #[test]
    fn close_codes_land_in_the_range_pusher_js_acts_on() {
        use PusherCloseCode::*;
        // 4001–4099: do not reconnect.
        for code in [AppNotFound, AppDisabled, OverQuota, Unauthorized] {
            assert!((4001..4100).contains(&code.code()), "{code:?}");
        }
        assert_eq!(OverCapacity.code(), 4100); // backoff
        assert_eq!(ShuttingDown.code(), 4200); // reconnect now
        assert_eq!(PongTimeout.code(), 4201);
    }

    #[test]
    fn closes_are_told_apart_by_code_and_reason() {
        let mut closes: Vec<(u16, &str)> =
            PusherCloseCode::ALL.iter().map(|c| (c.code(), c.reason())).collect();
        closes.sort_unstable();
        closes.dedup();
        assert_eq!(closes.len(), PusherCloseCode::ALL.len());
    }

    #[test]
    fn lost_channel_state_is_a_generic_reconnect_not_an_inactivity_close() {
        // Pusher: 4200 generic reconnect, 4202 closed after inactivity.
        assert_eq!(PusherCloseCode::Reconnect.code(), 4200);
        assert_eq!(PusherCloseCode::Reconnect.reason(), "reconnect");
    }

    #[test]
    fn error_event_codes_match_the_pusher_table() {
        assert_eq!(PusherErrorCode::ClientEventRateLimit.code(), Some(4301));
        assert_eq!(PusherErrorCode::WatchlistLimit.code(), Some(4302));
        assert_eq!(PusherErrorCode::Unauthorized.code(), Some(4009));
        assert_eq!(PusherErrorCode::InvalidMessage.code(), None);
        assert_eq!(PusherErrorCode::ClientEventRateLimit.error_code(), ErrorCode::RateLimited);
    }

    #[test]
    fn decode_errors_map_onto_both_tables() {
        let bad_name = PusherDecodeError::InvalidEventName(EventNameError::NotClientEvent);
        assert_eq!(bad_name.pusher_code(), PusherErrorCode::ClientEventRejected);
        let unknown = PusherDecodeError::UnknownEvent("x".into());
        assert_eq!(unknown.pusher_code(), PusherErrorCode::InvalidMessage);
        assert_eq!(unknown.error_code(), ErrorCode::UnknownCommand);
        let channel = PusherDecodeError::InvalidChannel(PusherChannelError::Empty);
        assert_eq!(channel.error_code(), ErrorCode::InvalidChannel);
        assert_eq!(PusherDecodeError::BadUserData("x").pusher_code(), PusherErrorCode::Unauthorized);
    }
}
