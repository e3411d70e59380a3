//! Who a connection is, and which channels its token grants.

use std::collections::HashSet;
use std::sync::Arc;

use fanfare_protocol::{ChannelName, JsonData};

/// The verified identity of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`; `""` for an anonymous connection.
    pub user: Arc<str>,
    /// The channels claim, if the token had one. `None` grants nothing to
    /// namespaces with `subscribe = "token_claim"`.
    pub grants: Option<ChannelGrants>,
    /// The token's `info` claim, shown to other members in presence.
    pub info: Option<JsonData>,
    /// The `moderate` claim: the channels (and `ns:*` namespaces) this
    /// user may moderate, in the syntax of the channels claim.
    pub moderates: Option<ChannelGrants>,
    /// The `host` claim: the channels (and `ns:*` namespaces) where this
    /// user publishes in a shaped namespace's priority lane.
    pub hosts: Option<ChannelGrants>,
    /// The `members` claim: the members channels (and `ns:*` namespaces)
    /// whose members this user may add and remove, where the namespace's
    /// `manage_members` is `"grant"`.
    pub manages: Option<ChannelGrants>,
    /// The token's `exp`, in seconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

impl Identity {
    /// A connection without a token.
    pub fn anonymous() -> Self {
        Self {
            user: Arc::from(""),
            grants: None,
            info: None,
            moderates: None,
            hosts: None,
            manages: None,
            expires_at: None,
        }
    }

    #[cfg(test)]
    pub fn is_anonymous(&self) -> bool {
        self.user.is_empty()
    }

    /// Whether the token lets this user moderate `channel`.
    pub fn moderates(&self, channel: &ChannelName) -> bool {
        self.moderates.as_ref().is_some_and(|grants| grants.allows(channel))
    }

    /// Whether the token makes this user a host of `channel`.
    pub fn hosts(&self, channel: &ChannelName) -> bool {
        self.hosts.as_ref().is_some_and(|grants| grants.allows(channel))
    }

    /// Whether the token lets this user add and remove `channel`'s members.
    pub fn manages_members(&self, channel: &ChannelName) -> bool {
        self.manages.as_ref().is_some_and(|grants| grants.allows(channel))
    }

    /// Whether the token grants `channel` (false without a channels claim).
    #[cfg(test)]
    pub fn may_access(&self, channel: &ChannelName) -> bool {
        self.grants.as_ref().is_some_and(|grants| grants.allows(channel))
    }
}

/// Channels a token grants: exact names, and whole namespaces (`ns:*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelGrants {
    channels: HashSet<Box<str>>,
    namespaces: HashSet<Box<str>>,
}

/// An entry of the channels claim that is neither a channel name nor `ns:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadGrant(pub String);

impl ChannelGrants {
    /// Reads the entries of a channels claim: `ns:*` grants every channel
    /// of namespace `ns`; anything else must be a valid channel name and
    /// grants exactly that channel.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, BadGrant> {
        let mut grants = Self::default();
        for entry in entries {
            match entry.strip_suffix(":*") {
                Some(namespace) if is_namespace_name(namespace) => {
                    grants.namespaces.insert(namespace.into());
                }
                Some(_) => return Err(BadGrant(entry.to_owned())),
                None => {
                    let channel = ChannelName::new(entry).map_err(|_| BadGrant(entry.to_owned()))?;
                    grants.channels.insert(channel.as_str().into());
                }
            }
        }
        Ok(grants)
    }

    pub fn allows(&self, channel: &ChannelName) -> bool {
        self.namespaces.contains(channel.namespace()) || self.channels.contains(channel.as_str())
    }

    /// Whether the grants hold every channel of `namespace` (`ns:*`).
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }
}

fn is_namespace_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(':') && ChannelName::new(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    #[test]
    fn a_namespace_grant_allows_its_channels_only() {
        let grants = ChannelGrants::parse(["chat:*"]).unwrap();
        assert!(grants.allows(&channel("chat:x")));
        assert!(grants.allows(&channel("chat:acme/general")));
        assert!(!grants.allows(&channel("news:x")));
        assert!(!grants.allows(&channel("chat")), "a name without `:` is in the default namespace");
        assert!(!grants.allows(&channel("chatty:x")));
    }

    #[test]
    fn an_exact_grant_allows_only_that_channel() {
        let grants = ChannelGrants::parse(["chat:room-1", "lobby"]).unwrap();
        assert!(grants.allows(&channel("chat:room-1")));
        assert!(grants.allows(&channel("lobby")));
        assert!(!grants.allows(&channel("chat:room-2")));
        assert!(!grants.allows(&channel("chat:room-10")));
    }

    #[test]
    fn entries_that_are_not_channels_or_namespaces_are_refused() {
        for bad in ["", "*", ":*", "a b", "a:b:*", "chat:*x"] {
            assert!(ChannelGrants::parse([bad]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn anonymous_identities_have_no_grants() {
        let anonymous = Identity::anonymous();
        assert!(anonymous.is_anonymous());
        assert!(!anonymous.may_access(&channel("chat:x")));
    }
}
