//! The native commands that act on a channel's messages rather than add
//! one: `edit` and `delete` by the author or a moderator
//! (`moderation/authored.rs`), and `typing`, an ephemeral indicator for
//! everyone but the typist (`docs/protocol.md` §5.14–5.16).

use std::time::{Duration, Instant};

use fanfare_hub::Publish;
use fanfare_protocol::{ChannelName, ErrorInfo, JsonData, UserId};

use crate::gateway::session::Session;
use crate::moderation::Audience;
use crate::moderation::authored::{self, EditOutcome, Editor};
use crate::moderation::shadow::own_connections;
use crate::policy::{check_data, hub_error, may_publish};

/// The event of a typing indicator's push.
pub(crate) const TYPING_EVENT: &str = "fanfare:typing";

/// How much longer than `typing_interval` a client shows an indicator: a
/// renewal sent every interval arrives before it runs out.
const TYPING_GRACE: Duration = Duration::from_secs(2);

impl Session {
    /// An edit: where this connection may publish (a moderator anywhere
    /// it moderates), with the data checked as a publish's is (size,
    /// bans and mutes, rates, content rules).
    pub(super) async fn edit(
        &mut self,
        id: u64,
        channel: ChannelName,
        offset: u64,
        data: JsonData,
    ) -> Result<(), ErrorInfo> {
        let namespace = self.app.settings.namespaces.resolve(&channel);
        let moderates = self.identity().moderates(&channel);
        if !moderates {
            may_publish(&namespace, self.channels.contains(&channel))?;
            self.app.members.may_publish(&self.identity().user, &channel, &namespace).await?;
        }
        check_data(&data, &namespace)?;
        let user = self.identity().user.to_string();
        let author = Some(UserId::new(user.clone())).filter(|u| !u.is_empty());
        let publish = Publish { author, ..Publish::new(channel.clone(), data) };
        let (data, audience) = self.admitted(&namespace, &publish).await.map_err(|(error, _)| error)?;
        if audience == Audience::Own {
            // A shadow-banned user's edit changes nothing anyone else sees;
            // it is answered as if it had (the channel's current position).
            let position = self.app.hub.position(&channel).await.map_err(hub_error)?;
            self.reply(id, &EditOutcome { epoch: position.epoch, offset: position.offset });
            return Ok(());
        }
        let editor = Editor::User { user: &user, moderates };
        let outcome = authored::edit(&self.app, editor, channel, offset, data).await?;
        self.reply(id, &outcome);
        Ok(())
    }

    /// A delete by the publication's author or a moderator.
    pub(super) async fn delete(
        &mut self,
        id: u64,
        channel: ChannelName,
        offset: u64,
    ) -> Result<(), ErrorInfo> {
        let user = self.identity().user.to_string();
        let moderates = self.identity().moderates(&channel);
        if !moderates {
            let namespace = self.app.settings.namespaces.resolve(&channel);
            self.app.members.may_publish(&user, &channel, &namespace).await?;
        }
        let editor = Editor::User { user: &user, moderates };
        let outcome = authored::delete(&self.app, editor, channel, offset).await?;
        self.reply(id, &outcome);
        Ok(())
    }

    /// A typing indicator: allowed where this connection may publish and
    /// its user is neither banned nor muted; pushed to every subscriber but
    /// the user's own connections, once per user and channel per
    /// `typing_interval`. Always answered `{}`, also when throttled, for an
    /// anonymous connection (no user to show) or a shadow-banned user.
    pub(super) async fn typing(&mut self, id: u64, channel: ChannelName) -> Result<(), ErrorInfo> {
        let namespace = self.app.settings.namespaces.resolve(&channel);
        may_publish(&namespace, self.channels.contains(&channel))?;
        let user = self.identity().user.to_string();
        self.app.members.may_publish(&user, &channel, &namespace).await?;
        let audience = self.app.moderation.may_publish(&user, &channel).await?;
        let interval = namespace.typing_interval;
        if audience == Audience::Everyone
            && !user.is_empty()
            && self.app.typing.admit(&user, &channel, interval, Instant::now())
        {
            let expires_ms = (interval + TYPING_GRACE).as_millis() as u64;
            let data = JsonData::from_value(&serde_json::json!({ "user": user, "expires_ms": expires_ms }));
            let publish = Publish {
                event: Some(TYPING_EVENT.to_owned()),
                ephemeral: true,
                ..Publish::new(channel, data)
            };
            self.app
                .hub
                .publish_to_others(publish, own_connections(&self.app, &user))
                .await
                .map_err(hub_error)?;
        }
        self.reply(id, &serde_json::json!({}));
        Ok(())
    }
}
