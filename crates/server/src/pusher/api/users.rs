//! `POST /apps/{id}/users/{user_id}/terminate_connections`: closes every
//! connection signed in as that user (connections that are only presence
//! members are not signed in and stay, as with Pusher).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::error::PusherApiError;
use super::signed::Signed;
use crate::pusher::PusherState;

pub(super) async fn terminate(
    State(pusher): State<Arc<PusherState>>,
    Path((_, user_id)): Path<(String, String)>,
    signed: Signed,
) -> Result<Json<Value>, PusherApiError> {
    if user_id.is_empty() {
        return Err(PusherApiError::bad_request("the user id is empty"));
    }
    let closed = pusher.users.terminate(signed.app.id(), &user_id);
    tracing::info!(app = signed.app.id(), user = %user_id, closed, "terminated a user's connections");
    Ok(Json(json!({})))
}
