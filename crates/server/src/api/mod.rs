//! The HTTP API: the native API under `/api`, plus health, readiness,
//! metrics and the OpenAPI document.

mod edit;
pub(crate) mod extract;
mod log;
mod members;
mod moderation;
mod native;
mod ops;

use axum::Router;
use axum::routing::{get, post, put};

use crate::server::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/publish", post(native::publish))
        .route("/api/broadcast", post(native::broadcast))
        .route("/api/edit", post(edit::edit))
        .route("/api/history", get(native::history))
        .route("/api/presence", get(native::presence))
        .route("/api/channels", get(native::channels))
        .route("/api/disconnect", post(native::disconnect))
        .route("/api/nodes", get(native::nodes))
        .route("/api/moderation", post(moderation::act))
        .route("/api/moderation/sanctions", get(moderation::sanctions))
        .route("/api/moderation/slow_mode", get(moderation::slow_mode).merge(post(moderation::set_slow_mode)))
        .route("/api/moderation/delete", post(moderation::delete))
        .route("/api/moderation/purge", post(moderation::purge))
        .route("/api/members", get(members::list).merge(post(members::change)))
        .route("/api/read", post(members::read))
        .route("/api/unread", get(members::unread))
        .route("/api/log", get(log::filter).merge(put(log::set_filter)))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
}
