//! Validating `[[webhooks]]` (`config/webhooks.rs` holds what it becomes).

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use crate::error::{ConfigError, Origins};
use crate::kinds::ServerEventKind;
use crate::raw::RawServerWebhook;
use crate::webhooks::{DEFAULT_SERVER_WEBHOOK_TIMEOUT, ServerWebhookSettings};

/// Longest timeout of one POST: a batch waits for it before its retry.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Validates every `[[webhooks]]` table; URLs must differ.
pub(crate) fn validate_webhooks(
    raw: &[RawServerWebhook],
    origins: Origins<'_>,
) -> Result<Vec<ServerWebhookSettings>, ConfigError> {
    let invalid = |key: String, reason: String| {
        // Arrays have no dotted path: the origin is the array's.
        let origin = origins(&key).or_else(|| origins("webhooks"));
        ConfigError::Invalid { key, reason, origin }
    };
    let mut urls = HashSet::new();
    let mut webhooks = Vec::with_capacity(raw.len());
    for (index, hook) in raw.iter().enumerate() {
        let key = |name: &str| format!("webhooks[{index}].{name}");
        let webhook = webhook(hook).map_err(|(name, reason)| invalid(key(name), reason))?;
        if !urls.insert(webhook.url.clone()) {
            let reason = format!("`{}` is the URL of an earlier [[webhooks]] table", webhook.url);
            return Err(invalid(key("url"), reason));
        }
        webhooks.push(webhook);
    }
    Ok(webhooks)
}

/// One table, or the name of the bad key and why.
fn webhook(raw: &RawServerWebhook) -> Result<ServerWebhookSettings, (&'static str, String)> {
    let text = raw.url.as_deref().ok_or(("url", "is required".to_owned()))?;
    let url = super::http_url(text).map_err(|reason| ("url", reason))?;
    let secret = match raw.secret.as_deref() {
        None => return Err(("secret", "is required (the key of X-Fanfare-Signature)".to_owned())),
        Some("") => return Err(("secret", "must not be empty".to_owned())),
        Some(secret) => secret.to_owned(),
    };
    let events: BTreeSet<ServerEventKind> = raw.events.iter().flatten().copied().collect();
    if events.is_empty() {
        let all: Vec<&str> = ServerEventKind::ALL.iter().map(|kind| kind.as_str()).collect();
        return Err(("events", format!("must list at least one of {}", all.join(", "))));
    }
    let timeout = raw.timeout.map_or(DEFAULT_SERVER_WEBHOOK_TIMEOUT, |d| d.0);
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(("timeout", format!("must be more than 0 s and at most {} s", MAX_TIMEOUT.as_secs())));
    }
    Ok(ServerWebhookSettings { url, secret, events, timeout })
}

#[cfg(test)]
mod tests {
    use crate::{ConfigError, ServerEventKind, from_toml};
    use std::time::Duration;

    fn error_of(toml: &str) -> (String, String) {
        match from_toml(toml) {
            Err(ConfigError::Invalid { key, reason, .. }) => (key, reason),
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn webhooks_are_read_with_their_default_timeout() {
        let settings = from_toml(
            "[[webhooks]]\nurl = \"https://mod.example.com/events\"\nsecret = \"s3cret\"\n\
             events = [\"moderation\", \"rejections\"]\n\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:9000/\"\nsecret = \"other\"\nevents = [\"rejections\"]\n\
             timeout = \"250ms\"\n",
        )
        .unwrap();
        let [first, second] = &settings.webhooks[..] else { panic!("{:?}", settings.webhooks) };
        assert_eq!(first.url.as_str(), "https://mod.example.com/events");
        assert_eq!(first.secret, "s3cret");
        assert!(first.wants(ServerEventKind::Moderation) && first.wants(ServerEventKind::Rejections));
        assert_eq!(first.timeout, Duration::from_secs(5));
        assert!(!second.wants(ServerEventKind::Moderation));
        assert_eq!(second.timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_webhook_needs_an_http_url_a_secret_and_known_events() {
        let table = |fields: &str| format!("[[webhooks]]\n{fields}\n");
        let ok = "url = \"http://h/\"\nsecret = \"k\"\nevents = [\"moderation\"]";
        let (key, reason) = error_of(&table("secret = \"k\"\nevents = [\"moderation\"]"));
        assert_eq!((key.as_str(), reason.as_str()), ("webhooks[0].url", "is required"));
        let (key, reason) = error_of(&table("url = \"ftp://h/\"\nsecret = \"k\"\nevents = [\"moderation\"]"));
        assert_eq!(key, "webhooks[0].url");
        assert!(reason.contains("not an http:// or https:// URL"), "{reason}");
        let (key, reason) = error_of(&table("url = \"http://h/\"\nevents = [\"moderation\"]"));
        assert_eq!(key, "webhooks[0].secret");
        assert!(reason.contains("is required"), "{reason}");
        let (key, reason) = error_of(&table("url = \"http://h/\"\nsecret = \"\"\nevents = [\"moderation\"]"));
        assert_eq!((key.as_str(), reason.as_str()), ("webhooks[0].secret", "must not be empty"));
        let (key, reason) = error_of(&table("url = \"http://h/\"\nsecret = \"k\""));
        assert_eq!(key, "webhooks[0].events");
        assert_eq!(reason, "must list at least one of moderation, rejections, offline");
        let (key, reason) = error_of(&table(&format!("{ok}\ntimeout = \"0s\"")));
        assert_eq!(key, "webhooks[0].timeout");
        assert!(reason.contains("more than 0 s"), "{reason}");
        let (key, reason) = error_of(&format!("{}{}", table(ok), table(ok)));
        assert_eq!(key, "webhooks[1].url");
        assert!(reason.contains("earlier [[webhooks]]"), "{reason}");
    }

    #[test]
    fn an_unknown_event_kind_is_named() {
        let error = from_toml("[[webhooks]]\nurl = \"http://h/\"\nsecret = \"k\"\nevents = [\"bans\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("bans"), "{error}");
        assert!(error.contains("moderation") && error.contains("rejections"), "{error}");
    }

    #[test]
    fn the_rendered_configuration_shows_webhooks_with_the_secret_redacted() {
        let toml = "[[webhooks]]\nurl = \"http://h/\"\nsecret = \"very-secret\"\nevents = [\"rejections\"]\n";
        let text = from_toml(toml).unwrap().to_toml();
        assert!(text.contains("[[webhooks]]"), "{text}");
        assert!(text.contains("events = [\"rejections\"]"), "{text}");
        assert!(text.contains("timeout = \"5s\""), "{text}");
        assert!(!text.contains("very-secret"), "{text}");
        let settings = from_toml(toml).unwrap();
        let unredacted = toml::to_string(&settings.to_raw(false)).unwrap();
        assert_eq!(from_toml(&unredacted).unwrap().webhooks, settings.webhooks);
    }
}
