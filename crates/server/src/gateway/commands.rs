//! One function per native command. Each asks `policy.rs` what the
//! namespace and the connection's identity allow, then asks the hub.

use fanfare_hub::{CloseReason, HubError, Protocol, Publish, Subscribe, Subscriber};
use fanfare_protocol::native::{self, CommandBody, ConnectResult, HistoryParams, PresenceResult};
use fanfare_protocol::{ChannelName, CloseCode, ErrorCode, ErrorInfo, JsonData, StreamPosition, UserId};

use crate::auth::Identity;
use crate::config::NamespaceSettings;
use crate::content::{ClientPublication, Rule};
use crate::gateway::connection::Next;
use crate::gateway::connection_counts::open_user;
use crate::gateway::session::Session;
use crate::moderation::{Action, Actor, Audience};
use crate::policy::{check_data, check_event, hub_error, may_publish, may_subscribe};
use crate::webhooks::events::Refused;

impl Session {
    /// Runs one command. Only a publish may overtake the replies still
    /// pending (`replies.rs`); anything else is answered after them.
    pub(crate) async fn dispatch(&mut self, command: native::Command) -> Next {
        let id = command.id;
        if !matches!(command.body, CommandBody::Publish { .. }) {
            self.replies.flush(&self.outbox).await;
        }
        let outcome = match command.body {
            CommandBody::Connect { token } => return self.connect(id, token.as_deref()),
            _ if self.identity.is_none() => {
                Err(ErrorInfo::new(ErrorCode::NotConnected, "send connect first"))
            }
            CommandBody::Subscribe { channel, since } => self.subscribe(id, channel, since).await,
            CommandBody::Unsubscribe { channel } => self.unsubscribe(id, &channel),
            CommandBody::Publish { channel, event, data, idempotency_key, ephemeral } => {
                let author = self.identity.as_ref().map(|identity| UserId::new(identity.user.clone()));
                let author = author.filter(|user| !user.is_empty()); // anonymous
                let publish =
                    Publish { event, idempotency_key, ephemeral, author, ..Publish::new(channel, data) };
                self.publish(id, publish).await
            }
            CommandBody::History { channel, query } => self.history(id, &channel, query).await,
            CommandBody::Presence { channel } => self.presence(id, &channel).await,
            CommandBody::Moderate(action) => self.moderate(id, action).await,
            CommandBody::React { channel, reaction } => self.react(id, &channel, &reaction).await,
            CommandBody::Members(command) => self.members(id, command).await,
            CommandBody::Read(position) => self.read(id, position).await,
            CommandBody::Delivered(position) => self.delivered(id, position).await,
            CommandBody::Unread(query) => self.unread(id, query).await,
            CommandBody::Edit { channel, offset, data } => self.edit(id, channel, offset, data).await,
            CommandBody::Delete { channel, offset } => self.delete(id, channel, offset).await,
            CommandBody::Typing { channel } => self.typing(id, channel).await,
            CommandBody::Ping => {
                self.reply(id, &serde_json::json!({}));
                Ok(())
            }
        };
        if let Err(error) = outcome {
            self.replies.flush(&self.outbox).await;
            self.reply_error(id, error);
        }
        Next::Continue
    }

    fn connect(&mut self, id: u64, token: Option<&str>) -> Next {
        if self.identity.is_some() {
            self.reply_error(id, ErrorInfo::new(ErrorCode::AlreadyConnected, "already connected"));
            return Next::Continue;
        }
        let identity = match self.authenticate(token) {
            Ok(identity) => identity,
            Err(error) => {
                self.reply_error(id, error);
                return Next::Close(CloseReason::new(CloseCode::Unauthorized));
            }
        };
        if !identity.user.is_empty() {
            match open_user(&self.app.connections_per_user, &identity.user) {
                Ok(slot) => self.user_slot = slot,
                Err(error) => {
                    self.reply_error(id, error);
                    return Next::Close(CloseReason::new(CloseCode::TooManyConnections));
                }
            }
        }
        self.app.hub.connections().register(self.conn, identity.user.clone(), self.outbox.clone());
        let result = ConnectResult {
            client: self.conn.to_string(),
            user: identity.user.to_string(),
            version: concat!("fanfare/", env!("CARGO_PKG_VERSION")).to_string(),
            ping_interval_ms: self.app.settings.limits.ping_interval.as_millis() as u64,
        };
        self.identity = Some(identity);
        self.reply(id, &result);
        Next::Continue
    }

    fn authenticate(&self, token: Option<&str>) -> Result<Identity, ErrorInfo> {
        self.app.auth.authenticate(token).map_err(|e| ErrorInfo::new(e.code(), e.to_string()))
    }

    async fn subscribe(
        &mut self,
        id: u64,
        channel: ChannelName,
        since: Option<StreamPosition>,
    ) -> Result<(), ErrorInfo> {
        let namespace = self.app.settings.namespaces.resolve(&channel);
        may_subscribe(self.identity(), &channel, &namespace)?;
        self.app.members.may_read(&self.identity().user, &channel, &namespace).await?;
        self.app.moderation.may_subscribe(&self.identity().user, &channel).await?;
        if self.channels.contains(&channel) {
            return Err(hub_error(HubError::AlreadySubscribed));
        }
        if self.channels.len() >= self.app.settings.limits.max_channels_per_connection {
            return Err(ErrorInfo::new(
                ErrorCode::TooManyChannels,
                "this connection holds the most channels it may",
            ));
        }
        let identity = self.identity();
        let subscriber = Subscriber {
            conn: self.conn,
            user: identity.user.clone().into(),
            info: identity.info.clone(),
            protocol: Protocol::Native,
            outbox: self.outbox.clone(),
        };
        let request = Subscribe { subscriber, channel: channel.clone(), since };
        self.app
            .hub
            .subscribe(request, |result, _| native::encode_reply(id, result))
            .await
            .map_err(hub_error)?;
        self.channels.insert(channel, ());
        Ok(())
    }

    fn unsubscribe(&mut self, id: u64, channel: &ChannelName) -> Result<(), ErrorInfo> {
        if self.channels.remove(channel).is_none() {
            return Err(hub_error(HubError::NotSubscribed));
        }
        self.app.hub.unsubscribe(self.conn, channel).map_err(hub_error)?;
        self.reply(id, &serde_json::json!({}));
        Ok(())
    }

    /// Checks the publication against the namespace's content rules
    /// (waiting for its pre-publish hook, if any: the next command waits
    /// too, so publications keep their order), hands it to the hub and
    /// moves on to the next command; the reply follows once it is durable
    /// (`replies.rs`).
    async fn publish(&mut self, id: u64, mut publish: Publish) -> Result<(), ErrorInfo> {
        let namespace = self.app.settings.namespaces.resolve(&publish.channel);
        may_publish(&namespace, self.channels.contains(&publish.channel))?;
        self.app.members.may_publish(&self.identity().user, &publish.channel, &namespace).await?;
        check_event(publish.event.as_deref())?;
        check_data(&publish.data, &namespace)?;
        publish.priority = in_priority_lane(self.identity(), &publish.channel, &namespace);
        let audience = match self.admitted(&namespace, &publish).await {
            Ok((data, audience)) => {
                publish.data = data;
                audience
            }
            Err((refused, rule)) => {
                let user = &self.identity().user;
                self.app.webhooks.rejected(Refused {
                    channel: &publish.channel,
                    user: (!user.is_empty()).then_some(&**user),
                    protocol: "native",
                    event: publish.event.as_deref(),
                    data: &publish.data,
                    error: &refused,
                    rule,
                });
                return Err(refused);
            }
        };
        if audience == Audience::Own {
            return self.publish_shadowed(id, publish).await;
        }
        self.replies.room(&self.outbox).await;
        let receipt = self.app.hub.submit(publish).await;
        self.replies.push(id, receipt);
        Ok(())
    }

    /// The user's bans and mutes, the publish limits and the content rules:
    /// the data to publish (perhaps masked or rewritten) and who sees it,
    /// or the refusal (with the content rule that refused it).
    pub(super) async fn admitted(
        &mut self,
        namespace: &NamespaceSettings,
        publish: &Publish,
    ) -> Result<(JsonData, Audience), (ErrorInfo, Option<Rule>)> {
        let identity = self.identity.as_ref().expect("checked in dispatch");
        let sanctioned = self.app.moderation.may_publish(&identity.user, &publish.channel).await;
        let audience = sanctioned.map_err(|e| (e, None))?;
        let mut limits = namespace.publish_limits;
        if identity.moderates(&publish.channel) || publish.priority {
            // Moderators (and a shaped namespace's hosts) speak whatever the slow mode.
            limits.slow_mode = std::time::Duration::ZERO;
        }
        if audience == Audience::Own {
            // Publications nobody else sees take nothing from the channel's rate.
            limits.per_channel = None;
        }
        let admitted =
            self.app.limits.admit(&mut self.publisher, &identity.user, &publish.channel, &limits).await;
        admitted.map_err(|e| (e, None))?;
        let publication = ClientPublication {
            channel: &publish.channel,
            event: publish.event.as_deref(),
            data: publish.data.clone(),
            user: Some(&identity.user),
            connection: self.conn,
            socket_id: None,
            protocol: "native",
            max_bytes: namespace.max_message_bytes,
        };
        let checked = self.app.content.check(namespace, publication).await;
        let data = checked.map_err(|rejection| (rejection.error(), Some(rejection.rule)))?;
        Ok((data, audience))
    }

    /// A shadow-banned user's publication: its own connections receive it
    /// without epoch or offset; the reply, after those of the publishes
    /// before it, is a durable publication's with the channel's current
    /// position (`moderation/shadow.rs`).
    async fn publish_shadowed(&mut self, id: u64, publish: Publish) -> Result<(), ErrorInfo> {
        let user = self.identity().user.to_string();
        let position = crate::moderation::shadow::publish(&self.app, &user, publish).await;
        self.replies.flush(&self.outbox).await;
        let result = match position.map_err(hub_error)? {
            Some(position) => {
                native::PublishResult { epoch: Some(position.epoch), offset: Some(position.offset) }
            }
            None => native::PublishResult::default(),
        };
        self.reply(id, &result);
        Ok(())
    }

    async fn history(
        &mut self,
        id: u64,
        channel: &ChannelName,
        query: HistoryParams,
    ) -> Result<(), ErrorInfo> {
        let namespace = self.app.settings.namespaces.resolve(channel);
        may_subscribe(self.identity(), channel, &namespace)?;
        self.app.members.may_read(&self.identity().user, channel, &namespace).await?;
        let result = self.app.hub.history(channel, query).await.map_err(hub_error)?;
        self.reply(id, &result);
        Ok(())
    }

    async fn presence(&mut self, id: u64, channel: &ChannelName) -> Result<(), ErrorInfo> {
        let namespace = self.app.settings.namespaces.resolve(channel);
        may_subscribe(self.identity(), channel, &namespace)?;
        self.app.members.may_read(&self.identity().user, channel, &namespace).await?;
        if namespace.channel.observed && !namespace.channel.presence {
            // The hub may track a members channel's presence for the offline webhook: not the namespace's.
            return Err(hub_error(HubError::PresenceDisabled));
        }
        let members = self.app.hub.presence(channel).await.map_err(hub_error)?;
        self.reply(id, &PresenceResult { members });
        Ok(())
    }

    /// A reaction in a shaped namespace: allowed where this connection may
    /// publish and its user is neither banned nor muted; counted by the
    /// hub, pushed with its window's others (`docs/moderation.md` §6.3).
    async fn react(&mut self, id: u64, channel: &ChannelName, reaction: &str) -> Result<(), ErrorInfo> {
        let namespace = self.app.settings.namespaces.resolve(channel);
        may_publish(&namespace, self.channels.contains(channel))?;
        self.app.members.may_publish(&self.identity().user, channel, &namespace).await?;
        let audience = self.app.moderation.may_publish(&self.identity().user, channel).await?;
        if audience == Audience::Everyone {
            // A shadow-banned user's taps are answered and counted nowhere.
            self.app.hub.react(channel, reaction).map_err(hub_error)?;
        }
        self.reply(id, &serde_json::json!({}));
        Ok(())
    }

    /// A moderator's action, allowed by the token's `moderate` claim.
    async fn moderate(&mut self, id: u64, action: Action) -> Result<(), ErrorInfo> {
        let identity = self.identity();
        let actor = Actor::Moderator { user: &identity.user, grants: identity.moderates.as_ref() };
        let outcome = crate::moderation::act(&self.app, actor, action).await?;
        self.reply(id, &outcome);
        Ok(())
    }

    /// The identity `connect` set; every command but `connect` runs after it.
    pub(super) fn identity(&self) -> &Identity {
        self.identity.as_ref().expect("checked in dispatch")
    }
}

/// Whether a connection's publication in `channel` takes a shaped
/// namespace's priority lane: it moderates or hosts the channel, and the
/// namespace's `priority` lists that role.
fn in_priority_lane(identity: &Identity, channel: &ChannelName, namespace: &NamespaceSettings) -> bool {
    let Some(shaping) = &namespace.shaping else { return false };
    let lane = shaping.priority;
    (lane.moderators && identity.moderates(channel)) || (lane.hosts && identity.hosts(channel))
}
