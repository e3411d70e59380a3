//! The conformance suites every implementation of the cluster traits runs.
//!
//! Each macro expands into one `#[tokio::test]` per rule of the trait's
//! `# Contract`, given an async expression that builds a fresh, empty
//! engine (or `None` to skip, printing why, outside CI).
//!
//! The presence, occupancy, registry and dead-letter suites take an `Option<`[`Subject`]`>`:
//! the engine's shared state (a private server) and a way to open another
//! handle on it, each with its own connection, as another node would have
//! one; the bus suite takes a `BusSubject` (nodes on one engine, a link to
//! cut, an engine to kill). Cases run on a multi-threaded runtime, so the
//! invoking crate needs `tokio` with the `macros` and `rt-multi-thread`
//! features. Compiled always (not only under `cfg(test)`) so engines in
//! other crates can run the suites.

pub mod bus;
pub mod dead_letters;
pub mod occupancy;
pub mod presence;
pub mod rate_limits;
pub mod registry;
pub mod sanctions;
mod subject;
pub mod webhook_journal;

pub use subject::Subject;
