//! The Pusher HTTP API (`/apps/{app_id}/…`), as the Pusher server SDKs
//! call it: trigger events, list channels and their members, terminate a
//! user's connections. Plus `GET /api/webhooks/dead_letters`, the native
//! API's view of webhook batches that were never delivered.
//!
//! Every `/apps/…` request is authenticated by its signature (`signed.rs`):
//! auth_version 1.0 over the raw query and body, within ±600 s, checked in
//! constant time. Errors answer `{"error": "…"}` with the status of their
//! row in the error table: 400 bad request, 401 signature, 403 disabled
//! app, 404 unknown app, 413 data too large.
//!
//! - `events.rs`: `POST /events`, `POST /batch_events` → `Hub::publish`.
//! - `channels.rs`: `GET /channels`, `/channels/{name}`, `/channels/{name}/users`.
//! - `users.rs`: `POST /users/{user_id}/terminate_connections`.
//! - `dead_letters.rs`: `GET /api/webhooks/dead_letters` and `POST
//!   /api/webhooks/dead_letters/{id}/replay` (native API key).

mod channels;
mod dead_letters;
mod error;
mod events;
mod signed;
mod users;

use axum::Router;
use axum::routing::{get, post};

use crate::server::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apps/{app_id}/events", post(events::trigger))
        .route("/apps/{app_id}/batch_events", post(events::trigger_batch))
        .route("/apps/{app_id}/channels", get(channels::list))
        .route("/apps/{app_id}/channels/{channel_name}", get(channels::info))
        .route("/apps/{app_id}/channels/{channel_name}/users", get(channels::users))
        .route("/apps/{app_id}/users/{user_id}/terminate_connections", post(users::terminate))
        .route("/api/webhooks/dead_letters", get(dead_letters::list))
        .route("/api/webhooks/dead_letters/{id}/replay", post(dead_letters::replay))
}

#[cfg(test)]
mod tests {
    #[test]
    fn merges_with_the_native_api_without_conflicting_routes() {
        // axum panics on a route defined twice.
        let _ = crate::api::router().merge(super::router());
    }
}
