//! `POST /apps/{id}/events` and `POST /apps/{id}/batch_events`: events
//! triggered by the app's backend, published through the hub like any
//! publication.
//!
//! Each channel gets a publication with the event name and the `data`
//! string, all of a request's in one `Hub::publish_many`: durable, so it has an offset, is in history, and reaches native
//! subscribers of the same hub channel as well as Pusher ones. Events to
//! `#server-to-user-<id>` channels (`sendToUser`) are ephemeral: they reach
//! that user's signed-in connections, which the gateway subscribes to the
//! channel, and are never stored. A request is checked whole before
//! anything is published.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use fanfare_hub::{ConnId, Hub, Publish};
use fanfare_protocol::native::moderation::DeleteTarget;
use fanfare_protocol::pusher::{ChannelKind, PusherChannel, SocketId, validate_event_name};
use fanfare_protocol::{ChannelName, ErrorCode, JsonData};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::PusherApiError;
use super::signed::{InfoAttributes, Signed};
use crate::moderation::{Action as ModerationAction, Actor, act};
use crate::policy::server_lane;
use crate::pusher::apps::{Apps, PusherApp};
use crate::server::AppState;

const TRIGGER_INFO: [&str; 2] = ["user_count", "subscription_count"];

#[derive(Deserialize)]
struct TriggerBody {
    name: String,
    data: JsonData,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    socket_id: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

#[derive(Deserialize)]
struct BatchBody {
    batch: Vec<TriggerBody>,
}

/// The event a backend triggers to delete a publication, since Pusher
/// triggers answer no offset: its data (a JSON string, as every Pusher
/// event's) is `{"offset": N}` or `{"idempotency_key": "…"}`.
pub const DELETE_EVENT: &str = "fanfare:delete";

/// One checked event, ready to publish.
struct Trigger {
    name: String,
    data: JsonData,
    /// For [`DELETE_EVENT`]: what to delete in each channel.
    delete: Option<DeleteTarget>,
    /// Pusher name and hub channel of each target, without duplicates.
    channels: Vec<(PusherChannel, ChannelName)>,
    exclude: Option<ConnId>,
    info: InfoAttributes,
}

pub(super) async fn trigger(
    State(app): State<AppState>,
    signed: Signed,
) -> Result<Json<Value>, PusherApiError> {
    let body: TriggerBody = signed.json()?;
    let trigger = check(&signed.app, body)?;
    signed.app.rates.take_backend_events(trigger.channels.len()).await?;
    publish(&app, std::slice::from_ref(&trigger)).await?;
    if !trigger.info.any() {
        return Ok(Json(json!({})));
    }
    Ok(Json(json!({ "channels": channel_info(&app.hub, &trigger).await })))
}

pub(super) async fn trigger_batch(
    State(app): State<AppState>,
    signed: Signed,
) -> Result<Json<Value>, PusherApiError> {
    let body: BatchBody = signed.json()?;
    let max = signed.app.settings.max_event_batch_size;
    if max > 0 && body.batch.len() > max {
        return Err(PusherApiError::bad_request(format!("a batch holds at most {max} events")));
    }
    let triggers: Vec<Trigger> =
        body.batch.into_iter().map(|event| check(&signed.app, event)).collect::<Result<_, _>>()?;
    signed.app.rates.take_backend_events(triggers.iter().map(|t| t.channels.len()).sum()).await?;
    publish(&app, &triggers).await?;
    if !triggers.iter().any(|t| t.info.any()) {
        return Ok(Json(json!({})));
    }
    let mut batch: Vec<Value> = Vec::with_capacity(triggers.len());
    for trigger in &triggers {
        batch.push(
            channel_info(&app.hub, trigger)
                .await
                .into_iter()
                .next()
                .map_or_else(|| json!({}), |(_, info)| info),
        );
    }
    Ok(Json(json!({ "batch": batch })))
}

fn check(app: &PusherApp, body: TriggerBody) -> Result<Trigger, PusherApiError> {
    validate_event_name(&body.name)
        .map_err(|error| PusherApiError::bad_request(format!("invalid event name: {error}")))?;
    let max = app.settings.max_event_name_length;
    if body.name.chars().count() > max {
        return Err(PusherApiError::bad_request(format!(
            "the event name is longer than this app's {max} characters"
        )));
    }
    if body.data.as_str().trim() == "null" {
        return Err(PusherApiError::bad_request("\"data\" must be a string"));
    }
    let data_len = match serde_json::from_str::<String>(body.data.as_str()) {
        Ok(text) => text.len(),
        Err(_) => body.data.len(),
    };
    let max = app.settings.max_event_bytes;
    if data_len > max {
        return Err(PusherApiError::new(
            ErrorCode::MessageTooLarge,
            format!("data is {data_len} bytes; this app allows {max}"),
        ));
    }
    let names = match (body.channels, body.channel) {
        (Some(channels), _) => channels,
        (None, Some(channel)) => vec![channel],
        (None, None) => return Err(PusherApiError::bad_request("give \"channels\" (or \"channel\")")),
    };
    if names.is_empty() {
        return Err(PusherApiError::bad_request("\"channels\" must name at least one channel"));
    }
    let max = app.settings.max_event_channels_at_once;
    if max > 0 && names.len() > max {
        return Err(PusherApiError::bad_request(format!(
            "\"channels\" names {} channels; this app allows at most {max} at once",
            names.len()
        )));
    }
    let mut channels: Vec<(PusherChannel, ChannelName)> = Vec::with_capacity(names.len());
    for name in names {
        let bad = |error: String| PusherApiError::bad_request(format!("channel {name:?}: {error}"));
        let pusher = PusherChannel::new(&name).map_err(|e| bad(e.to_string()))?;
        let hub = Apps::hub_channel(app, &name).map_err(|e| bad(e.to_string()))?;
        if !channels.iter().any(|(known, _)| *known == pusher) {
            channels.push((pusher, hub));
        }
    }
    let exclude = match body.socket_id.as_deref() {
        Some(socket_id) => Some(
            SocketId::parse(socket_id)
                .map_err(|e| PusherApiError::bad_request(format!("socket_id: {e}")))?
                .connection_id(),
        ),
        None => None,
    };
    let info = InfoAttributes::parse(body.info.as_deref(), &TRIGGER_INFO)?;
    let delete = (body.name == DELETE_EVENT).then(|| delete_targets(&body.data)).transpose()?;
    Ok(Trigger { name: body.name, data: body.data, delete, channels, exclude, info })
}

/// What a `fanfare:delete` event's data names.
fn delete_targets(data: &JsonData) -> Result<DeleteTarget, PusherApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Target {
        offset: Option<u64>,
        idempotency_key: Option<String>,
    }
    let bad = || {
        PusherApiError::bad_request(format!(
            "{DELETE_EVENT} data must be {{\"offset\": N}} or {{\"idempotency_key\": \"…\"}}, as a JSON string"
        ))
    };
    let text: String = serde_json::from_str(data.as_str()).unwrap_or_else(|_| data.as_str().to_owned());
    let target: Target = serde_json::from_str(&text).map_err(|_| bad())?;
    DeleteTarget::from_parts(target.offset, target.idempotency_key).map_err(|_| bad())
}

/// Publishes every event of the request to each of its channels in one
/// `publish_many`: a channel's events are appended as one store group in
/// request order (consecutive offsets) and reach each subscriber together,
/// in one socket write; channels proceed concurrently. In a shaped
/// namespace the backend's events take the priority lane, as the native
/// HTTP API's do.
async fn publish(app: &AppState, triggers: &[Trigger]) -> Result<(), PusherApiError> {
    let (hub, settings) = (&app.hub, &app.settings);
    let publishes = triggers
        .iter()
        .filter(|trigger| trigger.delete.is_none())
        .flat_map(|trigger| trigger.channels.iter().map(move |channel| (trigger, channel)))
        .map(|(trigger, (pusher, hub_channel))| Publish {
            event: Some(trigger.name.clone()),
            ephemeral: matches!(pusher.kind(), ChannelKind::ServerToUser(_)),
            exclude: trigger.exclude,
            priority: server_lane(&settings.namespaces.resolve(hub_channel)),
            ..Publish::new(hub_channel.clone(), trigger.data.clone())
        })
        .collect();
    for result in hub.publish_many(publishes).await {
        result?;
    }
    for trigger in triggers {
        let Some(target) = &trigger.delete else { continue };
        for (_, hub_channel) in &trigger.channels {
            // The API's own moderation action: a delete record, and the
            // `moderation_action` event of a delete by "api".
            let action = ModerationAction::Delete { channel: hub_channel.clone(), target: target.clone() };
            let outcome = act(app, Actor::Api, action)
                .await
                .map_err(|error| PusherApiError::new(error.code, error.message))?;
            tracing::info!(channel = %hub_channel, offset = ?outcome.offset, deleted = ?outcome.deleted, "deleted by a Pusher trigger");
        }
    }
    Ok(())
}

/// `{name: {user_count?, subscription_count?}}` for each channel of the trigger.
async fn channel_info(hub: &Hub, trigger: &Trigger) -> BTreeMap<String, Value> {
    let mut channels = BTreeMap::new();
    for (pusher, hub_channel) in &trigger.channels {
        let mut info = Map::new();
        if trigger.info.user_count && pusher.kind() == ChannelKind::Presence {
            info.insert("user_count".into(), json!(hub.presence(hub_channel).await.map_or(0, |m| m.len())));
        }
        if trigger.info.subscription_count {
            info.insert(
                "subscription_count".into(),
                json!(hub.subscriber_count(hub_channel).await.unwrap_or(0)),
            );
        }
        channels.insert(pusher.as_str().to_owned(), Value::Object(info));
    }
    channels
}
