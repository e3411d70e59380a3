//! `pusher:subscribe` and `pusher:unsubscribe`: channel auth checked
//! against the app secret in constant time, presence members from the
//! signed `channel_data` (or the signed-in user), and cache channels that
//! replay their last event or say `pusher:cache_miss`.

use fanfare_hub::{Subscribe, Subscriber};
use fanfare_protocol::native::{Member, SubscribeResult};
use fanfare_protocol::pusher::{self, ChannelKind, PresenceMember, PusherChannel};
use fanfare_protocol::{Frame, StreamPosition};

use super::continuity::is_tracked_kind;
use super::{PusherSession, Subscribed};
use crate::pusher::apps::Apps;
use crate::pusher::webhooks::WebhookEvent;

/// Why a subscription was refused: `pusher:subscription_error`.
struct Refusal {
    message: String,
    status: u16,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self { message: message.into(), status }
    }
}

impl PusherSession {
    pub(super) async fn subscribe(
        &mut self,
        channel: PusherChannel,
        auth: Option<String>,
        channel_data: Option<String>,
    ) {
        let name = channel.as_str().to_owned();
        if self.channels.contains(name.as_str()) {
            return; // pusher-js does not subscribe twice; a repeat changes nothing.
        }
        if let Err(refusal) = self.try_subscribe(&channel, auth.as_deref(), channel_data.as_deref()).await {
            self.outbox.push(pusher::encode_subscription_error(&name, &refusal.message, refusal.status));
        }
    }

    async fn try_subscribe(
        &mut self,
        channel: &PusherChannel,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) -> Result<(), Refusal> {
        let name = channel.as_str();
        if self.channels.len() >= self.app.settings.limits.max_channels_per_connection {
            return Err(Refusal::new(429, "this connection holds the most channels it may"));
        }
        let member = self.authorize(channel, auth, channel_data)?;
        let hub = Apps::hub_channel(&self.pusher_app, name).map_err(|e| Refusal::new(400, e.to_string()))?;
        let user = match (&member, &self.signed_in) {
            (Some(member), _) => member.user_id.to_string(),
            (None, Some(signed_in)) => signed_in.id.to_string(),
            (None, None) => String::new(),
        };
        if let Err(banned) = self.app.moderation.may_subscribe(&user, &hub).await {
            return Err(Refusal::new(403, banned.message));
        }
        if member.is_some() {
            self.check_presence_room(&hub).await?;
        }
        let resume = self.claim_resume_point(channel, &hub).await;
        let since = match channel.is_cache() {
            true => older(resume.clone(), self.last_event_position(&hub).await?),
            false => resume.clone(),
        };
        let subscriber = Subscriber {
            conn: self.conn,
            user: member.as_ref().map_or_else(|| "".into(), |m| m.user_id.clone()),
            info: member.as_ref().and_then(|m| m.user_info.clone()),
            protocol: self.protocol(),
            outbox: self.outbox.clone(),
        };
        let request = Subscribe { subscriber, channel: hub.clone(), since: since.clone() };
        let presence = member.is_some();
        let result = self
            .app
            .hub
            .subscribe(request, |_, members| subscription_succeeded(name, presence, members))
            .await
            .map_err(|e| Refusal::new(503, e.to_string()))?;
        if resume.is_some() {
            crate::pusher::continuity::count_resume(result.recovered == Some(true));
        }
        if channel.is_cache() && !replayed_last_event(since.as_ref(), &result) {
            self.outbox.push(pusher::encode_cache_miss(name));
            let miss = WebhookEvent::CacheMiss { channel: name.to_owned() };
            self.app.pusher.webhooks.send(self.pusher_app.id(), miss);
        }
        if channel.requires_auth() {
            self.authenticated();
        }
        if let (Some(member), None) = (&member, &self.signed_in) {
            // A presence member that did not sign in is known by its member
            // id: a moderator's kick or ban reaches it.
            let hub_member =
                crate::pusher::users::hub_member(self.pusher_app.id(), &member.user_id.to_string());
            self.app.hub.connections().register(self.conn, hub_member.into(), self.outbox.clone());
        }
        let tracked = (is_tracked_kind(channel) && self.tracked_user().is_some()).then_some(result.epoch);
        self.channels.insert(name.to_owned(), Subscribed { hub, member: member.map(|m| m.user_id), tracked });
        Ok(())
    }

    /// Checks the channel's auth; for a presence channel returns the member.
    fn authorize(
        &self,
        channel: &PusherChannel,
        auth: Option<&str>,
        channel_data: Option<&str>,
    ) -> Result<Option<PresenceMember>, Refusal> {
        let name = channel.as_str();
        if let ChannelKind::ServerToUser(user) = channel.kind() {
            return match &self.signed_in {
                Some(signed_in) if signed_in.id == user => Ok(None),
                _ => Err(Refusal::new(403, "sign in as this user to subscribe to their channel")),
            };
        }
        if !channel.requires_auth() {
            return Ok(None);
        }
        let settings = &self.pusher_app.settings;
        let auth = auth.ok_or_else(|| Refusal::new(401, "this channel needs auth"))?;
        if !pusher::verify_channel_auth(
            &settings.key,
            &settings.secret,
            &self.socket_id,
            name,
            channel_data,
            auth,
        ) {
            return Err(Refusal::new(401, "invalid signature"));
        }
        if !matches!(channel.kind(), ChannelKind::Presence) {
            return Ok(None);
        }
        let member = match (channel_data, &self.signed_in) {
            (Some(data), _) => {
                PresenceMember::from_channel_data(data).map_err(|e| Refusal::new(400, e.to_string()))?
            }
            (None, Some(user)) => PresenceMember::new(user.id.clone(), user.info.clone()),
            (None, None) => {
                return Err(Refusal::new(400, "presence channels need channel_data or a signed-in user"));
            }
        };
        let info_len = member.user_info.as_ref().map_or(0, |info| info.len());
        if info_len > settings.max_presence_user_info_bytes {
            return Err(Refusal::new(
                413,
                format!("user_info is larger than {} bytes", settings.max_presence_user_info_bytes),
            ));
        }
        Ok(Some(member))
    }

    async fn check_presence_room(&self, hub: &fanfare_protocol::ChannelName) -> Result<(), Refusal> {
        let max = self.pusher_app.settings.max_presence_members;
        let members = self.app.hub.presence(hub).await.map(|m| m.len()).unwrap_or(0);
        match members >= max {
            true => Err(Refusal::new(403, format!("the presence channel is full ({max} members)"))),
            false => Ok(()),
        }
    }

    /// A cache channel replays its last event through recovery: subscribe
    /// from just before the newest offset.
    async fn last_event_position(
        &self,
        hub: &fanfare_protocol::ChannelName,
    ) -> Result<Option<StreamPosition>, Refusal> {
        let position = self.app.hub.position(hub).await.map_err(|e| Refusal::new(503, e.to_string()))?;
        Ok((position.offset > 0).then(|| StreamPosition::new(position.epoch, position.offset - 1)))
    }

    pub(super) async fn unsubscribe(&mut self, name: &str) {
        if let Some(subscribed) = self.channels.remove(name) {
            let _ = self.app.hub.unsubscribe(self.conn, &subscribed.hub);
            if subscribed.tracked.is_some() {
                self.continuity_forget(&subscribed.hub).await;
            }
        }
    }
}

/// The older of a resume point and a cache channel's last-event position
/// in one epoch (a cache channel replays at least its last event); the
/// cache position alone otherwise.
fn older(resume: Option<StreamPosition>, cache: Option<StreamPosition>) -> Option<StreamPosition> {
    match (resume, cache) {
        (Some(resume), Some(cache)) if resume.epoch == cache.epoch && resume.offset < cache.offset => {
            Some(resume)
        }
        (_, cache) => cache,
    }
}

fn subscription_succeeded(name: &str, presence: bool, members: &[Member]) -> Frame {
    if !presence {
        return pusher::encode_subscription_succeeded(name);
    }
    let members: Vec<PresenceMember> =
        members.iter().map(|m| PresenceMember::new(m.user.clone(), m.info.clone())).collect();
    pusher::encode_presence_subscription_succeeded(name, &members)
}

/// Whether subscribing from `since` replayed the channel's last event.
fn replayed_last_event(since: Option<&StreamPosition>, result: &SubscribeResult) -> bool {
    since.is_some() && result.recovered == Some(true) && result.offset > 0
}
