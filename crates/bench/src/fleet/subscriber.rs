//! One subscriber: a task that owns its socket, decodes each frame in
//! place, and checks every delivery against its [`SeqTracker`].
//!
//! When its connection is lost (the server closed it, or the fleet cut
//! it) it reconnects as a real client does: attempt `n` waits a delay
//! drawn from `[c/2, c]`, `c = min(initial × 2^(n-1), max)`, then
//! resubscribes from the last position it holds, so the server replays
//! the gap (native; Pusher has no positions, so a gap there is lost).
//!
//! In the `live` scenario it is a viewer: a [`LiveTracker`] checks what a
//! shaped namespace sends (offset gaps against `skipped`, the priority
//! lane by its own sequence), and while the fleet says so it sends
//! `react` commands at its share of the reaction rate.
//!
//! In the `dm` scenario it is a user subscribed to its feed: a [`DmUser`]
//! writes messages in its direct channels at its share of the rate while
//! the fleet says so, checks each notice against the channel it names,
//! and catches up (`unread`, then `read`s) when told to.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::local::{Shared, bump};
use crate::dm_user::{DmReply, DmUser};
use crate::driver::nats::{self, StreamBuffer};
use crate::driver::{Incoming, Opened, Resume, SessionError, WebSocket, close, closed, send_text};
use crate::live_tracker::LiveTracker;
use crate::options::Scenario;
use crate::payload;
use crate::tracker::{Integrity, SeqTracker};

/// The ids of `react` commands start here (1 and 2 are the handshake's).
const FIRST_REACT_ID: u64 = 100;
/// What viewers react with, in turn.
const REACTIONS: [&str; 4] = ["👍", "❤️", "😂", "🎉"];

/// Orders from the fleet, read by every subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Control {
    /// Bumped to cut every connection at once.
    pub cut: u32,
    /// Targets are set: count yourself caught up once you have it all.
    pub draining: bool,
    /// `live`: send reactions.
    pub reacting: bool,
    /// `dm`: write messages; ask `unread`; mark read what it listed.
    pub chatting: bool,
    pub listing: bool,
    pub reading: bool,
    pub stop: bool,
}

pub(crate) struct Spec {
    /// Global index (over all workers).
    pub index: usize,
    pub channel: usize,
}

/// Why a session ended.
enum End {
    Stop,
    Cut,
    Lost(SessionError),
}

struct Subscriber {
    shared: Arc<Shared>,
    spec: Spec,
    tracker: SeqTracker,
    epoch: Option<String>,
    cuts_seen: u32,
    draining: bool,
    caught_up: bool,
    /// When the connection was cut, until the gap is recovered.
    cut_at: Option<Instant>,
    /// The offset a replay runs to, while it runs.
    replay_to: Option<u64>,
    /// NATS: the part of an operation a frame left unfinished.
    stream: StreamBuffer,
    /// The node it is connected to, an index going round the plan's
    /// nodes: the subscribers of one channel spread over all of them.
    node: usize,
    /// `live`: what this viewer saw, instead of `tracker`'s gap-free run.
    live: Option<LiveTracker>,
    /// `live` with reactions: when to send the next one.
    react_timer: Option<Interval>,
    reacting: bool,
    next_react_id: u64,
    /// `dm`: the user, its message timer, and which orders it followed.
    dm: Option<DmUser>,
    chat_timer: Option<Interval>,
    chatting: bool,
    listing_sent: bool,
    reads_sent: bool,
}

pub(crate) async fn run(shared: Arc<Shared>, spec: Spec, mut control: watch::Receiver<Control>) -> Integrity {
    let channel = shared.channels[spec.channel].clone();
    let source = shared.source_for(spec.index);
    let node = spec.index / shared.plan.channels.max(1);
    let opened = {
        let _slot = shared.connect_slots.acquire().await;
        shared.driver.open(source, &channel, None, (spec.index, node)).await
    };
    let (mut ws, opened) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            shared.errors.record(error.kind(), &error);
            bump(&shared.counters.connect_failed);
            shared.attempted.notify_waiters();
            return Integrity::default();
        }
    };
    bump(&shared.counters.connected);
    shared.attempted.notify_waiters();
    let cuts_seen = control.borrow().cut;
    let live = (shared.plan.options.scenario == Scenario::Live).then(|| LiveTracker::after(opened.after));
    let react_timer = live.as_ref().and_then(|_| react_timer(&shared));
    let is_dm = shared.plan.options.scenario == Scenario::Dm;
    let dm = is_dm.then(|| DmUser::new(&shared.plan.options, spec.index));
    let chat_timer = if is_dm { share_timer(&shared, shared.plan.options.rate) } else { None };
    let mut subscriber = Subscriber {
        dm,
        chat_timer,
        chatting: false,
        listing_sent: false,
        reads_sent: false,
        live,
        react_timer,
        reacting: false,
        next_react_id: FIRST_REACT_ID,
        tracker: SeqTracker::after(opened.after),
        epoch: opened.epoch,
        shared,
        spec,
        cuts_seen,
        draining: false,
        caught_up: false,
        cut_at: None,
        replay_to: None,
        stream: StreamBuffer::default(),
        node,
    };
    if let Err(error) = subscriber.on_bytes(&mut ws, &opened.pending).await {
        subscriber.shared.errors.record(error.kind(), &error);
    }
    loop {
        match subscriber.read(&mut ws, &mut control).await {
            End::Stop => {
                close(ws).await;
                break;
            }
            End::Cut => {
                crate::driver::abort(ws);
                subscriber.cut_at = Some(Instant::now());
            }
            End::Lost(error) => subscriber.shared.errors.record(error.kind(), &error),
        }
        bump(&subscriber.shared.counters.reconnects);
        match subscriber.reconnect(&channel, &mut control).await {
            Some((new_ws, pending)) => {
                ws = new_ws;
                if let Err(error) = subscriber.on_bytes(&mut ws, &pending).await {
                    subscriber.shared.errors.record(error.kind(), &error);
                }
            }
            None => break,
        }
    }
    subscriber.finish()
}

impl Subscriber {
    /// Reads until the fleet says stop or cut, or the connection dies.
    async fn read(&mut self, ws: &mut WebSocket, control: &mut watch::Receiver<Control>) -> End {
        // Orders that came while it was reconnecting.
        let orders = *control.borrow();
        if let Err(error) = self.follow_dm(ws, orders).await {
            return End::Lost(error);
        }
        loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) if self.shared.driver.is_stream() => {
                        if let Err(error) = self.on_bytes(ws, text.as_bytes()).await {
                            return End::Lost(error);
                        }
                    }
                    Some(Ok(Message::Text(text))) => {
                        if let Some(answer) = self.on_text(&text)
                            && let Err(error) = send_text(ws, answer.to_string()).await
                        {
                            return End::Lost(error);
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) if self.shared.driver.is_stream() => {
                        if let Err(error) = self.on_bytes(ws, &bytes).await {
                            return End::Lost(error);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => return End::Lost(closed(frame)),
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return End::Lost(error.into()),
                    None => return End::Lost(SessionError::Closed { code: 1006, reason: String::new() }),
                },
                () = next_tick(&mut self.react_timer), if self.reacting => {
                    if let Err(error) = self.react(ws).await {
                        return End::Lost(error);
                    }
                }
                () = next_tick(&mut self.chat_timer), if self.chatting => {
                    if let Err(error) = self.write_message(ws).await {
                        return End::Lost(error);
                    }
                }
                changed = control.changed() => {
                    if changed.is_err() {
                        return End::Stop;
                    }
                    let orders = *control.borrow_and_update();
                    if orders.stop {
                        return End::Stop;
                    }
                    if orders.draining && !self.draining {
                        self.draining = true;
                        self.check_caught_up();
                    }
                    self.reacting = orders.reacting;
                    if let Err(error) = self.follow_dm(ws, orders).await {
                        return End::Lost(error);
                    }
                    if orders.cut != self.cuts_seen {
                        self.cuts_seen = orders.cut;
                        return End::Cut;
                    }
                }
            }
        }
    }

    /// Handles one frame; returns a frame to send back, if any.
    fn on_text(&mut self, text: &str) -> Option<&'static str> {
        let incoming = self.shared.driver.decode(text);
        if incoming == Incoming::Unreadable {
            self.shared.errors.record("protocol", text.chars().take(120).collect::<String>());
        }
        self.on_incoming(incoming)
    }

    /// Handles a piece of a NATS byte stream: every operation it completes.
    async fn on_bytes(&mut self, ws: &mut WebSocket, bytes: &[u8]) -> Result<(), SessionError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut stream = std::mem::take(&mut self.stream);
        let (mut pings, mut refused) = (0, None);
        let parsed = stream.feed(bytes, |op| match op {
            nats::Op::Msg { payload, .. } => {
                self.on_incoming(nats::delivery(payload));
            }
            nats::Op::Ping => pings += 1,
            nats::Op::Err(error) => refused = Some(error.to_string()),
            _ => {}
        });
        self.stream = stream;
        parsed.map_err(|error| SessionError::Unexpected(error.to_string()))?;
        if let Some(error) = refused {
            // The server closes the connection after most errors; say why.
            self.shared.errors.record("nats -ERR", error);
        }
        for _ in 0..pings {
            nats::send_bytes(ws, nats::PONG).await?;
        }
        Ok(())
    }

    /// Handles what one message means; returns a frame to send back, if any.
    fn on_incoming(&mut self, incoming: Incoming<'_>) -> Option<&'static str> {
        match incoming {
            Incoming::Delivery { key, epoch, payload, shaping } => {
                if let (Some(held), Some(epoch)) = (&self.epoch, epoch)
                    && held != epoch
                {
                    self.shared.errors.record("epoch changed", format!("{held} → {epoch}"));
                    self.epoch = Some(epoch.to_string());
                }
                let priority = match &mut self.live {
                    Some(live) => live.observe(key, shaping, payload),
                    None => {
                        self.tracker.observe(key);
                        false
                    }
                };
                let latency = payload.map(|p| payload::age_us(p.sent_us));
                if latency.is_none() {
                    bump(&self.shared.counters.foreign);
                }
                self.shared.stats.record(self.spec.index, latency, priority);
                self.check_recovered();
                self.check_caught_up();
                None
            }
            Incoming::Notice { key, epoch, about } => {
                if let Some(held) = &self.epoch
                    && held != epoch
                {
                    self.shared.errors.record("epoch changed", format!("{held} → {epoch}"));
                    self.epoch = Some(epoch.to_string());
                }
                self.tracker.observe(key);
                if let Some(dm) = &mut self.dm {
                    dm.on_notice(&about);
                }
                let latency = about.payload.map(|p| payload::age_us(p.sent_us));
                if latency.is_none() {
                    bump(&self.shared.counters.foreign);
                }
                self.shared.stats.record(self.spec.index, latency, false);
                self.check_recovered();
                self.check_caught_up();
                None
            }
            Incoming::Reply { id, error, result } if self.dm.is_some() => {
                self.on_dm_reply(id, error, result);
                None
            }
            Incoming::Reactions { total } => {
                if let Some(live) = &mut self.live {
                    live.reactions(total);
                    self.shared.stats.record(self.spec.index, None, false);
                }
                None
            }
            Incoming::Reply { id, error, .. } => {
                if let Some(live) = self.live.as_mut().filter(|_| id >= FIRST_REACT_ID) {
                    match error {
                        None => live.reactions_acked += 1,
                        Some(error) => {
                            live.reactions_refused += 1;
                            self.shared.errors.record("react refused", error);
                        }
                    }
                }
                None
            }
            Incoming::Answer(answer) => Some(answer),
            Incoming::Disconnect { .. } | Incoming::Ignore | Incoming::Unreadable => None,
        }
    }

    /// Sends one `react` command (`live`).
    async fn react(&mut self, ws: &mut WebSocket) -> Result<(), SessionError> {
        let Some(live) = &mut self.live else { return Ok(()) };
        let id = self.next_react_id;
        self.next_react_id += 1;
        let reaction = REACTIONS[(self.spec.index + id as usize) % REACTIONS.len()];
        let channel = &self.shared.channels[self.spec.channel];
        let command =
            serde_json::json!({"id": id, "type": "react", "channel": channel, "reaction": reaction});
        live.reactions_sent += 1;
        send_text(ws, command.to_string()).await
    }

    /// `dm`: one message in the next channel it starts.
    async fn write_message(&mut self, ws: &mut WebSocket) -> Result<(), SessionError> {
        let size = self.shared.plan.options.size;
        let Some(command) = self.dm.as_mut().and_then(|dm| dm.next_message(size)) else { return Ok(()) };
        send_text(ws, command).await
    }

    /// `dm`: follows the fleet's orders — write while `chatting`; ask
    /// `unread` once when `listing`; send every `read` at once (one socket
    /// write) when `reading`.
    async fn follow_dm(&mut self, ws: &mut WebSocket, orders: Control) -> Result<(), SessionError> {
        let Some(dm) = &mut self.dm else { return Ok(()) };
        if orders.chatting && !self.chatting {
            // A timer that ran while idle would fire at once for every
            // user: start its period now.
            self.chat_timer = share_timer(&self.shared, self.shared.plan.options.rate);
        }
        self.chatting = orders.chatting;
        if orders.listing && !self.listing_sent {
            self.listing_sent = true;
            send_text(ws, dm.unread_command()).await?;
        }
        if orders.reading && !self.reads_sent {
            self.reads_sent = true;
            let reads = dm.read_commands();
            self.shared
                .counters
                .reads_sent
                .fetch_add(reads.len() as u64, std::sync::atomic::Ordering::Relaxed);
            bump(&self.shared.counters.readers);
            for read in reads {
                ws.feed(Message::text(read)).await?;
            }
            ws.flush().await?;
        }
        Ok(())
    }

    fn on_dm_reply(&mut self, id: u64, error: Option<&str>, result: Option<&str>) {
        let Some(dm) = &mut self.dm else { return };
        let counters = &self.shared.counters;
        match dm.on_reply(id, error, result) {
            DmReply::Acked => bump(&counters.messages_acked),
            DmReply::Refused => {
                bump(&counters.messages_failed);
                self.shared.errors.record("publish refused", error.unwrap_or_default());
            }
            DmReply::Listed(_) => bump(&counters.listed),
            DmReply::ListRefused => {
                bump(&counters.listed);
                self.shared.errors.record("unread refused", error.or(result).unwrap_or_default());
            }
            DmReply::Read { .. } => bump(&counters.reads_answered),
            DmReply::ReadRefused => {
                bump(&counters.reads_answered);
                self.shared.errors.record("read refused", error.or(result).unwrap_or_default());
            }
            DmReply::NotOurs => {}
        }
    }

    /// The last position received: where a reconnect resumes.
    fn position(&self) -> u64 {
        self.live.as_ref().map_or(self.tracker.last(), LiveTracker::last)
    }

    /// Whether everything up to `target` has come (`live`: the stream got
    /// that far; sampled-out publications never come).
    fn has_through(&self, target: u64) -> bool {
        match &self.live {
            Some(live) => live.last() >= target,
            None => self.tracker.complete_through(target),
        }
    }

    /// Reconnects with backoff until it works or the fleet says stop; the
    /// new socket, and (NATS) what its handshake read past its end.
    async fn reconnect(
        &mut self,
        channel: &str,
        control: &mut watch::Receiver<Control>,
    ) -> Option<(WebSocket, Vec<u8>)> {
        let options = &self.shared.plan.options;
        let (initial, max) = (options.backoff_initial, options.backoff_max);
        let source = self.shared.source_for(self.spec.index);
        for attempt in 1u32.. {
            let delay = backoff(attempt, initial, max);
            let opening = async {
                tokio::time::sleep(delay).await;
                bump(&self.shared.counters.reconnect_attempts);
                let resume = self.epoch.clone().map(|epoch| Resume { epoch, offset: self.position() });
                // In a cluster every reconnect goes to the next node.
                self.node += 1;
                self.shared.driver.open(source, channel, resume, (self.spec.index, self.node)).await
            };
            let stopped = async {
                while control.changed().await.is_ok() {
                    if control.borrow_and_update().stop {
                        return;
                    }
                }
            };
            let outcome = tokio::select! {
                outcome = opening => outcome,
                () = stopped => return None,
            };
            match outcome {
                Ok((ws, mut opened)) => {
                    // Orders read while reconnecting were consumed above.
                    let orders = *control.borrow();
                    self.cuts_seen = orders.cut;
                    self.draining |= orders.draining;
                    // A half-read operation of the old socket never ends.
                    self.stream = StreamBuffer::default();
                    let pending = std::mem::take(&mut opened.pending);
                    self.resubscribed(opened);
                    return Some((ws, pending));
                }
                Err(error) => self.shared.errors.record(error.kind(), &error),
            }
        }
        None
    }

    fn resubscribed(&mut self, opened: Opened) {
        if let (Some(held), Some(epoch)) = (&self.epoch, &opened.epoch)
            && held != epoch
        {
            self.shared.errors.record("epoch changed", format!("{held} → {epoch}"));
            self.epoch = Some(epoch.clone());
        }
        match opened.recovered {
            Some(true) => self.replay_to = Some(opened.top),
            Some(false) => {
                bump(&self.shared.counters.recovered_false);
                match &mut self.live {
                    Some(live) => live.lost_up_to(opened.top),
                    None => self.tracker.skip_to(opened.top + 1),
                }
                self.replay_to = Some(opened.top);
            }
            // No positions (Pusher, NATS): whatever was missed is lost.
            None => self.replay_to = Some(self.position()),
        }
        self.check_recovered();
        self.check_caught_up();
    }

    fn check_recovered(&mut self) {
        let Some(replay_to) = self.replay_to else { return };
        if !self.has_through(replay_to) {
            return;
        }
        self.replay_to = None;
        if let Some(cut_at) = self.cut_at.take() {
            let micros = u64::try_from(cut_at.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.shared.recovery.lock().record(micros);
            bump(&self.shared.counters.recovered);
        }
    }

    fn check_caught_up(&mut self) {
        if !self.draining || self.caught_up {
            return;
        }
        let Some(target) = self.shared.target(self.spec.channel) else { return };
        if self.has_through(target) {
            self.caught_up = true;
            bump(&self.shared.counters.caught_up);
        }
    }

    fn finish(self) -> Integrity {
        if let Some(dm) = self.dm {
            self.shared.dm.lock().add(&dm.finish());
        }
        if let Some(live) = self.live {
            self.shared.live.lock().add(&live.finish());
            return Integrity::default();
        }
        let target = self.shared.target(self.spec.channel).unwrap_or(self.tracker.last());
        self.tracker.finish(target)
    }
}

/// This viewer's reaction timer: its share of the reaction rate (every
/// `viewers / rate` seconds), first at a random point of the period so
/// that the viewers' reactions spread evenly; `None` without reactions.
fn react_timer(shared: &Shared) -> Option<Interval> {
    share_timer(shared, shared.plan.options.live.reaction_rate)
}

/// A timer for this connection's share of `rate` per second over all
/// connections (`dm`: the users' messages), first at a random point of
/// its period; `None` for a rate of 0.
fn share_timer(shared: &Shared, rate: f64) -> Option<Interval> {
    let options = &shared.plan.options;
    if rate <= 0.0 {
        return None;
    }
    let period = Duration::from_secs_f64(options.connections as f64 / rate);
    let first = period.mul_f64(rand::random::<f64>());
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Some(timer)
}

/// The timer's next tick; never, without one.
async fn next_tick(timer: &mut Option<Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Attempt `n` (from 1) waits a delay drawn from `[c/2, c]`, where
/// `c = min(initial × 2^(n-1), max)`.
pub(crate) fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let ceiling = initial.saturating_mul(1 << attempt.saturating_sub(1).min(20)).min(max);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::random_range(micros / 2..=micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling_with_jitter_in_the_upper_half() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..200 {
            let first = backoff(1, initial, max);
            assert!((Duration::from_millis(50)..=initial).contains(&first), "{first:?}");
            let third = backoff(3, initial, max);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third), "{third:?}");
            let late = backoff(40, initial, max);
            assert!((Duration::from_millis(500)..=max).contains(&late), "{late:?}");
        }
    }
}
