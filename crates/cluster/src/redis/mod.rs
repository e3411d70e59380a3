//! Redis implementations of the cluster engines.
