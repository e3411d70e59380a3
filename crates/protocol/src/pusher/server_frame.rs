//! Server → client frames, each encoded once into a [`Frame`].
//!
//! `data` is double-encoded: a JSON string holding JSON text, which
//! pusher-js parses again (`src/core/connection/protocol/protocol.ts`,
//! `decodeMessage`). The one exception is `pusher:error`, whose `data` is a
//! plain object, as Pusher itself sends it; pusher-js reads both forms.

use std::collections::HashSet;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::user_id::AsSent;
use crate::{Frame, JsonData, UserId};

use super::error::PusherErrorCode;
use super::socket_id::SocketId;
use super::user_data::PresenceMember;

#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<AsSent<'a>>,
}

fn encode<D: Serialize>(envelope: &Envelope<'_, D>) -> Frame {
    Frame::from_string(serde_json::to_string(envelope).expect("Pusher frames always serialize"))
}

/// An envelope whose `data` is the JSON text of `inner`, sent as a string.
fn encode_double<T: Serialize>(event: &str, channel: Option<&str>, inner: &T) -> Frame {
    let text = serde_json::to_string(inner).expect("Pusher frames always serialize");
    encode(&Envelope { event, channel, data: text.as_str(), user_id: None })
}

/// `data` of the events that carry nothing.
const EMPTY: &str = "{}";

#[derive(Serialize)]
struct ConnectionEstablished {
    socket_id: String,
    activity_timeout: u32,
}

/// `pusher:connection_established`, the first frame. pusher-js throws on a
/// missing or zero `activity_timeout` (seconds), so it is sent as at least 1.
pub fn encode_connection_established(socket_id: SocketId, activity_timeout_secs: u32) -> Frame {
    let data = ConnectionEstablished {
        socket_id: socket_id.to_string(),
        activity_timeout: activity_timeout_secs.max(1),
    };
    encode_double("pusher:connection_established", None, &data)
}

/// `pusher:ping`: the client must answer `pusher:pong` within its pong timeout.
pub fn encode_ping() -> Frame {
    encode(&Envelope { event: "pusher:ping", channel: None, data: EMPTY, user_id: None })
}

/// `pusher:pong`, the answer to a client's `pusher:ping`.
pub fn encode_pong() -> Frame {
    encode(&Envelope { event: "pusher:pong", channel: None, data: EMPTY, user_id: None })
}

#[derive(Serialize)]
struct ErrorData<'a> {
    message: &'a str,
    code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

/// `pusher:error` `{"message", "code"}` on a connection that stays open;
/// `code` is `null` for the rows without a number.
pub fn encode_error(code: PusherErrorCode, message: &str) -> Frame {
    encode_error_waiting(code, message, None)
}

/// [`encode_error`] with `"retry_after_ms"` when `retry_after_ms` is given
/// (rate limits and slow mode: the least wait before trying again).
pub fn encode_error_waiting(code: PusherErrorCode, message: &str, retry_after_ms: Option<u64>) -> Frame {
    let data = ErrorData { message, code: code.code(), retry_after_ms };
    encode(&Envelope { event: "pusher:error", channel: None, data, user_id: None })
}

/// `pusher_internal:subscription_succeeded` for a non-presence channel.
pub fn encode_subscription_succeeded(channel: &str) -> Frame {
    encode(&Envelope {
        event: "pusher_internal:subscription_succeeded",
        channel: Some(channel),
        data: EMPTY,
        user_id: None,
    })
}

#[derive(Serialize)]
struct PresenceData<'a> {
    presence: PresenceSet<'a>,
}

#[derive(Serialize)]
struct PresenceSet<'a> {
    /// Each in the JSON type its member joined with.
    ids: Vec<AsSent<'a>>,
    hash: PresenceHash<'a>,
    count: usize,
}

/// `{user_id: user_info}`; a member without info maps to `null`, so the id
/// is still a key (pusher-js looks members up with `hasOwnProperty`).
struct PresenceHash<'a>(&'a [&'a PresenceMember]);

impl Serialize for PresenceHash<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for member in self.0 {
            map.serialize_entry(member.user_id.as_str(), &member.user_info)?;
        }
        map.end()
    }
}

/// `pusher_internal:subscription_succeeded` for a presence channel:
/// `{"presence":{"ids":[…],"hash":{id: info},"count":N}}`. A user with
/// several connections is listed once (the first entry wins); ids go out
/// as their members sent them, numbers as numbers.
pub fn encode_presence_subscription_succeeded(channel: &str, members: &[PresenceMember]) -> Frame {
    let mut seen = HashSet::new();
    let unique: Vec<&PresenceMember> = members.iter().filter(|m| seen.insert(m.user_id.as_str())).collect();
    let data = PresenceData {
        presence: PresenceSet {
            ids: unique.iter().map(|m| m.user_id.as_sent()).collect(),
            hash: PresenceHash(&unique),
            count: unique.len(),
        },
    };
    encode_double("pusher_internal:subscription_succeeded", Some(channel), &data)
}

#[derive(Serialize)]
struct SubscriptionError<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    error: &'a str,
    status: u16,
}

/// `pusher:subscription_error` on the channel: `{"type":"AuthError","error","status"}`,
/// the same shape pusher-js emits itself when the auth endpoint fails, so an
/// app handles a refusal by the server the same way.
pub fn encode_subscription_error(channel: &str, message: &str, status: u16) -> Frame {
    let data = SubscriptionError { kind: "AuthError", error: message, status };
    encode_double("pusher:subscription_error", Some(channel), &data)
}

#[derive(Serialize)]
struct MemberData<'a> {
    user_id: AsSent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_info: Option<Option<&'a JsonData>>,
}

/// `pusher_internal:member_added`: a user's first connection joined. The
/// `user_id` is in the JSON type the member's `channel_data` used: pusher-js
/// hands it to the app as `member.id`.
pub fn encode_member_added(channel: &str, member: &PresenceMember) -> Frame {
    let data = MemberData { user_id: member.user_id.as_sent(), user_info: Some(member.user_info.as_ref()) };
    encode_double("pusher_internal:member_added", Some(channel), &data)
}

/// `pusher_internal:member_removed`: a user's last connection left.
pub fn encode_member_removed(channel: &str, user_id: &UserId) -> Frame {
    let data = MemberData { user_id: user_id.as_sent(), user_info: None };
    encode_double("pusher_internal:member_removed", Some(channel), &data)
}

/// A channel event: `{"event","channel","data","user_id"?}`. A payload that
/// is a JSON string goes out as that string (an SDK's `data` is usually a
/// string of JSON already); any other payload goes out as a string of its
/// JSON text. `user_id` is for client events on presence channels, in the
/// JSON type the sender joined with.
pub fn encode_event(channel: &str, event: &str, data: &JsonData, user_id: Option<&UserId>) -> Frame {
    let text = data.as_str();
    let channel = Some(channel);
    let user_id = user_id.map(UserId::as_sent);
    if text.trim_start().starts_with('"') {
        encode(&Envelope { event, channel, data, user_id })
    } else {
        encode(&Envelope { event, channel, data: text, user_id })
    }
}

/// The string Pusher carries as an event's `data` (in frames, API bodies
/// and webhooks): a JSON string payload as itself, anything else as its
/// JSON text.
pub fn event_data_string(data: &JsonData) -> String {
    serde_json::from_str::<String>(data.as_str()).unwrap_or_else(|_| data.as_str().to_owned())
}

/// An empty JSON object, serialized as `{}` (not as the string `"{}"`).
#[derive(Serialize)]
struct EmptyObject {}

/// `pusher:cache_miss` on a cache channel with nothing cached, sent after
/// `subscription_succeeded`. Pusher sends its `data` as an empty *object*,
/// not the double-encoded `"{}"` of the other events (Sockudo #78, observed
/// against Pusher's service); pusher-js reads both as `{}`, other clients
/// may not.
pub fn encode_cache_miss(channel: &str) -> Frame {
    encode(&Envelope {
        event: "pusher:cache_miss",
        channel: Some(channel),
        data: EmptyObject {},
        user_id: None,
    })
}

#[derive(Serialize)]
struct SigninSuccess<'a> {
    user_data: &'a str,
}

/// `pusher:signin_success` `{"user_data": String}`, echoing the signed
/// string; pusher-js parses it and subscribes `#server-to-user-<id>`.
pub fn encode_signin_success(user_data: &str) -> Frame {
    encode_double("pusher:signin_success", None, &SigninSuccess { user_data })
}

/// Whether the watched users went online or offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchlistStatus {
    Online,
    Offline,
}

/// One entry of a `pusher_internal:watchlist_events` frame; pusher-js
/// emits it on `pusher.user.watchlist` under its `name` (`src/core/watchlist.ts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchlistEvent {
    #[serde(rename = "name")]
    pub status: WatchlistStatus,
    /// Each in the JSON type it was written in (a watchlist entry, or the
    /// id the watched user signed in with).
    #[serde(serialize_with = "as_sent")]
    pub user_ids: Vec<UserId>,
}

fn as_sent<S: Serializer>(ids: &[UserId], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(ids.iter().map(UserId::as_sent))
}

#[derive(Serialize)]
struct WatchlistData<'a> {
    events: &'a [WatchlistEvent],
}

/// `pusher_internal:watchlist_events` `{"events":[{"name":"online","user_ids":[…]}]}`,
/// on the connection (no channel).
pub fn encode_watchlist_events(events: &[WatchlistEvent]) -> Frame {
    encode_double("pusher_internal:watchlist_events", None, &WatchlistData { events })
}

#[derive(Serialize)]
struct SubscriptionCount {
    subscription_count: u64,
}

/// `pusher_internal:subscription_count` `{"subscription_count":N}`; pusher-js
/// re-emits it as `pusher:subscription_count`. Not for presence channels.
pub fn encode_subscription_count(channel: &str, count: u64) -> Frame {
    let data = SubscriptionCount { subscription_count: count };
    encode_double("pusher_internal:subscription_count", Some(channel), &data)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// What pusher-js's `decodeMessage` makes of a frame: the envelope
    /// parsed, then `data` parsed again if it is a string holding JSON.
    struct Seen {
        event: String,
        channel: Option<String>,
        data: Value,
        user_id: Option<String>,
    }

    fn pusher_js_sees(frame: &Frame) -> Seen {
        let envelope: Value = serde_json::from_str(frame.as_str()).unwrap();
        let data = match &envelope["data"] {
            Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
            other => other.clone(),
        };
        let text = |key: &str| envelope.get(key).and_then(Value::as_str).map(str::to_string);
        Seen { event: text("event").unwrap(), channel: text("channel"), data, user_id: text("user_id") }
    }

    fn json_data(text: &str) -> JsonData {
        JsonData::parse(text.to_string()).unwrap()
    }

    fn number(n: u64) -> UserId {
        UserId::number(&n.into())
    }

    #[test]
    fn connection_established_is_double_encoded() {
        let frame = encode_connection_established(SocketId::new(123, 456), 120);
        assert_eq!(
            frame.as_str(),
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}"#
        );
        let seen = pusher_js_sees(&frame);
        assert_eq!(seen.data, json!({"socket_id": "123.456", "activity_timeout": 120}));
    }

    #[test]
    fn a_zero_activity_timeout_is_never_sent() {
        let seen = pusher_js_sees(&encode_connection_established(SocketId::new(1, 2), 0));
        assert_eq!(seen.data["activity_timeout"], 1);
    }

    #[test]
    fn ping_and_pong_carry_an_empty_object() {
        assert_eq!(encode_ping().as_str(), r#"{"event":"pusher:ping","data":"{}"}"#);
        assert_eq!(encode_pong().as_str(), r#"{"event":"pusher:pong","data":"{}"}"#);
    }

    #[test]
    fn errors_carry_message_and_code_as_an_object() {
        let frame = encode_error(PusherErrorCode::ClientEventRateLimit, "too many client events");
        assert_eq!(
            frame.as_str(),
            r#"{"event":"pusher:error","data":{"message":"too many client events","code":4301}}"#
        );
        let seen = pusher_js_sees(&encode_error(PusherErrorCode::InvalidMessage, "bad"));
        assert_eq!(seen.data, json!({"message": "bad", "code": null}));
    }

    #[test]
    fn subscription_succeeded_on_a_plain_channel_is_an_empty_object() {
        let frame = encode_subscription_succeeded("private-a");
        assert_eq!(
            frame.as_str(),
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"private-a","data":"{}"}"#
        );
    }

    #[test]
    fn presence_subscription_lists_each_user_once() {
        let members = [
            PresenceMember::new("1", Some(json_data(r#"{"name":"Ann"}"#))),
            PresenceMember::new("2", None),
            PresenceMember::new("1", Some(json_data(r#"{"name":"Ann, second tab"}"#))),
        ];
        let seen = pusher_js_sees(&encode_presence_subscription_succeeded("presence-room", &members));
        assert_eq!(seen.event, "pusher_internal:subscription_succeeded");
        assert_eq!(seen.channel.as_deref(), Some("presence-room"));
        assert_eq!(
            seen.data,
            json!({"presence": {"ids": ["1", "2"], "hash": {"1": {"name": "Ann"}, "2": null}, "count": 2}})
        );
    }

    #[test]
    fn an_empty_presence_channel_has_no_members() {
        let seen = pusher_js_sees(&encode_presence_subscription_succeeded("presence-room", &[]));
        assert_eq!(seen.data, json!({"presence": {"ids": [], "hash": {}, "count": 0}}));
    }

    #[test]
    fn subscription_error_has_the_shape_pusher_js_emits() {
        let seen = pusher_js_sees(&encode_subscription_error("private-a", "invalid signature", 401));
        assert_eq!(seen.event, "pusher:subscription_error");
        assert_eq!(seen.channel.as_deref(), Some("private-a"));
        assert_eq!(seen.data, json!({"type": "AuthError", "error": "invalid signature", "status": 401}));
    }

    #[test]
    fn member_added_carries_user_info_unnested() {
        let member = PresenceMember::new("10", Some(json_data(r#"{"name":"Mr. Channels"}"#)));
        let frame = encode_member_added("presence-foobar", &member);
        assert_eq!(
            frame.as_str(),
            r#"{"event":"pusher_internal:member_added","channel":"presence-foobar","data":"{\"user_id\":\"10\",\"user_info\":{\"name\":\"Mr. Channels\"}}"}"#
        );
        let seen = pusher_js_sees(&encode_member_added("presence-x", &PresenceMember::new("3", None)));
        assert_eq!(seen.data, json!({"user_id": "3", "user_info": null}));
    }

    #[test]
    fn member_removed_carries_only_the_user_id() {
        let seen = pusher_js_sees(&encode_member_removed("presence-x", &UserId::new("10")));
        assert_eq!(seen.event, "pusher_internal:member_removed");
        assert_eq!(seen.data, json!({"user_id": "10"}));
    }

    #[test]
    fn object_payloads_are_sent_as_a_string_of_their_json() {
        let frame = encode_event("my-channel", "my-event", &json_data(r#"{"a":1}"#), None);
        assert_eq!(frame.as_str(), r#"{"event":"my-event","channel":"my-channel","data":"{\"a\":1}"}"#);
        assert_eq!(pusher_js_sees(&frame).data, json!({"a": 1}));
        let number = encode_event("c", "e", &json_data("42"), None);
        assert_eq!(number.as_str(), r#"{"event":"e","channel":"c","data":"42"}"#);
    }

    #[test]
    fn string_payloads_are_sent_as_that_string() {
        // What pusher-http-node triggers: data already a string of JSON.
        let frame = encode_event("c", "e", &json_data(r#""{\"some\":\"data\"}""#), None);
        assert_eq!(frame.as_str(), r#"{"event":"e","channel":"c","data":"{\"some\":\"data\"}"}"#);
        assert_eq!(pusher_js_sees(&frame).data, json!({"some": "data"}));
        // A plain string stays a string for pusher-js.
        let plain = encode_event("c", "e", &json_data(r#""hello""#), None);
        assert_eq!(plain.as_str(), r#"{"event":"e","channel":"c","data":"hello"}"#);
        assert_eq!(pusher_js_sees(&plain).data, json!("hello"));
    }

    #[test]
    fn user_id_is_sent_only_when_given() {
        let frame = encode_event("presence-a", "client-x", &json_data("{}"), Some(&UserId::new("7")));
        assert_eq!(pusher_js_sees(&frame).user_id.as_deref(), Some("7"));
        let frame = encode_event("presence-a", "e", &json_data("{}"), None);
        assert!(!frame.as_str().contains("user_id"));
    }

    #[test]
    fn numeric_ids_go_out_as_numbers_and_text_ids_as_strings() {
        let added = encode_member_added("presence-a", &PresenceMember::new(number(1), None));
        assert_eq!(
            added.as_str(),
            r#"{"event":"pusher_internal:member_added","channel":"presence-a","data":"{\"user_id\":1,\"user_info\":null}"}"#
        );
        assert_eq!(
            pusher_js_sees(&encode_member_removed("presence-a", &number(1))).data,
            json!({"user_id": 1})
        );
        let event = encode_event("presence-a", "client-x", &json_data("{}"), Some(&number(7)));
        assert_eq!(event.as_str(), r#"{"event":"client-x","channel":"presence-a","data":"{}","user_id":7}"#);
        let members = [PresenceMember::new(number(1), None), PresenceMember::new("alice", None)];
        let seen = pusher_js_sees(&encode_presence_subscription_succeeded("presence-a", &members));
        assert_eq!(
            seen.data,
            json!({"presence": {"ids": [1, "alice"], "hash": {"1": null, "alice": null}, "count": 2}})
        );
    }

    #[test]
    fn a_number_and_its_text_are_listed_as_one_member() {
        let members = [PresenceMember::new(number(1), None), PresenceMember::new("1", None)];
        let seen = pusher_js_sees(&encode_presence_subscription_succeeded("presence-a", &members));
        assert_eq!(seen.data["presence"]["count"], 1);
        assert_eq!(seen.data["presence"]["ids"], json!([1]));
    }

    #[test]
    fn cache_miss_names_the_channel_and_carries_an_empty_object() {
        let frame = encode_cache_miss("cache-scores");
        assert_eq!(frame.as_str(), r#"{"event":"pusher:cache_miss","channel":"cache-scores","data":{}}"#);
        assert_eq!(pusher_js_sees(&frame).data, json!({}));
    }

    #[test]
    fn signin_success_echoes_user_data_as_a_string() {
        let user_data = r#"{"id":"12345","user_info":{"name":"A"}}"#;
        let seen = pusher_js_sees(&encode_signin_success(user_data));
        assert_eq!(seen.event, "pusher:signin_success");
        // pusher-js then does JSON.parse(data.user_data).
        let parsed: Value = serde_json::from_str(seen.data["user_data"].as_str().unwrap()).unwrap();
        assert_eq!(parsed["id"], "12345");
    }

    #[test]
    fn watchlist_events_use_the_format_pusher_js_reads() {
        let events = [
            WatchlistEvent { status: WatchlistStatus::Online, user_ids: vec!["1".into(), "2".into()] },
            WatchlistEvent { status: WatchlistStatus::Offline, user_ids: vec![number(3)] },
        ];
        let seen = pusher_js_sees(&encode_watchlist_events(&events));
        assert_eq!(seen.event, "pusher_internal:watchlist_events");
        assert_eq!(seen.channel, None);
        assert_eq!(
            seen.data,
            json!({"events": [{"name": "online", "user_ids": ["1", "2"]}, {"name": "offline", "user_ids": [3]}]})
        );
    }

    #[test]
    fn subscription_count_is_a_number() {
        let seen = pusher_js_sees(&encode_subscription_count("news", 12));
        assert_eq!(seen.event, "pusher_internal:subscription_count");
        assert_eq!(seen.channel.as_deref(), Some("news"));
        assert_eq!(seen.data, json!({"subscription_count": 12}));
    }
}
