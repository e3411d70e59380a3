//! The publications this node appended, for whoever acts on them after
//! the store (the server's feed notices and offline webhooks): only for
//! channels whose options ask ([`ChannelOptions::observed`]), only on the
//! node that accepted them, once each, in each channel's offset order.
//!
//! The queue is bounded; a full queue drops the newest and counts it
//! (`fanfare_hub_observed_appends_dropped_total`): the publication stands,
//! only what the observer would have done after it is lost.
//!
//! [`ChannelOptions::observed`]: crate::ChannelOptions::observed

use std::sync::OnceLock;

use fanfare_protocol::{ChannelName, Epoch, Publication};
use metrics::{Counter, counter};
use tokio::sync::mpsc;

/// A publication appended by this node in an observed channel.
#[derive(Debug, Clone)]
pub struct ObservedAppend {
    pub channel: ChannelName,
    pub epoch: Epoch,
    pub publication: Publication,
}

pub(crate) struct AppendSink {
    sender: OnceLock<mpsc::Sender<ObservedAppend>>,
    dropped: Counter,
}

impl AppendSink {
    pub fn new() -> Self {
        Self { sender: OnceLock::new(), dropped: counter!("fanfare_hub_observed_appends_dropped_total") }
    }

    /// The receiving end; only the first caller gets one.
    pub fn listen(&self, capacity: usize) -> Option<mpsc::Receiver<ObservedAppend>> {
        let (tx, rx) = mpsc::channel(capacity);
        self.sender.set(tx).ok().map(|()| rx)
    }

    /// Whether anyone took the receiving end (else nothing is observed).
    pub fn is_listening(&self) -> bool {
        self.sender.get().is_some()
    }

    pub fn emit(&self, append: ObservedAppend) {
        let Some(sender) = self.sender.get() else { return };
        if sender.try_send(append).is_err() {
            self.dropped.increment(1);
            tracing::warn!("the observed-appends queue is full: a feed notice or offline webhook is lost");
        }
    }
}
