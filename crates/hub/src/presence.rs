//! Presence of one channel, keyed by user: a user joins with their first
//! connection and leaves with their last. Keyed by the id's text, so a
//! Pusher id sent as `1` on one connection and `"1"` on another is one
//! member; the member keeps the id as its first connection sent it.

use std::collections::HashMap;

use fanfare_protocol::native::Member;
use fanfare_protocol::{JsonData, UserId};

#[derive(Default)]
pub(crate) struct Presence {
    members: HashMap<UserId, Presentee>,
}

struct Presentee {
    connections: u32,
    info: Option<JsonData>,
}

impl Presence {
    /// Counts one more connection of `user`; true when it is their first.
    pub fn join(&mut self, user: &UserId, info: Option<&JsonData>) -> bool {
        let entry = self.members.entry(user.clone()).or_insert(Presentee { connections: 0, info: None });
        entry.connections += 1;
        if entry.connections == 1 {
            entry.info = info.cloned();
            return true;
        }
        false
    }

    /// Counts one connection of `user` less; true when it was their last.
    pub fn leave(&mut self, user: &str) -> bool {
        let Some(entry) = self.members.get_mut(user) else { return false };
        entry.connections -= 1;
        if entry.connections == 0 {
            self.members.remove(user);
            return true;
        }
        false
    }

    pub fn members(&self) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .members
            .iter()
            .map(|(user, p)| Member { user: user.clone(), info: p.info.clone() })
            .collect();
        members.sort_by(|a, b| a.user.cmp(&b.user));
        members
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_with_two_connections_joins_once_and_leaves_once() {
        let mut presence = Presence::default();
        let alice = UserId::new("alice");
        assert!(presence.join(&alice, None));
        assert!(!presence.join(&alice, None));
        assert_eq!(presence.len(), 1);
        assert!(!presence.leave("alice"));
        assert!(presence.leave("alice"));
        assert!(presence.is_empty());
        assert!(!presence.leave("alice"), "leaving twice is harmless");
    }

    #[test]
    fn a_numeric_id_and_its_text_are_one_member_shown_as_first_joined() {
        let mut presence = Presence::default();
        let number = UserId::number(&1.into());
        assert!(presence.join(&number, None));
        assert!(!presence.join(&UserId::new("1"), None), "the same user's second connection");
        let members = presence.members();
        assert_eq!(members.len(), 1);
        assert!(members[0].user.is_number());
        assert!(!presence.leave("1"));
        assert!(presence.leave("1"));
    }
}
