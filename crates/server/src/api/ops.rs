//! Endpoints for operators: liveness, readiness, Prometheus metrics and
//! the OpenAPI document of the HTTP API.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::server::AppState;
use crate::telemetry::ServerMetrics;

/// The HTTP API described as OpenAPI 3.1; kept beside the docs.
const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// The process is alive.
pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready to take traffic: the store takes writes, the node is not near
/// its connection limit and we are not draining.
/// (The whole state: whether we drain is the server's, not a slice's.)
pub async fn ready(State(app): State<AppState>) -> impl IntoResponse {
    if app.draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "draining" })));
    }
    if app.capacity.near_limit() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "near connection limit" })),
        );
    }
    if !app.hub.cluster_bus_up() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "cluster bus unavailable" })),
        );
    }
    if !app.hub.ready().await {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "store unavailable" })));
    }
    (StatusCode::OK, Json(serde_json::json!({ "status": "ready" })))
}

pub async fn metrics(State(telemetry): State<ServerMetrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], telemetry.render())
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
