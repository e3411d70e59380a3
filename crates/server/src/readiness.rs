//! Whether this node should be sent traffic: what `/ready` answers and the
//! `fanfare_ready` gauge shows.

use crate::server::AppState;

/// Whether the node takes traffic, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Draining,
    NearConnectionLimit,
    ClusterBusDown,
    StoreDown,
}

impl Readiness {
    pub fn is_ready(self) -> bool {
        self == Self::Ready
    }

    /// The `status` `/ready` answers.
    pub fn status(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Draining => "draining",
            Self::NearConnectionLimit => "near connection limit",
            Self::ClusterBusDown => "cluster bus unavailable",
            Self::StoreDown => "store unavailable",
        }
    }
}

/// Ready to take traffic: the store takes writes, the node is not near
/// its connection limit and we are not draining.
/// (The whole state: whether we drain is the server's, not a slice's.)
pub async fn readiness(app: &AppState) -> Readiness {
    if app.draining() {
        Readiness::Draining
    } else if app.capacity.near_limit() {
        Readiness::NearConnectionLimit
    } else if !app.hub.cluster_bus_up() {
        Readiness::ClusterBusDown
    } else if !app.hub.ready().await {
        Readiness::StoreDown
    } else {
        Readiness::Ready
    }
}
