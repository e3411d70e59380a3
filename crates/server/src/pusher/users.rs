//! Pusher users: which connections are signed in as which user of which
//! app, who watches whom (watchlists), and how many connections each app
//! holds. Not on the message path: touched on connect, sign-in and close.

use std::collections::HashMap;
use std::sync::Arc;

use fanfare_hub::{ConnId, Outbox};
use fanfare_protocol::UserId;
use parking_lot::Mutex;

type Key = (String, String);

#[derive(Default)]
pub struct SignedInUsers {
    users: Mutex<HashMap<Key, UserEntry>>,
    connections_per_app: Mutex<HashMap<String, usize>>,
}

#[derive(Default)]
struct UserEntry {
    /// This user's signed-in connections.
    connections: Vec<(ConnId, Arc<Outbox>)>,
    /// Connections whose watchlist names this user.
    watchers: Vec<(ConnId, Arc<Outbox>)>,
}

impl UserEntry {
    fn is_unused(&self) -> bool {
        self.connections.is_empty() && self.watchers.is_empty()
    }
}

/// What a sign-in changed.
pub struct SignedIn {
    /// Watchlist entries that are online / offline right now, as the
    /// watchlist wrote them.
    pub online: Vec<UserId>,
    pub offline: Vec<UserId>,
    /// When this was the user's first connection: who to tell they are online.
    pub notify_online: Vec<Arc<Outbox>>,
}

impl SignedInUsers {
    /// Counts a new connection of `app`; false when that would exceed `max`
    /// (0 = unlimited), and then nothing is counted.
    pub fn admit(&self, app: &str, max: usize) -> bool {
        let mut counts = self.connections_per_app.lock();
        let count = counts.entry(app.to_owned()).or_default();
        if max > 0 && *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    pub fn release(&self, app: &str) {
        let mut counts = self.connections_per_app.lock();
        if let Some(count) = counts.get_mut(app) {
            *count = count.saturating_sub(1);
        }
    }

    /// Signs `conn` in as `user`, registers it as a watcher of `watchlist`.
    pub fn sign_in(
        &self,
        app: &str,
        user: &str,
        conn: ConnId,
        outbox: &Arc<Outbox>,
        watchlist: &[UserId],
    ) -> SignedIn {
        let mut users = self.users.lock();
        let entry = users.entry((app.to_owned(), user.to_owned())).or_default();
        let first = entry.connections.is_empty();
        entry.connections.push((conn, outbox.clone()));
        let notify_online = if first { outboxes(&entry.watchers, conn) } else { Vec::new() };
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        for watched in watchlist {
            let entry = users.entry((app.to_owned(), watched.to_string())).or_default();
            entry.watchers.push((conn, outbox.clone()));
            match entry.connections.is_empty() {
                true => offline.push(watched.clone()),
                false => online.push(watched.clone()),
            }
        }
        SignedIn { online, offline, notify_online }
    }

    /// Undoes `sign_in` for a closing connection; returns who to tell the
    /// user went offline (when this was their last connection).
    pub fn sign_out(&self, app: &str, user: &str, conn: ConnId, watchlist: &[UserId]) -> Vec<Arc<Outbox>> {
        let mut users = self.users.lock();
        let mut notify_offline = Vec::new();
        let key = (app.to_owned(), user.to_owned());
        if let Some(entry) = users.get_mut(&key) {
            entry.connections.retain(|(c, _)| *c != conn);
            if entry.connections.is_empty() {
                notify_offline = outboxes(&entry.watchers, conn);
            }
            if entry.is_unused() {
                users.remove(&key);
            }
        }
        for watched in watchlist {
            let key = (app.to_owned(), watched.to_string());
            if let Some(entry) = users.get_mut(&key) {
                entry.watchers.retain(|(c, _)| *c != conn);
                if entry.is_unused() {
                    users.remove(&key);
                }
            }
        }
        notify_offline
    }
}

/// The user a signed-in Pusher connection is registered under in the
/// hub's connections, so that `terminate_connections` reaches it on every
/// node through `Hub::disconnect_user`. Scoped by app (two apps may have
/// a user of the same id) and kept apart from native users' token
/// subjects by the unit separators.
pub fn hub_user(app: &str, user: &str) -> String {
    format!("pusher\u{1f}{app}\u{1f}{user}")
}

/// The name a presence member that did not sign in is registered under in
/// the hub: apart from signed-in users, so `terminate_connections` leaves
/// it (as Pusher does), while a moderator's kick reaches it.
pub fn hub_member(app: &str, user: &str) -> String {
    format!("pusher-member\u{1f}{app}\u{1f}{user}")
}

fn outboxes(list: &[(ConnId, Arc<Outbox>)], except: ConnId) -> Vec<Arc<Outbox>> {
    list.iter().filter(|(c, _)| *c != except).map(|(_, o)| o.clone()).collect()
}

#[cfg(test)]
mod tests {
    use fanfare_hub::OutboxLimits;

    use super::*;

    fn outbox() -> Arc<Outbox> {
        Arc::new(Outbox::new(OutboxLimits::default()))
    }

    #[test]
    fn watchers_hear_of_the_first_sign_in_and_the_last_sign_out_only() {
        let users = SignedInUsers::default();
        let watcher = outbox();
        let seen = users.sign_in("app", "w", 1, &watcher, &["alice".into()]);
        assert_eq!((seen.online.len(), seen.offline), (0, vec![UserId::new("alice")]));
        let first = users.sign_in("app", "alice", 2, &outbox(), &[]);
        assert_eq!(first.notify_online.len(), 1);
        let second = users.sign_in("app", "alice", 3, &outbox(), &[]);
        assert!(second.notify_online.is_empty());
        assert!(users.sign_out("app", "alice", 2, &[]).is_empty());
        assert_eq!(users.sign_out("app", "alice", 3, &[]).len(), 1);
        users.sign_out("app", "w", 1, &["alice".into()]);
        assert!(users.users.lock().is_empty(), "nothing left behind");
    }

    #[test]
    fn hub_users_are_scoped_by_app() {
        assert_ne!(hub_user("app", "bob"), hub_user("other", "bob"));
    }

    #[test]
    fn admission_respects_the_app_limit() {
        let users = SignedInUsers::default();
        assert!(users.admit("app", 2));
        assert!(users.admit("app", 2));
        assert!(!users.admit("app", 2));
        users.release("app");
        assert!(users.admit("app", 2));
        assert!(users.admit("unlimited", 0));
    }
}
