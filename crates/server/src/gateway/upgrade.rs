//! The WebSocket upgrade: the HTTP handshake, then the connection is
//! handed to our own framing (`socket.rs`), which holds no buffer while a
//! connection is idle and writes shared frames without copying.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::either::Either;

use crate::gateway::capacity::OpenSlot;
use crate::gateway::client_addr::{PeerAddr, client_ip, limit_key};
use crate::gateway::connection_counts::{Counted, HELD_RETRY_AFTER};
use crate::gateway::handshake_rate::TooFast;
use crate::gateway::session;
use crate::http_error::HttpError;
use crate::server::AppState;
use fanfare_protocol::{ErrorCode, ErrorInfo};

/// `GET /connection/websocket`: the native protocol.
pub async fn accept(State(app): State<AppState>, request: Request) -> Response {
    upgrade(app, request, session::run)
}

/// The bytes under a WebSocket: the TCP stream, or TLS over it (boxed:
/// rustls' state is large, and only TLS connections pay for it).
pub(crate) type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// A connection switched to WebSocket: the stream itself (not hyper's
/// boxed wrapper around it, which costs every connection a little more),
/// and whatever the client sent right behind its handshake.
pub(crate) struct Io {
    pub stream: Stream,
    pub read_ahead: Bytes,
    /// Its place within the node's connection limit (none for the echo
    /// example, which has no limit).
    pub slot: Option<OpenSlot>,
}

impl Io {
    /// Takes the stream back from hyper (axum serves connections through
    /// hyper-util's `auto` builder, whose wrapper this unwraps).
    fn from_upgraded(upgraded: Upgraded) -> Option<Self> {
        use hyper_util::server::conn::auto::upgrade::downcast;
        let (stream, read_ahead) = match downcast::<TokioIo<TcpStream>>(upgraded) {
            Ok(plain) => (Either::Left(plain.io.into_inner()), plain.read_buf),
            Err(upgraded) => {
                let tls = downcast::<TokioIo<TlsStream<TcpStream>>>(upgraded).ok()?;
                (Either::Right(Box::new(tls.io.into_inner())), tls.read_buf)
            }
        };
        Some(Self { stream, read_ahead, slot: None })
    }
}

/// Answers the upgrade handshake and, once the connection is switched,
/// runs `session` on it.
pub(crate) fn upgrade<F, Fut>(app: AppState, request: Request, session: F) -> Response
where
    F: FnOnce(AppState, Io) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if app.draining() {
        refused("draining");
        return HttpError::new(ErrorCode::ShuttingDown, "the server is shutting down").into_response();
    }
    let address = match admit(&app, &request) {
        Ok(address) => address,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(slot) = app.capacity.open() else {
        refused("over_capacity");
        return over_capacity(app.capacity.max());
    };
    let slot = slot.with_address(address);
    switch(request, move |mut io| {
        io.slot = Some(slot);
        session(app, io)
    })
}

/// The admission limits, in order: the client address's handshake rate
/// (429), the node's (503), the address's connections (429). Returns the
/// connection's place within its address's limit.
fn admit(app: &AppState, request: &Request) -> Result<Option<Counted<IpAddr>>, HttpError> {
    let admission = &app.settings.admission;
    let client = request.extensions().get::<ConnectInfo<PeerAddr>>().map(|ConnectInfo(PeerAddr(peer))| {
        limit_key(client_ip(peer.ip(), request.headers(), &admission.trusted_proxies))
    });
    app.handshake_rates.take(client).map_err(|too_fast| match too_fast {
        TooFast::Address { wait } => {
            refused("handshake_rate_ip");
            let per_second = admission.max_handshakes_per_ip_per_second;
            let message = format!("this address may open {per_second} WebSocket connections per second");
            retry_after(ErrorCode::RateLimited, message, wait)
        }
        TooFast::Node { wait } => {
            refused("handshake_rate_node");
            let per_second = admission.max_handshakes_per_second;
            let message = format!("this node takes {per_second} new WebSocket connections per second");
            retry_after(ErrorCode::Unavailable, message, wait)
        }
    })?;
    let Some(client) = client else { return Ok(None) };
    app.connections_per_ip.open(client).map_err(|at_limit| {
        refused("connections_per_ip");
        let message = format!("this address holds its most connections ({})", at_limit.max);
        retry_after(ErrorCode::TooManyConnections, message, HELD_RETRY_AFTER)
    })
}

fn retry_after(code: ErrorCode, message: String, wait: Duration) -> HttpError {
    HttpError::from(ErrorInfo::new(code, message).retry_after(wait))
}

/// Counts an upgrade refused before a session started
/// (`fanfare_handshake_failures_total{cause}`).
pub(crate) fn refused(cause: &'static str) {
    metrics::counter!("fanfare_handshake_failures_total", "cause" => cause).increment(1);
}

/// 503 before the WebSocket opens: the client retries (through a load
/// balancer, on another node).
fn over_capacity(max: usize) -> Response {
    let message =
        format!("this node holds its most connections ({max}); retry, on another node if there is one");
    retry_after(ErrorCode::Unavailable, message, Duration::from_secs(1)).into_response()
}

/// The handshake alone: answers it, and runs `then` on the switched
/// connection in a task of its own.
pub(crate) fn switch<F, Fut>(mut request: Request, then: F) -> Response
where
    F: FnOnce(Io) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let key = match handshake_key(request.headers()) {
        Ok(key) => key,
        Err(message) => {
            refused("not_a_websocket_upgrade");
            return HttpError::new(ErrorCode::BadRequest, message).into_response();
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    // The connection runs in a task of its own, spawned once switched: the
    // long-lived task holds only the connection's future.
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => match Io::from_upgraded(upgraded) {
                Some(io) => {
                    tokio::spawn(then(io));
                }
                None => tracing::error!("websocket upgrade: the connection is neither TCP nor TLS over TCP"),
            },
            Err(error) => tracing::debug!(%error, "websocket upgrade failed"),
        }
    });
    switching_protocols(&key)
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
