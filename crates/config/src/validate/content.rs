//! `content` of `[channel_defaults]` and `[namespaces.NAME]` → the
//! namespace's [`ContentRules`]: patterns compiled, the hook's URL parsed,
//! errors naming the namespace's key and the pattern.

use std::time::Duration;

use super::Check;
use crate::content::{Blocklist, ContentRules, DEFAULT_HOOK_TIMEOUT, HookSettings, RawContent, RawHook};
use crate::error::ConfigError;

/// The longest hook timeout accepted: the connection waits for the hook
/// before it reads its next command, so the wait must stay far below the
/// idle timeout (ping interval + pong timeout).
const MAX_HOOK_TIMEOUT: Duration = Duration::from_secs(10);

impl Check<'_> {
    /// `prefix` is the namespace's table (`namespaces.chat`); `raw` the
    /// content keys merged over `[channel_defaults.content]`.
    pub(super) fn content(&self, prefix: &str, raw: &RawContent) -> Result<ContentRules, ConfigError> {
        let key = |name: &str| format!("{prefix}.content.{name}");
        let words = raw.blocklist.as_deref().unwrap_or_default();
        let patterns = raw.blocklist_patterns.as_deref().unwrap_or_default();
        let blocklist = Blocklist::compile(words, patterns).map_err(|error| match error {
            ConfigError::Invalid { key: name, reason, .. } => self.invalid(&key(&name), reason),
            other => other,
        })?;
        let hook = self.hook(&key("hook"), &raw.hook)?;
        Ok(ContentRules {
            blocklist,
            blocklist_action: raw.blocklist_action.unwrap_or_default(),
            links: raw.links.unwrap_or_default(),
            hook,
        })
    }

    fn hook(&self, table: &str, raw: &RawHook) -> Result<Option<HookSettings>, ConfigError> {
        let key = |name: &str| format!("{table}.{name}");
        let url = match raw.url.as_deref().map(str::trim) {
            Some("") => return Ok(None),
            Some(url) => url,
            None if raw.is_empty() => return Ok(None),
            None => return Err(self.invalid(&key("url"), "is required with the other hook keys")),
        };
        let url = super::http_url(url).map_err(|reason| self.invalid(&key("url"), reason))?;
        let timeout = raw.timeout.map_or(DEFAULT_HOOK_TIMEOUT, |d| d.0);
        if timeout.is_zero() || timeout > MAX_HOOK_TIMEOUT {
            return Err(self.invalid(
                &key("timeout"),
                "must be more than 0s and at most 10s (the connection waits for the hook before its next command)",
            ));
        }
        if raw.secret.as_deref().is_some_and(str::is_empty) {
            return Err(
                self.invalid(&key("secret"), "must not be empty (leave it unset to send unsigned requests)")
            );
        }
        Ok(Some(HookSettings {
            url,
            timeout,
            failure: raw.failure.unwrap_or_default(),
            secret: raw.secret.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::content::{BlocklistAction, HookFailure, LinkPolicy};
    use crate::{ConfigError, from_toml};

    fn refused(toml: &str) -> (String, String) {
        match from_toml(toml).unwrap_err() {
            ConfigError::Invalid { key, reason, .. } => (key, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn content_rules_resolve_over_the_defaults_per_namespace() {
        let settings = from_toml(
            r#"
[channel_defaults.content]
blocklist = ["darn"]
links = "strip"
[channel_defaults.content.hook]
url = "http://127.0.0.1:9000/moderate"
[namespaces.chat.content]
blocklist_action = "mask"
[namespaces.chat.content.hook]
failure = "open"
timeout = "2s"
[namespaces.news.content.hook]
url = ""
"#,
        )
        .unwrap();
        let chat = &settings.namespaces.get("chat").content;
        assert_eq!(chat.blocklist.words(), ["darn"]);
        assert_eq!((chat.blocklist_action, chat.links), (BlocklistAction::Mask, LinkPolicy::Strip));
        let hook = chat.hook.as_ref().unwrap();
        assert_eq!((hook.url.as_str(), hook.failure), ("http://127.0.0.1:9000/moderate", HookFailure::Open));
        assert_eq!(hook.timeout, std::time::Duration::from_secs(2));
        let defaults = &settings.namespaces.get("other").content;
        let hook = defaults.hook.as_ref().unwrap();
        assert_eq!((hook.failure, hook.timeout.as_millis()), (HookFailure::Closed, 500));
        assert!(settings.namespaces.get("news").content.hook.is_none(), "url = \"\" turns it off");
        assert!(!crate::Settings::default().namespaces.defaults().content.is_active());
    }

    #[test]
    fn a_pattern_that_does_not_compile_names_the_namespace_and_the_pattern() {
        let (key, reason) = refused("[namespaces.chat.content]\nblocklist_patterns = ['fr(ee']\n");
        assert_eq!(key, "namespaces.chat.content.blocklist_patterns");
        assert!(reason.starts_with("blocklist pattern \"fr(ee\" does not compile"), "{reason}");
        let (key, _) = refused("[channel_defaults.content]\nblocklist_patterns = ['a|']\n");
        assert_eq!(key, "channel_defaults.content.blocklist_patterns", "matches the empty string");
        let (key, _) = refused("[channel_defaults.content]\nblocklist = ['ok', '']\n");
        assert_eq!(key, "channel_defaults.content.blocklist");
    }

    #[test]
    fn an_unknown_action_or_link_policy_is_refused() {
        for toml in [
            "[namespaces.chat.content]\nblocklist_action = \"delete\"\n",
            "[namespaces.chat.content]\nlinks = \"block\"\n",
            "[namespaces.chat.content.hook]\nurl = \"http://h/\"\nfailure = \"maybe\"\n",
            "[namespaces.chat.content]\nwords = [\"x\"]\n",
        ] {
            let error = from_toml(toml).unwrap_err().to_string();
            assert!(error.contains("content"), "{toml}: {error}");
        }
    }

    #[test]
    fn a_hook_needs_an_http_url_and_a_bounded_timeout() {
        let (key, reason) = refused("[namespaces.chat.content.hook]\ntimeout = \"1s\"\n");
        assert_eq!(
            (key.as_str(), reason.as_str()),
            ("namespaces.chat.content.hook.url", "is required with the other hook keys")
        );
        for url in ["not a url", "ftp://h/x", "unix:/tmp/sock"] {
            let (key, _) = refused(&format!("[namespaces.chat.content.hook]\nurl = \"{url}\"\n"));
            assert_eq!(key, "namespaces.chat.content.hook.url", "{url}");
        }
        for timeout in ["0s", "11s"] {
            let toml =
                format!("[namespaces.chat.content.hook]\nurl = \"http://h/\"\ntimeout = \"{timeout}\"\n");
            assert_eq!(refused(&toml).0, "namespaces.chat.content.hook.timeout");
        }
        let toml = "[namespaces.chat.content.hook]\nurl = \"http://h/\"\nsecret = \"\"\n";
        assert_eq!(refused(toml).0, "namespaces.chat.content.hook.secret");
    }

    #[test]
    fn config_check_shows_the_resolved_rules_with_the_hook_secret_redacted() {
        let toml = "[namespaces.chat.content]\nblocklist = [\"darn\"]\nblocklist_patterns = ['(?i)casino']\n\
                    [namespaces.chat.content.hook]\nurl = \"https://mod.example/check\"\nsecret = \"hook-secret\"\n";
        let settings = from_toml(toml).unwrap();
        let text = settings.to_toml();
        assert!(text.contains("[namespaces.chat.content]"), "{text}");
        assert!(text.contains("blocklist = [\"darn\"]"), "{text}");
        assert!(text.contains("blocklist_patterns = [\"(?i)casino\"]"), "{text}");
        assert!(text.contains("[namespaces.chat.content.hook]"), "{text}");
        assert!(text.contains("timeout = \"500ms\""), "{text}");
        assert!(text.contains("failure = \"closed\""), "{text}");
        assert!(!text.contains("hook-secret") && text.contains("secret = \"<redacted>\""), "{text}");
        let unredacted = toml::to_string(&settings.to_raw(false)).unwrap();
        assert_eq!(from_toml(&unredacted).unwrap(), settings, "{unredacted}");
    }
}
