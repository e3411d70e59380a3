//! Stream positions: `(epoch, offset)`.
//!
//! Every publication in a channel gets the next offset (1, 2, 3 …) within an
//! epoch. The epoch is an opaque string that changes whenever the channel's
//! stream is lost or reset, so a client holding an old position can tell
//! that its offsets no longer mean the same thing.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An opaque stream identity. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(Arc<str>);

impl Epoch {
    pub fn new(value: &str) -> Self {
        Self(Arc::from(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a channel's stream stands: the offset of its latest publication
/// (0 for a channel that never had one) within an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamPosition {
    pub epoch: Epoch,
    pub offset: u64,
}

impl StreamPosition {
    pub fn new(epoch: Epoch, offset: u64) -> Self {
        Self { epoch, offset }
    }
}
