//! The one error type of the client.

use fanfare_protocol::{ChannelNameError, ErrorInfo};
use tokio_tungstenite::tungstenite;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `ClientOptions::url` is not a `ws://` or `wss://` URL the client can open.
    #[error("invalid server URL {url:?}: {source}")]
    InvalidUrl {
        url: String,
        #[source]
        source: tungstenite::Error,
    },
    /// The channel name given to a call is not a valid channel name.
    #[error(transparent)]
    InvalidChannel(#[from] ChannelNameError),
    /// The data given to `publish` could not be serialised as JSON.
    #[error("publication data is not serialisable as JSON: {0}")]
    InvalidData(#[source] serde_json::Error),
    /// A TLS configuration could not be built (e.g. PEM without a certificate).
    #[error("TLS: {0}")]
    Tls(String),
    /// The TCP connection, the TLS or the WebSocket handshake failed.
    #[error("could not open the WebSocket: {0}")]
    Connect(#[source] tungstenite::Error),
    /// The server answered the command with an error reply.
    #[error("server refused the command: {0}")]
    Server(ErrorInfo),
    /// The server's reply did not have the shape this command expects.
    #[error("unexpected reply from the server: {0}")]
    InvalidReply(#[source] serde_json::Error),
    /// The connection dropped before the reply arrived, or the client is
    /// between connections. The client reconnects by itself; the call can be
    /// sent again.
    #[error("disconnected from the server")]
    Disconnected,
    /// No reply within `ClientOptions::request_timeout` (or `connect_timeout`).
    #[error("no reply from the server in time")]
    Timeout,
    /// The client has stopped and will not reconnect: closed by the
    /// application, or by the server with a do-not-reconnect close code
    /// (4000–4499), or the server refused a reconnect for good.
    #[error("connection closed ({code}): {reason}")]
    Closed { code: u16, reason: String },
}

/// Turns the outcome of a reply into the result type the command expects.
pub(crate) fn decode_reply<T: serde::de::DeserializeOwned>(
    outcome: Result<fanfare_protocol::JsonData, ErrorInfo>,
) -> Result<T, ClientError> {
    decode_result(&outcome.map_err(ClientError::Server)?)
}

/// Turns the `result` of a successful reply into the type the command expects.
pub(crate) fn decode_result<T: serde::de::DeserializeOwned>(
    data: &fanfare_protocol::JsonData,
) -> Result<T, ClientError> {
    serde_json::from_str(data.as_str()).map_err(ClientError::InvalidReply)
}
