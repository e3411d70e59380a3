//! One user of the `dm` scenario: what it writes, what its feed tells it,
//! and how it catches up, in a few counters ([`DmTally`], summed over
//! users).
//!
//! - It writes in the direct channels it starts
//!   ([`Conversations::started_by`]), in turn, one message per tick of its
//!   share of the rate; a message's `text` is a benchmark payload, so the
//!   notice's `preview` carries its send time.
//! - Each notice of its feed is checked against the channel it is about:
//!   only the channel's starter writes in it, so the message offsets one
//!   channel's notices name rise by one each time (a jump is a *gap*, a
//!   step back a *repeat*). The feed's own offsets are checked by the
//!   subscriber's [`SeqTracker`](crate::tracker::SeqTracker), as for any
//!   channel.
//! - Catching up, as a messenger opening does: `unread` lists its channels
//!   with unread counts; then one `read` per channel with something
//!   unread, all sent at once (pipelined), each answered `moved`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::conversations::Conversations;
use crate::driver::Notice;
use crate::options::BenchOptions;
use crate::payload;

/// Ids of this user's commands: `unread` has one; messages and reads
/// count up from their own base (1 and 2 are the handshake's).
const UNREAD_ID: u64 = 50;
const MESSAGE_IDS: u64 = 1_000;
const READ_IDS: u64 = 1 << 40;
/// Channels one `unread` page may list (the server's page limit).
const UNREAD_PAGE: usize = 1000;

/// What the users did and saw, summed (a worker sends its own to the parent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmTally {
    pub users: u64,
    /// Notices received.
    pub notices: u64,
    /// Notices whose preview carried a benchmark payload (with a latency).
    pub timed: u64,
    /// Notices naming a message offset past the next one of their channel.
    pub channel_gaps: u64,
    /// Notices naming a message offset at or below one already noticed.
    pub channel_repeats: u64,
    pub messages_sent: u64,
    pub messages_acked: u64,
    pub messages_refused: u64,
    /// Users whose `unread` was answered, and the channels it listed
    /// with something unread.
    pub listed: u64,
    pub list_refused: u64,
    pub unread_channels: u64,
    pub unread_publications: u64,
    pub reads_sent: u64,
    pub reads_moved: u64,
    pub reads_not_moved: u64,
    pub reads_refused: u64,
}

impl DmTally {
    pub fn add(&mut self, other: &DmTally) {
        self.users += other.users;
        self.notices += other.notices;
        self.timed += other.timed;
        self.channel_gaps += other.channel_gaps;
        self.channel_repeats += other.channel_repeats;
        self.messages_sent += other.messages_sent;
        self.messages_acked += other.messages_acked;
        self.messages_refused += other.messages_refused;
        self.listed += other.listed;
        self.list_refused += other.list_refused;
        self.unread_channels += other.unread_channels;
        self.unread_publications += other.unread_publications;
        self.reads_sent += other.reads_sent;
        self.reads_moved += other.reads_moved;
        self.reads_not_moved += other.reads_not_moved;
        self.reads_refused += other.reads_refused;
    }
}

/// What a reply to one of this user's commands was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DmReply {
    Acked,
    Refused,
    /// `unread` answered: this many `read`s to send.
    Listed(usize),
    ListRefused,
    Read {
        moved: bool,
    },
    ReadRefused,
    NotOurs,
}

#[derive(Deserialize)]
struct UnreadPage {
    channels: Vec<UnreadEntry>,
}

#[derive(Deserialize)]
struct UnreadEntry {
    channel: String,
    epoch: String,
    offset: u64,
    unread: u64,
}

#[derive(Deserialize)]
struct ReadResult {
    moved: bool,
}

pub(crate) struct DmUser {
    /// The channels it writes in, and the one it writes in next.
    started: Vec<String>,
    next: usize,
    /// Per channel noticed: the last message offset a notice named.
    noticed: HashMap<String, u64>,
    /// From `unread`: (channel, epoch, offset) to mark read.
    to_read: Vec<(String, String, u64)>,
    next_message_id: u64,
    tally: DmTally,
}

impl DmUser {
    pub(crate) fn new(options: &BenchOptions, index: usize) -> Self {
        let conversations = Conversations::of(options);
        let started = conversations.started_by(index).map(|k| conversations.name(options, k)).collect();
        Self {
            started,
            next: index,
            noticed: HashMap::new(),
            to_read: Vec::new(),
            next_message_id: MESSAGE_IDS,
            tally: DmTally { users: 1, ..DmTally::default() },
        }
    }

    /// The `publish` of its next message (`None`: it starts no channel).
    pub(crate) fn next_message(&mut self, size: usize) -> Option<String> {
        if self.started.is_empty() {
            return None;
        }
        let channel = &self.started[self.next % self.started.len()];
        self.next += 1;
        self.next_message_id += 1;
        self.tally.messages_sent += 1;
        let text = payload::encode(self.next_message_id - MESSAGE_IDS, payload::now_us(), size);
        Some(format!(
            r#"{{"id":{},"type":"publish","channel":"{channel}","data":{{"text":{text}}}}}"#,
            self.next_message_id
        ))
    }

    /// One notice of its feed.
    pub(crate) fn on_notice(&mut self, notice: &Notice<'_>) {
        self.tally.notices += 1;
        self.tally.timed += u64::from(notice.payload.is_some());
        match self.noticed.get_mut(notice.channel.as_ref()) {
            Some(last) => {
                if notice.offset <= *last {
                    self.tally.channel_repeats += 1;
                    return;
                }
                if notice.offset > *last + 1 {
                    self.tally.channel_gaps += 1;
                }
                *last = notice.offset;
            }
            None => {
                self.noticed.insert(notice.channel.to_string(), notice.offset);
            }
        }
    }

    pub(crate) fn unread_command(&self) -> String {
        format!(r#"{{"id":{UNREAD_ID},"type":"unread","limit":{UNREAD_PAGE}}}"#)
    }

    /// One `read` per channel `unread` listed with something unread, to
    /// its latest offset.
    pub(crate) fn read_commands(&mut self) -> Vec<String> {
        let reads = std::mem::take(&mut self.to_read);
        self.tally.reads_sent += reads.len() as u64;
        reads
            .iter()
            .enumerate()
            .map(|(n, (channel, epoch, offset))| {
                let id = READ_IDS + n as u64;
                format!(
                    r#"{{"id":{id},"type":"read","channel":"{channel}","epoch":"{epoch}","offset":{offset}}}"#
                )
            })
            .collect()
    }

    pub(crate) fn on_reply(&mut self, id: u64, error: Option<&str>, result: Option<&str>) -> DmReply {
        let tally = &mut self.tally;
        match id {
            UNREAD_ID => match result.and_then(|json| serde_json::from_str::<UnreadPage>(json).ok()) {
                Some(page) if error.is_none() => {
                    tally.listed += 1;
                    for entry in page.channels.into_iter().filter(|entry| entry.unread > 0) {
                        tally.unread_channels += 1;
                        tally.unread_publications += entry.unread;
                        self.to_read.push((entry.channel, entry.epoch, entry.offset));
                    }
                    DmReply::Listed(self.to_read.len())
                }
                _ => {
                    tally.list_refused += 1;
                    DmReply::ListRefused
                }
            },
            READ_IDS.. => match result.and_then(|json| serde_json::from_str::<ReadResult>(json).ok()) {
                Some(read) if error.is_none() => {
                    if read.moved {
                        tally.reads_moved += 1;
                    } else {
                        tally.reads_not_moved += 1;
                    }
                    DmReply::Read { moved: read.moved }
                }
                _ => {
                    tally.reads_refused += 1;
                    DmReply::ReadRefused
                }
            },
            MESSAGE_IDS.. if error.is_none() => {
                tally.messages_acked += 1;
                DmReply::Acked
            }
            MESSAGE_IDS.. => {
                tally.messages_refused += 1;
                DmReply::Refused
            }
            _ => DmReply::NotOurs,
        }
    }

    pub(crate) fn finish(self) -> DmTally {
        self.tally
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::options::Scenario;

    fn user(index: usize) -> DmUser {
        let mut options = BenchOptions::new(Scenario::Dm, "http://127.0.0.1:1");
        options.connections = 10;
        options.channels = Some(20);
        options.dm.user_prefix = Some("u-".into());
        DmUser::new(&options, index)
    }

    fn notice(channel: &str, offset: u64) -> Notice<'_> {
        Notice { channel: Cow::Borrowed(channel), epoch: "e", offset, payload: None }
    }

    #[test]
    fn a_user_writes_in_the_channels_it_starts_in_turn() {
        let mut user = user(3);
        let first = user.next_message(60).unwrap();
        let second = user.next_message(60).unwrap();
        let third = user.next_message(60).unwrap();
        let value: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(value["type"], "publish");
        let text = value["data"]["text"].as_str().unwrap();
        assert!(payload::decode_text(text).is_some(), "{text}");
        let channel =
            |json: &str| serde_json::from_str::<serde_json::Value>(json).unwrap()["channel"].clone();
        // User 3 starts channels 3 (with u-4) and 13 (with u-5).
        assert_eq!(channel(&first), "dm:u-3,u-5");
        assert_eq!(channel(&second), "dm:u-3,u-4");
        assert_eq!(channel(&third), channel(&first));
        assert_eq!(user.on_reply(1001, None, Some(r#"{"epoch":"e","offset":2}"#)), DmReply::Acked);
        assert_eq!(user.on_reply(1002, Some(r#"{"code":"x"}"#), None), DmReply::Refused);
        let tally = user.finish();
        assert_eq!((tally.messages_sent, tally.messages_acked, tally.messages_refused), (3, 1, 1));
    }

    #[test]
    fn notices_of_one_channel_must_name_consecutive_offsets() {
        let mut user = user(0);
        for (channel, offset) in
            [("dm:a,b", 4), ("dm:a,b", 5), ("dm:a,c", 1), ("dm:a,b", 7), ("dm:a,b", 7), ("dm:a,b", 6)]
        {
            user.on_notice(&notice(channel, offset));
        }
        let tally = user.finish();
        assert_eq!((tally.notices, tally.channel_gaps, tally.channel_repeats), (6, 1, 2));
    }

    #[test]
    fn unread_lists_what_to_read_and_each_read_says_whether_it_moved() {
        let mut user = user(0);
        let page = r#"{"channels":[{"channel":"dm:a,b","epoch":"E","offset":3,"read":1,"unread":2},{"channel":"dm:a,c","epoch":"E","offset":1,"read":1,"unread":0}]}"#;
        assert_eq!(user.on_reply(UNREAD_ID, None, Some(page)), DmReply::Listed(1));
        let reads = user.read_commands();
        assert_eq!(reads.len(), 1);
        let read: serde_json::Value = serde_json::from_str(&reads[0]).unwrap();
        assert_eq!(
            (read["channel"].as_str(), read["epoch"].as_str(), read["offset"].as_u64()),
            (Some("dm:a,b"), Some("E"), Some(3))
        );
        let id = read["id"].as_u64().unwrap();
        assert_eq!(user.on_reply(id, None, Some(r#"{"moved":true}"#)), DmReply::Read { moved: true });
        assert_eq!(user.on_reply(id, None, Some(r#"{"moved":false}"#)), DmReply::Read { moved: false });
        assert_eq!(user.on_reply(id, Some("{}"), None), DmReply::ReadRefused);
        let tally = user.finish();
        assert_eq!((tally.listed, tally.unread_channels, tally.unread_publications), (1, 1, 2));
        assert_eq!(
            (tally.reads_sent, tally.reads_moved, tally.reads_not_moved, tally.reads_refused),
            (1, 1, 1, 1)
        );
    }
}
