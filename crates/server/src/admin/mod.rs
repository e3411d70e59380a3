//! The admin page: `GET /admin` (an HTML page, its script and its style,
//! embedded in the binary) and the API only it needs, under `/api/admin/`.
//!
//! ```text
//! browser ── GET /admin, /admin/admin.js, /admin/admin.css (no key: static, no data)
//!         ── login form: the API key, kept in sessionStorage
//!         ── fetch() with Authorization: Bearer <key>
//!              /api/nodes, /api/channels, /api/webhooks/dead_letters (…/{id}/replay)
//!              /api/admin/slow_consumers
//!              /api/admin/stream[?channel=NAME]  server-sent events:
//!                 `stats` every second (stats.rs), `publication` per
//!                 publication of the tailed channel (tail.rs)
//! ```
//!
//! A browser cannot send a header on page load, so the page itself holds
//! no data and needs no key; every data call does. The stream is read with
//! `fetch()` and a `ReadableStream`, since `EventSource` cannot send
//! `Authorization`. Nothing here touches the message path: stats are read
//! from the counters the server keeps anyway, once a second per open
//! stream; a tail is one more subscriber of its channel.

mod page;
mod stats;
mod stream;
mod tail;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;

use crate::server::AppState;

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route("/api/admin/stream", get(stream::stream))
        .route("/api/admin/slow_consumers", get(stats::slow_consumers))
        .layer(axum::middleware::map_response(no_store));
    Router::new()
        .route("/admin", get(page::index))
        .route("/admin/admin.js", get(page::script))
        .route("/admin/admin.css", get(page::style))
        .merge(api)
}

/// Answers about this node as it is now are never to be cached.
async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
