//! Validating the `[pusher]` section (`config/pusher.rs` holds what it
//! becomes): each `[[pusher.apps]]` table, the `pusher.app_*` shorthand,
//! and the app limits (`limits.rs`).

mod limits;

use std::collections::{BTreeSet, HashMap};

use fanfare_protocol::ChannelName;

use crate::error::{ConfigError, Origins};
use crate::kinds::WebhookKind;
use crate::pusher::{
    AppSettings, DEFAULT_CONTINUITY_WINDOW, MAX_CONTINUITY_WINDOW, PusherSettings, WebhookSettings,
};
use crate::raw::{RawPusher, RawPusherApp, RawWebhook};
use crate::settings::Limits;

/// Longest app id, key or channel prefix.
pub const MAX_APP_FIELD_LEN: usize = 64;

/// Room an event's envelope takes in a frame beyond its data.
const EVENT_ENVELOPE_BYTES: usize = 1024;

/// Validates the `[pusher]` section into the apps the server serves.
pub(crate) fn validate_pusher(
    raw: &RawPusher,
    limits: &Limits,
    origins: Origins<'_>,
) -> Result<PusherSettings, ConfigError> {
    let check = Check { origins };
    let mut apps = Vec::with_capacity(raw.apps.len() + 1);
    for (index, raw_app) in raw.apps.iter().enumerate() {
        apps.push(check.app(&format!("pusher.apps[{index}]"), raw_app, limits)?);
    }
    check.apply_shorthand(raw, &mut apps)?;
    check.unique(&apps)?;
    let continuity_window = check.continuity_window(raw)?;
    Ok(PusherSettings { apps, continuity_window })
}

struct Check<'a> {
    origins: Origins<'a>,
}

impl Check<'_> {
    /// `pusher.continuity_window`: `0s` (off) up to an hour.
    fn continuity_window(&self, raw: &RawPusher) -> Result<std::time::Duration, ConfigError> {
        let Some(window) = raw.continuity_window else { return Ok(DEFAULT_CONTINUITY_WINDOW) };
        match window.0 > MAX_CONTINUITY_WINDOW {
            true => {
                Err(self
                    .invalid("pusher.continuity_window", "must be at most 1h (\"0s\" turns continuity off)"))
            }
            false => Ok(window.0),
        }
    }
}

impl Check<'_> {
    /// An error about `key`; the origin is looked up by the key, or by its
    /// table for keys inside `[[pusher.apps]]` (arrays have no dotted path).
    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        let origin = (self.origins)(key).or_else(|| (self.origins)("pusher.apps"));
        ConfigError::Invalid { key: key.to_owned(), reason: reason.into(), origin }
    }

    fn app(&self, table: &str, raw: &RawPusherApp, limits: &Limits) -> Result<AppSettings, ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        let required = |name: &str, value: &Option<String>| {
            value.clone().ok_or_else(|| self.invalid(&key(name), "is required"))
        };
        let mut app = AppSettings::new(
            required("id", &raw.id)?,
            required("key", &raw.key)?,
            required("secret", &raw.secret)?,
        );
        app.enabled = raw.enabled.unwrap_or(app.enabled);
        app.channel_prefix = raw.channel_prefix.clone().unwrap_or_default();
        app.max_connections = raw.max_connections.unwrap_or(app.max_connections);
        app.client_events = raw.client_events.unwrap_or(app.client_events);
        self.limits(table, raw, &mut app)?;
        for (index, webhook) in raw.webhooks.iter().enumerate() {
            app.webhooks.push(self.webhook(&key(&format!("webhooks[{index}]")), webhook)?);
        }
        self.credentials(table, &app)?;
        self.app_limits(table, &app, limits)?;
        Ok(app)
    }

    fn credentials(&self, table: &str, app: &AppSettings) -> Result<(), ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        for (name, value) in [("id", &app.id), ("key", &app.key)] {
            if value.is_empty() || value.len() > MAX_APP_FIELD_LEN {
                return Err(self.invalid(&key(name), format!("must be 1 to {MAX_APP_FIELD_LEN} characters")));
            }
            // Both travel in URL paths (`/apps/{id}`, `/app/{key}`) and the
            // key before the `:` of every auth signature.
            if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return Err(self.invalid(
                    &key(name),
                    format!("`{value}` may only contain letters, digits, '-', '_' and '.'"),
                ));
            }
        }
        if app.secret.trim().is_empty() {
            return Err(self.invalid(&key("secret"), "must not be empty"));
        }
        let prefix = &app.channel_prefix;
        if !prefix.is_empty() {
            let namespace = prefix.strip_suffix(':').unwrap_or(prefix);
            let valid = prefix.len() <= MAX_APP_FIELD_LEN
                && prefix.ends_with(':')
                && !namespace.is_empty()
                && !namespace.contains(':')
                && ChannelName::new(prefix).is_ok();
            if !valid {
                return Err(self.invalid(
                    &key("channel_prefix"),
                    format!(
                        "`{prefix}` is not a namespace prefix: up to {MAX_APP_FIELD_LEN} characters of \
                         channel names, one ':' at the end (like \"acme:\"), or \"\""
                    ),
                ));
            }
        }
        Ok(())
    }

    fn app_limits(&self, table: &str, app: &AppSettings, limits: &Limits) -> Result<(), ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        for (name, value) in [
            ("max_presence_members", app.max_presence_members),
            ("max_presence_user_info_bytes", app.max_presence_user_info_bytes),
            ("max_event_bytes", app.max_event_bytes),
        ] {
            if value == 0 {
                return Err(self.invalid(&key(name), "must be at least 1"));
            }
        }
        if app.max_event_bytes > limits.max_http_body_bytes {
            return Err(self.invalid(
                &key("max_event_bytes"),
                format!(
                    "= {} is more than limits.max_http_body_bytes = {}: no request could carry such an event",
                    app.max_event_bytes, limits.max_http_body_bytes
                ),
            ));
        }
        match super::outbox_misfit(app.max_event_bytes, EVENT_ENVELOPE_BYTES, "event", limits) {
            Some(reason) => Err(self.invalid(&key("max_event_bytes"), reason)),
            None => Ok(()),
        }
    }

    fn webhook(&self, table: &str, raw: &RawWebhook) -> Result<WebhookSettings, ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        let text = raw.url.as_deref().ok_or_else(|| self.invalid(&key("url"), "is required"))?;
        let url = super::http_url(text).map_err(|reason| self.invalid(&key("url"), reason))?;
        let events: BTreeSet<WebhookKind> = raw.events.iter().flatten().copied().collect();
        if events.is_empty() {
            let all: Vec<&str> = WebhookKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(self.invalid(&key("events"), format!("must list at least one of {}", all.join(", "))));
        }
        Ok(WebhookSettings { url, events })
    }

    /// Applies `pusher.app_id` / `app_key` / `app_secret` / `app_client_events`.
    fn apply_shorthand(&self, raw: &RawPusher, apps: &mut Vec<AppSettings>) -> Result<(), ConfigError> {
        let given = raw.app_key.is_some() || raw.app_secret.is_some() || raw.app_client_events.is_some();
        let Some(id) = &raw.app_id else {
            if given {
                return Err(self.invalid(
                    "pusher.app_id",
                    "is required with pusher.app_key, pusher.app_secret or pusher.app_client_events \
                     (FANFARE_PUSHER_APP_ID with the other FANFARE_PUSHER_APP_* variables)",
                ));
            }
            return Ok(());
        };
        if let Some(app) = apps.iter_mut().find(|app| app.id == *id) {
            app.key = raw.app_key.clone().unwrap_or_else(|| app.key.clone());
            app.secret = raw.app_secret.clone().unwrap_or_else(|| app.secret.clone());
            app.client_events = raw.app_client_events.unwrap_or(app.client_events);
            return self.credentials("pusher", app).map_err(|error| shorthand_key(error, id));
        }
        let (Some(key), Some(secret)) = (&raw.app_key, &raw.app_secret) else {
            let missing = if raw.app_key.is_none() { "pusher.app_key" } else { "pusher.app_secret" };
            return Err(self.invalid(
                missing,
                format!(
                    "is required to define the app `{id}` from pusher.app_id (FANFARE_PUSHER_APP_ID, \
                     FANFARE_PUSHER_APP_KEY and FANFARE_PUSHER_APP_SECRET go together)"
                ),
            ));
        };
        let mut app = AppSettings::new(id.clone(), key.clone(), secret.clone());
        app.client_events = raw.app_client_events.unwrap_or(false);
        self.credentials("pusher", &app).map_err(|error| shorthand_key(error, id))?;
        apps.push(app);
        Ok(())
    }

    fn unique(&self, apps: &[AppSettings]) -> Result<(), ConfigError> {
        type Field = fn(&AppSettings) -> &str;
        let fields: [(&str, Field); 3] =
            [("id", |app| &app.id), ("key", |app| &app.key), ("channel_prefix", |app| &app.channel_prefix)];
        for (name, field) in fields {
            let mut seen: HashMap<&str, &str> = HashMap::new();
            for app in apps {
                if let Some(first) = seen.insert(field(app), &app.id) {
                    let value = field(app);
                    let reason = match name {
                        "channel_prefix" if value.is_empty() => format!(
                            "apps `{first}` and `{}` both keep the channel prefix \"\": only one app may; \
                             give the others a prefix such as \"{}:\"",
                            app.id, app.id
                        ),
                        _ => format!("`{value}` is used by two apps (`{first}` and `{}`)", app.id),
                    };
                    return Err(self.invalid(&format!("pusher.apps.{name}"), reason));
                }
            }
        }
        Ok(())
    }
}

/// The shorthand's credentials are checked as `pusher.app_*` keys.
fn shorthand_key(error: ConfigError, id: &str) -> ConfigError {
    match error {
        ConfigError::Invalid { key, reason, origin } => {
            let key = key.replace("pusher.", "pusher.app_");
            ConfigError::Invalid { reason: format!("{reason} (app `{id}`)"), key, origin }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::{ServeArgs, from_toml, load_from};

    const TWO_APPS: &str = r#"
[[pusher.apps]]
id = "app-1"
key = "key-1"
secret = "secret-1"

[[pusher.apps]]
id = "app-2"
key = "key-2"
secret = "secret-2"
enabled = false
channel_prefix = "two:"
max_connections = 500
client_events = true
user_authentication = true
max_presence_members = 50
max_presence_user_info_bytes = 512
max_event_bytes = 2048
[[pusher.apps.webhooks]]
url = "http://127.0.0.1:8080/hooks"
events = ["channel_occupied", "member_added", "member_added"]
"#;

    fn invalid_key(text: &str) -> (String, String) {
        match from_toml(text).unwrap_err() {
            ConfigError::Invalid { key, reason, .. } => (key, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn app_toml(fields: &str) -> String {
        format!("[[pusher.apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n{fields}\n")
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn apps_are_read_with_their_defaults_and_webhooks() {
        let settings = from_toml(TWO_APPS).unwrap();
        let [first, second] = &settings.pusher.apps[..] else { panic!("{:?}", settings.pusher) };
        assert_eq!(first, &AppSettings::new("app-1", "key-1", "secret-1"));
        assert!(first.enabled && !first.client_events && !first.requires_authentication());
        assert_eq!((first.max_presence_members, first.max_presence_user_info_bytes), (100, 1024));
        assert_eq!((first.max_event_bytes, first.max_connections), (10240, 0));

        assert!(!second.enabled);
        assert_eq!(second.channel_prefix, "two:");
        assert_eq!(second.max_connections, 500);
        assert!(second.client_events);
        assert_eq!(second.user_authentication_timeout, Duration::from_secs(30));
        assert_eq!((second.max_presence_members, second.max_presence_user_info_bytes), (50, 512));
        assert_eq!(second.max_event_bytes, 2048);
        let hook = &second.webhooks[0];
        assert_eq!(hook.url.as_str(), "http://127.0.0.1:8080/hooks");
        assert_eq!(
            hook.events.iter().copied().collect::<Vec<_>>(),
            [WebhookKind::ChannelOccupied, WebhookKind::MemberAdded]
        );
    }

    #[test]
    fn the_continuity_window_defaults_to_two_minutes_is_off_at_zero_and_at_most_an_hour() {
        assert_eq!(from_toml("").unwrap().pusher.continuity_window, Duration::from_secs(120));
        let window = |text: &str| from_toml(&format!("[pusher]\ncontinuity_window = \"{text}\"\n"));
        assert_eq!(window("0s").unwrap().pusher.continuity_window, Duration::ZERO);
        assert_eq!(window("1h").unwrap().pusher.continuity_window, Duration::from_secs(3600));
        let (key, reason) = invalid_key("[pusher]\ncontinuity_window = \"61m\"\n");
        assert_eq!(key, "pusher.continuity_window");
        assert!(reason.contains("at most 1h"), "{reason}");
    }

    #[test]
    fn no_app_configured_means_none_here() {
        assert!(from_toml("").unwrap().pusher.apps.is_empty());
    }

    #[test]
    fn duplicate_ids_keys_and_prefixes_are_refused_naming_both_apps() {
        let twice = |fields_a: &str, fields_b: &str| {
            format!(
                "[[pusher.apps]]\n{fields_a}\nsecret = \"s\"\n[[pusher.apps]]\n{fields_b}\nsecret = \"s\"\n"
            )
        };
        let (key, reason) = invalid_key(&twice(
            "id = \"a\"\nkey = \"k1\"\nchannel_prefix = \"a:\"",
            "id = \"a\"\nkey = \"k2\"\nchannel_prefix = \"b:\"",
        ));
        assert_eq!(key, "pusher.apps.id");
        assert!(reason.contains("`a` is used by two apps"), "{reason}");

        let (key, _) = invalid_key(&twice(
            "id = \"a\"\nkey = \"k\"\nchannel_prefix = \"a:\"",
            "id = \"b\"\nkey = \"k\"\nchannel_prefix = \"b:\"",
        ));
        assert_eq!(key, "pusher.apps.key");

        let (key, reason) = invalid_key(&twice("id = \"a\"\nkey = \"ka\"", "id = \"b\"\nkey = \"kb\""));
        assert_eq!(key, "pusher.apps.channel_prefix");
        assert!(reason.contains("only one app may"), "{reason}");

        let (key, _) = invalid_key(&twice(
            "id = \"a\"\nkey = \"ka\"\nchannel_prefix = \"x:\"",
            "id = \"b\"\nkey = \"kb\"\nchannel_prefix = \"x:\"",
        ));
        assert_eq!(key, "pusher.apps.channel_prefix");
    }

    #[test]
    fn missing_or_empty_credentials_are_refused_by_key() {
        let (key, _) = invalid_key("[[pusher.apps]]\nid = \"a\"\nkey = \"k\"\n");
        assert_eq!(key, "pusher.apps[0].secret");
        let (key, reason) = invalid_key("[[pusher.apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"  \"\n");
        assert_eq!((key.as_str(), reason.as_str()), ("pusher.apps[0].secret", "must not be empty"));
        let (key, _) = invalid_key("[[pusher.apps]]\nid = \"\"\nkey = \"k\"\nsecret = \"s\"\n");
        assert_eq!(key, "pusher.apps[0].id");
        let (key, _) = invalid_key("[[pusher.apps]]\nid = \"a\"\nkey = \"k:1\"\nsecret = \"s\"\n");
        assert_eq!(key, "pusher.apps[0].key");
        let (key, _) = invalid_key("[[pusher.apps]]\nid = \"a/b\"\nkey = \"k\"\nsecret = \"s\"\n");
        assert_eq!(key, "pusher.apps[0].id");
    }

    #[test]
    fn a_channel_prefix_must_be_one_namespace_and_a_colon() {
        for good in ["acme:", "a-b_c.d:"] {
            let settings = from_toml(&app_toml(&format!("channel_prefix = \"{good}\""))).unwrap();
            assert_eq!(settings.pusher.apps[0].channel_prefix, good);
        }
        let too_long = format!("{}:", "x".repeat(64));
        for bad in ["acme", ":", "a:b:", "a b:", too_long.as_str()] {
            let (key, _) = invalid_key(&app_toml(&format!("channel_prefix = \"{bad}\"")));
            assert_eq!(key, "pusher.apps[0].channel_prefix", "{bad:?}");
        }
    }

    #[test]
    fn zero_limits_and_events_larger_than_a_request_are_refused() {
        for field in ["max_presence_members", "max_presence_user_info_bytes", "max_event_bytes"] {
            let (key, _) = invalid_key(&app_toml(&format!("{field} = 0")));
            assert_eq!(key, format!("pusher.apps[0].{field}"));
        }
        let (key, reason) = invalid_key(&format!(
            "[limits]\nmax_http_body_bytes = 1000\n{}",
            app_toml("max_event_bytes = 2000")
        ));
        assert_eq!(key, "pusher.apps[0].max_event_bytes");
        assert!(reason.contains("limits.max_http_body_bytes"), "{reason}");
    }

    #[test]
    fn webhooks_need_an_http_url_and_known_events() {
        let hook = |fields: &str| format!("{}[[pusher.apps.webhooks]]\n{fields}\n", app_toml(""));
        let (key, _) = invalid_key(&hook("url = \"not a url\"\nevents = [\"cache_miss\"]"));
        assert_eq!(key, "pusher.apps[0].webhooks[0].url");
        let (key, _) = invalid_key(&hook("url = \"ftp://host/x\"\nevents = [\"cache_miss\"]"));
        assert_eq!(key, "pusher.apps[0].webhooks[0].url");
        let (key, _) = invalid_key(&hook("url = \"https://\"\nevents = [\"cache_miss\"]"));
        assert_eq!(key, "pusher.apps[0].webhooks[0].url");
        let https = crate::from_toml(&hook("url = \"https://hooks.example/x\"\nevents = [\"cache_miss\"]"));
        assert_eq!(https.unwrap().pusher.apps[0].webhooks[0].url.scheme(), "https");
        let (key, reason) = invalid_key(&hook("url = \"http://host/x\"\nevents = []"));
        assert_eq!(key, "pusher.apps[0].webhooks[0].events");
        assert!(reason.contains("channel_occupied"), "{reason}");

        let error = from_toml(&hook("url = \"http://host/x\"\nevents = [\"channel_exploded\"]")).unwrap_err();
        assert!(error.to_string().contains("channel_occupied"), "{error}");
        let error =
            from_toml(&hook("url = \"http://host/x\"\nevents = [\"cache_miss\"]\nretry = 3")).unwrap_err();
        assert!(matches!(error, ConfigError::UnknownKey { .. }), "{error:?}");
    }

    #[test]
    fn unknown_keys_in_an_app_are_refused() {
        let error = from_toml(&app_toml("secrets = \"x\"")).unwrap_err();
        assert!(matches!(error, ConfigError::UnknownKey { .. }), "{error:?}");
        assert!(error.to_string().contains("secrets"), "{error}");
    }

    #[test]
    fn the_environment_defines_the_default_app() {
        let vars = [
            ("FANFARE_PUSHER_APP_ID", "env-app"),
            ("FANFARE_PUSHER_APP_KEY", "env-key"),
            ("FANFARE_PUSHER_APP_SECRET", "env-secret"),
        ];
        let settings = load_from(&ServeArgs::default(), env(&vars)).unwrap();
        assert_eq!(settings.pusher.apps, vec![AppSettings::new("env-app", "env-key", "env-secret")]);
        assert!(!settings.pusher.apps[0].client_events, "client events are off by default");

        let mut with_events = vars.to_vec();
        with_events.push(("FANFARE_PUSHER_APP_CLIENT_EVENTS", "true"));
        let settings = load_from(&ServeArgs::default(), env(&with_events)).unwrap();
        assert!(settings.pusher.apps[0].client_events);
    }

    #[test]
    fn an_incomplete_default_app_names_the_missing_variable() {
        let error =
            load_from(&ServeArgs::default(), env(&[("FANFARE_PUSHER_APP_ID", "env-app")])).unwrap_err();
        assert_eq!(error.key(), Some("pusher.app_key"));
        assert!(error.to_string().contains("FANFARE_PUSHER_APP_KEY"), "{error}");

        let error = load_from(&ServeArgs::default(), env(&[("FANFARE_PUSHER_APP_SECRET", "s")])).unwrap_err();
        assert_eq!(error.key(), Some("pusher.app_id"));

        let error = load_from(&ServeArgs::default(), env(&[("FANFARE_PUSHER_APP_CLIENT_EVENTS", "maybe")]))
            .unwrap_err();
        assert_eq!(error.key(), Some("pusher.app_client_events"));
    }

    #[test]
    fn the_environment_overrides_the_listed_app_with_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fanfare.toml");
        std::fs::write(&path, "[[pusher.apps]]\nid = \"app-1\"\nkey = \"key-1\"\nsecret = \"from-file\"\n")
            .unwrap();
        let args = ServeArgs { config: Some(path), ..ServeArgs::default() };
        let vars = [("FANFARE_PUSHER_APP_ID", "app-1"), ("FANFARE_PUSHER_APP_SECRET", "from-env")];
        let settings = load_from(&args, env(&vars)).unwrap();
        assert_eq!(settings.pusher.apps, vec![AppSettings::new("app-1", "key-1", "from-env")]);
    }

    #[test]
    fn a_second_app_without_prefix_from_the_environment_is_refused() {
        let text = "[pusher]\napp_id = \"b\"\napp_key = \"kb\"\napp_secret = \"s\"\n";
        let (key, reason) = invalid_key(&format!("{text}{}", app_toml("")));
        assert_eq!(key, "pusher.apps.channel_prefix");
        assert!(reason.contains("`a` and `b`"), "{reason}");
    }

    #[test]
    fn secrets_never_show_in_debug_or_the_rendered_configuration() {
        let settings = from_toml(TWO_APPS).unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("secret-1") && !debug.contains("secret-2"), "{debug}");
        let text = settings.to_toml();
        assert!(!text.contains("secret-1"), "{text}");
        assert!(text.contains("[[pusher.apps]]") && text.contains("[[pusher.apps.webhooks]]"), "{text}");
    }

    #[test]
    fn the_example_file_mentions_every_pusher_key() {
        let text = toml::to_string(&from_toml(TWO_APPS).unwrap().to_raw(false)).unwrap();
        let pusher = &text[text.find("[[pusher.apps]]").unwrap()..];
        for line in pusher.lines() {
            if let Some((key, _)) = line.split_once(" = ") {
                assert!(crate::EXAMPLE_TOML.contains(&format!("# {key} = ")), "`{key}` missing");
            }
        }
        for key in ["app_id", "app_key", "app_secret", "app_client_events"] {
            assert!(crate::EXAMPLE_TOML.contains(&format!("# {key} = ")), "`{key}` missing");
        }
    }

    #[test]
    fn the_unredacted_rendering_reads_back_as_the_same_apps() {
        let settings = from_toml(TWO_APPS).unwrap();
        let text = toml::to_string(&settings.to_raw(false)).unwrap();
        assert_eq!(from_toml(&text).unwrap(), settings, "{text}");
    }
}
