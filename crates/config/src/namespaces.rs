//! Per-namespace channel settings and their lookup by channel name.
//!
//! Every channel belongs to a namespace: the part of its name before the
//! first `:` (`chat:acme/general` → `chat`), or the default namespace `""`
//! for names without `:`. A namespace's settings are the built-in defaults
//! (with `store.durability` as the durability), overridden by
//! `[channel_defaults]`, overridden by `[namespaces.NAME]`.
//! A namespace that is not configured gets the defaults, which are safe:
//! only the server (the HTTP API) may publish.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fanfare_cluster::Rate;
use fanfare_hub::ChannelOptions;
use fanfare_protocol::ChannelName;
use fanfare_store::{Durability, Retention};

use super::content::ContentRules;
use super::duration::HumanDuration;
use super::kinds::{ManageMembers, PublishPolicy, SubscribePolicy};
use super::rate::HumanRate;
use super::raw::RawNamespace;
use super::shaping::ShapingRules;

/// Everything the server decides per channel, resolved from its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceSettings {
    /// What the hub needs: history, recovery limit, presence, idempotency.
    pub channel: ChannelOptions,
    pub publish: PublishPolicy,
    pub subscribe: SubscribePolicy,
    /// Largest publication payload (JSON text) accepted, in bytes.
    pub max_message_bytes: usize,
    /// Whether anonymous connections may subscribe.
    pub allow_anonymous: bool,
    /// Token buckets and slow mode for client publications.
    pub publish_limits: PublishLimits,
    /// What clients' publications are checked against besides the size:
    /// blocklist, links, pre-publish hook. Set by validation (`content`
    /// keys merge over the defaults' before compiling), not by `apply`.
    pub content: ContentRules,
    /// Huge-room shaping; `None`: off. Set by validation, like `content`;
    /// its hub part is also in `channel.shaping`.
    pub shaping: Option<ShapingRules>,
    /// Who besides the HTTP API adds and removes members (a members
    /// namespace's `manage_members`).
    pub manage_members: ManageMembers,
    /// At most one typing indicator per user per channel per this long
    /// (`typing_interval`); clients show one for this plus 2 s.
    pub typing_interval: Duration,
    /// At most one read receipt (and one delivery acknowledgement) per user
    /// per channel per this long (`receipt_interval`).
    pub receipt_interval: Duration,
}

/// The limits on publications by connections (the HTTP API is not
/// limited by them). `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishLimits {
    /// Per connection, on its node.
    pub per_connection: Option<Rate>,
    /// Per user across the namespace's channels (per connection for an
    /// anonymous one), cluster-wide.
    pub per_user: Option<Rate>,
    /// Per channel, whoever publishes, cluster-wide.
    pub per_channel: Option<Rate>,
    /// One publication per user per this long in each channel (zero: off);
    /// a moderator may change it per channel at run time.
    pub slow_mode: Duration,
}

impl Default for NamespaceSettings {
    /// History on (1,000 publications, 24 h) and synced to disk, publish by
    /// the server only, subscribe by anyone, presence off.
    fn default() -> Self {
        Self {
            channel: ChannelOptions {
                history: Retention { max_len: 1000, max_age: Duration::from_secs(24 * 3600) },
                recovery_limit: 1000,
                presence: false,
                join_leave: false,
                idempotency_window: Duration::from_secs(5 * 60),
                durability: Durability::Fsync,
                shaping: None,
                observed: false,
            },
            publish: PublishPolicy::Server,
            subscribe: SubscribePolicy::Anyone,
            max_message_bytes: 64 * 1024,
            allow_anonymous: true,
            publish_limits: PublishLimits::default(),
            content: ContentRules::default(),
            shaping: None,
            manage_members: ManageMembers::Server,
            typing_interval: Duration::from_secs(3),
            receipt_interval: Duration::from_secs(1),
        }
    }
}

impl NamespaceSettings {
    /// Overrides the keys `raw` sets.
    pub(crate) fn apply(&mut self, raw: &RawNamespace) {
        let channel = &mut self.channel;
        set(&mut channel.history.max_len, raw.history_size);
        set(&mut channel.history.max_age, raw.history_ttl.map(|d| d.0));
        set(&mut channel.recovery_limit, raw.recovery_limit);
        set(&mut channel.presence, raw.presence);
        set(&mut channel.join_leave, raw.join_leave);
        set(&mut channel.idempotency_window, raw.idempotency_window.map(|d| d.0));
        set(&mut channel.durability, raw.durability.map(Into::into));
        set(&mut self.publish, raw.publish);
        set(&mut self.subscribe, raw.subscribe);
        set(&mut self.max_message_bytes, raw.max_message_bytes);
        set(&mut self.allow_anonymous, raw.allow_anonymous);
        let limits = &mut self.publish_limits;
        set(&mut limits.per_connection, raw.publish_rate_per_connection.map(|r| r.0));
        set(&mut limits.per_user, raw.publish_rate_per_user.map(|r| r.0));
        set(&mut limits.per_channel, raw.publish_rate_per_channel.map(|r| r.0));
        set(&mut limits.slow_mode, raw.slow_mode.map(|d| d.0));
        set(&mut self.manage_members, raw.manage_members);
        set(&mut self.typing_interval, raw.typing_interval.map(|d| d.0));
        set(&mut self.receipt_interval, raw.receipt_interval.map(|d| d.0));
    }

    /// Every key, as written in the configuration; `secret` maps the
    /// content hook's secret (redaction).
    pub(crate) fn to_raw(&self, secret: &dyn Fn(&str) -> String) -> RawNamespace {
        let channel = &self.channel;
        RawNamespace {
            history_size: Some(channel.history.max_len),
            history_ttl: Some(HumanDuration(channel.history.max_age)),
            recovery_limit: Some(channel.recovery_limit),
            presence: Some(channel.presence),
            join_leave: Some(channel.join_leave),
            publish: Some(self.publish),
            subscribe: Some(self.subscribe),
            max_message_bytes: Some(self.max_message_bytes),
            allow_anonymous: Some(self.allow_anonymous),
            idempotency_window: Some(HumanDuration(channel.idempotency_window)),
            durability: Some(channel.durability.into()),
            publish_rate_per_connection: Some(HumanRate(self.publish_limits.per_connection)),
            publish_rate_per_user: Some(HumanRate(self.publish_limits.per_user)),
            publish_rate_per_channel: Some(HumanRate(self.publish_limits.per_channel)),
            slow_mode: Some(HumanDuration(self.publish_limits.slow_mode)),
            typing_interval: Some(HumanDuration(self.typing_interval)),
            receipt_interval: Some(HumanDuration(self.receipt_interval)),
            content: Some(self.content.to_raw(secret)),
            shaping: self.shaping.map(ShapingRules::to_raw),
            manage_members: Some(self.manage_members),
        }
    }

    /// Sets (or clears) the namespace's shaping, in both places.
    pub(crate) fn set_shaping(&mut self, shaping: Option<ShapingRules>) {
        self.channel.shaping = shaping.map(|rules| rules.hub);
        self.shaping = shaping;
    }

    /// These settings with a built-in namespace's fixed permissions
    /// ([`built_in_policies`]); unchanged for any other name.
    pub(crate) fn built_in(mut self, name: &str) -> Self {
        if let Some((subscribe, publish)) = built_in_policies(name) {
            self.subscribe = subscribe;
            self.publish = publish;
            self.allow_anonymous = false;
        }
        self
    }

    /// A members namespace's appends are observed: its publications send
    /// feed notices and offline webhooks.
    fn observed_if_members(mut self) -> Self {
        self.channel.observed = self.subscribe == SubscribePolicy::Members;
        self
    }

    /// Whether publications are kept (and can be recovered).
    pub fn history_enabled(&self) -> bool {
        self.channel.history.max_len > 0
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// The namespaces that exist whether configured or not (`docs/members.md`):
/// `dm`, direct channels whose two members are in their names, and `feed`,
/// each user's notices.
pub const BUILT_IN: [&str; 2] = ["dm", "feed"];

/// A built-in namespace's fixed `subscribe` and `publish`.
pub fn built_in_policies(name: &str) -> Option<(SubscribePolicy, PublishPolicy)> {
    match name {
        "dm" => Some((SubscribePolicy::Members, PublishPolicy::Members)),
        "feed" => Some((SubscribePolicy::Owner, PublishPolicy::Server)),
        _ => None,
    }
}

/// The settings of every namespace, looked up by channel name.
#[derive(Debug, Clone)]
pub struct Namespaces {
    defaults: Arc<NamespaceSettings>,
    configured: HashMap<Box<str>, Arc<NamespaceSettings>>,
}

impl Namespaces {
    /// `defaults` applies to every namespace not in `configured`, including
    /// the default namespace `""` unless it is configured itself.
    pub fn new(
        defaults: NamespaceSettings,
        configured: impl IntoIterator<Item = (String, NamespaceSettings)>,
    ) -> Self {
        let mut configured: HashMap<Box<str>, Arc<NamespaceSettings>> = configured
            .into_iter()
            .map(|(name, settings)| (name.into(), Arc::new(settings.observed_if_members())))
            .collect();
        for name in BUILT_IN {
            if !configured.contains_key(name) {
                let settings = defaults.clone().built_in(name).observed_if_members();
                configured.insert(name.into(), Arc::new(settings));
            }
        }
        Self { defaults: Arc::new(defaults.observed_if_members()), configured }
    }

    /// The settings of `channel`'s namespace: one hash lookup, shared.
    pub fn resolve(&self, channel: &ChannelName) -> Arc<NamespaceSettings> {
        self.get(channel.namespace()).clone()
    }

    /// The settings of a namespace by name (`""`: the default namespace).
    pub fn get(&self, namespace: &str) -> &Arc<NamespaceSettings> {
        // Never empty (the built-ins are in it): no shortcut past the lookup.
        self.configured.get(namespace).unwrap_or(&self.defaults)
    }

    /// The settings of namespaces that are not configured.
    pub fn defaults(&self) -> &Arc<NamespaceSettings> {
        &self.defaults
    }

    /// The configured namespaces, sorted by name.
    pub fn configured(&self) -> Vec<(&str, &Arc<NamespaceSettings>)> {
        let mut list: Vec<_> = self.configured.iter().map(|(name, settings)| (&**name, settings)).collect();
        list.sort_unstable_by_key(|(name, _)| *name);
        list
    }
}

impl Default for Namespaces {
    fn default() -> Self {
        Self::new(NamespaceSettings::default(), [])
    }
}

impl PartialEq for Namespaces {
    fn eq(&self, other: &Self) -> bool {
        self.defaults() == other.defaults() && self.configured() == other.configured()
    }
}

impl Eq for Namespaces {}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    fn chat() -> NamespaceSettings {
        let defaults = NamespaceSettings::default();
        NamespaceSettings {
            publish: PublishPolicy::Subscribers,
            channel: ChannelOptions { presence: true, ..defaults.channel },
            ..defaults
        }
    }

    #[test]
    fn defaults_keep_history_and_let_only_the_server_publish() {
        let defaults = NamespaceSettings::default();
        assert_eq!(
            defaults.channel.history,
            Retention { max_len: 1000, max_age: Duration::from_secs(86_400) }
        );
        assert_eq!(defaults.channel.recovery_limit, 1000);
        assert_eq!(defaults.publish, PublishPolicy::Server);
        assert_eq!(defaults.subscribe, SubscribePolicy::Anyone);
        assert!(!defaults.channel.presence && !defaults.channel.join_leave);
        assert_eq!(defaults.channel.idempotency_window, Duration::from_secs(300));
        assert!(defaults.history_enabled());
    }

    #[test]
    fn a_configured_namespace_gets_its_settings_and_others_get_the_defaults() {
        let namespaces = Namespaces::new(NamespaceSettings::default(), [("chat".to_owned(), chat())]);

        let resolved = namespaces.resolve(&channel("chat:acme/general"));
        assert_eq!(resolved.publish, PublishPolicy::Subscribers);
        assert!(resolved.channel.presence);

        for unconfigured in ["news:today", "plain", "chatty:x"] {
            let resolved = namespaces.resolve(&channel(unconfigured));
            assert_eq!(resolved.publish, PublishPolicy::Server, "{unconfigured}");
            assert!(Arc::ptr_eq(&resolved, namespaces.defaults()));
        }
    }

    #[test]
    fn the_default_namespace_can_be_configured_by_its_empty_name() {
        let namespaces = Namespaces::new(NamespaceSettings::default(), [(String::new(), chat())]);
        assert_eq!(namespaces.resolve(&channel("lobby")).publish, PublishPolicy::Subscribers);
        assert_eq!(namespaces.resolve(&channel("news:x")).publish, PublishPolicy::Server);
    }

    #[test]
    fn resolving_shares_one_allocation_per_namespace() {
        let namespaces = Namespaces::new(NamespaceSettings::default(), [("chat".to_owned(), chat())]);
        let a = namespaces.resolve(&channel("chat:a"));
        let b = namespaces.resolve(&channel("chat:b"));
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn applying_raw_keys_overrides_only_those_keys() {
        let mut settings = NamespaceSettings::default();
        settings.apply(&RawNamespace {
            history_size: Some(0),
            join_leave: Some(true),
            durability: Some(super::super::Durability::Buffered),
            ..RawNamespace::default()
        });
        assert_eq!(settings.channel.history.max_len, 0);
        assert_eq!(settings.channel.durability, Durability::Buffered);
        assert!(!settings.history_enabled());
        assert!(settings.channel.join_leave);
        assert_eq!(settings.channel.history.max_age, Duration::from_secs(86_400));
        assert_eq!(settings.publish, PublishPolicy::Server);

        let mut round_trip =
            NamespaceSettings { publish: PublishPolicy::Anyone, ..NamespaceSettings::default() };
        round_trip.apply(&settings.to_raw(&|s| s.to_owned()));
        assert_eq!(round_trip, settings);
    }
}
