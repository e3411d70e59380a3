//! A channel's live tail for the admin stream: one more subscriber of the
//! channel, through the hub's own subscription and an outbox like any
//! connection's (so it works the same on a cluster node, where the hub
//! watches the channel on the cluster bus for it).
//!
//! The tail counts as a subscriber while it is open (in `/api/channels`,
//! and for Pusher apps' `channel_occupied`), as any listener would. It is
//! no connection: `/api/disconnect` and the connection count leave it
//! alone. Its outbox is drained at once into the stream's bounded queue,
//! where what does not fit is dropped and counted (`stream.rs`), so a slow
//! reader of the page never holds back the channel.

use std::sync::Arc;

use fanfare_hub::{
    CloseReason, ConnId, Hub, HubError, Outbox, OutboxLimits, Protocol, Subscribe, Subscriber,
};
use fanfare_protocol::{ChannelName, Frame, UserId};

pub(super) struct Tail {
    hub: Arc<Hub>,
    channel: ChannelName,
    conn: ConnId,
    outbox: Arc<Outbox>,
}

impl Tail {
    /// Subscribes, as an anonymous native subscriber, from now on.
    pub async fn open(hub: Arc<Hub>, channel: ChannelName) -> Result<Self, HubError> {
        let conn = hub.connections().next_id();
        let outbox = Arc::new(Outbox::new(OutboxLimits::default()));
        let subscriber = Subscriber {
            conn,
            user: UserId::new(""),
            info: None,
            protocol: Protocol::Native,
            outbox: outbox.clone(),
        };
        let request = Subscribe { subscriber, channel: channel.clone(), since: None };
        // The subscribe reply is for a client; the tail skips it with
        // every other frame that is not a publication.
        hub.subscribe(request, |_, _| Frame::from_string(String::new())).await?;
        Ok(Self { hub, channel, conn, outbox })
    }

    pub fn channel(&self) -> &ChannelName {
        &self.channel
    }

    /// Waits for frames; moves the publications among them into `into`.
    /// `Some` once the outbox has closed.
    pub async fn next(&self, into: &mut Vec<Frame>) -> Option<CloseReason> {
        let closed = self.outbox.drain(into).await;
        into.retain(is_publication);
        closed
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.hub.unsubscribe(self.conn, &self.channel);
    }
}

/// Native pushes are encoded with their `type` first.
fn is_publication(frame: &Frame) -> bool {
    frame.as_str().starts_with(r#"{"type":"publication""#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_publications_are_tailed() {
        let publication =
            Frame::from_string(r#"{"type":"publication","channel":"a","time":1,"data":1}"#.into());
        let join = Frame::from_string(r#"{"type":"join","channel":"a","user":"u"}"#.into());
        assert!(is_publication(&publication));
        assert!(!is_publication(&join));
        assert!(!is_publication(&Frame::from_string(String::new())));
    }
}
