//! History stores: where a channel's publications get their offsets and
//! stay for recovery.
//!
//! On the message path the hub hands each durable publication to a
//! [`HistoryStore`]; the store is the single authority for the channel's
//! offsets, assigns the next one, makes the publication durable, and only
//! then answers. The store knows nothing about the hub, connections or wire
//! formats.
//!
//! Implementations:
//! - [`MemoryStore`] (`memory://`): tests and caches; an epoch per process.
//! - [`EmbeddedStore`] (`embedded:///path`): fjall on local disk with group
//!   commit, the zero-configuration default of `fanfare serve`.
//! - [`RedisStore`] (`redis://…`): one shared Redis for a cluster; it also
//!   publishes each append as a live frame.
//!
//! Every implementation passes the same [`conformance`] suite.
//!
//! The same store values also keep conversation state beside the history:
//! [`CursorStore`] (read cursors, `cursors.rs`), and channel members and
//! each user's channels ([`MemberStore`], suite in [`members_conformance`]),
//! which members namespaces and per-user feeds need, and where a user who
//! lost a connection resumes each channel ([`ResumePoints`], suite in
//! [`resume_conformance`]), which Pusher continuity needs.

pub mod conformance;
mod cursors;
mod embedded;
mod error;
mod history;
mod members;
pub mod members_conformance;
mod memory;
mod redis;
mod resume;
pub mod resume_conformance;

pub use cursors::{CursorStore, MAX_CURSORS_PER_READ, MarkOutcome};
pub use embedded::{BootId, EmbeddedOptions, EmbeddedStats, EmbeddedStore, LastStop, SweepReport};
pub use error::StoreError;
pub use history::*;
pub use members::{MAX_MEMBER_CHANGE, MAX_MEMBER_PAGE, MemberLimits, MemberStore, PageAfter};
pub use memory::MemoryStore;
pub use redis::{RedisStore, RedisStoreOptions};
pub use resume::{MAX_RESUME_POINTS_PER_SAVE, ResumePoint, ResumePoints, Validity};
