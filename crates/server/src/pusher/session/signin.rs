//! `pusher:signin` and watchlists: a connection proves who it is with a
//! signed `user_data`; then it may subscribe to `#server-to-user-<id>`, be
//! terminated by the HTTP API, and hear when users on its watchlist come
//! online or go offline.

use std::sync::Arc;

use fanfare_hub::{CloseReason, Outbox};
use fanfare_protocol::pusher::{
    self, MAX_WATCHLIST_LEN, PusherErrorCode, UserData, WatchlistEvent, WatchlistStatus,
};
use fanfare_protocol::{CloseCode, UserId};

use super::{PusherSession, SignedIn};
use crate::gateway::connection::Next;
use crate::gateway::connection_counts::{Counted, open_user};

impl PusherSession {
    pub(super) async fn sign_in(&mut self, auth: &str, user_data: &str) -> Next {
        let settings = &self.pusher_app.settings;
        if !pusher::verify_user_auth(&settings.key, &settings.secret, &self.socket_id, user_data, auth) {
            self.send_error(PusherErrorCode::Unauthorized, "invalid signin signature");
            return Next::Close(CloseReason::new(CloseCode::Unauthorized));
        }
        let mut user = match UserData::parse(user_data) {
            Ok(user) => user,
            Err(error) => {
                self.send_error(PusherErrorCode::Unauthorized, &error.to_string());
                return Next::Close(CloseReason::new(CloseCode::Unauthorized));
            }
        };
        if let Some(current) = &self.signed_in {
            if current.id != user.id {
                self.send_error(PusherErrorCode::Unauthorized, "already signed in as another user");
                return Next::Close(CloseReason::new(CloseCode::Unauthorized));
            }
            return Next::Continue;
        }
        let hub_user: Arc<str> =
            crate::pusher::users::hub_user(self.pusher_app.id(), user.id.as_str()).into();
        let slot = match open_user(&self.app.connections_per_user, &hub_user) {
            Ok(slot) => slot,
            Err(error) => {
                self.send_error(PusherErrorCode::TooManyConnections, &error.message);
                return Next::Close(CloseReason::new(CloseCode::TooManyConnections));
            }
        };
        if user.watchlist.len() > MAX_WATCHLIST_LEN {
            user.watchlist.truncate(MAX_WATCHLIST_LEN);
            self.send_error(
                PusherErrorCode::WatchlistLimit,
                "only the first 100 watchlist entries are watched",
            );
        }
        self.outbox.push(pusher::encode_signin_success(user_data));
        self.register_user(user, hub_user, slot);
        self.authenticated();
        self.track_after_signin().await;
        Next::Continue
    }

    fn register_user(&mut self, user: UserData, hub_user: Arc<str>, slot: Option<Counted<Arc<str>>>) {
        let app_id = self.pusher_app.id();
        let users = &self.app.pusher.users;
        let signed = users.sign_in(app_id, user.id.as_str(), self.conn, &self.outbox, &user.watchlist);
        if self.app.pusher.continuity.is_some() {
            self.tracking = Some(super::continuity::Tracking::new(&hub_user));
        }
        self.app.hub.connections().register(self.conn, hub_user, self.outbox.clone());
        notify(&signed.notify_online, WatchlistStatus::Online, &user.id);
        let mut events = Vec::new();
        if !signed.online.is_empty() {
            events.push(WatchlistEvent { status: WatchlistStatus::Online, user_ids: signed.online });
        }
        if !signed.offline.is_empty() {
            events.push(WatchlistEvent { status: WatchlistStatus::Offline, user_ids: signed.offline });
        }
        if !events.is_empty() {
            self.outbox.push(pusher::encode_watchlist_events(&events));
        }
        self.signed_in =
            Some(SignedIn { id: user.id, info: user.user_info, watchlist: user.watchlist, _slot: slot });
    }

    /// On close: the user's last connection going tells their watchers.
    pub(super) fn sign_out(&mut self) {
        let Some(user) = self.signed_in.take() else { return };
        let users = &self.app.pusher.users;
        let watchers = users.sign_out(self.pusher_app.id(), user.id.as_str(), self.conn, &user.watchlist);
        notify(&watchers, WatchlistStatus::Offline, &user.id);
    }
}

/// Tells `watchers` about `user`, its id in the form it signed in with.
fn notify(watchers: &[Arc<Outbox>], status: WatchlistStatus, user: &UserId) {
    if watchers.is_empty() {
        return;
    }
    let frame = pusher::encode_watchlist_events(&[WatchlistEvent { status, user_ids: vec![user.clone()] }]);
    for watcher in watchers {
        watcher.push(frame.clone());
    }
}
