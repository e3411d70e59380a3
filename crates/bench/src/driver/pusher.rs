//! The Pusher Channels protocol, version 7, for subscribers: wait for
//! `pusher:connection_established`, send `pusher:subscribe` for a public
//! channel, wait for `pusher_internal:subscription_succeeded`, then read
//! events and answer `pusher:ping`. Nothing here is Fanfare-specific, so
//! the same driver measures any Pusher-compatible server.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Incoming, Opened, SessionError, Shaping, WebSocket, next_text, send_text};
use crate::payload;

const PONG: &str = r#"{"event":"pusher:pong","data":{}}"#;

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    channel: Option<&'a str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

pub(crate) async fn subscribe(ws: &mut WebSocket, channel: &str) -> Result<Opened, SessionError> {
    loop {
        let text = next_text(ws).await?;
        let frame = parse(&text)?;
        match frame.event.as_ref() {
            "pusher:connection_established" => break,
            "pusher:error" => return Err(refused(&frame)),
            _ => continue,
        }
    }
    let subscribe =
        serde_json::json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": channel}});
    send_text(ws, subscribe.to_string()).await?;
    loop {
        let text = next_text(ws).await?;
        let frame = parse(&text)?;
        match frame.event.as_ref() {
            "pusher_internal:subscription_succeeded" if frame.channel == Some(channel) => {
                return Ok(Opened { after: 0, epoch: None, recovered: None, top: 0, pending: Vec::new() });
            }
            "pusher:subscription_error" | "pusher:error" => return Err(refused(&frame)),
            "pusher:ping" => send_text(ws, PONG.to_string()).await?,
            _ => continue,
        }
    }
}

fn parse(text: &str) -> Result<Frame<'_>, SessionError> {
    serde_json::from_str(text).map_err(|_| SessionError::Unexpected(text.chars().take(200).collect()))
}

fn refused(frame: &Frame<'_>) -> SessionError {
    let data = frame.data.map_or("", |d| d.get());
    SessionError::Refused(format!("{}: {}", frame.event, data.chars().take(200).collect::<String>()))
}

/// What a frame means to a subscriber: a benchmark event is keyed by its
/// payload's `seq`; events that are not ours are ignored.
pub(crate) fn decode(text: &str) -> Incoming<'_> {
    let Ok(frame) = serde_json::from_str::<Frame<'_>>(text) else { return Incoming::Unreadable };
    match frame.event.as_ref() {
        "pusher:ping" => Incoming::Answer(PONG),
        event if event.starts_with("pusher") => Incoming::Ignore,
        _ => match frame.data.and_then(|data| payload::decode(data.get())) {
            Some(payload) => Incoming::Delivery {
                key: payload.seq,
                epoch: None,
                payload: Some(payload),
                shaping: Shaping::default(),
            },
            None => Incoming::Ignore,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    #[test]
    fn an_event_is_keyed_by_its_payload_seq() {
        let data = payload::encode(9, 77, 30);
        let text = format!(r#"{{"event":"fanfare-bench","channel":"c","data":{data}}}"#);
        assert_eq!(
            decode(&text),
            Incoming::Delivery {
                key: 9,
                epoch: None,
                payload: Some(Payload { seq: 9, sent_us: 77 }),
                shaping: Shaping::default()
            }
        );
    }

    #[test]
    fn pings_are_answered_and_protocol_events_ignored() {
        assert_eq!(decode(r#"{"event":"pusher:ping","data":"{}"}"#), Incoming::Answer(PONG));
        let succeeded = r#"{"event":"pusher_internal:subscription_succeeded","channel":"c","data":"{}"}"#;
        assert_eq!(decode(succeeded), Incoming::Ignore);
        assert_eq!(decode(r#"{"event":"other","channel":"c","data":"{\"a\":1}"}"#), Incoming::Ignore);
        assert_eq!(decode("[]"), Incoming::Unreadable);
    }
}
