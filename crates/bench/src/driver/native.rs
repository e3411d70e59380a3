//! The native protocol (`docs/protocol.md`) for subscribers: `connect`,
//! `subscribe` with an optional `since`, and publications read with
//! borrowed fields, so a frame costs one pass and no allocation.

use fanfare_protocol::native::{Command, CommandBody, ConnectResult, ServerMessage, SubscribeResult};
use fanfare_protocol::{ChannelName, Epoch, StreamPosition};
use serde::Deserialize;
use serde_json::value::RawValue;

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{
    Incoming, NOTICE_EVENT, Notice, Opened, PRIORITY_EVENT, REACTIONS_EVENT, Resume, SessionError, Shaping,
    WebSocket, next_text, send_text,
};
use crate::payload;

const CONNECT_ID: u64 = 1;
const SUBSCRIBE_ID: u64 = 2;

/// Sends `connect`, then `subscribe` (from `resume` when given), and waits
/// for both replies.
pub(crate) async fn subscribe(
    ws: &mut WebSocket,
    token: Option<&str>,
    channel: &str,
    resume: Option<Resume>,
) -> Result<Opened, SessionError> {
    let connect = Command { id: CONNECT_ID, body: CommandBody::Connect { token: token.map(str::to_string) } };
    send_text(ws, connect.encode()).await?;
    let _: ConnectResult = reply(ws, CONNECT_ID).await?;

    let channel = ChannelName::new(channel).map_err(|e| SessionError::Refused(e.to_string()))?;
    let since = resume.as_ref().map(|r| StreamPosition::new(Epoch::new(&r.epoch), r.offset));
    let subscribe = Command { id: SUBSCRIBE_ID, body: CommandBody::Subscribe { channel, since } };
    send_text(ws, subscribe.encode()).await?;
    let result: SubscribeResult = reply(ws, SUBSCRIBE_ID).await?;
    // Recovered: the gap after our position follows. Otherwise only what
    // comes after the channel's top (a `recovered: false` loses the gap).
    let after = match (&resume, result.recovered) {
        (Some(resume), Some(true)) => resume.offset,
        _ => result.offset,
    };
    Ok(Opened {
        after,
        epoch: Some(result.epoch.as_str().to_string()),
        recovered: result.recovered,
        top: result.offset,
        pending: Vec::new(),
    })
}

/// Waits for the reply `id`; a push before it cannot be ours (the reply
/// comes first) and is skipped.
async fn reply<T: serde::de::DeserializeOwned>(ws: &mut WebSocket, id: u64) -> Result<T, SessionError> {
    loop {
        let text = next_text(ws).await?;
        match ServerMessage::decode(&text) {
            Ok(ServerMessage::Reply { id: got, outcome }) if got == id => {
                let result = outcome.map_err(|error| SessionError::Refused(error.to_string()))?;
                return serde_json::from_str(result.as_str())
                    .map_err(|_| SessionError::Unexpected(text.as_str().chars().take(200).collect()));
            }
            Ok(ServerMessage::Disconnect { code, reason, .. }) => {
                return Err(SessionError::Closed { code, reason });
            }
            Ok(_) => continue,
            Err(_) => return Err(SessionError::Unexpected(text.as_str().chars().take(200).collect())),
        }
    }
}

#[derive(Deserialize)]
struct Frame<'a> {
    id: Option<u64>,
    // Borrowed: types and epochs never need escapes (a frame where they
    // did would not decode, and count as unreadable).
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    epoch: Option<&'a str>,
    offset: Option<u64>,
    /// Shaped namespaces: publications sampled out before this one.
    skipped: Option<u64>,
    /// Shaped namespaces: a publication of the priority lane.
    priority: Option<bool>,
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    code: Option<u16>,
}

/// The data of a feed notice (`fanfare:notice`, docs/members.md §3).
#[derive(Deserialize)]
struct NoticeData<'a> {
    #[serde(borrow)]
    channel: Cow<'a, str>,
    epoch: &'a str,
    offset: u64,
    #[serde(borrow)]
    preview: Option<Cow<'a, str>>,
}

/// The data of a reaction aggregate (`fanfare:reactions`).
#[derive(Deserialize)]
struct Aggregate {
    counts: BTreeMap<String, u64>,
}

/// What a frame means to a subscriber: durable publications (with what
/// shaping says of them), reaction aggregates, replies.
pub(crate) fn decode(text: &str) -> Incoming<'_> {
    let Ok(frame) = serde_json::from_str::<Frame<'_>>(text) else { return Incoming::Unreadable };
    if let Some(id) = frame.id {
        return Incoming::Reply {
            id,
            error: frame.error.map(RawValue::get),
            result: frame.result.map(RawValue::get),
        };
    }
    match frame.kind {
        Some("publication") if frame.event.as_deref() == Some(NOTICE_EVENT) => notice(&frame),
        Some("publication") => match (frame.offset, frame.epoch) {
            (Some(offset), Some(epoch)) => Incoming::Delivery {
                key: offset,
                epoch: Some(epoch),
                payload: frame.data.and_then(|data| payload::decode(data.get())),
                shaping: Shaping {
                    skipped: frame.skipped.unwrap_or(0),
                    flagged_priority: frame.priority == Some(true),
                    priority_event: frame.event.as_deref() == Some(PRIORITY_EVENT),
                },
            },
            // Ephemeral publications have no offset; reaction aggregates
            // are ephemeral.
            _ if frame.event.as_deref() == Some(REACTIONS_EVENT) => {
                let aggregate =
                    frame.data.and_then(|data| serde_json::from_str::<Aggregate>(data.get()).ok());
                match aggregate {
                    Some(aggregate) => Incoming::Reactions { total: aggregate.counts.values().sum() },
                    None => Incoming::Unreadable,
                }
            }
            _ => Incoming::Ignore,
        },
        Some("disconnect") => Incoming::Disconnect { code: frame.code.unwrap_or(0) },
        _ => Incoming::Ignore,
    }
}

/// A feed notice: its feed offset, the message it is about, and the
/// benchmark payload its preview carries.
fn notice<'a>(frame: &Frame<'a>) -> Incoming<'a> {
    let data = frame.data.and_then(|data| serde_json::from_str::<NoticeData<'a>>(data.get()).ok());
    match (frame.offset, frame.epoch, data) {
        (Some(key), Some(epoch), Some(data)) => Incoming::Notice {
            key,
            epoch,
            about: Notice {
                payload: data.preview.as_deref().and_then(payload::decode_text),
                channel: data.channel,
                epoch: data.epoch,
                offset: data.offset,
            },
        },
        _ => Incoming::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    #[test]
    fn a_publication_gives_its_offset_epoch_and_payload() {
        let data = payload::encode(3, 1000, 40);
        let text = format!(
            r#"{{"type":"publication","channel":"c","epoch":"ep","offset":42,"time":1,"data":{data}}}"#
        );
        assert_eq!(
            decode(&text),
            Incoming::Delivery {
                key: 42,
                epoch: Some("ep"),
                payload: Some(Payload { seq: 3, sent_us: 1000 }),
                shaping: Shaping::default(),
            }
        );
    }

    #[test]
    fn a_shaped_publication_says_what_was_skipped_and_its_lane() {
        let data = payload::encode(4, 1000, 40);
        let ordinary = format!(
            r#"{{"type":"publication","channel":"live:stage","epoch":"ep","offset":130,"time":1000,"skipped":24,"data":{data}}}"#
        );
        let Incoming::Delivery { key, shaping, .. } = decode(&ordinary) else { panic!("a delivery") };
        assert_eq!((key, shaping), (130, Shaping { skipped: 24, ..Shaping::default() }));
        let priority = format!(
            r#"{{"type":"publication","channel":"live:stage","epoch":"ep","offset":131,"time":1000,"priority":true,"event":"{PRIORITY_EVENT}","data":{data}}}"#
        );
        let Incoming::Delivery { shaping, .. } = decode(&priority) else { panic!("a delivery") };
        assert_eq!(shaping, Shaping { skipped: 0, flagged_priority: true, priority_event: true });
    }

    #[test]
    fn a_reaction_aggregate_gives_the_sum_of_its_counts() {
        let text = r#"{"type":"publication","channel":"live:stage","time":1000,"event":"fanfare:reactions","data":{"window_ms":250,"counts":{"👍":12,"❤️":3}}}"#;
        assert_eq!(decode(text), Incoming::Reactions { total: 15 });
        let broken =
            r#"{"type":"publication","channel":"c","time":1,"event":"fanfare:reactions","data":{"n":1}}"#;
        assert_eq!(decode(broken), Incoming::Unreadable);
    }

    #[test]
    fn a_feed_notice_says_where_the_message_is_and_carries_its_payload_in_the_preview() {
        let text = payload::encode(5, 777, 60);
        let inner: String = serde_json::from_str(&text).unwrap();
        let frame = format!(
            r#"{{"type":"publication","channel":"feed:u1","epoch":"F3","offset":311,"time":1,"event":"fanfare:notice","data":{{"channel":"dm:u0,u1","epoch":"Xk","offset":42,"from":"u0","preview":"{inner}"}}}}"#
        );
        let Incoming::Notice { key, epoch, about } = decode(&frame) else { panic!("a notice") };
        assert_eq!((key, epoch), (311, "F3"));
        assert_eq!((about.channel.as_ref(), about.epoch, about.offset), ("dm:u0,u1", "Xk", 42));
        assert_eq!(about.payload, Some(Payload { seq: 5, sent_us: 777 }));
        let bare = r#"{"type":"publication","channel":"feed:u1","epoch":"F3","offset":1,"time":1,"event":"fanfare:notice","data":{"channel":"dm:u0,u1","epoch":"Xk","offset":1}}"#;
        let Incoming::Notice { about, .. } = decode(bare) else { panic!("a notice") };
        assert_eq!(about.payload, None, "no preview, no payload");
        let broken = r#"{"type":"publication","channel":"feed:u1","epoch":"F3","offset":2,"time":1,"event":"fanfare:notice","data":"x"}"#;
        assert_eq!(decode(broken), Incoming::Unreadable);
    }

    #[test]
    fn foreign_data_is_still_a_delivery_without_payload() {
        let text = r#"{"type":"publication","channel":"c","epoch":"ep","offset":1,"time":1,"data":{"a":1}}"#;
        assert_eq!(
            decode(text),
            Incoming::Delivery { key: 1, epoch: Some("ep"), payload: None, shaping: Shaping::default() }
        );
    }

    #[test]
    fn ephemerals_and_others_are_ignored_and_replies_say_their_error() {
        assert_eq!(
            decode(r#"{"id":3,"result":{}}"#),
            Incoming::Reply { id: 3, error: None, result: Some("{}") }
        );
        assert_eq!(
            decode(r#"{"id":4,"error":{"code":"x","message":"m","retry":false}}"#),
            Incoming::Reply {
                id: 4,
                error: Some(r#"{"code":"x","message":"m","retry":false}"#),
                result: None
            }
        );
        assert_eq!(decode(r#"{"type":"publication","channel":"c","time":1,"data":"x"}"#), Incoming::Ignore);
        assert_eq!(decode(r#"{"type":"join","channel":"c","user":"u"}"#), Incoming::Ignore);
        assert_eq!(
            decode(r#"{"type":"disconnect","code":4501,"reason":"slow consumer","reconnect":true}"#),
            Incoming::Disconnect { code: 4501 }
        );
        assert_eq!(decode("not json"), Incoming::Unreadable);
    }
}
