//! What nodes of a cluster tell each other about a channel, through the
//! cluster's engine: the *live frames* of its pub/sub channel, and the key
//! names every node and script agree on (`docs/cluster.md`, "Keys and
//! frames").
//!
//! A live frame is bytes, not JSON, because the Redis append script builds
//! the publication frame itself (so pub/sub order is offset order) and Lua
//! can only concatenate: every variable-length part is length-prefixed.
//!
//! ```text
//! P<epoch>\n<item>…            publications, in offset order; each item is
//!   <offset> <exclude> <tail>    exclude: a connection id, or 0
//! tail = <time_ms> <event_len|-> <data_len|-> <author_len|-> <mark>\n<event><data><author>
//!        (also what history stores)
//!   mark: - a message; P a message of the priority lane; E (Q in the
//!   priority lane) a message whose data an edit replaced; U<offset> (V<offset>
//!   in the priority lane) an update record and the offset it edited;
//!   D a tombstone (no data); X<offset>,<offset>… a delete
//!   record and the offsets it deleted (no data); author: the user id text.
//!   A tail of an older version, <time_ms> <event_len|-> <data_len>\n<event><data>,
//!   still decodes (a message without author).
//! E<exclude> <time_ms> <event_len|-> <user_len|-> <data_len>\n<event><user><data>
//! J<user_len> <info_len|->\n<user><info>     a member joined (user as sent, JSON)
//! L<user_len>\n<user>                        a member left
//! ```
//!
//! Numbers are decimal ASCII, lengths count bytes, `-` means absent.

use crate::{ChannelName, Deletion, Epoch, JsonData, Publication, UserId};

/// Prefix of every key and pub/sub channel Fanfare uses in a cluster engine.
pub const KEY_PREFIX: &str = "fanfare";

/// The pub/sub channel of `channel`'s live frames.
pub fn live_channel(channel: &ChannelName) -> String {
    channel_key(channel, "live")
}

/// The channel of a live-channel name, if it is one.
pub fn channel_of_live(name: &str) -> Option<ChannelName> {
    let inner = name.strip_prefix("fanfare:{")?.strip_suffix("}:live")?;
    ChannelName::new(inner).ok()
}

/// A key of `channel`: `fanfare:{<channel>}:<suffix>`. Every key of one
/// channel shares the `{channel}` hash tag, so they live in one Redis
/// Cluster slot and one script may touch them all. (Channel names cannot
/// hold `{` or `}`.)
pub fn channel_key(channel: &ChannelName, suffix: &str) -> String {
    format!("{KEY_PREFIX}:{{{channel}}}:{suffix}")
}

/// One publication in a `P` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePublication {
    pub publication: Publication,
    /// The connection that must not get it (0: none).
    pub exclude: u64,
}

/// A decoded live frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveFrame {
    /// Durable publications, consecutive in offset order.
    Publications {
        epoch: Epoch,
        items: Vec<LivePublication>,
    },
    /// A publication that skips history.
    Ephemeral {
        exclude: u64,
        time_ms: u64,
        event: Option<String>,
        user: Option<UserId>,
        data: JsonData,
    },
    Join {
        user: UserId,
        info: Option<JsonData>,
    },
    Leave {
        user: UserId,
    },
}

/// Why a live frame or a stored tail could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed live frame: {0}")]
pub struct LiveFrameError(&'static str);

/// The stored form of a publication without its offset: what history keeps
/// and what follows `<offset> <exclude> ` in a `P` item.
pub fn encode_tail(publication: &Publication) -> Vec<u8> {
    let event = publication.event.as_deref();
    let data = publication.message_data();
    let author = publication.author.as_ref().map(UserId::as_str);
    let mut out = Vec::with_capacity(data.map_or(0, JsonData::len) + event.map_or(0, str::len) + 40);
    out.extend_from_slice(publication.time_ms.to_string().as_bytes());
    out.push(b' ');
    push_len(&mut out, event.map(str::len));
    out.push(b' ');
    push_len(&mut out, data.map(JsonData::len));
    out.push(b' ');
    push_len(&mut out, author.map(str::len));
    out.push(b' ');
    match &publication.deletion {
        None => out.extend_from_slice(message_mark(publication).as_bytes()),
        Some(Deletion::Deleted) => out.push(b'D'),
        Some(Deletion::Deletes(offsets)) => {
            out.push(b'X');
            let list: Vec<String> = offsets.iter().map(u64::to_string).collect();
            out.extend_from_slice(list.join(",").as_bytes());
        }
    }
    out.push(b'\n');
    out.extend_from_slice(event.unwrap_or("").as_bytes());
    out.extend_from_slice(data.map_or("", JsonData::as_str).as_bytes());
    out.extend_from_slice(author.unwrap_or("").as_bytes());
    out
}

/// The mark of a publication with data: a message, an edited one or an
/// update record, in either lane.
fn message_mark(publication: &Publication) -> String {
    match (publication.updates, publication.edited, publication.priority) {
        (Some(target), _, false) => format!("U{target}"),
        (Some(target), _, true) => format!("V{target}"),
        (None, true, false) => "E".to_owned(),
        (None, true, true) => "Q".to_owned(),
        (None, false, false) => "-".to_owned(),
        (None, false, true) => "P".to_owned(),
    }
}

/// Decodes a stored tail into the publication at `offset`.
pub fn decode_tail(offset: u64, tail: &[u8]) -> Result<Publication, LiveFrameError> {
    let mut reader = Reader(tail);
    let publication = reader.tail(offset)?;
    reader.finish()?;
    Ok(publication)
}

impl LiveFrame {
    pub fn decode(bytes: &[u8]) -> Result<Self, LiveFrameError> {
        let (&kind, rest) = bytes.split_first().ok_or(LiveFrameError("empty"))?;
        let mut reader = Reader(rest);
        let frame = match kind {
            b'P' => reader.publications()?,
            b'E' => reader.ephemeral()?,
            b'J' => reader.join()?,
            b'L' => {
                let len = reader.len_until(b'\n')?.ok_or(LiveFrameError("a leave needs a user"))?;
                LiveFrame::Leave { user: reader.user(len)? }
            }
            _ => return Err(LiveFrameError("unknown kind")),
        };
        reader.finish()?;
        Ok(frame)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            LiveFrame::Publications { epoch, items } => {
                out.push(b'P');
                out.extend_from_slice(epoch.as_str().as_bytes());
                out.push(b'\n');
                for item in items {
                    let p = &item.publication;
                    out.extend_from_slice(format!("{} {} ", p.offset, item.exclude).as_bytes());
                    out.extend_from_slice(&encode_tail(p));
                }
            }
            LiveFrame::Ephemeral { exclude, time_ms, event, user, data } => {
                let user = user.as_ref().map(user_json);
                out.extend_from_slice(format!("E{exclude} {time_ms} ").as_bytes());
                push_len(&mut out, event.as_deref().map(str::len));
                out.push(b' ');
                push_len(&mut out, user.as_deref().map(str::len));
                out.push(b' ');
                push_len(&mut out, Some(data.len()));
                out.push(b'\n');
                out.extend_from_slice(event.as_deref().unwrap_or("").as_bytes());
                out.extend_from_slice(user.as_deref().unwrap_or("").as_bytes());
                out.extend_from_slice(data.as_str().as_bytes());
            }
            LiveFrame::Join { user, info } => {
                let user = user_json(user);
                out.extend_from_slice(format!("J{} ", user.len()).as_bytes());
                push_len(&mut out, info.as_ref().map(JsonData::len));
                out.push(b'\n');
                out.extend_from_slice(user.as_bytes());
                out.extend_from_slice(info.as_ref().map_or("", JsonData::as_str).as_bytes());
            }
            LiveFrame::Leave { user } => {
                let user = user_json(user);
                out.extend_from_slice(format!("L{}\n", user.len()).as_bytes());
                out.extend_from_slice(user.as_bytes());
            }
        }
        out
    }
}

fn user_json(user: &UserId) -> String {
    serde_json::to_string(&user.as_sent()).unwrap_or_else(|_| "\"\"".into())
}

fn parse_len(field: &[u8]) -> Result<Option<usize>, LiveFrameError> {
    if field == b"-" {
        return Ok(None);
    }
    let len = std::str::from_utf8(field).ok().and_then(|s| s.parse().ok());
    len.map(Some).ok_or(LiveFrameError("bad length"))
}

/// `<offset>,<offset>…`, ascending and never empty.
fn parse_offsets(list: &[u8]) -> Result<Vec<u64>, LiveFrameError> {
    let text = std::str::from_utf8(list).map_err(|_| LiveFrameError("bad offsets"))?;
    let offsets: Option<Vec<u64>> = text.split(',').map(|n| n.parse().ok()).collect();
    offsets.filter(|o| !o.is_empty() && o.is_sorted()).ok_or(LiveFrameError("bad offsets"))
}

fn parse_offset(text: &[u8]) -> Result<u64, LiveFrameError> {
    std::str::from_utf8(text).ok().and_then(|s| s.parse().ok()).ok_or(LiveFrameError("bad offset"))
}

fn push_len(out: &mut Vec<u8>, len: Option<usize>) {
    match len {
        Some(len) => out.extend_from_slice(len.to_string().as_bytes()),
        None => out.push(b'-'),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn finish(&self) -> Result<(), LiveFrameError> {
        if self.0.is_empty() { Ok(()) } else { Err(LiveFrameError("trailing bytes")) }
    }

    /// The bytes up to `end` (not included), consuming `end`.
    fn until(&mut self, end: u8) -> Result<&'a [u8], LiveFrameError> {
        let at = self.0.iter().position(|&b| b == end).ok_or(LiveFrameError("truncated header"))?;
        let (field, rest) = self.0.split_at(at);
        self.0 = &rest[1..];
        Ok(field)
    }

    fn number_until(&mut self, end: u8) -> Result<u64, LiveFrameError> {
        let field = self.until(end)?;
        std::str::from_utf8(field).ok().and_then(|s| s.parse().ok()).ok_or(LiveFrameError("bad number"))
    }

    fn len_until(&mut self, end: u8) -> Result<Option<usize>, LiveFrameError> {
        parse_len(self.until(end)?)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], LiveFrameError> {
        if self.0.len() < len {
            return Err(LiveFrameError("truncated body"));
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(taken)
    }

    fn text(&mut self, len: usize) -> Result<String, LiveFrameError> {
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| LiveFrameError("not UTF-8"))
    }

    fn json(&mut self, len: usize) -> Result<JsonData, LiveFrameError> {
        JsonData::parse(self.text(len)?).map_err(|_| LiveFrameError("not JSON"))
    }

    fn user(&mut self, len: usize) -> Result<UserId, LiveFrameError> {
        let value: serde_json::Value =
            serde_json::from_slice(self.take(len)?).map_err(|_| LiveFrameError("user not JSON"))?;
        UserId::from_json(&value).ok_or(LiveFrameError("user neither string nor number"))
    }

    fn tail(&mut self, offset: u64) -> Result<Publication, LiveFrameError> {
        let time_ms = self.number_until(b' ')?;
        let event_len = self.len_until(b' ')?;
        let (data_len, end) = self.until_either(b' ', b'\n')?;
        let data_len = parse_len(data_len)?;
        let (author_len, mark) = match end {
            b'\n' => (None, &b"-"[..]), // an older version's tail: a message, no author
            _ => (self.len_until(b' ')?, self.until(b'\n')?),
        };
        let event = event_len.map(|len| self.text(len)).transpose()?;
        let data = data_len.map(|len| self.json(len)).transpose()?;
        let author = author_len.map(|len| self.text(len).map(UserId::new)).transpose()?;
        let publication = match (mark, data) {
            (b"-", Some(data)) => Publication::new(offset, time_ms, event, data),
            (b"P", Some(data)) => Publication::new(offset, time_ms, event, data).with_priority(true),
            (b"E", Some(data)) => Publication::new(offset, time_ms, event, data).with_edited(true),
            (b"Q", Some(data)) => {
                Publication::new(offset, time_ms, event, data).with_edited(true).with_priority(true)
            }
            ([lane @ (b'U' | b'V'), target @ ..], Some(data)) => {
                Publication::update_record(offset, time_ms, parse_offset(target)?, data)
                    .with_priority(*lane == b'V')
            }
            (b"-" | b"P" | b"E" | b"Q" | [b'U' | b'V', ..], None) => {
                return Err(LiveFrameError("a publication needs data"));
            }
            (b"D", None) => Publication::tombstone(offset, time_ms),
            ([b'X', list @ ..], None) => Publication::delete_record(offset, time_ms, parse_offsets(list)?),
            _ => return Err(LiveFrameError("bad mark")),
        };
        Ok(publication.with_author(author))
    }

    /// The bytes up to the first `a` or `b`, consuming it; and which it was.
    fn until_either(&mut self, a: u8, b: u8) -> Result<(&'a [u8], u8), LiveFrameError> {
        let at = self.0.iter().position(|&c| c == a || c == b).ok_or(LiveFrameError("truncated header"))?;
        let (field, rest) = self.0.split_at(at);
        self.0 = &rest[1..];
        Ok((field, rest[0]))
    }

    fn publications(&mut self) -> Result<LiveFrame, LiveFrameError> {
        let epoch = String::from_utf8(self.until(b'\n')?.to_vec()).map_err(|_| LiveFrameError("epoch"))?;
        let mut items = Vec::new();
        while !self.0.is_empty() {
            let offset = self.number_until(b' ')?;
            let exclude = self.number_until(b' ')?;
            items.push(LivePublication { publication: self.tail(offset)?, exclude });
        }
        if items.is_empty() {
            return Err(LiveFrameError("no publications"));
        }
        Ok(LiveFrame::Publications { epoch: Epoch::new(&epoch), items })
    }

    fn ephemeral(&mut self) -> Result<LiveFrame, LiveFrameError> {
        let exclude = self.number_until(b' ')?;
        let time_ms = self.number_until(b' ')?;
        let event_len = self.len_until(b' ')?;
        let user_len = self.len_until(b' ')?;
        let data_len = self.len_until(b'\n')?.ok_or(LiveFrameError("an ephemeral needs data"))?;
        let event = event_len.map(|len| self.text(len)).transpose()?;
        let user = user_len.map(|len| self.user(len)).transpose()?;
        let data = self.json(data_len)?;
        Ok(LiveFrame::Ephemeral { exclude, time_ms, event, user, data })
    }

    fn join(&mut self) -> Result<LiveFrame, LiveFrameError> {
        let user_len = self.len_until(b' ')?.ok_or(LiveFrameError("a join needs a user"))?;
        let info_len = self.len_until(b'\n')?;
        let user = self.user(user_len)?;
        let info = info_len.map(|len| self.json(len)).transpose()?;
        Ok(LiveFrame::Join { user, info })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> JsonData {
        JsonData::parse(text.into()).unwrap()
    }

    fn publication(offset: u64, event: Option<&str>, data: &str) -> Publication {
        Publication::new(offset, 1_700_000_000_123, event.map(Into::into), json(data))
    }

    #[test]
    fn every_kind_of_frame_decodes_to_what_was_encoded() {
        let frames = [
            LiveFrame::Publications {
                epoch: Epoch::new("ab12"),
                items: vec![
                    LivePublication { publication: publication(7, None, r#"{"text":"hi\n"}"#), exclude: 0 },
                    LivePublication { publication: publication(8, Some("chat é"), "[1,2]"), exclude: 42 },
                    LivePublication {
                        publication: publication(9, None, "1").with_author(Some(UserId::new("al ice"))),
                        exclude: 0,
                    },
                    LivePublication {
                        publication: Publication::delete_record(10, 5, vec![7, 9])
                            .with_author(Some(UserId::new("mod"))),
                        exclude: 0,
                    },
                    LivePublication { publication: Publication::tombstone(11, 6), exclude: 0 },
                    LivePublication {
                        publication: publication(12, None, "2").with_priority(true),
                        exclude: 0,
                    },
                    LivePublication {
                        publication: Publication::update_record(13, 7, 9, json(r#"{"text":"new"}"#))
                            .with_author(Some(UserId::new("al ice"))),
                        exclude: 5,
                    },
                    LivePublication {
                        publication: Publication::update_record(14, 8, 12, json("3")).with_priority(true),
                        exclude: 0,
                    },
                    LivePublication {
                        publication: publication(15, Some("e"), "4").with_edited(true),
                        exclude: 0,
                    },
                    LivePublication {
                        publication: publication(16, None, "5").with_edited(true).with_priority(true),
                        exclude: 0,
                    },
                ],
            },
            LiveFrame::Ephemeral {
                exclude: 3,
                time_ms: 5,
                event: Some("client-typing".into()),
                user: Some(UserId::number(&7.into())),
                data: json(r#""x""#),
            },
            LiveFrame::Ephemeral { exclude: 0, time_ms: 5, event: None, user: None, data: json("null") },
            LiveFrame::Join { user: UserId::new("alice"), info: Some(json(r#"{"name":"A"}"#)) },
            LiveFrame::Join { user: UserId::new("bob"), info: None },
            LiveFrame::Leave { user: UserId::new("alice") },
        ];
        for frame in frames {
            let decoded = LiveFrame::decode(&frame.encode()).unwrap();
            assert_eq!(decoded, frame);
            if let LiveFrame::Ephemeral { user: Some(user), .. } = decoded {
                assert!(user.is_number(), "a numeric id stays a number across nodes");
            }
        }
    }

    #[test]
    fn a_publication_item_is_offset_exclude_then_the_stored_tail() {
        let named = Publication::new(5, 12, Some("ev".into()), json("{}"));
        let tail = encode_tail(&named);
        assert_eq!(tail, b"12 2 2 - -\nev{}");
        let mut frame = b"Pe1\n5 0 ".to_vec();
        frame.extend_from_slice(&tail);
        let LiveFrame::Publications { items, .. } = LiveFrame::decode(&frame).unwrap() else { panic!() };
        assert_eq!(items[0].publication, named);
        assert_eq!(decode_tail(5, &tail).unwrap(), items[0].publication);
    }

    #[test]
    fn tails_carry_the_author_and_the_deletion_outside_the_data() {
        let authored = Publication::new(3, 12, None, json("[1]")).with_author(Some(UserId::new("bob")));
        assert_eq!(encode_tail(&authored), b"12 - 3 3 -\n[1]bob");
        let record = Publication::delete_record(4, 13, vec![1, 3]);
        assert_eq!(encode_tail(&record), b"13 - - - X1,3\n");
        assert_eq!(decode_tail(4, b"13 - - - X1,3\n").unwrap(), record);
        assert_eq!(encode_tail(&Publication::tombstone(1, 9)), b"9 - - - D\n");
        assert_eq!(decode_tail(1, b"9 - - - D\n").unwrap(), Publication::tombstone(1, 9));
        let update = Publication::update_record(5, 14, 3, json("[2]"));
        assert_eq!(encode_tail(&update), b"14 - 3 - U3\n[2]");
        assert_eq!(decode_tail(5, b"14 - 3 - U3\n[2]").unwrap(), update);
        assert_eq!(encode_tail(&authored.clone().edited_to(json("[3]"))), b"12 - 3 3 E\n[3]bob");
        for bad in [
            &b"9 - 2 - D\n{}"[..],
            b"9 - - - X\n",
            b"9 - - - X3,1\n",
            b"9 - - - -\n",
            b"9 - - - Q\n",
            b"9 - 1 - Ux\n1",
        ] {
            assert!(decode_tail(1, bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_tail_stored_by_an_older_version_still_decodes_as_a_message_without_author() {
        let old = b"12 2 2\nev{}";
        assert_eq!(decode_tail(5, old).unwrap(), Publication::new(5, 12, Some("ev".into()), json("{}")));
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"X",
            b"P",
            b"Pe\n",
            b"Pe\n1 0 5 - 9\n{}",
            b"Pe\n1 0 5 - 2\n{}x",
            b"L3\nab",
            b"J1 -\n{",
        ] {
            assert!(LiveFrame::decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn keys_of_a_channel_share_its_hash_tag() {
        let channel = ChannelName::new("chat:acme/general").unwrap();
        assert_eq!(live_channel(&channel), "fanfare:{chat:acme/general}:live");
        assert_eq!(channel_key(&channel, "meta"), "fanfare:{chat:acme/general}:meta");
        assert_eq!(channel_of_live(&live_channel(&channel)), Some(channel));
        assert_eq!(channel_of_live("fanfare:node:x"), None);
    }
}
