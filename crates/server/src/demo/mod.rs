//! `fanfare serve --demo`: three small applications built on the
//! TypeScript client (`clients/ts`), served by the binary itself, and the
//! endpoint that gives their made-up users tokens (`docs/building-a-chat.md`
//! walks through their code).
//!
//! ```text
//! browser ── GET /demo/            the index
//!         ── GET /demo/live        live comments beside a "stream"   (namespace `stream`)
//!         ── GET /demo/team        team chat: channels, members, presence,
//!                                  typing, unread badges, read receipts (namespace `team`)
//!         ── GET /demo/dm          direct messages                   (namespace `dm`)
//!         ── GET /demo/assets/…    the pages' scripts and style, and the client bundle
//!         ── POST /demo/token {"user":"alice"}
//!              → a 15-minute HS256 token for `alice`, who is made a member
//!                of the team channels on the way (token.rs)
//!         ── WebSocket /connection/websocket with that token: everything else
//! ```
//!
//! Nothing here exists unless `--demo` is given, which the configuration
//! refuses on an address other than a loopback one: the token endpoint
//! signs in anyone as anyone.

mod page;
pub(crate) mod token;

use axum::Router;
use axum::routing::{get, post};

use crate::server::AppState;

pub(crate) use token::Tokens;

/// The team chat's channels; every user who asks for a token is a member.
pub const TEAM_CHANNELS: [&str; 3] = ["team:general", "team:random", "team:engineering"];

/// The demo's routes.
pub fn router(tokens: Tokens) -> Router<AppState> {
    let tokens = Router::new().route("/demo/token", post(token::issue)).with_state(tokens);
    Router::new()
        .route("/demo", get(page::redirect_to_index))
        .route("/demo/", get(page::index))
        .route("/demo/live", get(page::live))
        .route("/demo/team", get(page::team))
        .route("/demo/dm", get(page::direct))
        .route("/demo/assets/{file}", get(page::asset))
        .merge(tokens)
}
