//! Every store in this crate runs the shared conformance suite.

use fanfare_protocol::{ChannelName, StreamPosition};
use fanfare_store::conformance::Subject;
use fanfare_store::{
    AppendReceipt, AppendRequest, Durability, EmbeddedOptions, EmbeddedStore, HistoryPage, HistoryQuery,
    HistoryStore, StoreError,
};

fn embedded() -> Subject {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens");
    Subject::keeping(store, dir)
}

/// The embedded store with every append of the suite asking for
/// [`Durability::Buffered`] (the suite's own requests ask for fsync).
fn embedded_buffered() -> Subject {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("the store opens");
    Subject::keeping(Buffered(store), dir)
}

struct Buffered<S>(S);

#[async_trait::async_trait]
impl<S: HistoryStore> HistoryStore for Buffered<S> {
    async fn enqueue(&self, request: AppendRequest) -> Result<AppendReceipt, StoreError> {
        self.0.enqueue(AppendRequest { durability: Durability::Buffered, ..request }).await
    }

    async fn read(&self, channel: &ChannelName, query: HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.0.read(channel, query).await
    }

    async fn position(&self, channel: &ChannelName) -> Result<StreamPosition, StoreError> {
        self.0.position(channel).await
    }
}

mod memory {
    fanfare_store::history_store_conformance!(async { fanfare_store::MemoryStore::new() });
}

mod embedded_fsync {
    fanfare_store::history_store_conformance!(async { super::embedded() });
}

mod embedded_buffered {
    fanfare_store::history_store_conformance!(async { super::embedded_buffered() });
}
