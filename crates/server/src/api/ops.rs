//! Endpoints for operators: liveness, readiness, Prometheus metrics and
//! the OpenAPI document of the HTTP API.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::readiness::readiness;
use crate::server::AppState;
use crate::telemetry::sampled;

/// The HTTP API described as OpenAPI 3.1; kept beside the docs.
const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// The process is alive.
pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn ready(State(app): State<AppState>) -> impl IntoResponse {
    let readiness = readiness(&app).await;
    let status = if readiness.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "status": readiness.status() })))
}

/// The Prometheus text, with the gauges that are read off the node at
/// each scrape brought up to date first.
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    sampled::refresh(&app).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.telemetry.render())
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
