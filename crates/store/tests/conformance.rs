//! Every store in this crate runs the shared conformance suite.

use fanfare_store::conformance::Subject;
use fanfare_store::{Durability, EmbeddedOptions, EmbeddedStore};

fn embedded(durability: Durability) -> Subject {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = EmbeddedOptions { durability, ..EmbeddedOptions::default() };
    let store = EmbeddedStore::open(dir.path(), options).expect("the store opens");
    Subject::keeping(store, dir)
}

mod memory {
    fanfare_store::history_store_conformance!(async { fanfare_store::MemoryStore::new() });
}

mod embedded_fsync {
    fanfare_store::history_store_conformance!(async { super::embedded(super::Durability::Fsync) });
}

mod embedded_buffered {
    fanfare_store::history_store_conformance!(async { super::embedded(super::Durability::Buffered) });
}
