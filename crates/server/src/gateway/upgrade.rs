//! The WebSocket upgrade: the HTTP handshake done by hand so the socket
//! gets exactly the buffer sizes and limits we choose, and frames can be
//! written from shared bytes without copying.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::api::ApiError;
use crate::gateway::session;
use crate::server::AppState;
use fanfare_protocol::ErrorCode;

/// `GET /connection/websocket`: the native protocol.
pub async fn accept(State(app): State<AppState>, request: Request) -> Response {
    upgrade(app, request, session::run)
}

/// The socket type every session runs on.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Answers the upgrade handshake and, once the connection is switched,
/// runs `session` on it.
pub(crate) fn upgrade<F, Fut>(app: AppState, mut request: Request, session: F) -> Response
where
    F: FnOnce(AppState, Socket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if app.draining() {
        return ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down").into_response();
    }
    let key = match handshake_key(request.headers()) {
        Ok(key) => key,
        Err(message) => return ApiError::new(ErrorCode::BadRequest, message).into_response(),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let config = socket_config(app.settings.limits.max_frame_bytes);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                        .await;
                session(app, socket).await;
            }
            Err(error) => tracing::debug!(%error, "websocket upgrade failed"),
        }
    });
    switching_protocols(&key)
}

/// Buffers sized for many mostly idle connections: tungstenite's defaults
/// (128 KiB read buffer, touched on first read) would cost ~136 KiB per
/// connection (`shared/reference/crates.md`). The read buffer is allocated
/// for good on the first read; clients send small commands, so 1 KiB does
/// (measured with `fanfare bench idle`, 5,000 connections: 10.4 KiB per
/// connection with 4 KiB, 7.3 KiB with 1 KiB; larger frames simply take
/// more reads). The writer task feeds every queued frame and flushes once;
/// frames collect in the write buffer up to 16 KiB before a write, so a
/// burst becomes a few large writes, and the buffer grows only as far as a
/// connection's traffic needs.
fn socket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(8 << 20)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

fn handshake_key(headers: &HeaderMap) -> Result<String, &'static str> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err("this endpoint needs a WebSocket upgrade request");
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        return Err("Sec-WebSocket-Version must be 13");
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or("missing Sec-WebSocket-Key")?;
    Ok(derive_accept_key(key.as_bytes()))
}

fn switching_protocols(accept_key: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}
