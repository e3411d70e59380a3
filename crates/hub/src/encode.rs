//! Encoding a channel message once per protocol.
//!
//! Subscribers of one channel may speak different protocols (native and
//! Pusher). A message is encoded at most once for each protocol present
//! among them, on first need, and the bytes are shared by every subscriber
//! of that protocol.

use std::cell::OnceCell;

use fanfare_protocol::native::{self, Member};
use fanfare_protocol::pusher::{self, PresenceMember};
use fanfare_protocol::{ChannelName, Deletion, Epoch, Frame, JsonData, Publication, Stamp, UserId};

/// The event name a Pusher client sees for a publication that has none
/// (one published through the native protocol or API without `event`).
pub const DEFAULT_PUSHER_EVENT: &str = "publication";

/// The protocol a subscriber speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Native,
    /// Pusher Channels v7. The first `strip` bytes of the hub's channel name
    /// are the app's prefix, not part of the name the client knows.
    Pusher {
        strip: u8,
    },
}

/// What is being sent to a channel's subscribers.
pub(crate) enum Message<'a> {
    Publication { epoch: &'a Epoch, publication: &'a Publication },
    Ephemeral { time_ms: u64, event: Option<&'a str>, data: &'a JsonData, user: Option<&'a UserId> },
    Join(&'a Member),
    Leave(&'a UserId),
}

pub(crate) struct Encoded<'a> {
    channel: &'a ChannelName,
    message: Message<'a>,
    /// When a live publication was accepted, stamped on its frames.
    accepted: Option<Stamp>,
    /// A shaped channel's publication: `skipped` of the channel's previous
    /// delivery to this one, in the shared native frame.
    skipped: Option<u64>,
    native: OnceCell<Frame>,
    pusher: OnceCell<Frame>,
}

impl<'a> Encoded<'a> {
    pub fn new(channel: &'a ChannelName, message: Message<'a>) -> Self {
        Self {
            channel,
            message,
            accepted: None,
            skipped: None,
            native: OnceCell::new(),
            pusher: OnceCell::new(),
        }
    }

    /// A shaped channel's delivery after `skipped` sampled-out publications.
    pub fn shaped(mut self, skipped: u64) -> Self {
        self.skipped = Some(skipped);
        self
    }

    /// `Some(skipped)` for a shaped channel's publication.
    pub fn shaped_skipped(&self) -> Option<u64> {
        self.skipped
    }

    /// The native frame of a shaped publication with a subscription's own
    /// `skipped` (not cached: for the odd subscriber out).
    pub fn frame_skipping(&self, skipped: u64) -> Frame {
        match &self.message {
            Message::Publication { epoch, publication } => {
                self.stamp(native::encode_shaped_publication(self.channel, epoch, publication, skipped))
            }
            _ => self.frame(Protocol::Native).clone(),
        }
    }

    /// What a subscription catching up holds of a shaped publication, to
    /// encode on release; `None` for anything else (held as a frame).
    pub fn held(&self) -> Option<(Epoch, Publication)> {
        match (&self.message, self.skipped) {
            (Message::Publication { epoch, publication }, Some(_)) => {
                Some(((*epoch).clone(), (*publication).clone()))
            }
            _ => None,
        }
    }

    /// A live publication accepted at `accepted`: its frames carry the
    /// stamp, so the socket writing them can tell their age.
    pub fn accepted_at(mut self, accepted: Stamp) -> Self {
        self.accepted = Some(accepted);
        self
    }

    /// The frame for `protocol`, encoded on first use.
    pub fn frame(&self, protocol: Protocol) -> &Frame {
        match protocol {
            Protocol::Native => self.native.get_or_init(|| self.stamp(self.encode_native())),
            Protocol::Pusher { strip } => self.pusher.get_or_init(|| self.stamp(self.encode_pusher(strip))),
        }
    }

    fn stamp(&self, frame: Frame) -> Frame {
        match self.accepted {
            Some(accepted) => frame.accepted_at(accepted),
            None => frame,
        }
    }

    fn encode_native(&self) -> Frame {
        let channel = self.channel;
        match &self.message {
            Message::Publication { epoch, publication } => {
                native::encode_shaped_publication(channel, epoch, publication, self.skipped.unwrap_or(0))
            }
            Message::Ephemeral { time_ms, event, data, .. } => {
                native::encode_ephemeral(channel, *time_ms, *event, data)
            }
            Message::Join(member) => native::encode_join(channel, member),
            Message::Leave(user) => native::encode_leave(channel, user.as_str()),
        }
    }

    fn encode_pusher(&self, strip: u8) -> Frame {
        let name = self.channel.as_str().get(usize::from(strip)..).unwrap_or_default();
        match &self.message {
            Message::Publication { publication, .. } => match pusher_deleted_offsets(publication) {
                Some(offsets) => pusher::encode_event(name, PUSHER_DELETE_EVENT, &offsets, None),
                None if publication.updates.is_some() => {
                    pusher::encode_event(name, PUSHER_UPDATE_EVENT, &pusher_update(publication), None)
                }
                None => {
                    let event = publication.event.as_deref().unwrap_or(DEFAULT_PUSHER_EVENT);
                    pusher::encode_event(name, event, &publication.data, None)
                }
            },
            Message::Ephemeral { event, data, user, .. } => {
                pusher::encode_event(name, event.unwrap_or(DEFAULT_PUSHER_EVENT), data, *user)
            }
            Message::Join(member) => pusher::encode_member_added(
                name,
                &PresenceMember::new(member.user.clone(), member.info.clone()),
            ),
            Message::Leave(user) => pusher::encode_member_removed(name, user),
        }
    }
}

/// The event a Pusher subscriber gets for a delete record (`docs/pusher.md`):
/// Pusher has no offsets to recover by, but a live client can still take a
/// deleted message off its screen.
pub(crate) const PUSHER_DELETE_EVENT: &str = "fanfare:delete";

/// The event a Pusher subscriber gets for an update record
/// (`docs/pusher.md`): as with deletes, a live client can show the new
/// version of a message it has.
pub(crate) const PUSHER_UPDATE_EVENT: &str = "fanfare:update";

/// `{"offset":42,"data":…}`: the edited offset and its new data.
fn pusher_update(publication: &Publication) -> JsonData {
    let offset = publication.updates.unwrap_or_default();
    JsonData::parse(format!(r#"{{"offset":{offset},"data":{}}}"#, publication.data.as_str()))
        .expect("an offset and a JSON value make JSON")
}

/// `{"offsets":[…]}` for a delete record (and for a tombstone, should a
/// cluster node heal one into a live delivery: that offset is deleted);
/// `None` for a message.
fn pusher_deleted_offsets(publication: &Publication) -> Option<JsonData> {
    let offsets = match &publication.deletion {
        None => return None,
        Some(Deletion::Deletes(offsets)) => offsets.clone(),
        Some(Deletion::Deleted) => vec![publication.offset],
    };
    Some(JsonData::from_value(&serde_json::json!({ "offsets": offsets })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_record_reaches_pusher_subscribers_as_fanfare_delete_and_native_ones_as_deletes() {
        let (channel, epoch) = (ChannelName::new("app-1:chat").unwrap(), Epoch::new("ep"));
        let record = Publication::delete_record(44, 7, vec![40, 42]);
        let encoded = Encoded::new(&channel, Message::Publication { epoch: &epoch, publication: &record });
        let pusher: serde_json::Value =
            serde_json::from_str(encoded.frame(Protocol::Pusher { strip: 6 }).as_str()).unwrap();
        assert_eq!(pusher["event"], PUSHER_DELETE_EVENT);
        assert_eq!(pusher["channel"], "chat");
        assert_eq!(pusher["data"], r#"{"offsets":[40,42]}"#, "data as JSON text, as Pusher events carry it");
        assert_eq!(
            encoded.frame(Protocol::Native).as_str(),
            r#"{"type":"publication","channel":"app-1:chat","epoch":"ep","offset":44,"time":7,"deletes":[40,42]}"#
        );
        let tombstone = Publication::tombstone(42, 6);
        let healed = Encoded::new(&channel, Message::Publication { epoch: &epoch, publication: &tombstone });
        let pusher: serde_json::Value =
            serde_json::from_str(healed.frame(Protocol::Pusher { strip: 6 }).as_str()).unwrap();
        assert_eq!(
            (&pusher["event"], &pusher["data"]),
            (&PUSHER_DELETE_EVENT.into(), &r#"{"offsets":[42]}"#.into())
        );
    }

    #[test]
    fn an_update_record_reaches_pusher_subscribers_as_fanfare_update_and_native_ones_as_updates() {
        let (channel, epoch) = (ChannelName::new("app-1:chat").unwrap(), Epoch::new("ep"));
        let data = JsonData::parse(r#"{"text":"fixed"}"#.to_owned()).unwrap();
        let record = Publication::update_record(45, 8, 42, data);
        let encoded = Encoded::new(&channel, Message::Publication { epoch: &epoch, publication: &record });
        let pusher: serde_json::Value =
            serde_json::from_str(encoded.frame(Protocol::Pusher { strip: 6 }).as_str()).unwrap();
        assert_eq!(pusher["event"], PUSHER_UPDATE_EVENT);
        assert_eq!(pusher["data"], r#"{"offset":42,"data":{"text":"fixed"}}"#);
        assert_eq!(
            encoded.frame(Protocol::Native).as_str(),
            r#"{"type":"publication","channel":"app-1:chat","epoch":"ep","offset":45,"time":8,"updates":42,"data":{"text":"fixed"}}"#
        );
    }
}
