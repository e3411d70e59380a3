//! Replies to a native connection's pipelined publishes.
//!
//! A `publish` does not hold up the connection while its append becomes
//! durable: the session hands it to the hub, keeps the receipt here and
//! reads the next command. Replies still go out in command order:
//!
//! 1. A publish's receipt is queued behind the earlier ones.
//! 2. Whenever the connection wakes, the replies whose outcome is known
//!    are written from the front of the queue, up to the first that is not.
//! 3. Any other command (and any error reply) first waits for the queue to
//!    empty, so it is answered after every publish sent before it.
//! 4. At most [`MAX_PIPELINED`] publishes wait at once; the next one waits
//!    for the oldest reply, which bounds the connection's memory.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fanfare_hub::{Outbox, PublishReceipt};
use fanfare_protocol::native::{self, PublishResult};

use crate::policy::hub_error;

/// Publishes of one connection waiting for their reply at once.
pub(crate) const MAX_PIPELINED: usize = 64;

/// Receipts of publishes not answered yet, oldest first, with their
/// command ids.
#[derive(Default)]
pub(crate) struct PendingReplies {
    queue: VecDeque<(u64, PublishReceipt)>,
}

impl PendingReplies {
    /// Queues a publish's reply (step 1); the caller made room first.
    pub fn push(&mut self, id: u64, receipt: PublishReceipt) {
        debug_assert!(self.queue.len() < MAX_PIPELINED);
        self.queue.push_back((id, receipt));
    }

    /// Writes the replies that are ready, in order (step 2); ready once
    /// none is left waiting.
    pub fn poll_send(&mut self, cx: &mut Context<'_>, outbox: &Outbox) -> Poll<()> {
        self.poll_send_until(cx, outbox, 0)
    }

    /// Waits until every queued reply is written (step 3).
    pub async fn flush(&mut self, outbox: &Outbox) {
        poll_fn(|cx| self.poll_send_until(cx, outbox, 0)).await;
    }

    /// Waits until one more publish may be queued (step 4).
    pub async fn room(&mut self, outbox: &Outbox) {
        poll_fn(|cx| self.poll_send_until(cx, outbox, MAX_PIPELINED - 1)).await;
    }

    fn poll_send_until(&mut self, cx: &mut Context<'_>, outbox: &Outbox, left: usize) -> Poll<()> {
        while self.queue.len() > left {
            let Some((id, receipt)) = self.queue.front_mut() else { break };
            let frame = match ready!(Pin::new(receipt).poll(cx)) {
                Ok(published) => native::encode_reply(*id, &PublishResult::from(published)),
                Err(error) => native::encode_error(*id, &hub_error(error)),
            };
            outbox.push(frame);
            self.queue.pop_front();
        }
        Poll::Ready(())
    }
}
