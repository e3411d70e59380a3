//! How the embedded store lays records out in fjall's keyspaces.
//!
//! | keyspace       | key                                 | value                                   |
//! |----------------|-------------------------------------|-----------------------------------------|
//! | `publications` | channel, `0x00`, offset (u64 BE)    | `0x03`, kind (u8), time_ms (u64 BE), event length (u16 BE), event, author length (u16 BE), author, body |
//! | `channels`     | channel                             | head, tail, max_len, max_age_ms (u64 BE)|
//! | `idempotency`  | channel, `0x00`, idempotency key    | offset, time_ms, expires_ms (u64 BE)    |
//! | `cursors`      | user length (u16 BE), user, channel | offset (u64 BE), epoch text             |
//! | `members`      | channel, `0x00`, user id            | empty                                   |
//! | `user_channels`| user id length (u16 BE), user id, channel | empty                             |
//! | `member_counts`| `c`, channel / `u`, user id         | members of the channel / channels of the user (u64 BE) |
//! | `resume_points`| user length (u16 BE), user, channel, `0x00`, holder | expires_at_ms (u64 BE), offset (u64 BE), epoch text |
//! | `store`        | `epoch`, `format`, `run`            | epoch text, format version (u32 BE), [`RunRecord`] |
//!
//! The three membership keyspaces ([`crate::MemberStore`], encoded in
//! `member_keys.rs`) were added within format 3: an older version leaves
//! them alone.
//!
//! Channel names never contain `0x00`, so the separator makes each
//! channel's publications one contiguous, offset-ordered key range (big
//! endian sorts like the number). Decoding never trusts the disk: anything
//! malformed becomes [`StoreError::Corrupt`].

use std::time::Duration;

use fanfare_protocol::{ChannelName, Deletion, JsonData, Publication, UserId};

use crate::{Retention, StoreError};

pub(super) const PUBLICATIONS: &str = "publications";
pub(super) const CHANNELS: &str = "channels";
pub(super) const IDEMPOTENCY: &str = "idempotency";
/// Added within format 3: older versions never open it.
pub(super) const CURSORS: &str = "cursors";
pub(super) const STORE: &str = "store";

pub(super) const EPOCH_KEY: &[u8] = b"epoch";
pub(super) const FORMAT_KEY: &[u8] = b"format";
/// How the current (or, at open, the previous) run stands; see `last_stop.rs`.
/// Added within format 2: a directory without it was last written by an
/// older version.
pub(super) const RUN_KEY: &[u8] = b"run";
/// Bumped whenever the layout above changes; older data needs a migration.
/// 2: publication values carry the event name.
/// 3: publication values start with [`VALUE_MARKER`] and carry a kind
///    (message, tombstone, delete record; within format 3 also the
///    priority, edited and update-record kinds) and the author; format 2
///    is migrated on open (`migrate.rs`).
pub(super) const FORMAT_VERSION: u32 = 3;

/// The first byte of every format-3 publication value. A format-2 value
/// starts with its time stamp's most significant byte, which is 0 for any
/// time before the year 2^56 ms brings, so the migration can tell values it
/// already rewrote from those it has not, and resume after a crash.
pub(super) const VALUE_MARKER: u8 = 0x03;

/// The kind byte of a format-3 value, which says what the body is.
const KIND_MESSAGE: u8 = 0; // body: the JSON text
const KIND_TOMBSTONE: u8 = 1; // body: empty
const KIND_DELETE_RECORD: u8 = 2; // body: the deleted offsets, u64 BE each, ascending
/// Added within format 3: a message of a shaped namespace's priority lane
/// (body: the JSON text). A version older than this reads it as corrupt,
/// so a store that has one cannot go back to such a version.
const KIND_PRIORITY_MESSAGE: u8 = 3;
/// Added within format 3, like [`KIND_PRIORITY_MESSAGE`]: a message whose
/// data an edit replaced (body: the newest JSON text), in either lane; an
/// update record (body: the edited offset, u64 BE, then the JSON text), in
/// either lane.
const KIND_EDITED_MESSAGE: u8 = 4;
const KIND_EDITED_PRIORITY_MESSAGE: u8 = 5;
const KIND_UPDATE_RECORD: u8 = 6;
const KIND_PRIORITY_UPDATE_RECORD: u8 = 7;

const SEPARATOR: u8 = 0x00;
const OFFSET_LEN: usize = 8;

/// `channel 0x00`: the common start of a channel's keys.
pub(super) fn channel_prefix(channel: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(channel.len() + 1 + OFFSET_LEN);
    key.extend_from_slice(channel.as_bytes());
    key.push(SEPARATOR);
    key
}

pub(super) fn publication_key(channel: &str, offset: u64) -> Vec<u8> {
    let mut key = channel_prefix(channel);
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

/// A format-3 publication value: [`VALUE_MARKER`], the kind, `time_ms`
/// (u64 BE), the event name's length (u16 BE, 0 for none) and the event
/// name, the author's length (u16 BE, 0 for none) and the author, then the
/// body the kind says.
pub(super) fn publication_value(publication: &Publication) -> Vec<u8> {
    let (kind, body): (u8, Vec<u8>) = match &publication.deletion {
        None => (message_kind(publication), message_body(publication)),
        Some(Deletion::Deleted) => (KIND_TOMBSTONE, Vec::new()),
        Some(Deletion::Deletes(offsets)) => {
            (KIND_DELETE_RECORD, offsets.iter().flat_map(|o| o.to_be_bytes()).collect())
        }
    };
    let event = publication.event.as_deref().filter(|_| publication.deletion.is_none());
    let author = publication.author.as_ref().map(UserId::as_str);
    let mut value = Vec::with_capacity(2 + 8 + 4 + 64 + body.len());
    value.push(VALUE_MARKER);
    value.push(kind);
    value.extend_from_slice(&publication.time_ms.to_be_bytes());
    push_short_text(&mut value, event);
    push_short_text(&mut value, author);
    value.extend_from_slice(&body);
    value
}

/// The kind byte of a publication with data.
fn message_kind(publication: &Publication) -> u8 {
    match (publication.updates.is_some(), publication.edited, publication.priority) {
        (true, _, false) => KIND_UPDATE_RECORD,
        (true, _, true) => KIND_PRIORITY_UPDATE_RECORD,
        (false, true, false) => KIND_EDITED_MESSAGE,
        (false, true, true) => KIND_EDITED_PRIORITY_MESSAGE,
        (false, false, false) => KIND_MESSAGE,
        (false, false, true) => KIND_PRIORITY_MESSAGE,
    }
}

/// The body of a publication with data: the JSON text, after the edited
/// offset for an update record.
fn message_body(publication: &Publication) -> Vec<u8> {
    let text = publication.data.as_str().as_bytes();
    let mut body = Vec::with_capacity(8 + text.len());
    if let Some(target) = publication.updates {
        body.extend_from_slice(&target.to_be_bytes());
    }
    body.extend_from_slice(text);
    body
}

/// A length (u16 BE, 0 for none) and the text, cut at 65,535 bytes (event
/// names and user ids are far shorter; the limits are enforced upstream).
fn push_short_text(value: &mut Vec<u8>, text: Option<&str>) {
    let text = text.unwrap_or("").as_bytes();
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    value.extend_from_slice(&len.to_be_bytes());
    value.extend_from_slice(&text[..usize::from(len)]);
}

/// The offset at the end of a publication key.
pub(super) fn offset_of_publication_key(channel: &str, key: &[u8]) -> Result<u64, StoreError> {
    let offset_bytes = key.len().checked_sub(OFFSET_LEN).and_then(|start| key.get(start..));
    offset_bytes.and_then(read_u64).ok_or_else(|| corrupt(PUBLICATIONS, channel.to_owned(), "key too short"))
}

/// The time stamp of a publication value, without touching the JSON (so
/// reads can skip expired publications cheaply).
pub(super) fn time_of_publication_value(channel: &str, offset: u64, value: &[u8]) -> Result<u64, StoreError> {
    let bad = || corrupt(PUBLICATIONS, format!("{channel}@{offset}"), "value too short or not format 3");
    match value.first() {
        Some(&VALUE_MARKER) => value.get(2..).and_then(read_u64).ok_or_else(bad),
        _ => Err(bad()),
    }
}

pub(super) fn decode_publication(
    channel: &str,
    offset: u64,
    value: &[u8],
) -> Result<Publication, StoreError> {
    let time_ms = time_of_publication_value(channel, offset, value)?;
    let bad = |reason| corrupt(PUBLICATIONS, format!("{channel}@{offset}"), reason);
    let kind = value[1];
    let (event, rest) = short_text(&value[10..]).ok_or_else(|| bad("bad event name"))?;
    let (author, body) = short_text(rest).ok_or_else(|| bad("bad author"))?;
    let json = |body: &[u8]| {
        let text = String::from_utf8(body.to_vec()).map_err(|_| bad("data is not UTF-8"))?;
        JsonData::parse(text).map_err(|_| bad("data is not JSON"))
    };
    let publication = match kind {
        KIND_MESSAGE | KIND_PRIORITY_MESSAGE | KIND_EDITED_MESSAGE | KIND_EDITED_PRIORITY_MESSAGE => {
            Publication::new(offset, time_ms, event, json(body)?)
                .with_priority(matches!(kind, KIND_PRIORITY_MESSAGE | KIND_EDITED_PRIORITY_MESSAGE))
                .with_edited(matches!(kind, KIND_EDITED_MESSAGE | KIND_EDITED_PRIORITY_MESSAGE))
        }
        KIND_UPDATE_RECORD | KIND_PRIORITY_UPDATE_RECORD if body.len() >= 8 => {
            let target = read_u64(body).ok_or_else(|| bad("bad edited offset"))?;
            Publication::update_record(offset, time_ms, target, json(&body[8..])?)
                .with_priority(kind == KIND_PRIORITY_UPDATE_RECORD)
        }
        KIND_TOMBSTONE if body.is_empty() => Publication::tombstone(offset, time_ms),
        KIND_DELETE_RECORD if !body.is_empty() && body.len() % 8 == 0 => {
            Publication::delete_record(offset, time_ms, body.chunks_exact(8).filter_map(read_u64).collect())
        }
        _ => return Err(bad("unknown kind or bad body")),
    };
    Ok(publication.with_author(author.map(UserId::new)))
}

/// A length-prefixed text (`None` when empty) and what follows it.
fn short_text(bytes: &[u8]) -> Option<(Option<String>, &[u8])> {
    let len = usize::from(u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?));
    let text = bytes.get(2..2 + len)?;
    let text = String::from_utf8(text.to_vec()).ok()?;
    Some((Some(text).filter(|t| !t.is_empty()), &bytes[2 + len..]))
}

/// Decodes a format-2 publication value (`time_ms` u64 BE, event length
/// u16 BE, event, JSON text), for the migration to format 3.
pub(super) fn decode_v2_publication(
    channel: &str,
    offset: u64,
    value: &[u8],
) -> Result<Publication, StoreError> {
    let bad = |reason| corrupt(PUBLICATIONS, format!("{channel}@{offset}"), reason);
    let time_ms = read_u64(value).ok_or_else(|| bad("format-2 value too short"))?;
    let event_len = value.get(8..10).ok_or_else(|| bad("format-2 value too short"))?;
    let event_len = usize::from(u16::from_be_bytes([event_len[0], event_len[1]]));
    let event = value.get(10..10 + event_len).ok_or_else(|| bad("format-2 value too short"))?;
    let event = match event_len {
        0 => None,
        _ => Some(String::from_utf8(event.to_vec()).map_err(|_| bad("event name is not UTF-8"))?),
    };
    let text = String::from_utf8(value[10 + event_len..].to_vec()).map_err(|_| bad("data is not UTF-8"))?;
    let data = JsonData::parse(text).map_err(|_| bad("data is not JSON"))?;
    Ok(Publication::new(offset, time_ms, event, data))
}

/// Encodes a format-2 publication value, as the previous version wrote it
/// (kept for the migration's tests).
#[cfg(test)]
pub(super) fn v2_publication_value(time_ms: u64, event: Option<&str>, data: &JsonData) -> Vec<u8> {
    let event = event.unwrap_or("").as_bytes();
    let mut value = Vec::new();
    value.extend_from_slice(&time_ms.to_be_bytes());
    value.extend_from_slice(&(event.len() as u16).to_be_bytes());
    value.extend_from_slice(event);
    value.extend_from_slice(data.as_str().as_bytes());
    value
}

/// What `channels` keeps per channel: the newest offset ever assigned
/// (never deleted, so offsets never restart within the epoch), the oldest
/// offset that may still be stored (everything below `tail` is deleted, so
/// scans start there instead of wading through tombstones), and the
/// retention of the latest append, which the background sweep enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChannelMeta {
    pub head: u64,
    pub tail: u64,
    pub retention: Retention,
}

impl ChannelMeta {
    pub fn bounds(&self) -> Bounds {
        Bounds { head: self.head, tail: self.tail }
    }

    pub fn encode(&self) -> [u8; 32] {
        let max_age_ms = crate::history::duration_ms(self.retention.max_age);
        let mut value = [0; 32];
        for (slot, field) in
            value.chunks_exact_mut(8).zip([self.head, self.tail, self.retention.max_len, max_age_ms])
        {
            slot.copy_from_slice(&field.to_be_bytes());
        }
        value
    }

    pub fn decode(channel: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let [head, tail, max_len, max_age_ms] = read_u64s(value)
            .ok_or_else(|| corrupt(CHANNELS, String::from_utf8_lossy(channel).into_owned(), "bad length"))?;
        let retention = Retention { max_len, max_age: Duration::from_millis(max_age_ms) };
        Ok(Self { head, tail, retention })
    }
}

/// A channel's stored offsets: `tail..=head` (none when `tail > head`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bounds {
    /// The newest offset ever assigned.
    pub head: u64,
    /// Every offset below it has been deleted.
    pub tail: u64,
}

impl Bounds {
    pub const NEW_CHANNEL: Self = Self { head: 0, tail: 1 };
}

pub(super) fn idempotency_key(channel: &ChannelName, key: &str) -> Vec<u8> {
    let mut stored = channel_prefix(channel.as_str());
    stored.extend_from_slice(key.as_bytes());
    stored
}

/// What `idempotency` keeps per key: the first publication's offset and
/// time, and until when the key counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RememberedKey {
    pub offset: u64,
    pub time_ms: u64,
    pub expires_ms: u64,
}

impl RememberedKey {
    pub fn encode(&self) -> [u8; 24] {
        let mut value = [0; 24];
        for (slot, field) in value.chunks_exact_mut(8).zip([self.offset, self.time_ms, self.expires_ms]) {
            slot.copy_from_slice(&field.to_be_bytes());
        }
        value
    }

    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let [offset, time_ms, expires_ms] = read_u64s(value).ok_or_else(|| {
            corrupt(IDEMPOTENCY, String::from_utf8_lossy(key).replace('\0', "/"), "bad length")
        })?;
        Ok(Self { offset, time_ms, expires_ms })
    }
}

/// What the `run` key holds: one byte for the state (0 running, 1 closed
/// cleanly), one byte of flags (bit 0: buffered appends were acknowledged
/// before being synced), then the boot id as UTF-8 (empty: unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RunRecord {
    pub closed_cleanly: bool,
    pub unsynced_appends: bool,
    pub boot_id: Option<String>,
}

const UNSYNCED_APPENDS_FLAG: u8 = 1;

impl RunRecord {
    pub fn encode(&self) -> Vec<u8> {
        let boot_id = self.boot_id.as_deref().unwrap_or("").as_bytes();
        let mut value = Vec::with_capacity(2 + boot_id.len());
        value.push(u8::from(self.closed_cleanly));
        value.push(if self.unsynced_appends { UNSYNCED_APPENDS_FLAG } else { 0 });
        value.extend_from_slice(boot_id);
        value
    }

    pub fn decode(value: &[u8]) -> Result<Self, StoreError> {
        let bad = |reason| corrupt(STORE, "run".into(), reason);
        let [state, flags, boot_id @ ..] = value else { return Err(bad("too short")) };
        let (state, flags) = (*state, *flags);
        let closed_cleanly = match state {
            0 => false,
            1 => true,
            _ => return Err(bad("unknown state")),
        };
        if flags & !UNSYNCED_APPENDS_FLAG != 0 {
            return Err(bad("unknown flags"));
        }
        let boot_id = std::str::from_utf8(boot_id).map_err(|_| bad("boot id is not UTF-8"))?;
        Ok(Self {
            closed_cleanly,
            unsynced_appends: flags & UNSYNCED_APPENDS_FLAG != 0,
            boot_id: Some(boot_id.to_owned()).filter(|id| !id.is_empty()),
        })
    }
}

pub(super) fn decode_format(value: &[u8]) -> Result<u32, StoreError> {
    let bytes: [u8; 4] = value.try_into().map_err(|_| corrupt(STORE, "format".into(), "bad length"))?;
    Ok(u32::from_be_bytes(bytes))
}

pub(super) fn decode_epoch(value: &[u8]) -> Result<String, StoreError> {
    let epoch = std::str::from_utf8(value).map_err(|_| corrupt(STORE, "epoch".into(), "not UTF-8"))?;
    if epoch.is_empty() {
        return Err(corrupt(STORE, "epoch".into(), "empty"));
    }
    Ok(epoch.to_owned())
}

pub(super) fn corrupt(keyspace: &'static str, key: String, reason: &'static str) -> StoreError {
    StoreError::Corrupt { keyspace, key, reason }
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(head))
}

/// Exactly `N` big-endian u64s.
fn read_u64s<const N: usize>(value: &[u8]) -> Option<[u64; N]> {
    if value.len() != N * 8 {
        return None;
    }
    let mut fields = [0; N];
    for (field, bytes) in fields.iter_mut().zip(value.chunks_exact(8)) {
        *field = read_u64(bytes)?;
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publication_keys_sort_by_channel_then_offset() {
        let mut keys = vec![publication_key("a", 256), publication_key("a", 2), publication_key("ab", 1)];
        keys.sort();
        assert_eq!(keys, vec![publication_key("a", 2), publication_key("a", 256), publication_key("ab", 1)]);
        assert_eq!(offset_of_publication_key("a", &publication_key("a", 256)).unwrap(), 256);
    }

    #[test]
    fn publications_round_trip_and_truncated_values_are_corrupt_not_panics() {
        let data = JsonData::parse(r#"{"é": [1, 2.50]}"#.to_owned()).unwrap();
        let plain = Publication::new(7, 42, None, data.clone());
        let value = publication_value(&plain);
        assert_eq!(decode_publication("c", 7, &value).unwrap(), plain);
        for cut in [1, 5, 9, 11, 13] {
            assert!(matches!(decode_publication("c", 7, &value[..cut]), Err(StoreError::Corrupt { .. })));
        }
        let named = Publication::new(8, 42, Some("chat-message".into()), data.clone())
            .with_author(Some(UserId::new("alice")));
        assert_eq!(decode_publication("c", 8, &publication_value(&named)).unwrap(), named);
        let priority = Publication::new(10, 44, None, data.clone()).with_priority(true);
        assert_eq!(decode_publication("c", 10, &publication_value(&priority)).unwrap(), priority);
        let update = Publication::update_record(11, 45, 8, data.clone()).with_author(Some(UserId::new("bo")));
        assert_eq!(decode_publication("c", 11, &publication_value(&update)).unwrap(), update);
        let edited = named.clone().edited_to(JsonData::parse("[3]".to_owned()).unwrap()).with_priority(true);
        assert_eq!(decode_publication("c", 8, &publication_value(&edited)).unwrap(), edited);
        let record = Publication::delete_record(9, 43, vec![7, 8]).with_author(Some(UserId::new("mod")));
        assert_eq!(decode_publication("c", 9, &publication_value(&record)).unwrap(), record);
        let tombstone = Publication::tombstone(7, 42);
        assert_eq!(decode_publication("c", 7, &publication_value(&tombstone)).unwrap(), tombstone);
        let mut bad_record = publication_value(&record);
        bad_record.pop();
        assert!(matches!(decode_publication("c", 9, &bad_record), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn format_2_values_decode_for_the_migration_and_are_not_mistaken_for_format_3() {
        let data = JsonData::parse("[1]".to_owned()).unwrap();
        let old = v2_publication_value(1_764_000_000_000, Some("ev"), &data);
        assert_ne!(old[0], VALUE_MARKER);
        assert!(decode_publication("c", 1, &old).is_err(), "a format-2 value is not read as format 3");
        let publication = decode_v2_publication("c", 1, &old).unwrap();
        assert_eq!(publication, Publication::new(1, 1_764_000_000_000, Some("ev".into()), data));
    }

    #[test]
    fn channel_meta_and_remembered_keys_round_trip() {
        let meta = ChannelMeta { head: 9, tail: 3, retention: Retention::default() };
        assert_eq!(ChannelMeta::decode(b"c", &meta.encode()).unwrap(), meta);
        assert!(ChannelMeta::decode(b"c", &[1, 2, 3]).is_err());
        let remembered = RememberedKey { offset: 3, time_ms: 4, expires_ms: 5 };
        assert_eq!(RememberedKey::decode(b"k", &remembered.encode()).unwrap(), remembered);
    }

    #[test]
    fn run_records_round_trip_and_unknown_bytes_are_corrupt() {
        for record in [
            RunRecord { closed_cleanly: true, unsynced_appends: false, boot_id: Some("b-1".into()) },
            RunRecord { closed_cleanly: false, unsynced_appends: true, boot_id: None },
        ] {
            assert_eq!(RunRecord::decode(&record.encode()).unwrap(), record);
        }
        for bad in [&[][..], &[1], &[2, 0], &[0, 2], &[0, 0, 0xff]] {
            assert!(matches!(RunRecord::decode(bad), Err(StoreError::Corrupt { keyspace: "store", .. })));
        }
    }
}
