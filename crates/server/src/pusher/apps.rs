//! The Pusher apps this server serves, and how their channels map onto the
//! hub's.
//!
//! A Pusher channel `name` of an app with channel prefix `p` is the hub
//! channel `p + name`. A prefix is `""` or a namespace and `:` (`"acme:"`),
//! so the way back is a lookup by namespace: a hub channel belongs to the
//! app whose prefix is its namespace and `:`, else to the app with prefix
//! `""` — as long as the rest is a valid Pusher channel name (a native
//! channel such as `chat:room` belongs to no app: Pusher names have no `:`).

use std::collections::HashMap;
use std::sync::Arc;

use fanfare_hub::Protocol;
use fanfare_protocol::ChannelName;
use fanfare_protocol::channel::MAX_CHANNEL_NAME_LEN;
use fanfare_protocol::pusher::{PusherChannel, PusherChannelError};

use crate::config::{AppSettings, WebhookKind};
use fanfare_cluster::RateLimits;

use crate::limits::local::LocalRateLimits;
use crate::pusher::rates::AppRates;

/// One Pusher app, as validated from the configuration.
#[derive(Debug)]
pub struct PusherApp {
    pub settings: AppSettings,
    /// Its HTTP API's rate limits (cluster-wide on a cluster).
    pub rates: AppRates,
}

impl PusherApp {
    pub fn id(&self) -> &str {
        &self.settings.id
    }

    pub fn key(&self) -> &str {
        &self.settings.key
    }

    pub fn secret(&self) -> &str {
        &self.settings.secret
    }

    pub fn channel_prefix(&self) -> &str {
        &self.settings.channel_prefix
    }

    /// How the hub encodes this app's channels for its Pusher subscribers:
    /// without the prefix.
    pub fn protocol(&self) -> Protocol {
        // Validated: at most 64 bytes.
        let strip = u8::try_from(self.channel_prefix().len()).unwrap_or(u8::MAX);
        Protocol::Pusher { strip }
    }

    /// Whether any of its webhooks wants events of `kind`.
    pub fn wants(&self, kind: WebhookKind) -> bool {
        self.settings.webhooks.iter().any(|hook| hook.events.contains(&kind))
    }
}

/// Why a Pusher channel name has no hub channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubChannelError {
    #[error(transparent)]
    Invalid(#[from] PusherChannelError),
    #[error(
        "channel name is too long: with the app's prefix {prefix:?} it exceeds {MAX_CHANNEL_NAME_LEN} bytes"
    )]
    TooLong { prefix: String },
    #[error("channel name is longer than this app's {max} characters")]
    LongerThanTheAppAllows { max: usize },
}

/// Why a set of apps cannot be served together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppsError {
    #[error("two Pusher apps have the {field} {value:?}")]
    Duplicate { field: &'static str, value: String },
}

/// Every app, by id, by key and by channel prefix.
#[derive(Debug, Default)]
pub struct Apps {
    by_id: HashMap<String, Arc<PusherApp>>,
    by_key: HashMap<String, Arc<PusherApp>>,
    by_prefix: HashMap<String, Arc<PusherApp>>,
    /// In configuration order, for listings.
    all: Vec<Arc<PusherApp>>,
}

impl Apps {
    /// The registry of `apps`: the configured ones, or the one generated on
    /// first start. Ids, keys and prefixes must be unique (the
    /// configuration checks this with better messages; this is the last
    /// guard for apps assembled in code).
    pub fn new(apps: Vec<AppSettings>) -> Result<Self, AppsError> {
        Self::with_rate_limits(apps, Arc::new(LocalRateLimits::in_memory()))
    }

    /// [`Apps::new`], with the apps' HTTP API limits in `engine` (the
    /// cluster's, so that they hold for the whole cluster).
    pub fn with_rate_limits(apps: Vec<AppSettings>, engine: Arc<dyn RateLimits>) -> Result<Self, AppsError> {
        let mut registry = Apps::default();
        for settings in apps {
            let app = Arc::new(PusherApp { rates: AppRates::new(&settings, engine.clone()), settings });
            let entries = [
                (&mut registry.by_id, "id", app.id()),
                (&mut registry.by_key, "key", app.key()),
                (&mut registry.by_prefix, "channel prefix", app.channel_prefix()),
            ];
            for (map, field, value) in entries {
                if map.insert(value.to_owned(), app.clone()).is_some() {
                    return Err(AppsError::Duplicate { field, value: value.to_owned() });
                }
            }
            registry.all.push(app);
        }
        Ok(registry)
    }

    pub fn by_key(&self, key: &str) -> Option<Arc<PusherApp>> {
        self.by_key.get(key).cloned()
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<PusherApp>> {
        self.by_id.get(id).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<PusherApp>> {
        self.all.iter()
    }

    /// Whether any app has a webhook for `kind` (the hub only counts
    /// subscriptions for webhooks when one wants them).
    pub fn any_wants(&self, kind: WebhookKind) -> bool {
        self.all.iter().any(|app| app.wants(kind))
    }

    /// The app a hub channel belongs to, and the channel's Pusher name.
    pub fn for_hub_channel<'c>(&self, channel: &'c ChannelName) -> Option<(Arc<PusherApp>, &'c str)> {
        let name = channel.as_str();
        let prefix_len = name.find(':').map_or(0, |colon| colon + 1);
        let app = self.by_prefix.get(&name[..prefix_len]).or_else(|| self.by_prefix.get(""))?;
        let pusher_name = name.strip_prefix(app.channel_prefix())?;
        PusherChannel::new(pusher_name).ok()?;
        Some((app.clone(), pusher_name))
    }

    /// The hub channel of `app`'s Pusher channel `pusher_name`, if the name
    /// is valid and within the app's `max_channel_name_length`.
    pub fn hub_channel(app: &PusherApp, pusher_name: &str) -> Result<ChannelName, HubChannelError> {
        PusherChannel::new(pusher_name)?;
        let max = app.settings.max_channel_name_length;
        if pusher_name.chars().count() > max {
            return Err(HubChannelError::LongerThanTheAppAllows { max });
        }
        let prefix = app.channel_prefix();
        ChannelName::new(&format!("{prefix}{pusher_name}"))
            .map_err(|_| HubChannelError::TooLong { prefix: prefix.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, prefix: &str) -> AppSettings {
        AppSettings { channel_prefix: prefix.to_owned(), ..AppSettings::new(id, format!("key-{id}"), "s") }
    }

    fn apps(list: &[(&str, &str)]) -> Apps {
        Apps::new(list.iter().map(|(id, prefix)| app(id, prefix)).collect()).unwrap()
    }

    fn owner(apps: &Apps, hub_name: &str) -> Option<(String, String)> {
        let channel = ChannelName::new(hub_name).unwrap();
        apps.for_hub_channel(&channel).map(|(app, name)| (app.id().to_owned(), name.to_owned()))
    }

    fn pair(id: &str, name: &str) -> Option<(String, String)> {
        Some((id.to_owned(), name.to_owned()))
    }

    #[test]
    fn apps_are_found_by_id_and_by_key() {
        let apps = apps(&[("a", ""), ("b", "b:")]);
        assert_eq!(apps.by_id("b").unwrap().key(), "key-b");
        assert_eq!(apps.by_key("key-a").unwrap().id(), "a");
        assert!(apps.by_id("key-a").is_none() && apps.by_key("a").is_none());
        assert_eq!(apps.iter().map(|app| app.id()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn a_prefixed_app_owns_its_namespace_and_the_unprefixed_app_the_rest() {
        let apps = apps(&[("main", ""), ("acme", "acme:"), ("beta", "beta:")]);
        assert_eq!(owner(&apps, "acme:presence-room"), pair("acme", "presence-room"));
        assert_eq!(owner(&apps, "beta:news"), pair("beta", "news"));
        assert_eq!(owner(&apps, "news"), pair("main", "news"));
        assert_eq!(owner(&apps, "#server-to-user-42"), pair("main", "#server-to-user-42"));
        assert_eq!(owner(&apps, "acme:#server-to-user-7"), pair("acme", "#server-to-user-7"));
    }

    #[test]
    fn channels_that_are_not_pusher_names_belong_to_no_app() {
        let apps = apps(&[("main", ""), ("acme", "acme:")]);
        // A native namespace of no app: "chat:room" is not a Pusher name.
        assert_eq!(owner(&apps, "chat:room"), None);
        assert_eq!(owner(&apps, "acme:a/b"), None);
        assert_eq!(owner(&apps, "acme:x:y"), None);
    }

    #[test]
    fn without_an_unprefixed_app_unprefixed_channels_belong_to_no_app() {
        let apps = apps(&[("acme", "acme:")]);
        assert_eq!(owner(&apps, "news"), None);
        assert_eq!(owner(&apps, "acme:news"), pair("acme", "news"));
    }

    #[test]
    fn hub_channels_carry_the_prefix_and_refuse_bad_or_long_names() {
        let apps = apps(&[("main", ""), ("acme", "acme:")]);
        let acme = apps.by_id("acme").unwrap();
        assert_eq!(Apps::hub_channel(&acme, "private-x").unwrap().as_str(), "acme:private-x");
        assert_eq!(Apps::hub_channel(&apps.by_id("main").unwrap(), "x").unwrap().as_str(), "x");
        assert_eq!(
            Apps::hub_channel(&acme, "a:b"),
            Err(HubChannelError::Invalid(PusherChannelError::BadCharacter(':')))
        );
        let long = "x".repeat(200);
        assert!(Apps::hub_channel(&apps.by_id("main").unwrap(), &long).is_ok());
        assert!(matches!(Apps::hub_channel(&acme, &long), Err(HubChannelError::TooLong { .. })));
        // The way back finds the same app and name.
        let hub = Apps::hub_channel(&acme, "presence-x").unwrap();
        assert_eq!(
            apps.for_hub_channel(&hub).map(|(app, name)| (app.id().to_owned(), name)),
            Some(("acme".to_owned(), "presence-x"))
        );
    }

    #[test]
    fn the_pusher_protocol_strips_the_prefix() {
        let apps = apps(&[("main", ""), ("acme", "acme:")]);
        assert_eq!(apps.by_id("acme").unwrap().protocol(), Protocol::Pusher { strip: 5 });
        assert_eq!(apps.by_id("main").unwrap().protocol(), Protocol::Pusher { strip: 0 });
    }

    #[test]
    fn duplicates_are_refused() {
        let error = Apps::new(vec![app("a", ""), app("a", "x:")]).unwrap_err();
        assert_eq!(error, AppsError::Duplicate { field: "id", value: "a".to_owned() });
        let error = Apps::new(vec![app("a", ""), app("b", "")]).unwrap_err();
        assert_eq!(error, AppsError::Duplicate { field: "channel prefix", value: String::new() });
    }

    #[test]
    fn webhook_wishes_are_per_app_and_kind() {
        let mut with_hook = app("a", "");
        with_hook.webhooks.push(crate::config::WebhookSettings {
            url: "http://127.0.0.1:1/".parse().unwrap(),
            events: [WebhookKind::SubscriptionCount].into(),
        });
        let apps = Apps::new(vec![with_hook, app("b", "b:")]).unwrap();
        assert!(apps.any_wants(WebhookKind::SubscriptionCount));
        assert!(!apps.any_wants(WebhookKind::ChannelOccupied));
        assert!(!apps.by_id("b").unwrap().wants(WebhookKind::SubscriptionCount));
    }
}
