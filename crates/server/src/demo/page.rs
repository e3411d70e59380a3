//! The demos' pages and assets, embedded in the binary, with the admin
//! page's headers: no framing, no script but their own, no caching across
//! a change of the binary.
//!
//! `assets/fanfare-client.js` is the TypeScript client bundled by esbuild
//! (`npm run bundle:demo` in `clients/ts`); it is committed, so building
//! the server never needs npm, and `scripts/test-demos` checks that it is
//! up to date with the client's source.

use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("assets/index.html");
const LIVE: &str = include_str!("assets/live.html");
const TEAM: &str = include_str!("assets/team.html");
const DIRECT: &str = include_str!("assets/dm.html");

/// The files under `/demo/assets/`, by name.
const ASSETS: [(&str, &str, &str); 7] = [
    ("fanfare-client.js", JS, include_str!("assets/fanfare-client.js")),
    ("session.js", JS, include_str!("assets/session.js")),
    ("chat.js", JS, include_str!("assets/chat.js")),
    ("live.js", JS, include_str!("assets/live.js")),
    ("team.js", JS, include_str!("assets/team.js")),
    ("dm.js", JS, include_str!("assets/dm.js")),
    ("demo.css", CSS, include_str!("assets/demo.css")),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// Only the pages' own scripts and style; the WebSocket and the token
/// endpoint on this origin only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

type Headers = [(HeaderName, HeaderValue); 6];

fn headers(content_type: &'static str) -> Headers {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// `/demo` → `/demo/`, so the index's relative links resolve.
pub(super) async fn redirect_to_index() -> Redirect {
    Redirect::permanent("/demo/")
}

pub(super) async fn index() -> impl IntoResponse {
    (headers(HTML), INDEX)
}

pub(super) async fn live() -> impl IntoResponse {
    (headers(HTML), LIVE)
}

pub(super) async fn team() -> impl IntoResponse {
    (headers(HTML), TEAM)
}

pub(super) async fn direct() -> impl IntoResponse {
    (headers(HTML), DIRECT)
}

pub(super) async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (headers(content_type), *body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names after `marker` up to the closing quote, in `text`.
    fn references<'a>(text: &'a str, marker: &str, quote: char) -> Vec<&'a str> {
        text.split(marker).skip(1).map(|rest| rest.split(quote).next().unwrap_or("")).collect()
    }

    #[test]
    fn every_file_a_page_or_a_script_loads_is_served() {
        let served = |name: &str| ASSETS.iter().any(|(file, _, _)| *file == name);
        for page in [INDEX, LIVE, TEAM, DIRECT] {
            for name in references(page, "assets/", '"') {
                assert!(served(name), "{name} is not served");
            }
        }
        for (file, _, body) in ASSETS.iter().filter(|(_, kind, _)| *kind == JS) {
            for name in references(body, "from './", '\'') {
                assert!(served(name), "{file} imports {name}, which is not served");
            }
        }
    }
}
