//! Shadow-bans: a shadow-banned user publishes as usual, but only that
//! user's own connections receive its publications (`Hub::publish_shadowed`).

use fanfare_hub::Publish;
use fanfare_protocol::StreamPosition;

use crate::pusher::users::{hub_member, hub_user};
use crate::server::AppState;

/// The names `user`'s connections are registered under in the hub: its
/// native connections (the token's `sub`), and in every Pusher app its
/// signed-in connections and its presence members (as a kick finds them).
pub fn own_connections(app: &AppState, user: &str) -> Vec<String> {
    let pusher = app
        .pusher
        .apps
        .iter()
        .flat_map(|pusher_app| [hub_user(pusher_app.id(), user), hub_member(pusher_app.id(), user)]);
    std::iter::once(user.to_owned()).chain(pusher).collect()
}

/// Publishes `publish` by the shadow-banned `user`: to its own
/// connections subscribed to the channel, on every node; what the author
/// is told for a durable one is the channel's current position.
pub async fn publish(
    app: &AppState,
    user: &str,
    publish: Publish,
) -> Result<Option<StreamPosition>, fanfare_hub::HubError> {
    app.hub.publish_shadowed(publish, own_connections(app, user)).await
}
