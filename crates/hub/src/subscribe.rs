//! Subscribing, with recovery from a position.
//!
//! The algorithm (`docs/protocol.md`, "Recovery"):
//! 1. Register the subscriber first, in catch-up mode: from this moment every
//!    live frame of the channel is held in its catch-up buffer, so nothing
//!    published meanwhile can be missed.
//! 2. Read the store: the channel's position and, when the client sent
//!    `since`, the publications after it. Anything committed before this
//!    read is in it; anything fanned out after step 1 is in the buffer.
//! 3. Queue the reply, then the missed publications, in the outbox.
//! 4. Release the buffer, dropping what step 3 already sent (by offset), and
//!    switch the subscription to live. From then on, fan-out skips offsets
//!    the read covered: a publication durable before the read may reach
//!    fan-out only after this step.
//!
//! Recovery succeeds only when the client's epoch is the channel's, its
//! offset is not ahead of the channel, the gap is within the namespace's
//! recovery limit, and history still holds every publication of the gap.
//! Otherwise the reply says `recovered: false` and nothing is replayed:
//! never a silent partial recovery.

use std::sync::Arc;

use fanfare_protocol::native::{Member, SubscribeResult};
use fanfare_protocol::{ChannelName, Frame, Publication, StreamPosition};
use fanfare_store::{HistoryPage, HistoryQuery};

use crate::encode::{Encoded, Message};
use crate::events::HubEvent;
use crate::hub::Hub;
use crate::options::ChannelOptions;
use crate::registry::{Attached, ChannelState, Entry, Held, Subscriber, held_frame};
use crate::shaping;
use crate::{HubError, Outbox};

/// A subscription to make.
pub struct Subscribe {
    pub subscriber: Subscriber,
    pub channel: ChannelName,
    /// The last position the client saw, to recover from.
    pub since: Option<StreamPosition>,
}

struct Plan {
    result: SubscribeResult,
    replay: Vec<Publication>,
    /// Live frames at or below this offset were covered by the read.
    covered_up_to: u64,
}

impl Hub {
    /// Subscribes and queues, in this order, the reply built by
    /// `encode_reply` (given the channel's members, this subscriber
    /// included, when presence is on), any recovered publications, then
    /// live ones.
    pub async fn subscribe(
        &self,
        request: Subscribe,
        encode_reply: impl FnOnce(&SubscribeResult, &[Member]) -> Frame,
    ) -> Result<SubscribeResult, HubError> {
        let Subscribe { subscriber, channel, since } = request;
        let options = self.channel_options(&channel);
        let (conn, protocol) = (subscriber.conn, subscriber.protocol);
        let outbox = subscriber.outbox.clone();
        let chan = self.attach_catching_up(&channel, subscriber)?;

        let planned = match self.watch(&channel).await {
            Ok(()) => self.plan_subscription(&channel, since.as_ref(), &options).await,
            Err(error) => Err(error),
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(error) => {
                let _ = self.unsubscribe(conn, &channel);
                return Err(error);
            }
        };
        let members = match (options.presence, self.shared.cluster.is_some()) {
            (false, _) => Vec::new(),
            (true, false) => self.join_presence(&mut chan.state.lock(), &channel, conn, options.join_leave),
            (true, true) => match self.join_cluster_presence(&chan, &channel, conn, options.join_leave).await
            {
                Ok(members) => members,
                Err(error) => {
                    let _ = self.unsubscribe(conn, &channel);
                    return Err(error);
                }
            },
        };
        self.count_recovery(plan.result.recovered);
        outbox.push_waiting(encode_reply(&plan.result, &members)).await;
        let replay = match (options.shaping, since.as_ref()) {
            (Some(shaping), Some(since)) => shaping::shape_replay(&shaping, since.offset, plan.replay),
            _ => plan.replay.into_iter().map(|publication| (publication, 0)).collect(),
        };
        // Where the subscription's first live delivery counts `skipped` from.
        let mut last_offset = match (since.as_ref(), plan.result.recovered) {
            (Some(since), Some(true)) => since.offset,
            _ => plan.covered_up_to,
        };
        for (publication, skipped) in &replay {
            let message = Message::Publication { epoch: &plan.result.epoch, publication };
            let encoded = Encoded::new(&channel, message);
            let encoded = if options.shaping.is_some() { encoded.shaped(*skipped) } else { encoded };
            outbox.push_waiting(encoded.frame(protocol).clone()).await;
            last_offset = publication.offset;
        }
        let release = Release { conn, covered_up_to: plan.covered_up_to, last_offset };
        release_catch_up(&mut chan.state.lock(), &channel, &outbox, release);
        Ok(plan.result)
    }

    /// Recovers from `since` a subscription that is already live but has
    /// been given nothing since it started (a Pusher connection that signs
    /// in after subscribing, then finds where its user left the channel):
    /// the same steps as [`Hub::subscribe`] on the existing entry, without
    /// a reply or presence. Returns the channel's epoch when the missed
    /// publications were queued, `None` (nothing queued, the subscription
    /// unchanged) when it has been given something already, when `since`
    /// is not behind its start, or when recovery refuses.
    pub async fn recover_in_place(
        &self,
        conn: crate::ConnId,
        channel: &ChannelName,
        since: &StreamPosition,
    ) -> Result<Option<fanfare_protocol::Epoch>, HubError> {
        let options = self.channel_options(channel);
        if options.shaping.is_some() {
            return Ok(None); // a shaped replay counts `skipped` from the subscribe; not worth it here
        }
        let Some(chan) = self.shared.registry.get(channel) else { return Ok(None) };
        let (start, protocol, outbox) = {
            let mut state = chan.state.lock();
            let Some(index) = state.position_of(conn) else { return Ok(None) };
            let entry = &mut state.entries[index];
            if entry.catch_up.is_some() || entry.covered != entry.skip_up_to || since.offset >= entry.covered
            {
                return Ok(None);
            }
            entry.catch_up = Some(Vec::new());
            (entry.covered, entry.sub.protocol, entry.sub.outbox.clone())
        };
        let plan = self.plan_subscription(channel, Some(since), &options).await;
        let recovered = matches!(&plan, Ok(plan) if plan.result.recovered == Some(true));
        let (replay, covered_up_to, epoch) = match plan {
            Ok(plan) if recovered => (plan.replay, plan.covered_up_to, Some(plan.result.epoch)),
            _ => (Vec::new(), start, None),
        };
        self.count_recovery(Some(recovered));
        let mut last_offset = since.offset;
        if let Some(epoch) = &epoch {
            for publication in &replay {
                let message = Message::Publication { epoch, publication };
                outbox.push_waiting(Encoded::new(channel, message).frame(protocol).clone()).await;
                last_offset = publication.offset;
            }
        }
        let last_offset = if epoch.is_some() { last_offset } else { start };
        let release = Release { conn, covered_up_to: covered_up_to.max(start), last_offset };
        release_catch_up(&mut chan.state.lock(), channel, &outbox, release);
        Ok(epoch)
    }

    fn attach_catching_up(
        &self,
        channel: &ChannelName,
        subscriber: Subscriber,
    ) -> Result<Arc<crate::registry::Channel>, HubError> {
        let entry = Entry::catching_up(subscriber);
        match self.shared.registry.attach(channel, entry) {
            Attached::AlreadySubscribed => Err(HubError::AlreadySubscribed),
            Attached::Added { channel: chan, created, count } => {
                self.shared.metrics.subscriptions.increment(1.0);
                if created {
                    self.shared.metrics.channels.increment(1.0);
                }
                if let Some(cluster) = &self.shared.cluster {
                    // Cluster-wide events come from the engine's answer.
                    cluster.occupancy.mark(channel);
                    return Ok(chan);
                }
                if created {
                    self.shared.events.emit(HubEvent::ChannelOccupied { channel: channel.clone() });
                }
                self.shared.events.emit(HubEvent::SubscriptionCount { channel: channel.clone(), count });
                Ok(chan)
            }
        }
    }

    async fn plan_subscription(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
        options: &ChannelOptions,
    ) -> Result<Plan, HubError> {
        if let Some(cluster) = &self.shared.cluster
            && let Some(recent) = cluster.recent.plan(channel, since, options.recovery_limit)
        {
            let covered_up_to = recent.position.offset;
            let recovered = since.map(|_| true);
            let result =
                SubscribeResult { epoch: recent.position.epoch, offset: recent.position.offset, recovered };
            return Ok(Plan { result, replay: recent.replay, covered_up_to });
        }
        let store = &self.shared.store;
        let Some(since) = since else {
            let position = store.position(channel).await?;
            let result = SubscribeResult { epoch: position.epoch, offset: position.offset, recovered: None };
            return Ok(Plan { covered_up_to: result.offset, result, replay: Vec::new() });
        };
        let limit = usize::try_from(options.recovery_limit.saturating_add(1)).unwrap_or(usize::MAX);
        let query =
            HistoryQuery { since: Some(since.offset), limit, reverse: false, retention: options.history };
        let started = std::time::Instant::now();
        let page = store.read(channel, query).await;
        self.shared.metrics.read_latency.record(started.elapsed().as_secs_f64());
        let page = page?;
        let recovered = can_recover(since, &page, options.recovery_limit);
        let covered_up_to =
            page.publications.last().map_or(page.top_offset, |p| p.offset.max(page.top_offset));
        // The page's exclusions do not apply to a replay: an exclusion names
        // a connection, and a resume comes from a new one (a new id). The
        // only subscribe that replays on the same connection, a Pusher cache
        // channel subscribed again, gets the channel's last event as a
        // single node gives it (memory and embedded keep no exclusions).
        let replay = if recovered { page.publications } else { Vec::new() };
        let result =
            SubscribeResult { epoch: page.epoch, offset: page.top_offset, recovered: Some(recovered) };
        Ok(Plan { result, replay, covered_up_to })
    }

    /// Counts the subscription in presence; the user's first connection
    /// announces a `join` to the others. Returns the members, this one
    /// included.
    fn join_presence(
        &self,
        state: &mut ChannelState,
        channel: &ChannelName,
        conn: u64,
        announce: bool,
    ) -> Vec<Member> {
        let Some(index) = state.position_of(conn) else { return state.presence.members() };
        let entry = &mut state.entries[index];
        if entry.sub.user.is_empty() {
            return state.presence.members();
        }
        entry.joined = true;
        let member = Member { user: entry.sub.user.clone(), info: entry.sub.info.clone() };
        let user = entry.sub.user.clone();
        if state.presence.join(&user, member.info.as_ref()) {
            self.shared
                .events
                .emit(HubEvent::MemberAdded { channel: channel.clone(), user: member.user.to_string() });
            if announce {
                let encoded = Encoded::new(channel, Message::Join(&member));
                let result = state.fan_out(None, &encoded, Some(conn), self.shared.options.catch_up_buffer);
                self.shared.count_fan_out(channel, result);
            }
        }
        state.presence.members()
    }

    /// In a cluster: makes sure this node receives the channel's live
    /// frames before history is read (`cluster/watch.rs`).
    async fn watch(&self, channel: &ChannelName) -> Result<(), HubError> {
        let Some(cluster) = &self.shared.cluster else { return Ok(()) };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let command = crate::cluster::WatchCommand::Watch(channel.clone(), reply);
        cluster.watcher.send(command).await.map_err(|_| HubError::ShuttingDown)?;
        answer.await.map_err(|_| HubError::ShuttingDown)?
    }

    /// [`Hub::join_presence`] in a cluster: the engine decides whether this
    /// is the user's first connection anywhere (`cluster/members.rs`).
    async fn join_cluster_presence(
        &self,
        chan: &crate::registry::Channel,
        channel: &ChannelName,
        conn: u64,
        announce: bool,
    ) -> Result<Vec<Member>, HubError> {
        let member = {
            let state = chan.state.lock();
            let Some(index) = state.position_of(conn) else { return Ok(Vec::new()) };
            let sub = &state.entries[index].sub;
            Member { user: sub.user.clone(), info: sub.info.clone() }
        };
        if member.user.is_empty() {
            return Ok(crate::cluster::members_of(&self.shared, channel).await?);
        }
        let members = crate::cluster::join(&self.shared, channel, &member, conn, announce).await?;
        let mut state = chan.state.lock();
        if let Some(index) = state.position_of(conn) {
            state.entries[index].joined = true;
        }
        Ok(members)
    }

    fn count_recovery(&self, recovered: Option<bool>) {
        match recovered {
            Some(true) => self.shared.metrics.recoveries.increment(1),
            Some(false) => self.shared.metrics.failed_recoveries.increment(1),
            None => {}
        }
    }
}

/// Whether `page` (read with `since` exclusive) holds exactly the
/// publications a client at `since` missed.
fn can_recover(since: &StreamPosition, page: &HistoryPage, recovery_limit: u64) -> bool {
    if since.epoch != page.epoch || since.offset > page.top_offset {
        return false;
    }
    let missed = page.top_offset - since.offset;
    if missed > recovery_limit {
        return false;
    }
    let wanted = page.publications.iter().take_while(|p| p.offset <= page.top_offset);
    let mut expected = since.offset + 1;
    for publication in wanted {
        if publication.offset != expected {
            return false;
        }
        expected += 1;
    }
    expected == page.top_offset + 1
}

/// What [`release_catch_up`] needs to know of the subscription.
struct Release {
    conn: u64,
    /// Live frames at or below this offset were covered by the read.
    covered_up_to: u64,
    /// The last offset the subscription got, or its position: a shaped
    /// channel's `skipped` counts from it.
    last_offset: u64,
}

/// Step 4: moves held live frames newer than the read into the outbox and
/// makes the subscription live, atomically with respect to fan-out. A
/// publication the read covered may still be on its way to fan-out (it was
/// durable before the read, and is fanned out after this): the entry
/// remembers `covered_up_to` so that it is not delivered twice.
fn release_catch_up(state: &mut ChannelState, channel: &ChannelName, outbox: &Outbox, release: Release) {
    let Some(index) = state.position_of(release.conn) else { return };
    let entry = &mut state.entries[index];
    let covered_up_to = release.covered_up_to;
    (entry.skip_up_to, entry.last_offset) = (covered_up_to, release.last_offset);
    entry.covered = covered_up_to;
    let held = entry.catch_up.take().unwrap_or_default();
    for held in held.into_iter().filter(|h| h.offset().is_none_or(|offset| offset > covered_up_to)) {
        entry.covered = entry.covered.max(held.offset().unwrap_or(0));
        let frame = match held {
            Held::Frame(_, frame) => frame,
            Held::Shaped(epoch, publication) => {
                held_frame(channel, &epoch, &publication, entry.sub.protocol, &mut entry.last_offset)
            }
        };
        outbox.push(frame);
    }
}

#[cfg(test)]
mod tests {
    use fanfare_protocol::{Epoch, JsonData};

    use super::*;

    fn page(epoch: &str, top: u64, offsets: &[u64]) -> HistoryPage {
        let data = JsonData::parse("1".into()).unwrap();
        let publications =
            offsets.iter().map(|&offset| Publication::new(offset, 0, None, data.clone())).collect();
        HistoryPage::new(Epoch::new(epoch), top, publications)
    }

    fn at(epoch: &str, offset: u64) -> StreamPosition {
        StreamPosition::new(Epoch::new(epoch), offset)
    }

    #[test]
    fn recovers_a_complete_gap_within_the_limit() {
        assert!(can_recover(&at("e", 3), &page("e", 6, &[4, 5, 6]), 10));
        assert!(can_recover(&at("e", 6), &page("e", 6, &[]), 10), "nothing missed");
    }

    #[test]
    fn refuses_another_epoch_a_future_offset_a_big_gap_or_a_trimmed_gap() {
        assert!(!can_recover(&at("old", 3), &page("e", 6, &[4, 5, 6]), 10));
        assert!(!can_recover(&at("e", 9), &page("e", 6, &[]), 10));
        assert!(!can_recover(&at("e", 3), &page("e", 6, &[4, 5, 6]), 2));
        assert!(!can_recover(&at("e", 3), &page("e", 6, &[5, 6]), 10), "4 was trimmed");
        assert!(!can_recover(&at("e", 3), &page("e", 6, &[4, 6]), 10));
    }
}
