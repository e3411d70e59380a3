//! The conformance suites every implementation of the cluster traits runs.
//!
//! Each macro expands into one `#[tokio::test]` per rule of the trait's
//! `# Contract`, given an async expression that builds a fresh, empty
//! engine (or `None` to skip, printing why, outside CI).

// The presence, occupancy and registry suites are modules of their own,
// added beside this one with their engines.
pub mod bus;
