//! The dispatcher: one task that turns hub events and gateway events into
//! webhook events and routes each to the endpoints that want it.
//!
//! `channel_vacated` and `member_removed` are held for `hold` (3 s; zero
//! on a cluster node, whose hub holds them cluster-wide). If
//! the channel is occupied again (the member added again) meanwhile, the
//! held event is dropped and so is the event that cancelled it: a page
//! reload is not news. Held events expire in the order they were held (the
//! hold is the same for all), so a queue of deadlines is enough; an entry
//! cancelled and held again gets a new generation, which tells stale
//! queue entries apart.
//!
//! A flush (the server stopping) routes what the inputs hold and every
//! held event at once, then waits for each endpoint to journal what it was
//! given. Journaled batches are adopted (`adoption.rs`) at start, every
//! `adopt_every`, and when the hub hands over a dead node.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use fanfare_hub::HubEvent;
use fanfare_protocol::ChannelName;
use fanfare_protocol::pusher::{ChannelKind, PusherChannel};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Duration, Instant};

use super::{Endpoint, Event, FromGateway, WebhookEvent, WebhookOptions};
use crate::config::WebhookKind;
use crate::pusher::apps::{Apps, PusherApp};
use crate::webhooks::{Adoption, DeliveryMetrics};

/// What a held event waits for: a channel to be occupied again, or a
/// member to be added again.
type HoldKey = (ChannelName, Option<String>);

struct Held {
    generation: u64,
    app: Arc<PusherApp>,
    event: Event,
}

pub(super) struct Dispatcher {
    apps: Arc<Apps>,
    /// The endpoints of each app, by app id.
    endpoints: HashMap<String, Vec<Endpoint>>,
    hold: Duration,
    max_held: usize,
    held: HashMap<HoldKey, Held>,
    expiries: VecDeque<(Instant, HoldKey, u64)>,
    next_generation: u64,
    metrics: DeliveryMetrics,
    adoption: Arc<Adoption>,
    adopt_every: Option<Duration>,
}

/// The dispatcher's inputs.
pub(super) struct Inputs {
    pub hub: Option<mpsc::Receiver<HubEvent>>,
    pub gateway: mpsc::Receiver<FromGateway>,
    /// Flush requests, each answered once done.
    pub flushes: mpsc::Receiver<oneshot::Sender<()>>,
}

impl Dispatcher {
    pub fn new(
        apps: Arc<Apps>,
        endpoints: HashMap<String, Vec<Endpoint>>,
        options: &WebhookOptions,
        metrics: DeliveryMetrics,
        adoption: Arc<Adoption>,
    ) -> Self {
        Self {
            adoption,
            adopt_every: options.adopt_every,
            apps,
            endpoints,
            hold: options.hold,
            max_held: options.max_held,
            held: HashMap::new(),
            expiries: VecDeque::new(),
            next_generation: 0,
            metrics,
        }
    }

    /// Adopts what an earlier run left, then runs until both event inputs
    /// are closed and nothing is held.
    pub async fn run(mut self, inputs: Inputs) {
        let Inputs { mut hub, mut gateway, mut flushes } = inputs;
        self.adopt(Vec::new());
        let mut adoptions = self.adopt_every.map(|every| {
            let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        let mut gateway_open = true;
        while hub.is_some() || gateway_open || !self.expiries.is_empty() {
            let next_expiry = self.expiries.front().map(|(deadline, ..)| *deadline);
            tokio::select! {
                event = recv(&mut hub), if hub.is_some() => match event {
                    Some(event) => self.on_hub_event(event),
                    None => hub = None,
                },
                input = gateway.recv(), if gateway_open => match input {
                    Some(FromGateway { app, event }) => self.on_gateway_event(&app, event),
                    None => gateway_open = false,
                },
                () = sleep_until(next_expiry), if next_expiry.is_some() => self.release_expired(),
                Some(done) = flushes.recv() => {
                    self.flush(&mut hub, &mut gateway).await;
                    let _ = done.send(());
                }
                _ = tick(&mut adoptions) => self.adopt(Vec::new()),
            }
        }
    }

    /// Adopts, in a task of its own, what was released and what `dead`
    /// left, and delivers it.
    fn adopt(&self, dead: Vec<fanfare_cluster::NodeId>) {
        let adoption = self.adoption.clone();
        tokio::spawn(async move { adoption.adopt(&dead).await });
    }

    /// Routes what the inputs hold and every held event now, then waits
    /// until each endpoint has journaled what it was given.
    async fn flush(
        &mut self,
        hub: &mut Option<mpsc::Receiver<HubEvent>>,
        gateway: &mut mpsc::Receiver<FromGateway>,
    ) {
        while let Some(event) = hub.as_mut().and_then(|hub| hub.try_recv().ok()) {
            self.on_hub_event(event);
        }
        while let Ok(FromGateway { app, event }) = gateway.try_recv() {
            self.on_gateway_event(&app, event);
        }
        self.expiries.clear();
        let held: Vec<Held> = self.held.drain().map(|(_, held)| held).collect();
        for Held { app, event, .. } in held {
            self.route(&app, event);
        }
        for endpoint in self.endpoints.values().flatten() {
            endpoint.flush().await;
        }
    }

    fn on_hub_event(&mut self, event: HubEvent) {
        let (channel, kind, user) = match event {
            HubEvent::ChannelOccupied { channel } => (channel, WebhookKind::ChannelOccupied, None),
            HubEvent::ChannelVacated { channel } => (channel, WebhookKind::ChannelVacated, None),
            HubEvent::MemberAdded { channel, user } => (channel, WebhookKind::MemberAdded, Some(user)),
            HubEvent::MemberRemoved { channel, user } => (channel, WebhookKind::MemberRemoved, Some(user)),
            HubEvent::SubscriptionCount { channel, count } => {
                self.on_subscription_count(&channel, count);
                return;
            }
            HubEvent::NodeGone { node } => {
                self.adopt(vec![node]);
                return;
            }
        };
        let Some((app, name)) = self.apps.for_hub_channel(&channel) else { return };
        let (opening, closing) = match kind {
            WebhookKind::ChannelOccupied | WebhookKind::ChannelVacated => {
                (WebhookKind::ChannelOccupied, WebhookKind::ChannelVacated)
            }
            _ => (WebhookKind::MemberAdded, WebhookKind::MemberRemoved),
        };
        if !app.wants(opening) && !app.wants(closing) {
            return;
        }
        let mut event = Event::new(kind, name);
        event.user_id = user.clone();
        let key = (channel.clone(), user);
        if kind == opening {
            if self.held.remove(&key).is_none() {
                self.route(&app, event);
            }
        } else if !self.hold.is_zero()
            && self.held.len() < self.max_held
            && self.expiries.len() < 2 * self.max_held
        {
            // (Cancelled holds leave their expiry queued until it is due.)
            self.hold(key, app, event);
        } else {
            self.route(&app, event);
        }
    }

    /// Pusher sends subscription counts for non-presence channels only.
    fn on_subscription_count(&mut self, channel: &ChannelName, count: usize) {
        let Some((app, name)) = self.apps.for_hub_channel(channel) else { return };
        if !app.wants(WebhookKind::SubscriptionCount) {
            return;
        }
        let presence = PusherChannel::new(name).is_ok_and(|c| c.kind() == ChannelKind::Presence);
        if presence {
            return;
        }
        let mut event = Event::new(WebhookKind::SubscriptionCount, name);
        event.subscription_count = Some(count);
        self.route(&app, event);
    }

    fn on_gateway_event(&mut self, app: &Arc<PusherApp>, event: WebhookEvent) {
        let event = match event {
            WebhookEvent::ClientEvent { channel, event, data, socket_id, user_id } => Event {
                event: Some(event),
                data: Some(data),
                socket_id: Some(socket_id),
                user_id,
                ..Event::new(WebhookKind::ClientEvent, &channel)
            },
            WebhookEvent::CacheMiss { channel } => Event::new(WebhookKind::CacheMiss, &channel),
        };
        self.route(app, event);
    }

    fn hold(&mut self, key: HoldKey, app: Arc<PusherApp>, event: Event) {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.expiries.push_back((Instant::now() + self.hold, key.clone(), generation));
        self.held.insert(key, Held { generation, app, event });
    }

    fn release_expired(&mut self) {
        let now = Instant::now();
        while let Some((deadline, ..)) = self.expiries.front() {
            if *deadline > now {
                break;
            }
            let Some((_, key, generation)) = self.expiries.pop_front() else { break };
            if self.held.get(&key).is_some_and(|held| held.generation == generation)
                && let Some(held) = self.held.remove(&key)
            {
                self.route(&held.app, held.event);
            }
        }
    }

    /// Queues the event for every endpoint of the app that wants its kind.
    fn route(&self, app: &PusherApp, event: Event) {
        let Some(endpoints) = self.endpoints.get(app.id()) else { return };
        let event = Arc::new(event);
        for endpoint in endpoints.iter().filter(|e| e.wants(event.name)) {
            if !endpoint.queue(event.clone()) {
                self.metrics.dropped.increment(1);
            }
        }
    }
}

async fn recv(receiver: &mut Option<mpsc::Receiver<HubEvent>>) -> Option<HubEvent> {
    match receiver {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
