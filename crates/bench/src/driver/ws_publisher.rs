//! Publishing from clients (`--publish-from clients`, native only): a few
//! WebSocket connections send `publish` commands, many in flight on each.
//!
//! One task owns each socket (the nats.rs habit): callers hand it a
//! request on a bounded channel and wait for the answer on a oneshot; the
//! task writes commands, matches replies to them by `id`, and reconnects
//! when the socket dies (failing what was in flight, whose outcome is
//! unknown).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fanfare_protocol::native::{Command, CommandBody, PublishResult, ServerMessage};
use fanfare_protocol::{ChannelName, JsonData};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::api::ApiError;
use super::{SessionError, WebSocket, dial, send_text};
use crate::options::Plan;

type Answer = Result<Option<u64>, ApiError>;

struct Request {
    channel: ChannelName,
    data: JsonData,
    answer: oneshot::Sender<Answer>,
}

/// Handles to the publishing connections; requests go round them.
#[derive(Clone)]
pub(crate) struct WsPublishers {
    connections: Arc<[mpsc::Sender<Request>]>,
}

impl WsPublishers {
    /// Starts `count` connection tasks; they connect on first use.
    pub(crate) fn start(plan: &Plan, count: usize, in_flight: usize) -> Self {
        let per_connection = in_flight.div_ceil(count).max(1);
        let connections = (0..count.max(1))
            .map(|n| {
                let (tx, rx) = mpsc::channel(per_connection);
                let token = crate::tokens::token_for(&plan.options, crate::tokens::Role::Publisher(n));
                let target = Target { url: plan.ws_url(), plan: plan.clone(), token };
                tokio::spawn(run(target, rx));
                tx
            })
            .collect();
        Self { connections }
    }

    pub(crate) async fn publish(&self, lane: usize, channel: &str, payload: &str) -> Answer {
        let channel = ChannelName::new(channel).map_err(|e| ApiError::Refused(e.to_string()))?;
        let data = JsonData::parse(payload.to_string()).map_err(|e| ApiError::Refused(e.to_string()))?;
        let (answer, rx) = oneshot::channel();
        let connection = &self.connections[lane % self.connections.len()];
        connection
            .send(Request { channel, data, answer })
            .await
            .map_err(|_| ApiError::Unexpected("publishing connection stopped".into()))?;
        rx.await.unwrap_or_else(|_| Err(ApiError::Unexpected("publishing connection stopped".into())))
    }
}

struct Target {
    url: String,
    plan: Plan,
    /// What this connection sends in `connect`.
    token: Option<String>,
}

/// The task owning one publishing socket. Ends when every handle is gone.
async fn run(target: Target, mut requests: mpsc::Receiver<Request>) {
    let mut next_id = 10u64;
    'connection: loop {
        let Some(first) = requests.recv().await else { return };
        let mut ws = match open(&target).await {
            Ok(ws) => ws,
            Err(error) => {
                let _ = first.answer.send(Err(error.into()));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut pending: HashMap<u64, oneshot::Sender<Answer>> = HashMap::new();
        let mut queued = Some(first);
        loop {
            if let Some(request) = queued.take() {
                next_id += 1;
                let command = Command {
                    id: next_id,
                    body: CommandBody::Publish {
                        channel: request.channel,
                        event: None,
                        data: request.data,
                        idempotency_key: None,
                        ephemeral: false,
                    },
                };
                if let Err(error) = ws.send(Message::text(command.encode())).await {
                    let _ = request.answer.send(Err(SessionError::from(error).into()));
                    fail_all(&mut pending);
                    continue 'connection;
                }
                pending.insert(next_id, request.answer);
            }
            tokio::select! {
                request = requests.recv() => match request {
                    Some(request) => queued = Some(request),
                    None => {
                        super::close(ws).await;
                        return;
                    }
                },
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => answer(&mut pending, &text),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        fail_all(&mut pending);
                        continue 'connection;
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    }
}

async fn open(target: &Target) -> Result<WebSocket, SessionError> {
    let plan = &target.plan;
    let attempt = async {
        let mut ws = dial(&target.url, plan.server, None, plan.tls.as_ref()).await?;
        let connect = Command { id: 1, body: CommandBody::Connect { token: target.token.clone() } };
        send_text(&mut ws, connect.encode()).await?;
        loop {
            let text = super::next_text(&mut ws).await?;
            match ServerMessage::decode(&text) {
                Ok(ServerMessage::Reply { id: 1, outcome: Ok(_) }) => return Ok(ws),
                Ok(ServerMessage::Reply { id: 1, outcome: Err(error) }) => {
                    return Err(SessionError::Refused(error.to_string()));
                }
                _ => continue,
            }
        }
    };
    let limit = plan.options.connect_timeout;
    tokio::time::timeout(limit, attempt).await.map_err(|_| SessionError::Timeout(limit))?
}

fn answer(pending: &mut HashMap<u64, oneshot::Sender<Answer>>, text: &str) {
    let Ok(ServerMessage::Reply { id, outcome }) = ServerMessage::decode(text) else { return };
    let Some(waiter) = pending.remove(&id) else { return };
    let result = match outcome {
        Ok(result) => serde_json::from_str::<PublishResult>(result.as_str())
            .map(|r| r.offset)
            .map_err(|_| ApiError::Unexpected(result.as_str().chars().take(200).collect())),
        Err(error) => Err(ApiError::Refused(error.to_string())),
    };
    let _ = waiter.send(result);
}

fn fail_all(pending: &mut HashMap<u64, oneshot::Sender<Answer>>) {
    for (_, waiter) in pending.drain() {
        let _ = waiter.send(Err(ApiError::Unexpected("publishing connection lost; outcome unknown".into())));
    }
}
