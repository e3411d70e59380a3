//! The receiving side: live frames from the bus to local subscribers,
//! never with a gap.
//!
//! One task owns a *track* per watched channel: the position of the last
//! publication it fanned out (its cursor), and frames held while it cannot
//! fan out yet. For each frame, in bus order:
//! 1. A channel being watched (`Starting`) holds its frames until the
//!    watcher hands over its position (`Start`): frames at or below it are
//!    in history, which its subscribers read anyway; later ones follow.
//! 2. Publications at or below the cursor are dropped (a heal delivered
//!    them already); the next offset is fanned out and moves the cursor.
//! 3. A publication beyond the next offset means the bus lost frames: the
//!    channel holds its frames (`Healing`), reads the missing offsets from
//!    history, fans them out (still skipping each one's excluded
//!    connection, which history keeps), then the held frames. Subscribers
//!    never see the gap. A long gap is read and fanned out a few hundred
//!    at a time, each read waiting until the subscribers' outboxes have
//!    room, so a heal never overflows a reader that keeps up.
//! 4. Only when history no longer holds them (trimmed), or the channel's
//!    epoch changed (the engine lost its stream), are the channel's local
//!    subscribers closed with "insufficient state": they reconnect and
//!    resubscribe with their position, which answers what is recoverable.
//! 5. When the bus comes back after a loss of link (`Resumed`), and every
//!    `position_check` anyway, each live channel's position is read from
//!    the store; a store ahead of the cursor is healed as in step 3.
//!
//! Ephemeral, join and leave frames have no offset: they are fanned out in
//! bus order, held with the rest while a channel waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use fanfare_cluster::BusEvent;
use fanfare_protocol::cluster::{LiveFrame, LivePublication};
use fanfare_protocol::native::Member;
use fanfare_protocol::{ChannelName, CloseCode, Stamp, StreamPosition};
use fanfare_store::{HistoryPage, HistoryQuery, StoreError};
use metrics::{Counter, counter};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::encode::{Encoded, Message};
use crate::hub::Shared;
use crate::outbox::CloseReason;
use crate::registry::{Fresh, Outgoing};

use super::load::{LINGER, LINGER_ENOUGH, Load};

/// Commands waiting for the receiver (from the watcher and from its own
/// store reads).
pub(crate) const COMMAND_QUEUE: usize = 65_536;

/// Frames a channel holds while it starts or heals; beyond this they are
/// dropped, and the gap they leave is healed like any other.
const HELD_FRAMES: usize = 4096;

/// The most publications one heal reads and fans out at once; a bigger
/// gap takes several reads. A quarter of the default outbox (1,024
/// frames), so a heal fits in the outboxes beside live traffic.
const HEAL_READ: usize = 256;

/// Before each heal read, the channel's subscribers get this long to make
/// room for it in their outboxes (their connections write what is
/// queued). A subscriber still full then is a slow consumer: the heal goes
/// on and overflows its outbox, as live traffic would.
const HEAL_ROOM_WAIT: Duration = Duration::from_secs(2);

/// Bus events taken at once: their publications of one channel are
/// fanned out together, so each subscriber's connection writes them in one
/// go, as a single node's pipeline does.
const EVENT_BATCH: usize = 64;

/// A failed heal read is retried after this long.
const HEAL_RETRY: Duration = Duration::from_millis(500);

pub(crate) enum Command {
    /// Step 1: the channel is being watched.
    Expect(ChannelName),
    /// Step 1: the channel is watched; its position right after.
    Start(ChannelName, StreamPosition),
    /// The channel is no longer watched.
    Forget(ChannelName),
    /// Step 3: a heal read finished.
    Healed(ChannelName, Result<HistoryPage, StoreError>),
    /// Step 5: a position check finished.
    Checked(ChannelName, Result<StreamPosition, StoreError>),
}

enum Track {
    Starting { held: Vec<LiveFrame> },
    Live { cursor: StreamPosition },
    Healing { cursor: StreamPosition, held: Vec<LiveFrame> },
}

struct Metrics {
    frames: Counter,
    malformed: Counter,
    gaps_healed: Counter,
    healed_publications: Counter,
    positions_lost: Counter,
}

impl Metrics {
    fn register() -> Self {
        Self {
            frames: counter!("fanfare_cluster_frames_total"),
            malformed: counter!("fanfare_cluster_malformed_frames_total"),
            gaps_healed: counter!("fanfare_cluster_gaps_healed_total"),
            healed_publications: counter!("fanfare_cluster_healed_publications_total"),
            positions_lost: counter!("fanfare_cluster_positions_lost_total"),
        }
    }
}

struct Receiver {
    shared: Arc<Shared>,
    tracks: HashMap<ChannelName, Track>,
    /// Publications checked and cached, to be fanned out at the end of
    /// the batch (or before anything else of their channel).
    outgoing: Vec<(ChannelName, fanfare_protocol::Epoch, Vec<LivePublication>)>,
    /// For the store reads it starts.
    commands: mpsc::Sender<Command>,
    /// How much [`Receiver::flush`] has been fanning out.
    load: Load,
    metrics: Metrics,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut events: mpsc::Receiver<BusEvent>,
    mut commands: mpsc::Receiver<Command>,
    commands_tx: mpsc::Sender<Command>,
) {
    let Some(cluster) = &shared.cluster else { return };
    let mut check = tokio::time::interval(cluster.options.position_check);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut receiver = Receiver {
        shared: shared.clone(),
        tracks: HashMap::new(),
        outgoing: Vec::new(),
        commands: commands_tx,
        load: Load::new(),
        metrics: Metrics::register(),
    };
    loop {
        // Commands first: an `Expect` is always queued before the frames
        // it must hold could exist.
        tokio::select! {
            biased;
            Some(command) = commands.recv() => receiver.on_command(command),
            event = events.recv() => match event {
                Some(event) => {
                    let busy = receiver.load.busy();
                    receiver.take(event, &mut events);
                    if busy {
                        linger(&mut receiver, &mut commands, &mut events).await;
                    }
                }
                None => break,
            },
            _ = check.tick() => receiver.check_positions(),
        }
        receiver.flush();
    }
}

/// Takes more events (and any command, which ends the wait) until
/// [`LINGER_ENOUGH`] publications are queued or [`LINGER`] has passed.
async fn linger(
    receiver: &mut Receiver,
    commands: &mut mpsc::Receiver<Command>,
    events: &mut mpsc::Receiver<BusEvent>,
) {
    let deadline = Instant::now() + LINGER;
    while (1..LINGER_ENOUGH).contains(&receiver.queued()) {
        tokio::select! {
            biased;
            Some(command) = commands.recv() => {
                receiver.on_command(command);
                return;
            }
            event = events.recv() => match event {
                Some(event) => receiver.take(event, events),
                None => return,
            },
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

impl Receiver {
    /// `event`, then up to [`EVENT_BATCH`] - 1 more that are ready.
    fn take(&mut self, event: BusEvent, events: &mut mpsc::Receiver<BusEvent>) {
        self.on_event(event);
        for _ in 1..EVENT_BATCH {
            let Ok(event) = events.try_recv() else { break };
            self.on_event(event);
        }
    }

    /// Publications queued for [`Receiver::flush`].
    fn queued(&self) -> usize {
        self.outgoing.iter().map(|(_, _, items)| items.len()).sum()
    }

    fn on_event(&mut self, event: BusEvent) {
        match event {
            BusEvent::Live { channel, frame } => self.on_live(channel, &frame),
            BusEvent::Control { message } => super::control::on_message(&self.shared, message),
            BusEvent::Down => {
                tracing::warn!("the cluster bus is down: live frames may be lost until it is back");
                self.set_bus_up(false);
            }
            BusEvent::Resumed => {
                tracing::info!("the cluster bus is back: checking every watched channel");
                self.set_bus_up(true);
                self.check_positions();
            }
        }
    }

    fn set_bus_up(&self, up: bool) {
        if let Some(cluster) = &self.shared.cluster {
            cluster.bus_up.store(up, Ordering::Relaxed);
        }
    }

    fn on_live(&mut self, channel: ChannelName, frame: &Bytes) {
        self.metrics.frames.increment(1);
        let frame = match LiveFrame::decode(frame) {
            Ok(frame) => frame,
            Err(error) => {
                self.metrics.malformed.increment(1);
                tracing::warn!(%channel, %error, "dropped a malformed live frame");
                return;
            }
        };
        self.on_frame(channel, frame);
    }

    fn on_command(&mut self, command: Command) {
        self.flush();
        match command {
            Command::Expect(channel) => {
                self.tracks.insert(channel, Track::Starting { held: Vec::new() });
            }
            Command::Start(channel, position) => {
                let Some(Track::Starting { held }) = self.tracks.remove(&channel) else { return };
                self.mirror(&channel, &position);
                self.tracks.insert(channel.clone(), Track::Live { cursor: position });
                self.replay(&channel, held);
            }
            Command::Forget(channel) => {
                self.tracks.remove(&channel);
                self.recent().forget(&channel);
            }
            Command::Healed(channel, page) => self.on_healed(channel, page),
            Command::Checked(channel, position) => self.on_checked(channel, position),
        }
    }

    /// Steps 1–3 for one frame.
    fn on_frame(&mut self, channel: ChannelName, frame: LiveFrame) {
        let Some(track) = self.tracks.get_mut(&channel) else { return };
        let cursor = match track {
            Track::Starting { held } | Track::Healing { held, .. } => {
                if held.len() < HELD_FRAMES {
                    held.push(frame);
                }
                return;
            }
            Track::Live { cursor } => cursor,
        };
        let LiveFrame::Publications { epoch, items } = frame else {
            self.flush();
            deliver_unordered(&self.shared, &channel, &frame);
            return;
        };
        if epoch != cursor.epoch {
            let last = items.last().map_or(0, |item| item.publication.offset);
            *cursor = StreamPosition::new(epoch, last);
            let cursor = cursor.clone();
            self.mirror(&channel, &cursor);
            self.lose(&channel, "the channel's epoch changed");
            return;
        }
        let fresh: Vec<LivePublication> =
            items.into_iter().filter(|item| item.publication.offset > cursor.offset).collect();
        let Some(first) = fresh.first() else { return };
        if first.publication.offset != cursor.offset + 1 {
            let cursor = cursor.clone();
            let held = vec![LiveFrame::Publications { epoch, items: fresh }];
            self.heal(channel, cursor, held);
            return;
        }
        cursor.offset = fresh.last().map_or(cursor.offset, |item| item.publication.offset);
        let epoch = cursor.epoch.clone();
        self.deliver(&channel, &epoch, fresh);
    }

    fn recent(&self) -> &super::recent::RecentCache {
        &self.shared.cluster.as_ref().expect("the receiver runs in a cluster").recent
    }

    /// The cache follows the cursor, always before any fan-out or close
    /// (`recent.rs` says why).
    fn mirror(&self, channel: &ChannelName, cursor: &StreamPosition) {
        let keep = (self.shared.policy)(channel).history.max_len;
        self.recent().start(channel, cursor.clone(), keep);
    }

    /// Caches consecutive publications after the cursor and queues them
    /// for fan-out ([`Receiver::flush`]).
    fn deliver(
        &mut self,
        channel: &ChannelName,
        epoch: &fanfare_protocol::Epoch,
        items: Vec<LivePublication>,
    ) {
        self.recent().push(channel, epoch, &items);
        match self.outgoing.iter_mut().find(|(c, e, _)| c == channel && e == epoch) {
            Some((_, _, queued)) => queued.extend(items),
            None => self.outgoing.push((channel.clone(), epoch.clone(), items)),
        }
    }

    /// Fans out what [`Receiver::deliver`] queued, each channel in one pass.
    fn flush(&mut self) {
        if self.outgoing.is_empty() {
            return;
        }
        let mut delivered = 0;
        for (channel, epoch, items) in std::mem::take(&mut self.outgoing) {
            delivered += deliver_publications(&self.shared, &channel, &epoch, &items);
        }
        self.load.record(delivered);
    }

    /// Feeds held frames through [`Receiver::on_frame`] again, in order.
    fn replay(&mut self, channel: &ChannelName, held: Vec<LiveFrame>) {
        for frame in held {
            self.on_frame(channel.clone(), frame);
        }
    }

    /// Step 3: holds the channel's frames and reads what is missing.
    fn heal(&mut self, channel: ChannelName, cursor: StreamPosition, held: Vec<LiveFrame>) {
        let since = cursor.offset;
        self.tracks.insert(channel.clone(), Track::Healing { cursor, held });
        self.read_after(channel, since, Duration::ZERO);
    }

    fn read_after(&self, channel: ChannelName, since: u64, delay: Duration) {
        let (shared, commands) = (self.shared.clone(), self.commands.clone());
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            wait_for_room(&shared, &channel, HEAL_READ).await;
            let retention = (shared.policy)(&channel).history;
            let query = HistoryQuery { since: Some(since), limit: HEAL_READ, reverse: false, retention };
            let page = shared.store.read(&channel, query).await;
            let _ = commands.send(Command::Healed(channel, page)).await;
        });
    }

    /// Step 3 (and 4) once the heal read is back.
    fn on_healed(&mut self, channel: ChannelName, page: Result<HistoryPage, StoreError>) {
        let Some(Track::Healing { cursor, held }) = self.tracks.remove(&channel) else { return };
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                tracing::debug!(%channel, %error, "heal read failed; retrying");
                let since = cursor.offset;
                self.tracks.insert(channel.clone(), Track::Healing { cursor, held });
                self.read_after(channel, since, HEAL_RETRY);
                return;
            }
        };
        let mut cursor = cursor;
        if page.epoch != cursor.epoch {
            cursor = StreamPosition::new(page.epoch.clone(), page.top_offset);
            self.mirror(&channel, &cursor);
            self.tracks.insert(channel.clone(), Track::Live { cursor });
            self.lose(&channel, "the channel's epoch changed");
            self.replay(&channel, held);
            return;
        }
        let contiguous = contiguous_after(cursor.offset, &page);
        let healed = !contiguous.is_empty();
        if healed {
            self.metrics.gaps_healed.increment(1);
            self.metrics.healed_publications.increment(contiguous.len() as u64);
            let epoch = cursor.epoch.clone();
            let last = contiguous.last().map_or(cursor.offset, |item| item.publication.offset);
            self.deliver(&channel, &epoch, contiguous);
            cursor.offset = last;
        }
        if healed && page.top_offset > cursor.offset {
            // More than one read holds: the next one waits for room.
            let since = cursor.offset;
            self.tracks.insert(channel.clone(), Track::Healing { cursor, held });
            self.read_after(channel, since, Duration::ZERO);
            return;
        }
        let lost = !healed && page.top_offset > cursor.offset;
        if lost {
            cursor.offset = page.top_offset;
            self.mirror(&channel, &cursor);
        }
        self.tracks.insert(channel.clone(), Track::Live { cursor });
        if lost {
            self.lose(&channel, "history no longer holds publications the bus lost");
        }
        self.replay(&channel, held);
    }

    /// Step 5 for one channel.
    fn on_checked(&mut self, channel: ChannelName, position: Result<StreamPosition, StoreError>) {
        let Ok(position) = position else { return };
        let Some(Track::Live { cursor }) = self.tracks.get(&channel) else { return };
        if position.epoch == cursor.epoch && position.offset <= cursor.offset {
            return;
        }
        let cursor = cursor.clone();
        self.heal(channel, cursor, Vec::new());
    }

    /// Step 5: reads the position of every live channel.
    fn check_positions(&mut self) {
        let mut orphans = Vec::new();
        for (channel, track) in &self.tracks {
            if !matches!(track, Track::Live { .. }) {
                continue;
            }
            if self.shared.registry.get(channel).is_none() {
                orphans.push(channel.clone());
                continue;
            }
            let (shared, commands, channel) = (self.shared.clone(), self.commands.clone(), channel.clone());
            tokio::spawn(async move {
                let position = shared.store.position(&channel).await;
                let _ = commands.send(Command::Checked(channel, position)).await;
            });
        }
        if let Some(cluster) = &self.shared.cluster {
            for channel in orphans {
                let _ = cluster.watcher.try_send(super::WatchCommand::Unwatch(channel));
            }
        }
    }

    /// Step 4: the channel's local subscribers must recover by themselves.
    fn lose(&mut self, channel: &ChannelName, why: &'static str) {
        self.flush();
        self.metrics.positions_lost.increment(1);
        let Some(chan) = self.shared.registry.get(channel) else { return };
        let state = chan.state.lock();
        tracing::warn!(%channel, subscribers = state.entries.len(), why, "closing subscribers: insufficient state");
        for entry in &state.entries {
            entry.sub.outbox.close(CloseReason::new(CloseCode::InsufficientState));
        }
    }
}

/// The publications of `page` (an ascending read) that continue `after`
/// without a gap, each with the connection its append excluded, as its
/// lost live frame would have carried it.
fn contiguous_after(after: u64, page: &HistoryPage) -> Vec<LivePublication> {
    let mut expected = after + 1;
    let mut exclusions = page.exclusions.iter().peekable();
    let mut out = Vec::new();
    for publication in &page.publications {
        // Both are ascending: skip exclusions of earlier offsets, take this one's.
        while exclusions.next_if(|e| e.offset < publication.offset).is_some() {}
        let exclude = exclusions.next_if(|e| e.offset == publication.offset).map_or(0, |e| e.conn);
        if publication.offset < expected {
            continue;
        }
        if publication.offset != expected {
            break;
        }
        expected += 1;
        out.push(LivePublication { publication: publication.clone(), exclude });
    }
    out
}

/// Waits (at most [`HEAL_ROOM_WAIT`]) until every local subscriber of
/// `channel` has room for `frames` more in its outbox.
async fn wait_for_room(shared: &Shared, channel: &ChannelName, frames: usize) {
    let Some(chan) = shared.registry.get(channel) else { return };
    let outboxes: Vec<_> = chan.state.lock().entries.iter().map(|entry| entry.sub.outbox.clone()).collect();
    drop(chan);
    let all = async {
        for outbox in &outboxes {
            outbox.wait_for_room(frames).await;
        }
    };
    if tokio::time::timeout(HEAL_ROOM_WAIT, all).await.is_err() {
        tracing::debug!(%channel, "a subscriber has no room for the heal: it goes on (a slow consumer overflows)");
    }
}

/// Fans out consecutive publications of one channel, encoded once each;
/// how many deliveries that made.
fn deliver_publications(
    shared: &Arc<Shared>,
    channel: &ChannelName,
    epoch: &fanfare_protocol::Epoch,
    items: &[LivePublication],
) -> u64 {
    let Some(chan) = shared.registry.get(channel) else { return 0 };
    let fresh: Vec<Fresh<'_>> = items
        .iter()
        .map(|item| Fresh {
            epoch,
            publication: &item.publication,
            except: (item.exclude != 0).then_some(item.exclude),
            accepted: Stamp::from_unix_ms(item.publication.time_ms),
        })
        .collect();
    let shaping = (shared.policy)(channel).shaping;
    let cap = shared.options.catch_up_buffer;
    let result = chan.state.lock().fan_out_publications(channel, &fresh, shaping.as_ref(), cap);
    crate::batch::after_fan_out(shared, &chan, channel, result);
    shared.metrics.publications_received.increment(items.len() as u64);
    result.fan_out.delivered
}

/// Fans out a frame without an offset: ephemeral, join, leave.
fn deliver_unordered(shared: &Shared, channel: &ChannelName, frame: &LiveFrame) {
    let Some(chan) = shared.registry.get(channel) else { return };
    let cap = shared.options.catch_up_buffer;
    let mut state = chan.state.lock();
    let result = match frame {
        LiveFrame::Ephemeral { exclude, time_ms, event, user, data } => {
            let message =
                Message::Ephemeral { time_ms: *time_ms, event: event.as_deref(), data, user: user.as_ref() };
            let except = (*exclude != 0).then_some(*exclude);
            let encoded = Encoded::new(channel, message).accepted_at(Stamp::from_unix_ms(*time_ms));
            // A shaped channel's held batch goes out with it, in the same write.
            let extra = Outgoing { offset: None, message: &encoded, except };
            state.flush_batch(channel, Some(extra), cap).fan_out
        }
        LiveFrame::Join { user, info } => {
            let member = Member { user: user.clone(), info: info.clone() };
            // The user's own connections know they joined.
            state.fan_out_except_user(&Encoded::new(channel, Message::Join(&member)), user.as_str(), cap)
        }
        LiveFrame::Leave { user } => {
            state.fan_out_except_user(&Encoded::new(channel, Message::Leave(user)), user.as_str(), cap)
        }
        LiveFrame::Publications { .. } => return,
    };
    shared.count_fan_out(channel, result);
}

#[cfg(test)]
mod tests {
    use fanfare_protocol::{Epoch, JsonData, Publication};

    use super::*;

    fn page(top: u64, offsets: &[u64]) -> HistoryPage {
        let data = JsonData::parse("1".into()).unwrap();
        let publications =
            offsets.iter().map(|&offset| Publication::new(offset, 0, None, data.clone())).collect();
        HistoryPage::new(Epoch::new("e"), top, publications)
    }

    fn offsets(items: &[LivePublication]) -> Vec<u64> {
        items.iter().map(|item| item.publication.offset).collect()
    }

    fn excluded(items: &[LivePublication]) -> Vec<(u64, u64)> {
        items.iter().map(|item| (item.publication.offset, item.exclude)).collect()
    }

    #[test]
    fn a_heal_takes_only_what_continues_the_cursor() {
        assert_eq!(offsets(&contiguous_after(3, &page(6, &[4, 5, 6]))), [4, 5, 6]);
        assert_eq!(offsets(&contiguous_after(3, &page(6, &[2, 3, 4, 5]))), [4, 5]);
        assert_eq!(offsets(&contiguous_after(3, &page(6, &[4, 6]))), [4], "stops at a hole");
        assert!(contiguous_after(3, &page(6, &[5, 6])).is_empty(), "4 was trimmed: lost");
    }

    #[test]
    fn a_healed_publication_keeps_the_connection_its_append_excluded() {
        let mut page = page(6, &[2, 3, 4, 5, 6]);
        page.exclusions = [(2, 7), (4, 42), (6, 9)]
            .into_iter()
            .map(|(offset, conn)| fanfare_store::Exclusion { offset, conn })
            .collect();
        assert_eq!(excluded(&contiguous_after(3, &page)), [(4, 42), (5, 0), (6, 9)]);
    }
}
