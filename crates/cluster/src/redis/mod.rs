//! Redis implementations of the cluster engines.

mod bus;

pub use bus::{RedisBus, RedisBusOptions};
