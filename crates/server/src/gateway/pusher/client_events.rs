//! `client-*` events: relayed to the channel's other subscribers (native
//! ones too), never echoed to the sender, never stored, at most
//! [`PER_SECOND`] per connection.

use fanfare_hub::Publish;
use fanfare_protocol::JsonData;
use fanfare_protocol::pusher::{PusherChannel, PusherErrorCode};

use super::PusherSession;
use crate::pusher::webhooks::WebhookEvent;

/// Client events a connection may send per second (Pusher's limit).
pub(super) const CLIENT_EVENTS_PER_SECOND: usize = 10;

impl PusherSession {
    pub(super) async fn client_event(&mut self, channel: PusherChannel, event: String, data: JsonData) {
        if let Err((code, message)) = self.check_client_event(&channel, &data) {
            self.send_error(code, message);
            return;
        }
        let Some(subscribed) = self.channels.get(channel.as_str()) else { return };
        let publish = Publish {
            event: Some(event.clone()),
            ephemeral: true,
            exclude: Some(self.conn),
            user_id: subscribed.member.clone(),
            ..Publish::new(subscribed.hub.clone(), data.clone())
        };
        let user_id = subscribed.member.clone();
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

    fn check_client_event(
        &mut self,
        channel: &PusherChannel,
        data: &JsonData,
    ) -> Result<(), (PusherErrorCode, &'static str)> {
        let rejected = PusherErrorCode::ClientEventRejected;
        if !self.pusher_app.settings.client_events {
            return Err((rejected, "client events are not enabled for this app"));
        }
        if !channel.accepts_client_events() {
            return Err((rejected, "client events are allowed on private and presence channels only"));
        }
        if !self.channels.contains(channel.as_str()) {
            return Err((rejected, "subscribe to the channel before sending client events on it"));
        }
        if data.len() > self.pusher_app.settings.max_event_bytes {
            return Err((rejected, "the client event is too large"));
        }
        if !self.client_events.try_take() {
            return Err((PusherErrorCode::ClientEventRateLimit, "more than 10 client events per second"));
        }
        Ok(())
    }
}
