//! The native HTTP API (`docs/api.md`, `/openapi.json`): publish from a
//! backend, read history and presence, list channels, disconnect users.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use fanfare_hub::{Hub, Publish};
use fanfare_protocol::native::{HistoryParams, HistoryResult, PresenceResult, PublishResult};
use fanfare_protocol::{ChannelName, ErrorCode, JsonData};
use serde::{Deserialize, Serialize};

use crate::api::extract::{ApiKey, JsonBody};
use crate::config::Settings;
use crate::http_error::HttpError;
use crate::members::Members;
use crate::policy::{check_data, check_event, hub_error, server_lane};

/// The most channels one broadcast may name.
const MAX_BROADCAST_CHANNELS: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    channel: ChannelName,
    #[serde(default)]
    event: Option<String>,
    data: JsonData,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    ephemeral: bool,
}

pub async fn publish(
    _: ApiKey,
    State(hub): State<Arc<Hub>>,
    State(settings): State<Arc<Settings>>,
    State(members): State<Arc<Members>>,
    JsonBody(body): JsonBody<PublishBody>,
) -> Result<Json<PublishResult>, HttpError> {
    let publish = Publish {
        event: body.event,
        idempotency_key: body.idempotency_key,
        ephemeral: body.ephemeral,
        ..Publish::new(body.channel, body.data)
    };
    publish_one(&hub, &settings, &members, publish).await.map(Json)
}

async fn publish_one(
    hub: &Hub,
    settings: &Settings,
    members: &Members,
    mut publish: Publish,
) -> Result<PublishResult, HttpError> {
    let namespace = settings.namespaces.resolve(&publish.channel);
    members.check_name(&publish.channel)?;
    check_event(publish.event.as_deref())?;
    check_data(&publish.data, &namespace)?;
    publish.priority = server_lane(&namespace);
    Ok(hub.publish(publish).await.map_err(hub_error)?.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastBody {
    channels: Vec<ChannelName>,
    #[serde(default)]
    event: Option<String>,
    data: JsonData,
    #[serde(default)]
    ephemeral: bool,
}

#[derive(Serialize)]
pub struct BroadcastResult {
    results: Vec<ChannelOutcome>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChannelOutcome {
    Published {
        channel: ChannelName,
        #[serde(flatten)]
        result: PublishResult,
    },
    Failed {
        channel: ChannelName,
        error: fanfare_protocol::ErrorInfo,
    },
}

/// Publishes the same data to several channels; one result per channel,
/// in the order given. Channels are published concurrently.
pub async fn broadcast(
    _: ApiKey,
    State(hub): State<Arc<Hub>>,
    State(settings): State<Arc<Settings>>,
    State(members): State<Arc<Members>>,
    JsonBody(body): JsonBody<BroadcastBody>,
) -> Result<Json<BroadcastResult>, HttpError> {
    if body.channels.is_empty() || body.channels.len() > MAX_BROADCAST_CHANNELS {
        let message = format!("\"channels\" must name 1 to {MAX_BROADCAST_CHANNELS} channels");
        return Err(HttpError::new(ErrorCode::BadRequest, message));
    }
    let jobs = body.channels.into_iter().map(|channel| {
        let publish = Publish {
            event: body.event.clone(),
            ephemeral: body.ephemeral,
            ..Publish::new(channel.clone(), body.data.clone())
        };
        let (hub, settings, members) = (&hub, &settings, &members);
        async move {
            match publish_one(hub, settings, members, publish).await {
                Ok(result) => ChannelOutcome::Published { channel, result },
                Err(HttpError(error)) => ChannelOutcome::Failed { channel, error },
            }
        }
    });
    let results = futures_util::future::join_all(jobs).await;
    Ok(Json(BroadcastResult { results }))
}

#[derive(Deserialize)]
pub struct HistoryQueryParams {
    channel: ChannelName,
    since: Option<u64>,
    limit: Option<usize>,
    #[serde(default)]
    reverse: bool,
}

pub async fn history(
    _: ApiKey,
    State(hub): State<Arc<Hub>>,
    query: Result<Query<HistoryQueryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HistoryResult>, HttpError> {
    let Query(q) = query.map_err(bad_query)?;
    let params = HistoryParams { since: q.since, limit: q.limit, reverse: q.reverse };
    hub.history(&q.channel, params).await.map(Json).map_err(|e| hub_error(e).into())
}

#[derive(Deserialize)]
pub struct ChannelParam {
    channel: ChannelName,
}

pub async fn presence(
    _: ApiKey,
    State(hub): State<Arc<Hub>>,
    State(settings): State<Arc<Settings>>,
    query: Result<Query<ChannelParam>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PresenceResult>, HttpError> {
    let Query(q) = query.map_err(bad_query)?;
    let options = settings.namespaces.resolve(&q.channel).channel;
    if options.observed && !options.presence {
        // The hub may track a members channel's presence for the offline webhook: not the namespace's.
        return Err(hub_error(fanfare_hub::HubError::PresenceDisabled).into());
    }
    let members = hub.presence(&q.channel).await.map_err(hub_error)?;
    Ok(Json(PresenceResult { members }))
}

#[derive(Deserialize)]
pub struct PrefixParam {
    #[serde(default)]
    prefix: String,
}

#[derive(Serialize)]
pub struct ChannelList {
    channels: Vec<ChannelEntry>,
}

#[derive(Serialize)]
struct ChannelEntry {
    channel: ChannelName,
    subscribers: usize,
}

pub async fn channels(
    _: ApiKey,
    State(hub): State<Arc<Hub>>,
    query: Result<Query<PrefixParam>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ChannelList>, HttpError> {
    let Query(q) = query.map_err(bad_query)?;
    let channels = hub
        .channels(&q.prefix)
        .await
        .map_err(hub_error)?
        .into_iter()
        .map(|info| ChannelEntry { channel: info.channel, subscribers: info.subscribers })
        .collect();
    Ok(Json(ChannelList { channels }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisconnectBody {
    user: String,
}

#[derive(Serialize)]
pub struct Disconnected {
    disconnected: usize,
    /// Nodes of the cluster that did not answer in time (absent on a single
    /// node, or when every node answered).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unreached: Vec<String>,
}

/// Closes every connection of a user with 4003 (do not reconnect).
pub async fn disconnect(
    _: ApiKey,
    State(hub): State<Arc<Hub>>,
    JsonBody(body): JsonBody<DisconnectBody>,
) -> Result<Json<Disconnected>, HttpError> {
    if body.user.is_empty() {
        return Err(HttpError::new(ErrorCode::BadRequest, "\"user\" must not be empty"));
    }
    let report = hub.disconnect_user(&body.user).await.map_err(hub_error)?;
    let unreached = report.unreached.iter().map(ToString::to_string).collect();
    Ok(Json(Disconnected { disconnected: report.disconnected, unreached }))
}

#[derive(Serialize)]
pub struct NodeList {
    /// This node's id (`null` for a single node).
    node: Option<String>,
    nodes: Vec<fanfare_cluster::NodeInfo>,
}

/// Every live node of the cluster (an empty list for a single node).
pub async fn nodes(_: ApiKey, State(hub): State<Arc<Hub>>) -> Result<Json<NodeList>, HttpError> {
    let nodes = hub.nodes().await.map_err(hub_error)?;
    Ok(Json(NodeList { node: hub.node_id().map(ToString::to_string), nodes }))
}

pub(super) fn bad_query(rejection: axum::extract::rejection::QueryRejection) -> HttpError {
    let text = rejection.body_text();
    let code = if text.contains("channel") && !text.contains("missing field") {
        ErrorCode::InvalidChannel
    } else {
        ErrorCode::BadRequest
    };
    HttpError::new(code, text)
}
