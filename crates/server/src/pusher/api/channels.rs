//! `GET /apps/{id}/channels`, `/channels/{name}` and
//! `/channels/{name}/users`: the app's channels as the hub knows them (in
//! a cluster: every node's, through `Hub::channels`, `subscriber_count`
//! and `presence`). Names are shown as the app's clients know them,
//! without the app's prefix.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use fanfare_hub::Hub;
use fanfare_protocol::ChannelName;
use fanfare_protocol::native::HistoryParams;
use fanfare_protocol::pusher::{ChannelKind, PusherChannel};
use serde_json::{Map, Value, json};

use super::error::PusherApiError;
use super::signed::{InfoAttributes, Signed, now_unix};
use crate::pusher::apps::Apps;
use crate::pusher::{CACHE_TTL, PusherState};

/// Occupied channels of the app, optionally by name prefix.
pub(super) async fn list(
    State(hub): State<Arc<Hub>>,
    State(pusher): State<Arc<PusherState>>,
    signed: Signed,
) -> Result<Json<Value>, PusherApiError> {
    let filter = signed.param("filter_by_prefix").unwrap_or("");
    let info = InfoAttributes::parse(signed.param("info"), &["user_count", "subscription_count"])?;
    if info.user_count && !filter.starts_with("presence-") {
        return Err(PusherApiError::bad_request(
            "info=user_count needs filter_by_prefix=presence- (user counts exist for presence channels only)",
        ));
    }
    let app = &signed.app;
    let mut channels = BTreeMap::new();
    let listing = hub.channels(&format!("{}{filter}", app.channel_prefix())).await.map_err(hub_failure)?;
    for listed in listing {
        let Some((owner, name)) = pusher.apps.for_hub_channel(&listed.channel) else { continue };
        if owner.id() != app.id() || listed.subscribers == 0 {
            continue;
        }
        let mut attributes = Map::new();
        if info.user_count {
            attributes.insert("user_count".into(), json!(user_count(&hub, &listed.channel).await));
        }
        if info.subscription_count {
            attributes.insert("subscription_count".into(), json!(listed.subscribers));
        }
        channels.insert(name.to_owned(), Value::Object(attributes));
    }
    Ok(Json(json!({ "channels": channels })))
}

/// One channel: whether it is occupied, and the attributes asked for.
pub(super) async fn info(
    State(hub): State<Arc<Hub>>,
    Path((_, name)): Path<(String, String)>,
    signed: Signed,
) -> Result<Json<Value>, PusherApiError> {
    let (channel, hub_channel) = resolve(&signed, &name)?;
    let info = InfoAttributes::parse(signed.param("info"), &["user_count", "subscription_count", "cache"])?;
    if info.user_count && channel.kind() != ChannelKind::Presence {
        return Err(PusherApiError::bad_request("user_count is only available for presence channels"));
    }
    if info.cache && !channel.is_cache() {
        return Err(PusherApiError::bad_request("cache is only available for cache channels"));
    }
    let subscribers = hub.subscriber_count(&hub_channel).await.map_err(hub_failure)?;
    let mut body = Map::new();
    body.insert("occupied".into(), json!(subscribers > 0));
    if info.user_count {
        body.insert("user_count".into(), json!(user_count(&hub, &hub_channel).await));
    }
    if info.subscription_count {
        body.insert("subscription_count".into(), json!(subscribers));
    }
    if info.cache
        && let Some(cache) = cached_event(&hub, &hub_channel).await?
    {
        body.insert("cache".into(), cache);
    }
    Ok(Json(Value::Object(body)))
}

/// The members of a presence channel.
pub(super) async fn users(
    State(hub): State<Arc<Hub>>,
    Path((_, name)): Path<(String, String)>,
    signed: Signed,
) -> Result<Json<Value>, PusherApiError> {
    let (channel, hub_channel) = resolve(&signed, &name)?;
    if channel.kind() != ChannelKind::Presence {
        return Err(PusherApiError::bad_request("users are only available for presence channels"));
    }
    let members = hub.presence(&hub_channel).await?;
    let users: Vec<Value> = members.iter().map(|member| json!({ "id": member.user })).collect();
    Ok(Json(json!({ "users": users })))
}

fn resolve(signed: &Signed, name: &str) -> Result<(PusherChannel, ChannelName), PusherApiError> {
    let invalid = |error: String| PusherApiError::bad_request(format!("channel {name:?}: {error}"));
    let channel = PusherChannel::new(name).map_err(|e| invalid(e.to_string()))?;
    let hub_channel = Apps::hub_channel(&signed.app, name).map_err(|e| invalid(e.to_string()))?;
    Ok((channel, hub_channel))
}

async fn user_count(hub: &Hub, channel: &ChannelName) -> usize {
    hub.presence(channel).await.map_or(0, |members| members.len())
}

fn hub_failure(error: fanfare_hub::HubError) -> PusherApiError {
    PusherApiError::from(error)
}

/// `{"data", "ttl"}` of the channel's last event if it is younger than
/// the cache time.
async fn cached_event(hub: &Hub, channel: &ChannelName) -> Result<Option<Value>, PusherApiError> {
    let params = HistoryParams { since: None, limit: Some(1), reverse: true };
    let history = hub.history(channel, params).await?;
    let Some(last) = history.publications.first() else { return Ok(None) };
    let age = Duration::from_millis((now_unix() * 1000).saturating_sub(last.time_ms));
    let Some(ttl) = CACHE_TTL.checked_sub(age).filter(|ttl| !ttl.is_zero()) else { return Ok(None) };
    Ok(Some(json!({ "data": fanfare_protocol::pusher::event_data_string(&last.data), "ttl": ttl.as_secs() })))
}
