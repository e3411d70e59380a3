//! The native commands of conversations: `members`, `read`, `delivered`
//! and `unread` (`docs/protocol.md` §5.10–§5.13). The rules live in
//! `members/`; this asks them for this connection's user.

use fanfare_protocol::native::conversation::{ChannelPosition, MembersAction, MembersCommand, UnreadQuery};
use fanfare_protocol::{ErrorCode, ErrorInfo};

use crate::gateway::session::Session;
use crate::members::change::Change;
use crate::members::receipts::{self, ReceiptKind};
use crate::policy::may_subscribe;

impl Session {
    /// Lists, adds or removes members: listing is for members; changing,
    /// for a member the token's `members` claim lets manage the channel.
    pub(super) async fn members(&mut self, id: u64, command: MembersCommand) -> Result<(), ErrorInfo> {
        let MembersCommand { channel, action } = command;
        let namespace = self.app.settings.namespaces.resolve(&channel);
        let identity = self.identity.as_ref().expect("checked in dispatch");
        may_subscribe(identity, &channel, &namespace)?;
        let members = &self.app.members;
        members.may_read(&identity.user, &channel, &namespace).await?;
        let change = match action {
            MembersAction::List { after, limit } => {
                let page = members.list(&channel, &namespace, after.as_ref(), limit).await?;
                self.reply(id, &page);
                return Ok(());
            }
            MembersAction::Add(users) => (Change::Add, users),
            MembersAction::Remove(users) => (Change::Remove, users),
        };
        members.may_manage(identity, &channel, &namespace)?;
        let outcome = members.change(&self.app.hub, &channel, &namespace, change.0, &change.1).await?;
        self.reply(id, &outcome);
        Ok(())
    }

    /// Moves this user's read cursor; members only.
    pub(super) async fn read(&mut self, id: u64, position: ChannelPosition) -> Result<(), ErrorInfo> {
        let user = self.member_of(&position).await?;
        let outcome =
            self.app.members.mark_read(&self.app.hub, &user, &position.channel, position.position()).await?;
        if outcome.moved {
            receipts::tell(&self.app, &user, &position.channel, ReceiptKind::Read, outcome.cursor);
        }
        self.reply(id, &serde_json::json!({ "moved": outcome.moved }));
        Ok(())
    }

    /// This device received the channel up to a position; members only.
    pub(super) async fn delivered(&mut self, id: u64, position: ChannelPosition) -> Result<(), ErrorInfo> {
        let user = self.member_of(&position).await?;
        receipts::tell(&self.app, &user, &position.channel, ReceiptKind::Delivered, position.position());
        self.reply(id, &serde_json::json!({}));
        Ok(())
    }

    /// This user's channels with their unread counts, a page at a time.
    pub(super) async fn unread(&mut self, id: u64, query: UnreadQuery) -> Result<(), ErrorInfo> {
        let user = self.identity.as_ref().expect("checked in dispatch").user.clone();
        if user.is_empty() {
            return Err(ErrorInfo::new(
                ErrorCode::PermissionDenied,
                "anonymous connections have no channels",
            ));
        }
        let page = self.app.members.unread(&self.app.hub, &user, query.after.as_ref(), query.limit).await?;
        self.reply(id, &page);
        Ok(())
    }

    /// This connection's user, if a member of the position's channel.
    async fn member_of(&self, position: &ChannelPosition) -> Result<std::sync::Arc<str>, ErrorInfo> {
        let identity = self.identity.as_ref().expect("checked in dispatch");
        let namespace = self.app.settings.namespaces.resolve(&position.channel);
        if namespace.subscribe != crate::config::SubscribePolicy::Members {
            return Err(ErrorInfo::new(
                ErrorCode::NotAvailable,
                "read state is kept in members channels only",
            ));
        }
        may_subscribe(identity, &position.channel, &namespace)?;
        self.app.members.may_read(&identity.user, &position.channel, &namespace).await?;
        Ok(identity.user.clone())
    }
}
