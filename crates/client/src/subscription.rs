//! A subscription as the application reads it, and the sending half the
//! connection task keeps for it.
//!
//! Between the two sits one bounded channel per subscription. The task
//! waits when it is full, so an application that stops reading a
//! subscription stops the whole connection from reading: nothing is
//! dropped on the client, and the server, whose outbox for this connection
//! then fills up, disconnects it as a slow consumer (4501). The client
//! reconnects and resumes from the last publication it queued, so the
//! application loses nothing either.

use fanfare_protocol::native::{Member, SubscribeResult};
use fanfare_protocol::{ChannelName, Epoch, ErrorInfo, Publication, StreamPosition};
use tokio::sync::{mpsc, oneshot};

/// What a [`Subscription`] yields, in this order: `Subscribed` first, then
/// publications and presence changes; `Subscribed` again after every
/// automatic resubscribe; `Unsubscribed` last.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEvent {
    /// The server confirmed the (re)subscription. `position` is the
    /// channel's position when it took effect. `recovered` is set when the
    /// subscribe carried a position: `Some(true)` means every publication
    /// after it follows, `Some(false)` that some were lost (too old, or the
    /// epoch changed) and the application must reload from its own source.
    Subscribed { position: StreamPosition, recovered: Option<bool> },
    /// A publication. Stored publications carry their epoch; ephemeral ones
    /// have `epoch: None` and offset 0. `skipped`: in a shaped namespace,
    /// how many publications just before this one were sampled out
    /// (`docs/moderation.md` §6); 0 elsewhere.
    Publication { epoch: Option<Epoch>, publication: Publication, skipped: u64 },
    /// A user's first connection joined the channel.
    Join(Member),
    /// A user's last connection left the channel.
    Leave { user: String },
    /// The subscription ended; nothing follows.
    Unsubscribed { reason: UnsubscribeReason },
}

/// Why a subscription ended.
#[derive(Debug, Clone, PartialEq)]
pub enum UnsubscribeReason {
    /// The application called [`Client::unsubscribe`](crate::Client::unsubscribe).
    Requested,
    /// After a reconnect, the server refused to resubscribe (for example the
    /// permission was revoked).
    Refused(ErrorInfo),
    /// The client stopped: see [`ConnectionState::Closed`](crate::ConnectionState::Closed).
    Closed { code: u16, reason: String },
}

/// The events of one channel. Obtained from
/// [`Client::subscribe`](crate::Client::subscribe); dropping it stops the
/// client from delivering to it and unsubscribes at the next occasion.
#[derive(Debug)]
pub struct Subscription {
    channel: ChannelName,
    events: mpsc::Receiver<SubscriptionEvent>,
    end: Option<oneshot::Receiver<UnsubscribeReason>>,
    position: StreamPosition,
}

impl Subscription {
    pub fn channel(&self) -> &ChannelName {
        &self.channel
    }

    /// The position of the last publication [`next`](Self::next) returned,
    /// or the position the subscription started from. Pass it as `since`
    /// to resume in another client.
    pub fn position(&self) -> &StreamPosition {
        &self.position
    }

    /// The next event; `None` after `Unsubscribed`.
    pub async fn next(&mut self) -> Option<SubscriptionEvent> {
        match self.events.recv().await {
            Some(event) => {
                self.track(&event);
                Some(event)
            }
            // The task sends the reason before it drops the sender, so it is there.
            None => self.end.take()?.await.ok().map(|reason| SubscriptionEvent::Unsubscribed { reason }),
        }
    }

    fn track(&mut self, event: &SubscriptionEvent) {
        match event {
            SubscriptionEvent::Subscribed { position, recovered } => {
                self.position = position_after(Some(&self.position), position, *recovered);
            }
            SubscriptionEvent::Publication { epoch: Some(epoch), publication, .. } => {
                self.position = StreamPosition::new(epoch.clone(), publication.offset);
            }
            _ => {}
        }
    }
}

/// Where a subscription stands after a subscribe reply: still at `since`
/// when the server recovers from there (the missed publications follow),
/// otherwise at the channel's position from the reply.
fn position_after(
    since: Option<&StreamPosition>,
    reply: &StreamPosition,
    recovered: Option<bool>,
) -> StreamPosition {
    match since {
        Some(since) if recovered == Some(true) && since.epoch == reply.epoch => since.clone(),
        _ => reply.clone(),
    }
}

fn reply_position(result: &SubscribeResult) -> StreamPosition {
    StreamPosition::new(result.epoch.clone(), result.offset)
}

/// The application dropped its [`Subscription`].
#[derive(Debug)]
pub(crate) struct Gone;

/// The connection task's end of a subscription. `position` is the last
/// publication queued to the application: what a resubscribe asks for, and
/// the line below which a publication is a duplicate.
#[derive(Debug)]
pub(crate) struct SubscriptionSink {
    events: mpsc::Sender<SubscriptionEvent>,
    end: oneshot::Sender<UnsubscribeReason>,
    position: StreamPosition,
}

impl SubscriptionSink {
    /// Starts a subscription from a successful subscribe reply, its
    /// `Subscribed` event already queued.
    pub(crate) fn open(
        channel: ChannelName,
        since: Option<&StreamPosition>,
        result: &SubscribeResult,
        buffer: usize,
    ) -> (SubscriptionSink, Subscription) {
        let reply = reply_position(result);
        let position = position_after(since, &reply, result.recovered);
        let (events, events_rx) = mpsc::channel(buffer.max(1));
        let (end, end_rx) = oneshot::channel();
        let first = SubscriptionEvent::Subscribed { position: reply, recovered: result.recovered };
        // The channel is new and holds at least one event.
        let _ = events.try_send(first);
        let subscription =
            Subscription { channel, events: events_rx, end: Some(end_rx), position: position.clone() };
        (SubscriptionSink { events, end, position }, subscription)
    }

    pub(crate) fn position(&self) -> &StreamPosition {
        &self.position
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.events.is_closed()
    }

    /// Applies the reply to an automatic resubscribe.
    pub(crate) async fn resubscribed(&mut self, result: &SubscribeResult) -> Result<(), Gone> {
        let reply = reply_position(result);
        self.position = position_after(Some(&self.position), &reply, result.recovered);
        self.send(SubscriptionEvent::Subscribed { position: reply, recovered: result.recovered }).await
    }

    /// Queues a publication unless it is at or below the last one queued in
    /// the same epoch. The server should never send such a duplicate; this
    /// check makes sure the application never sees one.
    pub(crate) async fn publication(
        &mut self,
        epoch: Option<Epoch>,
        publication: Publication,
        skipped: u64,
    ) -> Result<(), Gone> {
        let Some(epoch) = epoch else {
            // Ephemeral: no offset, so it neither moves the position nor can be a duplicate.
            return self.send(SubscriptionEvent::Publication { epoch: None, publication, skipped }).await;
        };
        if epoch == self.position.epoch && publication.offset <= self.position.offset {
            tracing::debug!(
                offset = publication.offset,
                last = self.position.offset,
                "duplicate publication dropped"
            );
            return Ok(());
        }
        let position = StreamPosition::new(epoch.clone(), publication.offset);
        self.send(SubscriptionEvent::Publication { epoch: Some(epoch), publication, skipped }).await?;
        self.position = position;
        Ok(())
    }

    /// Queues an event, waiting while the application's buffer is full.
    pub(crate) async fn send(&self, event: SubscriptionEvent) -> Result<(), Gone> {
        self.events.send(event).await.map_err(|_| Gone)
    }

    /// Ends the subscription. The reason does not take a buffer slot, so
    /// this never waits for the application.
    pub(crate) fn end(self, reason: UnsubscribeReason) {
        let _ = self.end.send(reason);
    }
}

#[cfg(test)]
mod tests {
    use fanfare_protocol::JsonData;

    use super::*;

    fn opened(offset: u64) -> (SubscriptionSink, Subscription) {
        let result = SubscribeResult { epoch: Epoch::new("e1"), offset, recovered: None };
        SubscriptionSink::open(ChannelName::new("news").unwrap(), None, &result, 8)
    }

    fn publication(offset: u64) -> Publication {
        Publication::new(offset, 0, None, JsonData::parse(offset.to_string()).unwrap())
    }

    async fn offsets_received(subscription: &mut Subscription, count: usize) -> Vec<u64> {
        let mut offsets = Vec::new();
        while offsets.len() < count {
            if let Some(SubscriptionEvent::Publication { publication, .. }) = subscription.next().await {
                offsets.push(publication.offset);
            }
        }
        offsets
    }

    #[tokio::test]
    async fn publications_at_or_below_the_last_offset_are_dropped() {
        let (mut sink, mut subscription) = opened(2);
        for offset in [1, 2, 3, 3, 2, 4] {
            sink.publication(Some(Epoch::new("e1")), publication(offset), 0).await.unwrap();
        }
        assert_eq!(offsets_received(&mut subscription, 2).await, [3, 4]);
        assert_eq!(subscription.position(), &StreamPosition::new(Epoch::new("e1"), 4));
    }

    #[tokio::test]
    async fn a_new_epoch_restarts_the_offsets() {
        let (mut sink, mut subscription) = opened(7);
        sink.publication(Some(Epoch::new("e2")), publication(1), 0).await.unwrap();
        assert_eq!(offsets_received(&mut subscription, 1).await, [1]);
        assert_eq!(sink.position(), &StreamPosition::new(Epoch::new("e2"), 1));
    }

    #[tokio::test]
    async fn ephemeral_publications_do_not_move_the_position() {
        let (mut sink, mut subscription) = opened(5);
        sink.publication(None, publication(0), 0).await.unwrap();
        assert_eq!(offsets_received(&mut subscription, 1).await, [0]);
        assert_eq!(subscription.position(), &StreamPosition::new(Epoch::new("e1"), 5));
        assert_eq!(sink.position().offset, 5);
    }

    #[tokio::test]
    async fn a_recovered_resubscribe_keeps_the_position_until_the_replay_arrives() {
        let (mut sink, mut subscription) = opened(3);
        let result = SubscribeResult { epoch: Epoch::new("e1"), offset: 9, recovered: Some(true) };
        sink.resubscribed(&result).await.unwrap();
        subscription.next().await;
        subscription.next().await;
        assert_eq!(subscription.position().offset, 3);
        sink.publication(Some(Epoch::new("e1")), publication(4), 0).await.unwrap();
        assert_eq!(offsets_received(&mut subscription, 1).await, [4]);
    }

    #[tokio::test]
    async fn an_unrecovered_resubscribe_jumps_to_the_channel_position() {
        let (mut sink, _subscription) = opened(3);
        let result = SubscribeResult { epoch: Epoch::new("e2"), offset: 9, recovered: Some(false) };
        sink.resubscribed(&result).await.unwrap();
        assert_eq!(sink.position(), &StreamPosition::new(Epoch::new("e2"), 9));
    }

    #[tokio::test]
    async fn the_end_reason_arrives_after_every_queued_event() {
        let (mut sink, mut subscription) = opened(0);
        sink.publication(Some(Epoch::new("e1")), publication(1), 0).await.unwrap();
        sink.end(UnsubscribeReason::Requested);
        assert!(matches!(subscription.next().await, Some(SubscriptionEvent::Subscribed { .. })));
        assert!(matches!(subscription.next().await, Some(SubscriptionEvent::Publication { .. })));
        let reason = UnsubscribeReason::Requested;
        assert_eq!(subscription.next().await, Some(SubscriptionEvent::Unsubscribed { reason }));
        assert_eq!(subscription.next().await, None);
    }
}
