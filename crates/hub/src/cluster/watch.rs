//! Watching a channel's live frames while this node has subscribers for it.
//!
//! The algorithm, one task for every channel so watch and unwatch of a
//! channel never overtake each other:
//! 1. A subscribe asks the watcher for its channel ([`WatchCommand::Watch`])
//!    after registering the subscriber, and before reading history.
//! 2. A channel not yet watched: tell the receiver to hold its frames
//!    (`Expect`), watch it on the bus (returns once the engine confirmed),
//!    then read its position from the store and hand it to the receiver
//!    (`Start`). Every publication after that position is on the bus (or
//!    its loss will show as a gap); every one up to it is in history, which
//!    each subscriber reads after this. Then answer.
//! 3. A channel already watched is answered at once.
//! 4. When the last local subscriber leaves, the hub asks to unwatch; the
//!    watcher unwatches only if nobody subscribed again meanwhile, and tells
//!    the receiver to forget the channel.

use std::collections::HashSet;
use std::sync::Arc;

use fanfare_cluster::ClusterError;
use fanfare_protocol::ChannelName;
use tokio::sync::{mpsc, oneshot};

use super::receive::Command;
use crate::HubError;
use crate::hub::Shared;

/// Commands waiting for the watcher.
pub(crate) const WATCH_QUEUE: usize = 65_536;

pub(crate) enum WatchCommand {
    Watch(ChannelName, oneshot::Sender<Result<(), HubError>>),
    Unwatch(ChannelName),
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<WatchCommand>,
    receiver: mpsc::Sender<Command>,
) {
    let Some(cluster) = &shared.cluster else { return };
    let bus = &cluster.engines.bus;
    let mut watched: HashSet<ChannelName> = HashSet::new();
    while let Some(command) = commands.recv().await {
        match command {
            WatchCommand::Watch(channel, reply) => {
                if watched.contains(&channel) {
                    let _ = reply.send(Ok(()));
                    continue;
                }
                let outcome = start_watching(&shared, &channel, &receiver).await;
                if outcome.is_ok() {
                    watched.insert(channel);
                }
                let _ = reply.send(outcome);
            }
            WatchCommand::Unwatch(channel) => {
                if !watched.contains(&channel) || shared.registry.get(&channel).is_some() {
                    continue;
                }
                watched.remove(&channel);
                if let Err(error) = bus.unwatch(&channel).await {
                    tracing::debug!(%channel, %error, "unwatch failed; frames of it are ignored");
                }
                let _ = receiver.send(Command::Forget(channel)).await;
            }
        }
    }
}

/// Step 2.
async fn start_watching(
    shared: &Shared,
    channel: &ChannelName,
    receiver: &mpsc::Sender<Command>,
) -> Result<(), HubError> {
    let Some(cluster) = &shared.cluster else { return Ok(()) };
    if !cluster.engines.bus.is_up() {
        // Fail fast: waiting out the bus's watch timeout here would hold
        // up every other channel's watch behind this one.
        let down = std::io::Error::new(std::io::ErrorKind::NotConnected, "the cluster bus is down");
        return Err(HubError::Cluster(ClusterError::Unavailable {
            backend: "redis",
            source: Arc::new(down),
        }));
    }
    receiver.send(Command::Expect(channel.clone())).await.map_err(|_| HubError::ShuttingDown)?;
    let watched = cluster.engines.bus.watch(channel).await;
    let position = match watched {
        Ok(()) => shared.store.position(channel).await.map_err(HubError::from),
        Err(error) => Err(HubError::Cluster(error)),
    };
    match position {
        Ok(position) => {
            let _ = receiver.send(Command::Start(channel.clone(), position)).await;
            Ok(())
        }
        Err(error) => {
            let _ = cluster.engines.bus.unwatch(channel).await;
            let _ = receiver.send(Command::Forget(channel.clone())).await;
            Err(error)
        }
    }
}
