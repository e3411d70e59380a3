//! What a channel carries.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{Stamp, UserId};

/// A JSON value kept as its validated text: parsed once where it enters,
/// then copied around by reference count and written out verbatim.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonData(Arc<RawValue>);

impl JsonData {
    /// Validates `text` as one JSON value.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(|raw| Self(Arc::from(raw)))
    }

    pub fn from_value(value: &serde_json::Value) -> Self {
        let raw = serde_json::value::to_raw_value(value).expect("a Value always serializes");
        Self(Arc::from(raw))
    }

    /// JSON `null`: the data of delete records and tombstones, never sent.
    pub fn null() -> Self {
        Self::parse("null".to_owned()).expect("null is JSON")
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// Size of the JSON text in bytes, the unit of every message-size limit.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.get().is_empty()
    }
}

impl fmt::Debug for JsonData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get())
    }
}

impl PartialEq for JsonData {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for JsonData {}

/// One stored publication of a channel: a message with data, an *update
/// record* (a publication of its own offset carrying an earlier message's
/// new data), a *delete record* (a publication of its own offset saying
/// which earlier offsets were deleted), or a *tombstone* (a deleted
/// publication as history serves it: its offset and time, nothing else).
///
/// On the wire (`docs/protocol.md` §5.5, §6.1) a message is
/// `{"offset","time","event"?,"data"}` (`"edited":true` once an update
/// record replaced its data), an update record
/// `{"offset","time","updates":42,"data"}`, a delete record
/// `{"offset","time","deletes":[…]}` and a tombstone
/// `{"offset","time","deleted":true}`. The edited and deleted offsets are
/// outside `data`, so no payload can pass for an edit or a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub offset: u64,
    /// When it was accepted, in milliseconds since the Unix epoch (`time`
    /// on the wire, as in publication pushes).
    pub time_ms: u64,
    /// The event name, for publications that carry one (every Pusher event
    /// has a name; native publications may).
    pub event: Option<String>,
    /// The message; `null` (and never sent) for a delete record or a
    /// tombstone.
    pub data: JsonData,
    /// Who published it: the native connection's authenticated user;
    /// `None` for the HTTP API and anonymous connections. Kept by every
    /// store (a purge deletes one author's publications), not sent on the
    /// wire.
    pub author: Option<UserId>,
    /// Set for delete records and tombstones.
    pub deletion: Option<Deletion>,
    /// Published in a shaped namespace's priority lane (the server, a
    /// moderator, a host: `docs/moderation.md` §6): never sampled out.
    /// Kept by every store, so recovery shapes as live delivery does;
    /// `"priority":true` on the wire.
    pub priority: bool,
    /// Set for update records: the offset of the message whose data this
    /// record's `data` replaced (`"updates"` on the wire).
    pub updates: Option<u64>,
    /// A message whose data is the newest of its update records' (history
    /// serves it so, with its original time and author; `"edited":true`).
    pub edited: bool,
}

/// What makes a publication a delete record or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// A delete record: these earlier offsets of the channel were deleted
    /// (ascending, never empty).
    Deletes(Vec<u64>),
    /// A tombstone: this publication was deleted.
    Deleted,
}

impl Publication {
    /// A message: `data`, no author, not deleted.
    pub fn new(offset: u64, time_ms: u64, event: Option<String>, data: JsonData) -> Self {
        Self {
            offset,
            time_ms,
            event,
            data,
            author: None,
            deletion: None,
            priority: false,
            updates: None,
            edited: false,
        }
    }

    /// An update record at `offset`: `data` is now the data of the message
    /// at `target`.
    pub fn update_record(offset: u64, time_ms: u64, target: u64, data: JsonData) -> Self {
        Self { updates: Some(target), ..Self::new(offset, time_ms, None, data) }
    }

    /// The same message with `data` as its newest version (its offset,
    /// time, event, author and lane stay).
    pub fn edited_to(self, data: JsonData) -> Self {
        Self { data, edited: true, ..self }
    }

    /// The same message marked as edited (or not), as stores decode it.
    pub fn with_edited(mut self, edited: bool) -> Self {
        self.edited = edited;
        self
    }

    /// A delete record at `offset` listing the `deleted` offsets.
    pub fn delete_record(offset: u64, time_ms: u64, deleted: Vec<u64>) -> Self {
        Self {
            deletion: Some(Deletion::Deletes(deleted)),
            ..Self::new(offset, time_ms, None, JsonData::null())
        }
    }

    /// A tombstone at `offset`: what is left of a deleted publication.
    pub fn tombstone(offset: u64, time_ms: u64) -> Self {
        Self { deletion: Some(Deletion::Deleted), ..Self::new(offset, time_ms, None, JsonData::null()) }
    }

    pub fn with_author(mut self, author: Option<UserId>) -> Self {
        self.author = author;
        self
    }

    /// The same publication in the priority lane (or not).
    pub fn with_priority(mut self, priority: bool) -> Self {
        self.priority = priority;
        self
    }

    /// The offsets a delete record deleted (`None` for anything else).
    pub fn deletes(&self) -> Option<&[u64]> {
        match &self.deletion {
            Some(Deletion::Deletes(offsets)) => Some(offsets),
            _ => None,
        }
    }

    pub fn is_tombstone(&self) -> bool {
        self.deletion == Some(Deletion::Deleted)
    }

    /// A message (edited or not): what an edit may target. Not an update
    /// record, a delete record or a tombstone.
    pub fn is_message(&self) -> bool {
        self.deletion.is_none() && self.updates.is_none()
    }

    /// The data, for a message (not a delete record or a tombstone).
    pub fn message_data(&self) -> Option<&JsonData> {
        self.deletion.is_none().then_some(&self.data)
    }

    /// The same publication as a tombstone.
    pub fn into_tombstone(self) -> Self {
        Self::tombstone(self.offset, self.time_ms)
    }
}

/// The wire form: `offset`, `time`, then `event` and `data` for a message
/// (and `edited: true` for an edited one), `updates` and `data` for an
/// update record, `deletes` for a delete record, `deleted: true` for a
/// tombstone.
#[derive(Serialize, Deserialize)]
struct WirePublication<'a> {
    offset: u64,
    time: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    priority: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updates: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<JsonData>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    edited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deletes: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

impl Serialize for Publication {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = self.deletion.is_none();
        WirePublication {
            offset: self.offset,
            time: self.time_ms,
            priority: self.priority,
            event: self.event.as_deref().filter(|_| message).map(std::borrow::Cow::Borrowed),
            updates: self.updates,
            data: self.message_data().cloned(),
            edited: self.edited && message,
            deletes: self.deletes().map(<[u64]>::to_vec),
            deleted: self.is_tombstone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Publication {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WirePublication::deserialize(deserializer)?;
        Publication::from_wire(
            wire.offset,
            wire.time,
            wire.event.map(std::borrow::Cow::into_owned),
            wire.data,
            wire.deletes,
            wire.deleted,
        )
        .and_then(|publication| publication.with_edit_marks(wire.updates, wire.edited))
        .map(|publication| publication.with_priority(wire.priority))
        .map_err(serde::de::Error::custom)
    }
}

impl Publication {
    /// The publication that the wire fields describe: exactly one of
    /// `data`, `deletes` or `deleted`.
    pub fn from_wire(
        offset: u64,
        time_ms: u64,
        event: Option<String>,
        data: Option<JsonData>,
        deletes: Option<Vec<u64>>,
        deleted: bool,
    ) -> Result<Self, &'static str> {
        match (data, deletes, deleted) {
            (Some(data), None, false) => Ok(Self::new(offset, time_ms, event, data)),
            (None, Some(deletes), false) => Ok(Self::delete_record(offset, time_ms, deletes)),
            (None, None, true) => Ok(Self::tombstone(offset, time_ms)),
            (None, None, false) => Err("publication without data"),
            _ => Err("a publication has one of data, deletes or deleted"),
        }
    }

    /// The publication [`Publication::from_wire`] made, with the wire's
    /// `updates` and `edited`: either makes sense for data only.
    pub fn with_edit_marks(self, updates: Option<u64>, edited: bool) -> Result<Self, &'static str> {
        match (updates, edited) {
            (None, false) => Ok(self),
            _ if self.deletion.is_some() => Err("only a publication with data is edited or updates one"),
            (Some(_), true) => Err("an update record is not itself edited"),
            (updates, edited) => Ok(Self { updates, edited, ..self }),
        }
    }
}

/// One server-to-client message, encoded once and shared by every
/// connection that sends it: the whole WebSocket frame (header and
/// payload, unmasked, as every server frame is), so each socket writes the
/// same bytes without copying or framing them again. Built from a
/// `String`, its payload is valid UTF-8; control frames
/// ([`crate::websocket`]) and [`Frame::binary`] exist for the connection
/// itself.
#[derive(Clone)]
pub struct Frame {
    wire: Bytes,
    /// When the publication it delivers was accepted; `None` for every
    /// other frame (replies, history, presence, control).
    accepted: Option<Stamp>,
    header_len: u8,
}

impl PartialEq for Frame {
    /// Frames are equal when they put the same bytes on the wire.
    fn eq(&self, other: &Self) -> bool {
        self.wire == other.wire
    }
}

impl Eq for Frame {}

impl Frame {
    pub fn from_string(text: String) -> Self {
        crate::websocket::text_frame(text.as_bytes())
    }

    /// A frame already encoded, with its header's length.
    pub(crate) fn from_wire(wire: Bytes, header_len: u8) -> Self {
        Self { wire, accepted: None, header_len }
    }

    /// The same frame, delivering a publication accepted at `accepted`.
    pub fn accepted_at(mut self, accepted: Stamp) -> Self {
        self.accepted = Some(accepted);
        self
    }

    /// When the publication this frame delivers was accepted, if it
    /// delivers one live.
    pub fn accepted(&self) -> Option<Stamp> {
        self.accepted
    }

    /// A binary message (neither protocol sends one; the Autobahn echo
    /// endpoint of the test suite does).
    pub fn binary(payload: &[u8]) -> Self {
        crate::websocket::binary_frame(payload)
    }

    /// The text the client receives (lossy for a binary frame).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.payload()).unwrap_or("<binary>")
    }

    pub fn payload(&self) -> &[u8] {
        &self.wire[self.header_len as usize..]
    }

    /// The frame as it goes on the wire, header included.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// The payload's length.
    pub fn len(&self) -> usize {
        self.wire.len() - self.header_len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({})", self.as_str())
    }
}
