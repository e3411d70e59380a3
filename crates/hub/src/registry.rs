//! The subscription registry: which connections are subscribed to which
//! channel, sharded so that no lock spans all channels.
//!
//! Lock order is always shard, then channel. A shard's lock is held only to
//! find, create or drop a channel entry; a channel's lock is held while its
//! subscribers are changed or a frame is fanned out to them.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use fanfare_protocol::{ChannelName, CloseCode, Epoch, Frame, JsonData, Publication, Stamp, UserId};

use crate::encode::{Encoded, Message, Protocol};
use parking_lot::{Mutex, RwLock};

use crate::outbox::{CloseReason, Outbox, Pushed};
use crate::presence::Presence;
use crate::shaping::{Sampler, Shaping, skipped_between};

/// A connection's id, unique within the server.
pub type ConnId = u64;

/// A connection as the hub sees it: who it is and where its frames go.
#[derive(Clone)]
pub struct Subscriber {
    pub conn: ConnId,
    /// The user id, or `""` for an anonymous connection (never a member).
    /// Presence is keyed by its text; Pusher subscribers see it in the JSON
    /// type this connection joined with.
    pub user: UserId,
    /// What presence shows about this user.
    pub info: Option<JsonData>,
    pub protocol: Protocol,
    pub outbox: Arc<Outbox>,
}

pub(crate) struct Entry {
    pub sub: Subscriber,
    /// While a subscription is catching up on history, live frames wait here
    /// instead of in the outbox.
    pub catch_up: Option<Vec<Held>>,
    /// Whether this subscription counts in presence (set once it is live).
    pub joined: bool,
    /// Offsets at or below this were covered when the subscription was
    /// made (replayed, or before its starting point): a fan-out of one of
    /// them that arrives late is not delivered again.
    pub skip_up_to: u64,
    /// In a shaped channel: the offset of the last publication this
    /// subscription received (or its position when it went live), from
    /// which its next delivery counts `skipped`.
    pub last_offset: u64,
    /// The highest offset this subscription has had queued in its outbox,
    /// or has skipped on purpose (its own publication, sampled out,
    /// before its start): the Pusher session resumes a lost connection
    /// from what of this the client is known to have read.
    pub covered: u64,
}

impl Entry {
    /// A subscription catching up, from its first moment.
    pub fn catching_up(sub: Subscriber) -> Self {
        Self { sub, catch_up: Some(Vec::new()), joined: false, skip_up_to: 0, last_offset: 0, covered: 0 }
    }
}

/// A live message held while its subscription catches up.
pub(crate) enum Held {
    /// Encoded already, with its offset if it has one.
    Frame(Option<u64>, Frame),
    /// A shaped channel's publication: encoded on release, when the
    /// subscription's own `skipped` is known.
    Shaped(Epoch, Publication),
}

impl Held {
    pub fn offset(&self) -> Option<u64> {
        match self {
            Held::Frame(offset, _) => *offset,
            Held::Shaped(_, publication) => Some(publication.offset),
        }
    }
}

pub(crate) struct Channel {
    pub state: Mutex<ChannelState>,
}

#[derive(Default)]
pub(crate) struct ChannelState {
    pub entries: Vec<Entry>,
    pub presence: Presence,
    /// A shaped channel's sampling, shared by all its subscribers.
    pub sampler: Sampler,
    /// A shaped channel's ordinary deliveries waiting for its next batch.
    pub batch: crate::batch::Batch,
}

/// Result of one fan-out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FanOut {
    pub delivered: u64,
    pub overflowed: u64,
}

/// A new durable publication of a channel, to fan out.
#[derive(Clone, Copy)]
pub(crate) struct Fresh<'a> {
    pub epoch: &'a Epoch,
    pub publication: &'a Publication,
    /// The connection that must not get it.
    pub except: Option<ConnId>,
    /// When it was accepted, stamped on its frames.
    pub accepted: Stamp,
}

/// What a fan-out of fresh publications did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub fan_out: FanOut,
    /// Publications a shaped channel's sampling kept from every subscriber.
    pub sampled_out: u64,
    /// A shaped channel now holds deliveries for its next batch and no
    /// flush is due yet: the caller schedules one after this long.
    pub flush_after: Option<std::time::Duration>,
}

/// One message of a fan-out.
pub(crate) struct Outgoing<'a> {
    /// Its offset, for a publication kept in history.
    pub offset: Option<u64>,
    pub message: &'a Encoded<'a>,
    /// The connection that must not get it (a client's own event).
    pub except: Option<ConnId>,
}

impl ChannelState {
    /// Whether the channel's next publication (in offset order) goes out,
    /// and as what: `Some(None)` unshaped, `Some(Some(skipped))` a shaped
    /// delivery, `None` sampled out.
    pub fn shape(&mut self, shaping: Option<&Shaping>, publication: &Publication) -> Option<Option<u64>> {
        let Some(shaping) = shaping else { return Some(None) };
        self.sampler.decide(shaping, publication).map(Some)
    }

    /// Pushes one message to every subscriber (but `except`): see
    /// [`ChannelState::fan_out_many`].
    pub fn fan_out(
        &mut self,
        offset: Option<u64>,
        message: &Encoded<'_>,
        except: Option<ConnId>,
        catch_up_cap: usize,
    ) -> FanOut {
        self.fan_out_many(&[Outgoing { offset, message, except }], catch_up_cap)
    }

    /// Pushes messages, in order, to every subscriber, in the subscriber's
    /// protocol: into the outbox, or into the catch-up buffer of a
    /// subscription still replaying history. Subscriber by subscriber, so
    /// each outbox takes all of them at once and its connection writes
    /// them together. A catch-up buffer larger than `catch_up_cap` makes
    /// its connection a slow consumer.
    pub fn fan_out_many(&mut self, messages: &[Outgoing<'_>], catch_up_cap: usize) -> FanOut {
        self.fan_out_to(messages, catch_up_cap, |_| true)
    }

    /// Pushes one message to every subscriber but the connections of
    /// `user` (a join or leave, which the user's own connections know of).
    pub fn fan_out_except_user(&mut self, message: &Encoded<'_>, user: &str, catch_up_cap: usize) -> FanOut {
        let outgoing = [Outgoing { offset: None, message, except: None }];
        self.fan_out_to(&outgoing, catch_up_cap, |sub| sub.user.as_str() != user)
    }

    /// Pushes one message without an offset to every subscriber but the
    /// connections registered under one of `users` (and but `except`): a
    /// typing indicator or a read receipt, which its user's own
    /// connections need not hear of.
    pub fn fan_out_except_users(
        &mut self,
        message: &Encoded<'_>,
        except: Option<ConnId>,
        users: &[String],
        catch_up_cap: usize,
    ) -> FanOut {
        let outgoing = [Outgoing { offset: None, message, except }];
        self.fan_out_to(&outgoing, catch_up_cap, |sub| !users.iter().any(|u| *u == sub.user.as_str()))
    }

    /// Pushes one message without an offset to the subscribers that are
    /// among `conns` (but `except`): a shadow-banned user's publication,
    /// which only that user's own connections receive.
    pub fn fan_out_to_connections(
        &mut self,
        message: &Encoded<'_>,
        except: Option<ConnId>,
        conns: &std::collections::HashSet<ConnId>,
        catch_up_cap: usize,
    ) -> FanOut {
        let outgoing = [Outgoing { offset: None, message, except }];
        self.fan_out_to(&outgoing, catch_up_cap, |sub| conns.contains(&sub.conn))
    }

    /// [`ChannelState::fan_out_many`] to the subscribers `to` accepts.
    fn fan_out_to(
        &mut self,
        messages: &[Outgoing<'_>],
        catch_up_cap: usize,
        to: impl Fn(&Subscriber) -> bool,
    ) -> FanOut {
        let mut result = FanOut::default();
        for entry in self.entries.iter_mut().filter(|e| to(&e.sub)) {
            let due = messages.iter().filter(|m| {
                Some(entry.sub.conn) != m.except && m.offset.is_none_or(|o| o > entry.skip_up_to)
            });
            let protocol = entry.sub.protocol;
            let Some(buffer) = &mut entry.catch_up else {
                if let Some(offset) = messages.iter().filter_map(|m| m.offset).max() {
                    entry.covered = entry.covered.max(offset);
                }
                let last = &mut entry.last_offset;
                let frames = due.map(|m| frame_for(m, protocol, last));
                let (queued, pushed) = entry.sub.outbox.push_all(frames);
                result.delivered += queued;
                result.overflowed += u64::from(pushed == Pushed::Overflowed);
                continue;
            };
            for m in due {
                if buffer.len() >= catch_up_cap {
                    if !entry.sub.outbox.is_closed() {
                        entry.sub.outbox.close(CloseReason::new(CloseCode::SlowConsumer));
                        result.overflowed += 1;
                    }
                    break;
                }
                buffer.push(match m.message.held() {
                    Some((epoch, publication)) => Held::Shaped(epoch, publication),
                    None => Held::Frame(m.offset, m.message.frame(protocol).clone()),
                });
            }
        }
        result
    }

    pub fn position_of(&self, conn: ConnId) -> Option<usize> {
        self.entries.iter().position(|e| e.sub.conn == conn)
    }
}

/// The frame of `m` for a subscriber of `protocol`. A shaped publication
/// counts its `skipped` from the subscriber's `last` offset (and moves
/// it): the shared frame serves every subscriber that got the channel's
/// previous delivery, a frame of its own the rare one that did not (just
/// subscribed or recovered).
fn frame_for(m: &Outgoing<'_>, protocol: Protocol, last: &mut u64) -> Frame {
    let (Some(offset), Some(skipped)) = (m.offset, m.message.shaped_skipped()) else {
        return m.message.frame(protocol).clone();
    };
    let own = skipped_between(*last, offset);
    *last = offset;
    match protocol {
        Protocol::Native if own != skipped => m.message.frame_skipping(own),
        _ => m.message.frame(protocol).clone(),
    }
}

/// [`frame_for`] for a held shaped publication, on release.
pub(crate) fn held_frame(
    channel: &ChannelName,
    epoch: &Epoch,
    publication: &Publication,
    protocol: Protocol,
    last: &mut u64,
) -> Frame {
    let message = Message::Publication { epoch, publication };
    let encoded = Encoded::new(channel, message).shaped(skipped_between(*last, publication.offset));
    *last = publication.offset;
    encoded.frame(protocol).clone()
}

type Shard = RwLock<HashMap<ChannelName, Arc<Channel>>>;

pub(crate) struct Registry {
    shards: Box<[Shard]>,
    hasher: std::collections::hash_map::RandomState,
}

/// What `attach` found.
pub(crate) enum Attached {
    Added { channel: Arc<Channel>, created: bool, count: usize },
    AlreadySubscribed,
}

impl Registry {
    pub fn new(shards: usize) -> Self {
        let shards = (0..shards.max(1)).map(|_| RwLock::new(HashMap::new())).collect();
        Self { shards, hasher: Default::default() }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn shard_of(&self, channel: &ChannelName) -> usize {
        (self.hasher.hash_one(channel) as usize) % self.shards.len()
    }

    pub fn get(&self, channel: &ChannelName) -> Option<Arc<Channel>> {
        self.shards[self.shard_of(channel)].read().get(channel).cloned()
    }

    /// Adds a subscriber.
    pub fn attach(&self, channel: &ChannelName, entry: Entry) -> Attached {
        let mut shard = self.shards[self.shard_of(channel)].write();
        let mut created = false;
        let chan = shard
            .entry(channel.clone())
            .or_insert_with(|| {
                created = true;
                Arc::new(Channel { state: Mutex::new(ChannelState::default()) })
            })
            .clone();
        let mut state = chan.state.lock();
        if state.position_of(entry.sub.conn).is_some() {
            return Attached::AlreadySubscribed;
        }
        state.entries.push(entry);
        let count = state.entries.len();
        drop(state);
        Attached::Added { channel: chan, created, count }
    }

    /// Removes a subscriber; `on_removed` runs under the channel's lock with
    /// the removed entry. Drops the channel once nobody is subscribed.
    /// Returns `(found, channel_dropped)`.
    pub fn detach(
        &self,
        channel: &ChannelName,
        conn: ConnId,
        on_removed: impl FnOnce(&mut ChannelState, Entry),
    ) -> (bool, bool) {
        let mut shard = self.shards[self.shard_of(channel)].write();
        let Some(chan) = shard.get(channel).cloned() else { return (false, false) };
        let mut state = chan.state.lock();
        let Some(index) = state.position_of(conn) else { return (false, false) };
        let entry = state.entries.swap_remove(index);
        on_removed(&mut state, entry);
        let empty = state.entries.is_empty();
        drop(state);
        if empty {
            shard.remove(channel);
        }
        (true, empty)
    }

    /// How many channels and subscriptions this node has.
    pub fn totals(&self) -> (usize, usize) {
        let mut totals = (0, 0);
        for shard in self.shards.iter() {
            let channels: Vec<Arc<Channel>> = shard.read().values().cloned().collect();
            totals.0 += channels.len();
            totals.1 += channels.iter().map(|c| c.state.lock().entries.len()).sum::<usize>();
        }
        totals
    }

    /// Every subscription that counts in presence, by channel.
    pub fn joined_members(&self) -> Vec<(ChannelName, Vec<(ConnId, fanfare_protocol::native::Member)>)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let channels: Vec<(ChannelName, Arc<Channel>)> =
                shard.read().iter().map(|(n, c)| (n.clone(), c.clone())).collect();
            for (name, chan) in channels {
                let state = chan.state.lock();
                let members: Vec<_> = state
                    .entries
                    .iter()
                    .filter(|e| e.joined)
                    .map(|e| {
                        let member = fanfare_protocol::native::Member {
                            user: e.sub.user.clone(),
                            info: e.sub.info.clone(),
                        };
                        (e.sub.conn, member)
                    })
                    .collect();
                if !members.is_empty() {
                    out.push((name, members));
                }
            }
        }
        out
    }

    /// Every channel with its subscriber count, for listings.
    pub fn channels(&self, prefix: &str) -> Vec<(ChannelName, usize)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let snapshot: Vec<(ChannelName, Arc<Channel>)> = shard
                .read()
                .iter()
                .filter(|(name, _)| name.as_str().starts_with(prefix))
                .map(|(n, c)| (n.clone(), c.clone()))
                .collect();
            out.extend(snapshot.into_iter().map(|(name, chan)| {
                let count = chan.state.lock().entries.len();
                (name, count)
            }));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
