//! Client → server frames.
//!
//! What pusher-js sends (`src/core/connection/connection.ts`
//! `send_event`, `src/core/channels/channel.ts`, `src/core/user.ts`):
//!
//! ```text
//! {"event":"pusher:ping","data":{}}
//! {"event":"pusher:subscribe","data":{"auth":"","channel":"news"}}
//! {"event":"pusher:subscribe","data":{"auth":"<key>:<hex>","channel_data":"{…}","channel":"presence-x"}}
//! {"event":"pusher:unsubscribe","data":{"channel":"news"}}
//! {"event":"pusher:signin","data":{"auth":"<key>:<hex>","user_data":"{\"id\":\"1\"}"}}
//! {"event":"client-typing","data":{…},"channel":"private-x"}
//! ```
//!
//! Decoding goes through one flat struct, then into a typed
//! [`ClientFrame`]. The `data` of a `pusher:*` event may also arrive as a
//! JSON string holding the object (other clients double-encode it); both
//! are accepted. A client event's `data` is kept as its raw JSON text.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::JsonData;

use super::channel::{PusherChannel, validate_client_event_name};
use super::error::PusherDecodeError;

const PING: &str = "pusher:ping";
const PONG: &str = "pusher:pong";
const SUBSCRIBE: &str = "pusher:subscribe";
const UNSUBSCRIBE: &str = "pusher:unsubscribe";
const SIGNIN: &str = "pusher:signin";
const CLIENT_EVENT: &str = "client event";

/// A decoded client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    Ping,
    Pong,
    Subscribe {
        channel: PusherChannel,
        /// `None` when absent or `""` (pusher-js sends `""` for public channels).
        auth: Option<String>,
        /// The exact string the auth endpoint signed, for presence channels
        /// (and private ones whose endpoint returned it).
        channel_data: Option<String>,
    },
    Unsubscribe {
        channel: PusherChannel,
    },
    Signin {
        auth: String,
        /// A JSON string, verified as text before it is parsed with
        /// [`UserData::parse`](super::UserData::parse).
        user_data: String,
    },
    /// A `client-*` event to relay to the channel's other subscribers.
    ClientEvent {
        channel: PusherChannel,
        event: String,
        /// As sent, string or object; `null` when the client sent none.
        data: JsonData,
    },
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    channel: Option<Cow<'a, str>>,
    data: Option<JsonData>,
}

/// The fields of a `pusher:*` event's `data`.
#[derive(Deserialize, Serialize, Default)]
struct ProtocolData {
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_data: Option<String>,
}

impl ClientFrame {
    /// Decodes one text frame.
    pub fn decode(text: &str) -> Result<ClientFrame, PusherDecodeError> {
        let raw: RawFrame<'_> =
            serde_json::from_str(text).map_err(|e| PusherDecodeError::NotAMessage(e.to_string()))?;
        match raw.event.as_ref() {
            PING => Ok(ClientFrame::Ping),
            PONG => Ok(ClientFrame::Pong),
            SUBSCRIBE => decode_subscribe(protocol_data(SUBSCRIBE, raw.data)?),
            UNSUBSCRIBE => {
                let data = protocol_data(UNSUBSCRIBE, raw.data)?;
                Ok(ClientFrame::Unsubscribe { channel: channel(UNSUBSCRIBE, data.channel)? })
            }
            SIGNIN => {
                let data = protocol_data(SIGNIN, raw.data)?;
                Ok(ClientFrame::Signin {
                    auth: required(SIGNIN, "auth", data.auth)?,
                    user_data: required(SIGNIN, "user_data", data.user_data)?,
                })
            }
            event if is_reserved(event) => Err(PusherDecodeError::ReservedEvent(event.to_string())),
            event if event.starts_with("client-") => decode_client_event(raw),
            event => Err(PusherDecodeError::UnknownEvent(event.to_string())),
        }
    }
}

fn is_reserved(event: &str) -> bool {
    event.starts_with("pusher:") || event.starts_with("pusher_internal:")
}

fn decode_subscribe(data: ProtocolData) -> Result<ClientFrame, PusherDecodeError> {
    Ok(ClientFrame::Subscribe {
        channel: channel(SUBSCRIBE, data.channel)?,
        auth: data.auth.filter(|auth| !auth.is_empty()),
        channel_data: data.channel_data,
    })
}

fn decode_client_event(raw: RawFrame<'_>) -> Result<ClientFrame, PusherDecodeError> {
    validate_client_event_name(&raw.event)?;
    let name = raw.channel.map(Cow::into_owned);
    Ok(ClientFrame::ClientEvent {
        channel: channel(CLIENT_EVENT, name)?,
        event: raw.event.into_owned(),
        data: raw.data.unwrap_or_else(|| JsonData::from_value(&serde_json::Value::Null)),
    })
}

/// Reads the `data` of a `pusher:*` event, an object or a string holding one.
fn protocol_data(event: &'static str, data: Option<JsonData>) -> Result<ProtocolData, PusherDecodeError> {
    let Some(data) = data else { return Ok(ProtocolData::default()) };
    let text = data.as_str().trim_start();
    if text == "null" {
        return Ok(ProtocolData::default());
    }
    let parsed = if text.starts_with('"') {
        serde_json::from_str::<String>(text).and_then(|inner| serde_json::from_str(&inner))
    } else {
        serde_json::from_str(text)
    };
    parsed.map_err(|e| PusherDecodeError::BadData { event, reason: e.to_string() })
}

fn required(
    event: &'static str,
    field: &'static str,
    value: Option<String>,
) -> Result<String, PusherDecodeError> {
    value.ok_or(PusherDecodeError::MissingField { event, field })
}

fn channel(event: &'static str, name: Option<String>) -> Result<PusherChannel, PusherDecodeError> {
    let name = name.ok_or(PusherDecodeError::MissingField { event, field: "channel" })?;
    Ok(PusherChannel::new(&name)?)
}

// ---------------------------------------------------------------------------
// Encoding (what a client sends: for the load tool and for tests)

#[derive(Serialize)]
struct OutgoingFrame<'a, D: Serialize> {
    event: &'a str,
    data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
}

impl ClientFrame {
    /// Encodes this frame as pusher-js would: `pusher:*` data as an object,
    /// `auth` always present on subscribe.
    pub fn encode(&self) -> String {
        match self {
            ClientFrame::Ping => encode_protocol(PING, ProtocolData::default()),
            ClientFrame::Pong => encode_protocol(PONG, ProtocolData::default()),
            ClientFrame::Subscribe { channel, auth, channel_data } => encode_protocol(
                SUBSCRIBE,
                ProtocolData {
                    auth: Some(auth.clone().unwrap_or_default()),
                    channel_data: channel_data.clone(),
                    channel: Some(channel.to_string()),
                    user_data: None,
                },
            ),
            ClientFrame::Unsubscribe { channel } => encode_protocol(
                UNSUBSCRIBE,
                ProtocolData { channel: Some(channel.to_string()), ..ProtocolData::default() },
            ),
            ClientFrame::Signin { auth, user_data } => encode_protocol(
                SIGNIN,
                ProtocolData {
                    auth: Some(auth.clone()),
                    user_data: Some(user_data.clone()),
                    ..ProtocolData::default()
                },
            ),
            ClientFrame::ClientEvent { channel, event, data } => {
                to_json(&OutgoingFrame { event, data, channel: Some(channel.as_str()) })
            }
        }
    }
}

fn encode_protocol(event: &str, data: ProtocolData) -> String {
    to_json(&OutgoingFrame { event, data, channel: None })
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("client frames always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pusher::{EventNameError, PusherChannelError, PusherErrorCode};

    fn ch(name: &str) -> PusherChannel {
        PusherChannel::new(name).unwrap()
    }

    fn json(text: &str) -> JsonData {
        JsonData::parse(text.to_string()).unwrap()
    }

    #[test]
    fn what_pusher_js_sends_decodes() {
        let cases = [
            (r#"{"event":"pusher:ping","data":{}}"#, ClientFrame::Ping),
            (r#"{"event":"pusher:pong","data":{}}"#, ClientFrame::Pong),
            (
                r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}"#,
                ClientFrame::Subscribe { channel: ch("my-channel"), auth: None, channel_data: None },
            ),
            (
                r#"{"event":"pusher:subscribe","data":{"auth":"k:abc","channel_data":"{\"user_id\":\"1\"}","channel":"presence-x"}}"#,
                ClientFrame::Subscribe {
                    channel: ch("presence-x"),
                    auth: Some("k:abc".into()),
                    channel_data: Some(r#"{"user_id":"1"}"#.into()),
                },
            ),
            (
                r#"{"event":"pusher:unsubscribe","data":{"channel":"my-channel"}}"#,
                ClientFrame::Unsubscribe { channel: ch("my-channel") },
            ),
            (
                r#"{"event":"pusher:signin","data":{"auth":"k:abc","user_data":"{\"id\":\"12345\"}"}}"#,
                ClientFrame::Signin { auth: "k:abc".into(), user_data: r#"{"id":"12345"}"#.into() },
            ),
            (
                r#"{"event":"client-typing","data":{"who":"me"},"channel":"private-chat"}"#,
                ClientFrame::ClientEvent {
                    channel: ch("private-chat"),
                    event: "client-typing".into(),
                    data: json(r#"{"who":"me"}"#),
                },
            ),
        ];
        for (text, frame) in cases {
            assert_eq!(ClientFrame::decode(text), Ok(frame), "{text}");
        }
    }

    #[test]
    fn every_frame_round_trips_through_its_encoding() {
        let frames = [
            ClientFrame::Ping,
            ClientFrame::Pong,
            ClientFrame::Subscribe { channel: ch("news"), auth: None, channel_data: None },
            ClientFrame::Subscribe {
                channel: ch("presence-cache-room"),
                auth: Some("278d425bdf160c739803:31935e".into()),
                channel_data: Some(r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#.into()),
            },
            ClientFrame::Subscribe { channel: ch("#server-to-user-42"), auth: None, channel_data: None },
            ClientFrame::Unsubscribe { channel: ch("private-a") },
            ClientFrame::Signin { auth: "k:sig".into(), user_data: r#"{"id":"1","watchlist":["2"]}"#.into() },
            ClientFrame::ClientEvent {
                channel: ch("presence-a"),
                event: "client-x".into(),
                data: json(r#"{"a":[1,2]}"#),
            },
            ClientFrame::ClientEvent {
                channel: ch("private-a"),
                event: "client-x".into(),
                data: json(r#""text""#),
            },
        ];
        for frame in frames {
            assert_eq!(ClientFrame::decode(&frame.encode()), Ok(frame.clone()), "{}", frame.encode());
        }
    }

    #[test]
    fn protocol_data_may_be_a_json_string() {
        let text = r#"{"event":"pusher:subscribe","data":"{\"channel\":\"private-a\",\"auth\":\"k:s\"}"}"#;
        assert_eq!(
            ClientFrame::decode(text),
            Ok(ClientFrame::Subscribe {
                channel: ch("private-a"),
                auth: Some("k:s".into()),
                channel_data: None
            })
        );
        let text = r#"{"event":"pusher:unsubscribe","data":"{\"channel\":\"news\"}"}"#;
        assert_eq!(ClientFrame::decode(text), Ok(ClientFrame::Unsubscribe { channel: ch("news") }));
    }

    #[test]
    fn ping_and_pong_need_no_data() {
        assert_eq!(ClientFrame::decode(r#"{"event":"pusher:ping"}"#), Ok(ClientFrame::Ping));
        assert_eq!(ClientFrame::decode(r#"{"event":"pusher:pong","data":"{}"}"#), Ok(ClientFrame::Pong));
    }

    #[test]
    fn client_event_data_is_kept_as_sent() {
        let string = r#"{"event":"client-x","channel":"private-a","data":"{\"a\":1}"}"#;
        let Ok(ClientFrame::ClientEvent { data, .. }) = ClientFrame::decode(string) else { panic!() };
        assert_eq!(data.as_str(), r#""{\"a\":1}""#);
        let none = r#"{"event":"client-x","channel":"private-a"}"#;
        let Ok(ClientFrame::ClientEvent { data, .. }) = ClientFrame::decode(none) else { panic!() };
        assert_eq!(data.as_str(), "null");
    }

    #[test]
    fn clients_cannot_send_protocol_or_internal_events() {
        for event in ["pusher:connection_established", "pusher:error", "pusher_internal:member_added"] {
            let text = format!(r#"{{"event":"{event}","channel":"presence-a","data":{{}}}}"#);
            let err = ClientFrame::decode(&text).unwrap_err();
            assert_eq!(err, PusherDecodeError::ReservedEvent(event.into()));
            assert_eq!(err.pusher_code(), PusherErrorCode::InvalidMessage);
        }
    }

    #[test]
    fn events_that_are_neither_protocol_nor_client_are_unknown() {
        let err = ClientFrame::decode(r#"{"event":"my-event","channel":"private-a","data":{}}"#).unwrap_err();
        assert_eq!(err, PusherDecodeError::UnknownEvent("my-event".into()));
    }

    #[test]
    fn a_client_event_with_a_too_long_name_is_rejected() {
        let event = format!("client-{}", "x".repeat(200));
        let text = format!(r#"{{"event":"{event}","channel":"private-a","data":{{}}}}"#);
        let err = ClientFrame::decode(&text).unwrap_err();
        assert_eq!(err, PusherDecodeError::InvalidEventName(EventNameError::TooLong));
        assert_eq!(err.pusher_code(), PusherErrorCode::ClientEventRejected);
    }

    #[test]
    fn malformed_frames_say_what_is_wrong() {
        assert!(matches!(ClientFrame::decode("{not json"), Err(PusherDecodeError::NotAMessage(_))));
        assert!(matches!(ClientFrame::decode(r#"{"data":{}}"#), Err(PusherDecodeError::NotAMessage(_))));
        assert!(matches!(ClientFrame::decode(r#"{"event":7}"#), Err(PusherDecodeError::NotAMessage(_))));
        assert_eq!(
            ClientFrame::decode(r#"{"event":"pusher:subscribe","data":{}}"#),
            Err(PusherDecodeError::MissingField { event: SUBSCRIBE, field: "channel" })
        );
        assert_eq!(
            ClientFrame::decode(r#"{"event":"pusher:signin","data":{"auth":"k:s"}}"#),
            Err(PusherDecodeError::MissingField { event: SIGNIN, field: "user_data" })
        );
        assert_eq!(
            ClientFrame::decode(r#"{"event":"client-x","data":{}}"#),
            Err(PusherDecodeError::MissingField { event: CLIENT_EVENT, field: "channel" })
        );
        assert!(matches!(
            ClientFrame::decode(r#"{"event":"pusher:subscribe","data":{"channel":5}}"#),
            Err(PusherDecodeError::BadData { event: SUBSCRIBE, .. })
        ));
        assert!(matches!(
            ClientFrame::decode(r#"{"event":"pusher:subscribe","data":"not json"}"#),
            Err(PusherDecodeError::BadData { event: SUBSCRIBE, .. })
        ));
    }

    #[test]
    fn channel_names_are_validated_on_the_way_in() {
        let text = r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chat:room"}}"#;
        assert_eq!(
            ClientFrame::decode(text),
            Err(PusherDecodeError::InvalidChannel(PusherChannelError::BadCharacter(':')))
        );
        let text = r##"{"event":"pusher:subscribe","data":{"auth":"","channel":"#secret"}}"##;
        assert_eq!(
            ClientFrame::decode(text),
            Err(PusherDecodeError::InvalidChannel(PusherChannelError::Reserved))
        );
    }
}
