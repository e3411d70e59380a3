//! `GET /api/admin/stream[?channel=NAME]`: server-sent events for the
//! admin page.
//!
//! - `stats`, at once and then every second: [`Stats`] as JSON.
//! - `publication`, with `channel`: each publication of that channel, as
//!   the native protocol pushes it (`docs/protocol.md`).
//! - `tail_closed`, once, if the tail ends before the stream (its outbox
//!   overflowed, or the channel's subscriptions were dropped).
//!
//! One task per stream feeds a bounded queue the response reads. Nothing
//! waits for the reader: an event that finds the queue full is dropped;
//! dropped publications are counted in the next `stats` (`tail_dropped`).
//! The stream ends when the reader goes, or when the node begins to shut
//! down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, Sse};
use fanfare_protocol::{ChannelName, ErrorCode, Frame};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::stats::{Sampler, Stats};
use super::tail::Tail;
use crate::api::extract::ApiKey;
use crate::http_error::HttpError;
use crate::policy::hub_error;
use crate::server::AppState;

/// Events waiting for the reader.
const QUEUE: usize = 256;
/// Between two `stats` events.
const TICK: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
pub(super) struct StreamParams {
    channel: Option<ChannelName>,
}

/// Reads most of the node (hub, metrics, draining), so it takes the whole
/// state.
pub(super) async fn stream(
    _: ApiKey,
    State(app): State<AppState>,
    query: Result<Query<StreamParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let Query(params) = query.map_err(|e| HttpError::new(ErrorCode::InvalidChannel, e.body_text()))?;
    let tail = match params.channel {
        Some(channel) => Some(Tail::open(app.hub.clone(), channel).await.map_err(hub_error)?),
        None => None,
    };
    let (events, queued) = mpsc::channel(QUEUE);
    tokio::spawn(feed(app, tail, events));
    let body = futures_util::stream::unfold(queued, |mut queued| async move {
        queued.recv().await.map(|event| (Ok(event), queued))
    });
    Ok(Sse::new(body))
}

/// The stream's task: stats on every tick, publications as they come.
async fn feed(app: AppState, mut tail: Option<Tail>, events: mpsc::Sender<Event>) {
    let mut sampler = Sampler::new(&app);
    let mut ticks = tokio::time::interval(TICK);
    let (mut dropped, mut frames) = (0u64, Vec::new());
    loop {
        tokio::select! {
            () = events.closed() => return,
            _ = ticks.tick() => {
                if app.draining() {
                    return;
                }
                if offer(&events, stats_event(&sampler.sample(&app, dropped))).is_err() {
                    return;
                }
            }
            closed = next_frames(tail.as_ref(), &mut frames) => {
                for frame in frames.drain(..) {
                    match offer(&events, publication_event(&frame)) {
                        Ok(true) => {}
                        Ok(false) => dropped += 1,
                        Err(()) => return,
                    }
                }
                if closed {
                    let channel = tail.take().map(|tail| tail.channel().to_string()).unwrap_or_default();
                    let data = serde_json::json!({ "channel": channel }).to_string();
                    let _ = offer(&events, Event::default().event("tail_closed").data(data));
                }
            }
        }
    }
}

/// Queues without waiting: `Ok(false)` when the queue is full (dropped),
/// `Err` when the reader has gone.
fn offer(events: &mpsc::Sender<Event>, event: Event) -> Result<bool, ()> {
    match events.try_send(event) {
        Ok(()) => Ok(true),
        Err(TrySendError::Full(_)) => Ok(false),
        Err(TrySendError::Closed(_)) => Err(()),
    }
}

/// Waits for the tail's next frames; true once it has closed. Never
/// resolves without a tail.
async fn next_frames(tail: Option<&Tail>, into: &mut Vec<Frame>) -> bool {
    match tail {
        Some(tail) => tail.next(into).await.is_some(),
        None => std::future::pending().await,
    }
}

fn stats_event(stats: &Stats) -> Event {
    let data = serde_json::to_string(stats).unwrap_or_default();
    Event::default().event("stats").data(data)
}

fn publication_event(frame: &Frame) -> Event {
    Event::default().event("publication").data(frame.as_str())
}
