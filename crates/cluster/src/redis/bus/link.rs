//! The task that owns the pub/sub connection ([`Link::run`]).
//!
//! 1. **Connect**: TCP, `AUTH` if the URL has a password, `CLIENT SETNAME`;
//!    all within `ping_timeout`.
//! 2. **Open the subscriptions**: a `SUBSCRIBE` of the control channels,
//!    then of the watched channels (512 a command). Replies come in
//!    request order, so every request waits in a FIFO (`session::Expect`)
//!    for its confirmation. Redis refuses a command whole (an ACL denying
//!    one channel): its channels are then asked for one by one, and only
//!    those refused again are dropped (their waiters get `Refused`).
//! 3. **Serve** until the link is dead: read replies (messages go to the
//!    event queue; while it is full the task stops reading), run commands
//!    from the handle (`SUBSCRIBE`/`UNSUBSCRIBE` one channel), `PING`
//!    every `ping_interval`. When the opening subscriptions are all
//!    confirmed the link is *up* ([`BusEvent::Resumed`] unless it is the
//!    first connection).
//! 4. **Dead link**: end of stream, a read or write error, a reply that
//!    makes no sense, or silence: something awaited and nothing heard for
//!    `ping_timeout` while the task was reading. A wedged re-subscription
//!    is silence too, so it cannot stay green. Report
//!    [`BusEvent::Down`] once, mark every watch unconfirmed, wait a backoff
//!    (100 ms doubling to 5 s, jittered) while still taking commands, and
//!    go back to 1.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fanfare_protocol::cluster::channel_of_live;
use metrics::{Counter, Gauge, counter, gauge};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until};

use super::backoff::Backoff;
use super::resp::{Reply, command, take_reply};
use super::session::{Expect, Incoming, LinkError, Session, Target, sort};
use super::{BACKEND, RedisBusOptions};
use crate::{BusEvent, ClusterError};

/// Channels per `SUBSCRIBE` when a connection opens, to keep commands small.
const SUBSCRIBE_CHUNK: usize = 512;

/// What the handle asks of the task. Names are pub/sub channel names.
pub(super) enum Command {
    Watch { name: String, reply: Waiter },
    Unwatch { name: String, reply: Waiter },
}

/// Answers a command once Redis confirmed it (or refused it).
pub(super) type Waiter = oneshot::Sender<Result<(), ClusterError>>;

/// The state of one watched channel's subscription on the current
/// connection.
enum Watch {
    Confirmed,
    /// `SUBSCRIBE` sent as request `generation` (0: not sent on this
    /// connection yet); `waiters` are answered by that request's reply.
    Pending {
        generation: u64,
        waiters: Vec<Waiter>,
    },
}

struct Metrics {
    reconnects: Counter,
    up: Gauge,
    received: Counter,
    ignored: Counter,
}

/// The task's state, kept across connections.
pub(super) struct Link {
    target: Target,
    options: RedisBusOptions,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<BusEvent>,
    /// Resolves (with an error) when the handle is dropped.
    shutdown: oneshot::Receiver<()>,
    /// Read by `is_up()`.
    up_flag: Arc<AtomicBool>,
    /// Whether the link is up: set when the opening subscriptions are
    /// confirmed, cleared (and `Down` reported) when it dies.
    up: bool,
    /// Told once, when the first connection is up or has failed.
    opened: Option<oneshot::Sender<Result<(), ClusterError>>>,
    /// `fanfare:node:<id>` and `fanfare:nodes`.
    control: [String; 2],
    /// Every channel the hub watches, by pub/sub name.
    watches: HashMap<String, Watch>,
    generations: u64,
    /// Channels to subscribe one by one, after a refused `SUBSCRIBE` of several.
    retry: Vec<(String, bool)>,
    backoff: Backoff,
    metrics: Metrics,
}

/// How a connection ended.
enum End {
    Dead(LinkError),
    Shutdown,
}

/// What the handle and the task share.
pub(super) struct Channels {
    pub commands: mpsc::Receiver<Command>,
    pub events: mpsc::Sender<BusEvent>,
    pub shutdown: oneshot::Receiver<()>,
    pub opened: oneshot::Sender<Result<(), ClusterError>>,
    pub up: Arc<AtomicBool>,
}

/// A task that ends (the handle dropped, or a panic) leaves nothing
/// looking healthy.
impl Drop for Link {
    fn drop(&mut self) {
        self.up_flag.store(false, Ordering::Release);
        self.metrics.up.set(0.0);
    }
}

impl Link {
    pub(super) fn new(
        target: Target,
        control: [String; 2],
        options: RedisBusOptions,
        channels: Channels,
    ) -> Self {
        let backoff = Backoff::new(options.reconnect_min, options.reconnect_max);
        Self {
            target,
            options,
            commands: channels.commands,
            events: channels.events,
            shutdown: channels.shutdown,
            up_flag: channels.up,
            up: false,
            opened: Some(channels.opened),
            control,
            watches: HashMap::new(),
            generations: 0,
            retry: Vec::new(),
            backoff,
            metrics: Metrics {
                reconnects: counter!("fanfare_redis_reconnects_total", "engine" => "bus"),
                up: gauge!("fanfare_bus_up"),
                received: counter!("fanfare_bus_frames_received_total"),
                ignored: counter!("fanfare_bus_frames_ignored_total"),
            },
        }
    }

    /// Runs until the handle is dropped (or the first connection fails).
    pub(super) async fn run(mut self) {
        loop {
            let dead = match Session::connect(&self.target, &self.options).await {
                Ok(mut session) => match self.serve(&mut session).await {
                    End::Shutdown => return,
                    End::Dead(error) => Some((error, session)),
                },
                Err(error) => {
                    tracing::debug!(%error, "the bus could not connect to Redis");
                    if let Some(opened) = self.opened.take() {
                        let _ = opened.send(Err(error.into_cluster_error()));
                        return;
                    }
                    None
                }
            };
            if let Some((error, session)) = dead {
                if let Some(opened) = self.opened.take() {
                    let _ = opened.send(Err(error.into_cluster_error()));
                    return;
                }
                if !self.down(error, session).await {
                    return;
                }
            }
            let delay = self.backoff.next();
            if !self.idle(delay).await {
                return;
            }
        }
    }

    // --- 2. open the subscriptions ---

    async fn open_subscriptions(&mut self, session: &mut Session) -> Result<(), LinkError> {
        // The control channels in a command of their own: a refused watch
        // must not take them down with it.
        self.subscribe(session, &self.control.clone(), true).await?;
        let mut names = Vec::with_capacity(self.watches.len());
        for (name, watch) in &mut self.watches {
            self.generations += 1;
            let waiters = match std::mem::replace(watch, Watch::Confirmed) {
                Watch::Pending { waiters, .. } => waiters,
                Watch::Confirmed => Vec::new(),
            };
            *watch = Watch::Pending { generation: self.generations, waiters };
            names.push(name.clone());
        }
        for chunk in names.chunks(SUBSCRIBE_CHUNK) {
            self.subscribe(session, chunk, true).await?;
        }
        Ok(())
    }

    /// One `SUBSCRIBE` of `names`; each waits for its confirmation with
    /// the generation its watch has now.
    async fn subscribe(
        &self,
        session: &mut Session,
        names: &[String],
        opening: bool,
    ) -> Result<(), LinkError> {
        if opening {
            session.opening += names.len();
        }
        let mut parts: Vec<&[u8]> = vec![b"SUBSCRIBE"];
        parts.extend(names.iter().map(|name| name.as_bytes()));
        let expects = names.iter().enumerate().map(|(at, name)| {
            let generation = match self.watches.get(name) {
                Some(Watch::Pending { generation, .. }) => *generation,
                _ => 0,
            };
            Expect::Subscribe { name: name.clone(), generation, opening, then: names.len() - at - 1 }
        });
        session.send(&command(&parts), expects, self.options.ping_timeout).await
    }

    /// Channels of a refused multi-channel `SUBSCRIBE`, asked for again one
    /// by one so that only those Redis refuses are dropped.
    async fn subscribe_refused_one_by_one(&mut self, session: &mut Session) -> Result<(), LinkError> {
        for (name, opening) in std::mem::take(&mut self.retry) {
            if self.watches.contains_key(&name) {
                self.subscribe(session, std::slice::from_ref(&name), opening).await?;
            }
        }
        Ok(())
    }

    // --- 3. serve ---

    async fn serve(&mut self, session: &mut Session) -> End {
        if let Err(error) = self.open_subscriptions(session).await {
            return End::Dead(error);
        }
        loop {
            if let Err(error) = self.drain(session) {
                return End::Dead(error);
            }
            if !self.retry.is_empty()
                && let Err(error) = self.subscribe_refused_one_by_one(session).await
            {
                return End::Dead(error);
            }
            let silence_limit = session.silence_deadline(self.options.ping_timeout);
            let timer = silence_limit.map_or(session.next_ping, |limit| limit.min(session.next_ping));
            let reading = session.held.is_empty();
            let events = &self.events;
            let step = tokio::select! {
                biased;
                _ = &mut self.shutdown => return End::Shutdown,
                command = self.commands.recv() => match command {
                    Some(command) => self.command(session, command).await,
                    None => return End::Shutdown,
                },
                room = async { events.reserve().await.is_ok() }, if !reading => {
                    session.release_held(&self.events, room);
                    Ok(())
                }
                read = session.read(), if reading => match read {
                    Ok(0) => Err(LinkError::Closed),
                    Ok(_) => {
                        session.last_heard = Instant::now();
                        Ok(())
                    }
                    Err(error) => Err(error.into()),
                },
                () = sleep_until(timer) => self.tick(session, silence_limit).await,
            };
            if let Err(error) = step {
                return End::Dead(error);
            }
        }
    }

    /// Handles every complete reply in the buffer, unless the queue is full.
    fn drain(&mut self, session: &mut Session) -> Result<(), LinkError> {
        while session.held.is_empty() {
            let Some(reply) = take_reply(&mut session.buf)? else { break };
            self.reply(session, reply)?;
        }
        if session.opening == 0 && !self.up {
            self.come_up(session);
        }
        Ok(())
    }

    fn reply(&mut self, session: &mut Session, reply: Reply) -> Result<(), LinkError> {
        match sort(reply)? {
            Incoming::Message { channel, payload } => self.message(session, &channel, payload),
            Incoming::Subscribed(name) => match session.pop() {
                Some(Expect::Subscribe { name: expected, generation, opening, .. })
                    if expected.as_bytes() == name =>
                {
                    session.opening -= usize::from(opening);
                    self.confirmed(&expected, generation);
                }
                _ => return Err(LinkError::OutOfStep("a subscribe confirmation")),
            },
            Incoming::Unsubscribed(name) => match session.pop() {
                Some(Expect::Unsubscribe { name: expected, reply }) if expected.as_bytes() == name => {
                    let _ = reply.send(Ok(()));
                }
                _ => return Err(LinkError::OutOfStep("an unsubscribe confirmation")),
            },
            Incoming::Pong => match session.pop() {
                Some(Expect::Pong) => session.pong_due = false,
                _ => return Err(LinkError::OutOfStep("a pong")),
            },
            Incoming::Error(text) => self.refused(session, text)?,
        }
        Ok(())
    }

    fn message(&mut self, session: &mut Session, channel: &[u8], payload: Bytes) {
        let event = if self.control.iter().any(|name| name.as_bytes() == channel) {
            BusEvent::Control { message: payload }
        } else if let Some(channel) = std::str::from_utf8(channel).ok().and_then(channel_of_live) {
            self.metrics.received.increment(1);
            BusEvent::Live { channel, frame: payload }
        } else {
            self.metrics.ignored.increment(1);
            tracing::debug!(channel = %String::from_utf8_lossy(channel), "a message on no channel of ours");
            return;
        };
        self.deliver(session, event);
    }

    fn confirmed(&mut self, name: &str, generation: u64) {
        let Some(watch) = self.watches.get_mut(name) else { return };
        // A reply to an older request (the channel was unwatched and
        // watched again since) leaves the newer one waiting for its own.
        if matches!(watch, Watch::Pending { generation: pending, .. } if *pending == generation)
            && let Watch::Pending { waiters, .. } = std::mem::replace(watch, Watch::Confirmed)
        {
            answer(waiters, || Ok(()));
        }
    }

    /// An error reply: it answers the oldest request, all of it.
    fn refused(&mut self, session: &mut Session, text: String) -> Result<(), LinkError> {
        match session.pop() {
            Some(Expect::Subscribe { name, generation, opening, then }) => {
                let mut refused = vec![(name, generation, opening)];
                for _ in 0..then {
                    match session.pop() {
                        Some(Expect::Subscribe { name, generation, opening, .. }) => {
                            refused.push((name, generation, opening))
                        }
                        _ => return Err(LinkError::OutOfStep("a refused subscribe")),
                    }
                }
                let several = refused.len() > 1;
                for (name, generation, opening) in refused {
                    if self.control.contains(&name) {
                        // Without its control channels the node is deaf: not up.
                        return Err(LinkError::Refused(text));
                    }
                    session.opening -= usize::from(opening);
                    if several {
                        self.retry.push((name, opening));
                    } else {
                        self.refuse_watch(&name, generation, &text);
                    }
                }
                Ok(())
            }
            Some(Expect::Unsubscribe { reply, .. }) => {
                let _ = reply.send(Err(refusal(&text)));
                Ok(())
            }
            Some(Expect::Pong) | None => Err(LinkError::Refused(text)),
        }
    }

    /// Drops a watch Redis refused (an ACL, say), telling its waiters.
    fn refuse_watch(&mut self, name: &str, generation: u64, text: &str) {
        if matches!(self.watches.get(name), Some(Watch::Pending { generation: g, .. }) if *g == generation)
            && let Some(Watch::Pending { waiters, .. }) = self.watches.remove(name)
        {
            tracing::warn!(channel = name, reason = text, "Redis refused to subscribe a watched channel");
            answer(waiters, || Err(refusal(text)));
        }
    }

    fn come_up(&mut self, session: &mut Session) {
        self.up = true;
        self.up_flag.store(true, Ordering::Release);
        self.metrics.up.set(1.0);
        self.backoff.reset();
        match self.opened.take() {
            Some(opened) => {
                let _ = opened.send(Ok(()));
            }
            None => {
                self.metrics.reconnects.increment(1);
                tracing::info!("the bus is back: every watch is active again");
                self.deliver(session, BusEvent::Resumed);
            }
        }
    }

    async fn command(&mut self, session: &mut Session, command: Command) -> Result<(), LinkError> {
        let limit = self.options.ping_timeout;
        match command {
            Command::Watch { name, reply } => match self.watches.get_mut(&name) {
                Some(Watch::Confirmed) => {
                    let _ = reply.send(Ok(()));
                }
                Some(Watch::Pending { waiters, .. }) => waiters.push(reply),
                None => {
                    self.generations += 1;
                    let generation = self.generations;
                    self.watches.insert(name.clone(), Watch::Pending { generation, waiters: vec![reply] });
                    self.subscribe(session, &[name], false).await?;
                }
            },
            Command::Unwatch { name, reply } => match self.watches.remove(&name) {
                None => {
                    let _ = reply.send(Ok(()));
                }
                Some(watch) => {
                    answer_watch(watch);
                    let unsubscribe = resp_command("UNSUBSCRIBE", &name);
                    session.send(&unsubscribe, [Expect::Unsubscribe { name, reply }], limit).await?;
                }
            },
        }
        Ok(())
    }

    async fn tick(&mut self, session: &mut Session, silence_limit: Option<Instant>) -> Result<(), LinkError> {
        let now = Instant::now();
        if silence_limit.is_some_and(|limit| now >= limit) {
            return Err(LinkError::Silent(self.options.ping_timeout));
        }
        if now >= session.next_ping {
            session.next_ping = now + self.options.ping_interval;
            if !session.pong_due && session.held.is_empty() {
                session.pong_due = true;
                session.send(&command(&[b"PING"]), [Expect::Pong], self.options.ping_timeout).await?;
            }
        }
        Ok(())
    }

    /// Queues `event` after any held ones; holds it if the queue is full.
    fn deliver(&mut self, session: &mut Session, event: BusEvent) {
        if session.held.is_empty() {
            match self.events.try_send(event) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(event)) => session.held.push_back(event),
            }
        } else {
            session.held.push_back(event);
        }
    }

    // --- 4. dead link ---

    /// Reports a dead link; false if the handle went away meanwhile.
    async fn down(&mut self, error: LinkError, session: Session) -> bool {
        let Session { in_flight, held, .. } = session;
        self.retry.clear();
        for expect in in_flight {
            // The subscription went with the connection.
            if let Expect::Unsubscribe { reply, .. } = expect {
                let _ = reply.send(Ok(()));
            }
        }
        for watch in self.watches.values_mut() {
            if matches!(watch, Watch::Confirmed) {
                *watch = Watch::Pending { generation: 0, waiters: Vec::new() };
            }
        }
        for event in held {
            if !self.emit(event).await {
                return false;
            }
        }
        if !self.up {
            tracing::debug!(%error, "the bus could not resume");
            return true;
        }
        tracing::warn!(%error, "the bus lost its link to Redis");
        self.up = false;
        self.up_flag.store(false, Ordering::Release);
        self.metrics.up.set(0.0);
        self.emit(BusEvent::Down).await
    }

    /// Waits `delay` while taking commands; false if the handle went away.
    async fn idle(&mut self, delay: Duration) -> bool {
        let wake = sleep(delay);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                biased;
                _ = &mut self.shutdown => return false,
                command = self.commands.recv() => match command {
                    Some(command) => self.command_while_down(command),
                    None => return false,
                },
                () = &mut wake => return true,
            }
        }
    }

    fn command_while_down(&mut self, command: Command) {
        match command {
            Command::Watch { name, reply } => {
                let watch =
                    self.watches.entry(name).or_insert(Watch::Pending { generation: 0, waiters: Vec::new() });
                match watch {
                    Watch::Pending { waiters, .. } => waiters.push(reply),
                    // Not while down (`down` unconfirms every watch); harmless anyway.
                    Watch::Confirmed => {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            Command::Unwatch { name, reply } => {
                if let Some(watch) = self.watches.remove(&name) {
                    answer_watch(watch);
                }
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// Queues `event`, waiting for room; false if the handle went away.
    async fn emit(&mut self, event: BusEvent) -> bool {
        tokio::select! {
            biased;
            _ = &mut self.shutdown => false,
            permit = self.events.reserve() => {
                if let Ok(permit) = permit {
                    permit.send(event);
                }
                true
            }
        }
    }
}

fn refusal(text: &str) -> ClusterError {
    ClusterError::Refused { backend: BACKEND, source: Arc::new(LinkError::Refused(text.to_owned())) }
}

fn resp_command(verb: &str, name: &str) -> Vec<u8> {
    command(&[verb.as_bytes(), name.as_bytes()])
}

fn answer(waiters: Vec<Waiter>, result: impl Fn() -> Result<(), ClusterError>) {
    for waiter in waiters {
        let _ = waiter.send(result());
    }
}

/// An unwatch overtook a watch still waiting: the watch is answered, the
/// channel is unwatched.
fn answer_watch(watch: Watch) {
    if let Watch::Pending { waiters, .. } = watch {
        answer(waiters, || Ok(()));
    }
}
