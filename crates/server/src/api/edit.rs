//! `POST /api/edit`: a backend edits a publication by offset, as a
//! moderator would (the API key moderates every channel). The new data
//! gets the namespace's size limit, as a publish through this API does.

use axum::Json;
use axum::extract::State;
use fanfare_protocol::{ChannelName, JsonData};
use serde::Deserialize;

use crate::api::extract::{ApiKey, JsonBody};
use crate::http_error::HttpError;
use crate::moderation::authored::{self, EditOutcome, Editor};
use crate::policy::check_data;
use crate::server::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    channel: ChannelName,
    offset: u64,
    data: JsonData,
}

/// The answer is `{"epoch","offset"}`: the update record's position.
pub async fn edit(
    _: ApiKey,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<EditBody>,
) -> Result<Json<EditOutcome>, HttpError> {
    let namespace = app.settings.namespaces.resolve(&body.channel);
    check_data(&body.data, &namespace)?;
    Ok(Json(authored::edit(&app, Editor::Api, body.channel, body.offset, body.data).await?))
}
