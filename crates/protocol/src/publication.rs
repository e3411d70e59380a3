//! What a channel carries.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Stamp;

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

/// One stored publication of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub offset: u64,
    /// When it was accepted, in milliseconds since the Unix epoch (`time`
    /// on the wire, as in publication pushes).
    #[serde(rename = "time")]
    pub time_ms: u64,
    /// The event name, for publications that carry one (every Pusher event
    /// has a name; native publications may).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub data: JsonData,
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
