//! `POST /apps/{id}/users/{user_id}/terminate_connections`: closes every
//! connection signed in as that user, on every node of a cluster
//! (`Hub::disconnect_user`); connections that are only presence members
//! are not signed in and stay, as with Pusher.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use fanfare_hub::Hub;
use serde_json::{Value, json};

use super::error::PusherApiError;
use super::signed::Signed;
use crate::pusher::users::hub_user;

pub(super) async fn terminate(
    State(hub): State<Arc<Hub>>,
    Path((_, user_id)): Path<(String, String)>,
    signed: Signed,
) -> Result<Json<Value>, PusherApiError> {
    if user_id.is_empty() {
        return Err(PusherApiError::bad_request("the user id is empty"));
    }
    let report = hub.disconnect_user(&hub_user(signed.app.id(), &user_id)).await?;
    let (closed, unreached) = (report.disconnected, report.unreached.len());
    tracing::info!(app = signed.app.id(), user = %user_id, closed, unreached, "terminated a user's connections");
    Ok(Json(json!({})))
}
