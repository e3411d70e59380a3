//! [`Announcements`]: what listeners of lifecycle events (webhooks) were
//! last told about a channel or a member, cluster-wide.
//!
//! The engines decide transitions exactly once ([`Occupancy`](crate::Occupancy),
//! [`PresenceStore`](crate::PresenceStore)), but a closing transition is
//! announced only after a hold, so that a reconnect within the hold makes
//! no `vacated`+`occupied` (`removed`+`added`) pair. With several nodes the
//! closing and the reopening are decided on different nodes, so a hold
//! kept by one node cannot be cancelled by another: the hold lives here.

use std::time::Duration;

use fanfare_protocol::{ChannelName, UserId};

use crate::ClusterError;

/// What an announcement is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Announced {
    /// A channel: occupied / vacated.
    Channel(ChannelName),
    /// A member of a presence channel: added / removed.
    Member(ChannelName, UserId),
}

/// The told state of every channel and member: *vacant* (nothing told, or
/// told closed), *open* (told opened), or *closing since t* (a closing was
/// decided at t and waits for its hold).
///
/// # Contract
/// - [`opening`](Announcements::opening) is called by the node whose
///   engine decided an opening transition; it answers `true` (announce it)
///   when the state was vacant, or closing since longer than `grace` (the
///   node holding that closing is gone); `false` when already open or
///   closing within `grace`: the reopening cancels the held closing and
///   neither is announced. The state becomes open.
/// - [`closing`](Announcements::closing) is called by the node whose engine
///   decided a closing transition: open becomes closing since now.
/// - [`release`](Announcements::release), after the hold, answers `true`
///   (announce the closing) exactly when the state is closing and the
///   subject is still closed in the engine (no subscription left, the user
///   has no connection left); the state becomes vacant. When the subject
///   is open again the state becomes open and nothing is announced.
/// - Each call is atomic: of concurrent calls on one subject exactly one
///   sees each state change.
#[async_trait::async_trait]
pub trait Announcements: Send + Sync + 'static {
    async fn opening(&self, subject: &Announced, grace: Duration) -> Result<bool, ClusterError>;
    async fn closing(&self, subject: &Announced) -> Result<(), ClusterError>;
    async fn release(&self, subject: &Announced) -> Result<bool, ClusterError>;
}
