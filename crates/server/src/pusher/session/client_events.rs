//! `client-*` events: relayed to the channel's other subscribers (native
//! ones too), never echoed to the sender, never stored, at most the app's
//! `max_client_events_per_second` per connection (Pusher's 10 by default),
//! then, as native publications: the user's bans, mutes and shadow-bans
//! (a shadow-banned user's events reach its own other connections only), the
//! namespace's publish limits, and its content rules (`content/`; a
//! refusal is `pusher:error` 4303).

use fanfare_hub::Publish;
use fanfare_protocol::pusher::{self, PusherChannel, PusherErrorCode};
use fanfare_protocol::{ErrorInfo, JsonData, UserId};

use super::PusherSession;
use crate::content::{ClientPublication, Rule};
use crate::moderation::Audience;
use crate::pusher::webhooks::WebhookEvent;
use crate::webhooks::events::Refused;

impl PusherSession {
    pub(super) async fn client_event(&mut self, channel: PusherChannel, event: String, data: JsonData) {
        if let Err((code, message)) = self.check_client_event(&channel, &event, &data) {
            self.send_error(code, &message);
            return;
        }
        let Some(subscribed) = self.channels.get(channel.as_str()) else { return };
        let user = match (&self.signed_in, &subscribed.member) {
            (Some(signed_in), _) => signed_in.id.to_string(),
            (None, Some(member)) => member.to_string(),
            (None, None) => String::new(),
        };
        let audience = match self.app.moderation.may_publish(&user, &subscribed.hub).await {
            Ok(audience) => audience,
            Err(refused) => {
                self.report_refusal(&channel, &event, &data, &refused, None);
                self.send_error(PusherErrorCode::ClientEventRejected, &refused.message);
                return;
            }
        };
        let Some(subscribed) = self.channels.get(channel.as_str()) else { return };
        let mut limits = self.app.settings.namespaces.resolve(&subscribed.hub).publish_limits;
        if audience == Audience::Own {
            // Events nobody else sees take nothing from the channel's rate.
            limits.per_channel = None;
        }
        if let Err(refused) =
            self.app.limits.admit(&mut self.publisher, &user, &subscribed.hub, &limits).await
        {
            self.report_refusal(&channel, &event, &data, &refused, None);
            let frame = pusher::encode_error_waiting(
                PusherErrorCode::ClientEventRateLimit,
                &refused.message,
                refused.retry_after_ms,
            );
            self.outbox.push(frame);
            return;
        }
        let Some(data) = self.checked_content(&channel, &event, data).await else { return };
        let Some(subscribed) = self.channels.get(channel.as_str()) else { return };
        let publish = Publish {
            event: Some(event.clone()),
            ephemeral: true,
            exclude: Some(self.conn),
            user_id: subscribed.member.clone(),
            ..Publish::new(subscribed.hub.clone(), data.clone())
        };
        let user_id = subscribed.member.clone();
        if audience == Audience::Own {
            // The user's other connections get it; nobody else, no webhook.
            let _ = crate::moderation::shadow::publish(&self.app, &user, publish).await;
            return;
        }
        let _ = self.app.hub.publish(publish).await;
        let webhook = WebhookEvent::ClientEvent {
            channel: channel.as_str().to_owned(),
            event,
            data: fanfare_protocol::pusher::event_data_string(&data),
            socket_id: self.socket_id.clone(),
            // Pusher documents webhook user ids as strings (and pusher-http-go
            // decodes them into one).
            user_id: user_id.map(|id| id.to_string()),
        };
        self.app.pusher.webhooks.send(self.pusher_app.id(), webhook);
    }

    /// The data to relay after the content rules of the channel's
    /// namespace, or `None` once the refusal is sent.
    async fn checked_content(
        &self,
        channel: &PusherChannel,
        event: &str,
        data: JsonData,
    ) -> Option<JsonData> {
        let subscribed = self.channels.get(channel.as_str())?;
        let namespace = self.app.settings.namespaces.resolve(&subscribed.hub);
        if data.len() > namespace.max_message_bytes {
            self.send_error(PusherErrorCode::ClientEventRejected, "the client event is too large");
            return None;
        }
        let user = subscribed
            .member
            .as_ref()
            .or(self.signed_in.as_ref().map(|signed_in| &signed_in.id))
            .map(UserId::as_str);
        let publication = ClientPublication {
            channel: &subscribed.hub,
            event: Some(event),
            data: data.clone(),
            user,
            connection: self.conn,
            socket_id: Some(&self.socket_id),
            protocol: "pusher",
            max_bytes: namespace.max_message_bytes.min(self.pusher_app.settings.max_event_bytes),
        };
        match self.app.content.check(&namespace, publication).await {
            Ok(data) => Some(data),
            Err(rejection) => {
                self.report_refusal(channel, event, &data, &rejection.error(), Some(rejection.rule));
                self.send_error(PusherErrorCode::ContentRejected, &rejection.to_string());
                None
            }
        }
    }

    /// A `publication_rejected` event for the `[[webhooks]]` that want it.
    fn report_refusal(
        &self,
        channel: &PusherChannel,
        event: &str,
        data: &JsonData,
        refused: &ErrorInfo,
        rule: Option<Rule>,
    ) {
        let Some(subscribed) = self.channels.get(channel.as_str()) else { return };
        let user = subscribed
            .member
            .as_ref()
            .or(self.signed_in.as_ref().map(|signed_in| &signed_in.id))
            .map(UserId::as_str);
        self.app.webhooks.rejected(Refused {
            channel: &subscribed.hub,
            user,
            protocol: "pusher",
            event: Some(event),
            data,
            error: refused,
            rule,
        });
    }

    fn check_client_event(
        &mut self,
        channel: &PusherChannel,
        event: &str,
        data: &JsonData,
    ) -> Result<(), (PusherErrorCode, String)> {
        let refuse = |message: &str| Err((PusherErrorCode::ClientEventRejected, message.to_owned()));
        let settings = &self.pusher_app.settings;
        if !settings.client_events {
            return refuse("client events are not enabled for this app");
        }
        if !channel.accepts_client_events() {
            return refuse("client events are allowed on private and presence channels only");
        }
        if !self.channels.contains(channel.as_str()) {
            return refuse("subscribe to the channel before sending client events on it");
        }
        if event.chars().count() > settings.max_event_name_length {
            let max = settings.max_event_name_length;
            return refuse(&format!("the event name is longer than this app's {max} characters"));
        }
        if data.len() > settings.max_event_bytes {
            return refuse("the client event is too large");
        }
        if let Some(bucket) = &mut self.client_events
            && !bucket.try_take()
        {
            crate::gateway::rate::count_refusal("pusher_client_events");
            let message =
                format!("more than {} client events per second", settings.max_client_events_per_second);
            return Err((PusherErrorCode::ClientEventRateLimit, message));
        }
        Ok(())
    }
}
