//! One WebSocket connection to the server: opening it (through the
//! `connect` command), reading server messages while watching for silence,
//! and deciding from how it ended whether to reconnect.

use std::time::Duration;

use fanfare_protocol::CloseCode;
use fanfare_protocol::native::{Command, CommandBody, ConnectResult, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, connect_async_tls_with_config};

use crate::ClientOptions;
use crate::error::{ClientError, decode_reply};

type WebSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long closing a socket politely may take before it is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How a connection ended, and so what the client does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// Reconnect, waiting at least `after` when the server asked for it.
    Lost { after: Option<Duration> },
    /// Do not reconnect.
    Stopped { code: u16, reason: String },
}

/// What reading the socket produced.
#[derive(Debug)]
pub(crate) enum Incoming {
    Message(ServerMessage),
    Ended(SessionEnd),
}

/// The `disconnect` push the server sends just before it closes.
#[derive(Debug)]
struct DisconnectAdvice {
    code: u16,
    reason: String,
    reconnect: bool,
    after: Option<Duration>,
}

/// An open WebSocket whose `connect` succeeded.
pub(crate) struct Socket {
    ws: WebSocket,
    /// Silence longer than this means the connection is dead (`None`: the
    /// server does not ping, so silence means nothing).
    idle_timeout: Option<Duration>,
    deadline: Option<Instant>,
    advice: Option<DisconnectAdvice>,
}

/// Opens a WebSocket to `url` (one of [`ClientOptions::urls`]) and sends
/// `connect` with the id `connect_id`; succeeds once the server accepted it.
pub(crate) async fn open(
    options: &ClientOptions,
    url: &str,
    connect_id: u64,
) -> Result<(Socket, ConnectResult), ClientError> {
    let attempt = async {
        let invalid = |source| ClientError::InvalidUrl { url: url.to_owned(), source };
        let request = url.into_client_request().map_err(invalid)?;
        let tls = options.tls.clone().unwrap_or_else(crate::default_tls);
        let connector = Some(Connector::Rustls(tls));
        let connecting = connect_async_tls_with_config(request, None, false, connector);
        let (mut ws, _response) = connecting.await.map_err(|error| match error {
            // An unsupported scheme, or `wss://` without a TLS feature.
            tungstenite::Error::Url(_) => invalid(error),
            error => ClientError::Connect(error),
        })?;
        let result = handshake(&mut ws, connect_id, options.token.clone()).await?;
        let mut socket = Socket {
            ws,
            idle_timeout: options.idle_timeout(result.ping_interval_ms),
            deadline: None,
            advice: None,
        };
        socket.heard();
        Ok((socket, result))
    };
    timeout(options.connect_timeout, attempt).await.map_err(|_| ClientError::Timeout)?
}

async fn handshake(ws: &mut WebSocket, id: u64, token: Option<String>) -> Result<ConnectResult, ClientError> {
    let connect = Command { id, body: CommandBody::Connect { token } };
    ws.send(Message::text(connect.encode())).await.map_err(|_| ClientError::Disconnected)?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                if let Ok(ServerMessage::Reply { id: reply_id, outcome }) =
                    ServerMessage::decode(text.as_str())
                    && reply_id == id
                {
                    return decode_reply(outcome);
                }
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                return Err(ClientError::Closed {
                    code: frame.code.into(),
                    reason: frame.reason.to_string(),
                });
            }
            Some(Ok(Message::Close(None)) | Err(_)) | None => return Err(ClientError::Disconnected),
            Some(Ok(_)) => {}
        }
    }
}

impl Socket {
    pub(crate) async fn send(&mut self, command: Command) -> Result<(), tungstenite::Error> {
        self.ws.send(Message::text(command.encode())).await
    }

    /// The next message for the application, or how the connection ended.
    /// Cancel-safe: nothing is lost when the future is dropped while waiting.
    pub(crate) async fn next(&mut self) -> Incoming {
        loop {
            let frame = match self.deadline {
                Some(deadline) => tokio::select! {
                    biased;
                    frame = self.ws.next() => frame,
                    () = sleep_until(deadline) => {
                        tracing::info!(timeout = ?self.idle_timeout, "server silent for too long, connection dead");
                        return Incoming::Ended(SessionEnd::Lost { after: None });
                    }
                },
                None => self.ws.next().await,
            };
            self.heard();
            match frame {
                Some(Ok(Message::Text(text))) => match ServerMessage::decode(text.as_str()) {
                    Ok(ServerMessage::Disconnect { code, reason, reconnect, reconnect_after_ms }) => {
                        let after = reconnect_after_ms.map(Duration::from_millis);
                        self.advice = Some(DisconnectAdvice { code, reason, reconnect, after });
                    }
                    Ok(message) => return Incoming::Message(message),
                    Err(error) => tracing::warn!(%error, "ignoring a server message the client cannot read"),
                },
                Some(Ok(Message::Close(frame))) => return Incoming::Ended(self.ended(frame)),
                // Pings are answered by tungstenite itself; pongs and binary frames mean nothing here.
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::info!(%error, "connection lost");
                    return Incoming::Ended(self.ended(None));
                }
                None => return Incoming::Ended(self.ended(None)),
            }
        }
    }

    /// Closes with `code` (or completes a close the server started) without
    /// waiting long for a peer that may be gone.
    pub(crate) async fn shutdown(mut self, code: u16, reason: &str) {
        // A close frame has room for 123 bytes of reason.
        let reason = if reason.len() <= 123 { reason } else { "" };
        let frame = CloseFrame { code: code.into(), reason: reason.into() };
        let _ = timeout(CLOSE_TIMEOUT, self.ws.close(Some(frame))).await;
    }

    fn heard(&mut self) {
        self.deadline = self.idle_timeout.map(|idle| Instant::now() + idle);
    }

    /// The close frame decides; without one, the `disconnect` push; without
    /// either, the connection was lost and the client reconnects.
    fn ended(&self, close: Option<CloseFrame>) -> SessionEnd {
        let after = self.advice.as_ref().and_then(|advice| advice.after);
        match (close, &self.advice) {
            (Some(frame), _) if !reconnects(frame.code.into()) => {
                SessionEnd::Stopped { code: frame.code.into(), reason: frame.reason.to_string() }
            }
            (None, Some(advice)) if !advice.reconnect => {
                SessionEnd::Stopped { code: advice.code, reason: advice.reason.clone() }
            }
            _ => SessionEnd::Lost { after },
        }
    }
}

/// Whether a close code tells the client to reconnect by itself: as the
/// protocol's close-code table says for the codes it lists (1000 and 1009
/// do not), otherwise everything outside the do-not-reconnect range
/// 4000–4499 (1001 going away, 1006 abnormal, 1011 server error …).
pub(crate) fn reconnects(code: u16) -> bool {
    match CloseCode::from_code(code) {
        Some(known) => known.reconnect(),
        None => !(4000..=4499).contains(&code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_split_into_stop_and_reconnect() {
        for code in [1000, 1009, 4000, 4001, 4002, 4003, 4100, 4499] {
            assert!(!reconnects(code), "{code} must stop the client");
        }
        for code in [1001, 1006, 1011, 4500, 4501, 4502, 4503, 4999] {
            assert!(reconnects(code), "{code} must reconnect");
        }
    }
}
