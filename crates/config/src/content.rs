//! A namespace's content rules (`content` under `[channel_defaults]` and
//! `[namespaces.NAME]`): the blocklist, the link policy and the
//! pre-publish hook, as written ([`RawContent`]) and as used
//! ([`ContentRules`], patterns compiled once, at load).
//!
//! The size rule is the namespace's `max_message_bytes`. The server applies
//! the rest to what clients publish (`fanfare::content`); `docs/moderation.md`
//! is the user's description.

use std::fmt;
use std::time::Duration;

use regex::Regex;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;
use super::error::ConfigError;

/// The default time the pre-publish hook has to answer.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_millis(500);

/// What a blocklist match does to a publication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlocklistAction {
    /// The publication is refused with `content_rejected`.
    #[default]
    Reject,
    /// Each match is replaced by as many `*` as it has characters.
    Mask,
}

/// What a link in a publication does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPolicy {
    /// Links pass.
    #[default]
    Allow,
    /// Links are removed from the text; the rest is published.
    Strip,
    /// The publication is refused with `content_rejected`.
    Reject,
}

/// What a failed pre-publish hook call (timeout, non-2xx, bad body) means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookFailure {
    /// The publication goes out as if the hook had allowed it.
    Open,
    /// The publication is refused with `content_rejected` (the default: a
    /// classifier that is down must not let through what it exists to stop).
    #[default]
    Closed,
}

/// `content` as written; every key optional. A namespace's keys override
/// `[channel_defaults.content]` one by one (a list replaces the default
/// list, it does not extend it).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocklist: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocklist_patterns: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocklist_action: Option<BlocklistAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<LinkPolicy>,
    #[serde(default, skip_serializing_if = "RawHook::is_empty")]
    pub hook: RawHook,
}

/// `content.hook` as written; `url = ""` turns off a hook inherited from
/// `[channel_defaults.content.hook]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHook {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<HookFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl RawHook {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl RawContent {
    /// `self` with the keys `over` sets replaced by its values.
    pub fn overridden_by(&self, over: &RawContent) -> RawContent {
        fn pick<T: Clone>(over: &Option<T>, base: &Option<T>) -> Option<T> {
            over.clone().or_else(|| base.clone())
        }
        let (hook, base) = (&over.hook, &self.hook);
        RawContent {
            blocklist: pick(&over.blocklist, &self.blocklist),
            blocklist_patterns: pick(&over.blocklist_patterns, &self.blocklist_patterns),
            blocklist_action: pick(&over.blocklist_action, &self.blocklist_action),
            links: pick(&over.links, &self.links),
            hook: RawHook {
                url: pick(&hook.url, &base.url),
                timeout: pick(&hook.timeout, &base.timeout),
                failure: pick(&hook.failure, &base.failure),
                secret: pick(&hook.secret, &base.secret),
            },
        }
    }
}

/// A namespace's content rules, resolved and compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentRules {
    pub blocklist: Blocklist,
    pub blocklist_action: BlocklistAction,
    pub links: LinkPolicy,
    pub hook: Option<HookSettings>,
}

impl ContentRules {
    /// Whether any rule beyond the size applies (the server skips the
    /// scan of namespaces without one).
    pub fn is_active(&self) -> bool {
        !self.blocklist.is_empty() || self.links != LinkPolicy::Allow || self.hook.is_some()
    }

    /// Every key, as written; `secret` maps the hook's secret (redaction).
    pub(crate) fn to_raw(&self, secret: &dyn Fn(&str) -> String) -> RawContent {
        RawContent {
            blocklist: Some(self.blocklist.words.clone()),
            blocklist_patterns: Some(self.blocklist.patterns.iter().map(|p| p.as_str().to_owned()).collect()),
            blocklist_action: Some(self.blocklist_action),
            links: Some(self.links),
            hook: match &self.hook {
                Some(hook) => RawHook {
                    url: Some(hook.url.to_string()),
                    timeout: Some(HumanDuration(hook.timeout)),
                    failure: Some(hook.failure),
                    secret: hook.secret.as_deref().map(secret),
                },
                None => RawHook::default(),
            },
        }
    }
}

/// Blocked words (whole words, case-insensitive, Unicode-aware) and
/// patterns (regular expressions, as written), compiled at load.
#[derive(Clone, Default)]
pub struct Blocklist {
    words: Vec<String>,
    /// All the words in one expression; `None` without words.
    word_matcher: Option<Regex>,
    patterns: Vec<Regex>,
}

impl Blocklist {
    /// Compiles `words` (matched as whole words, ignoring case) and
    /// `patterns` (`regex` syntax, matched as written: add `(?i)` to
    /// ignore case). An error's key is `blocklist` or `blocklist_patterns`,
    /// relative to the `content` table (validation puts the table in front).
    pub fn compile(words: &[String], patterns: &[String]) -> Result<Self, ConfigError> {
        let words: Vec<String> = words.to_vec();
        if let Some(empty) = words.iter().find(|word| word.trim().is_empty()) {
            let reason = format!("blocklist word {empty:?} is empty or only spaces");
            return Err(ConfigError::invalid("blocklist", reason));
        }
        let word_matcher = match words.is_empty() {
            true => None,
            false => Some(Regex::new(&word_expression(&words)).map_err(|error| {
                ConfigError::invalid("blocklist", format!("the words do not compile together: {error}"))
            })?),
        };
        let patterns = patterns.iter().map(|pattern| compile_pattern(pattern)).collect::<Result<_, _>>()?;
        Ok(Self { words, word_matcher, patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.word_matcher.is_none() && self.patterns.is_empty()
    }

    /// The words, as configured.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Every expression to look for: the words' one, then each pattern.
    pub fn matchers(&self) -> impl Iterator<Item = &Regex> {
        self.word_matcher.iter().chain(&self.patterns)
    }
}

/// One `blocklist_patterns` entry: it must compile, and must not match the
/// empty string (it would match every message).
fn compile_pattern(pattern: &str) -> Result<Regex, ConfigError> {
    let invalid = |reason: String| ConfigError::invalid("blocklist_patterns", reason);
    match Regex::new(pattern) {
        Ok(regex) if regex.is_match("") => Err(invalid(format!(
            "blocklist pattern {pattern:?} matches the empty string, so it would match every message"
        ))),
        Ok(regex) => Ok(regex),
        Err(error) => {
            // The last line of the parser's message says what is wrong.
            let text = error.to_string();
            let what = text.lines().last().unwrap_or_default().trim();
            Err(invalid(format!("blocklist pattern {pattern:?} does not compile: {what}")))
        }
    }
}

/// `(?i)(?:\bone\b|\btwo words\b)`: a word boundary is required only on a
/// side where the word begins or ends with a word character (`\b` is
/// Unicode-aware), so `c++` or `$$$` still match; inner spaces match any
/// run of whitespace.
fn word_expression(words: &[String]) -> String {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let alternatives: Vec<String> = words
        .iter()
        .map(|word| {
            let word = word.trim();
            let body: Vec<String> = word.split_whitespace().map(regex::escape).collect();
            let start = if is_word(word.chars().next()) { r"\b" } else { "" };
            let end = if is_word(word.chars().last()) { r"\b" } else { "" };
            format!("{start}{}{end}", body.join(r"\s+"))
        })
        .collect();
    format!("(?i)(?:{})", alternatives.join("|"))
}

impl PartialEq for Blocklist {
    fn eq(&self, other: &Self) -> bool {
        self.words == other.words
            && self.patterns.iter().map(Regex::as_str).eq(other.patterns.iter().map(Regex::as_str))
    }
}

impl Eq for Blocklist {}

impl fmt::Debug for Blocklist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns: Vec<&str> = self.patterns.iter().map(Regex::as_str).collect();
        f.debug_struct("Blocklist").field("words", &self.words).field("patterns", &patterns).finish()
    }
}

/// `content.hook`: the HTTP call that may allow, reject or rewrite a
/// client's publication before it is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSettings {
    /// `http://` or `https://`; receives a `POST` per publication.
    pub url: Url,
    /// How long the call may take, all of it (connect, request, response).
    pub timeout: Duration,
    pub failure: HookFailure,
    /// Signs each request body: `X-Fanfare-Signature`, the hex HMAC-SHA256.
    pub secret: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(words: &[&str], patterns: &[&str]) -> Result<Blocklist, ConfigError> {
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Blocklist::compile(&owned(words), &owned(patterns))
    }

    fn found(blocklist: &Blocklist, text: &str) -> Vec<String> {
        let mut out: Vec<String> =
            blocklist.matchers().flat_map(|re| re.find_iter(text).map(|m| m.as_str().to_owned())).collect();
        out.sort();
        out
    }

    #[test]
    fn words_match_whole_words_in_any_case_and_script() {
        let blocklist = list(&["darn", "ärger", "scheiß", "c++", "big deal"], &[]).unwrap();
        assert_eq!(found(&blocklist, "DARN it, Darn!"), ["DARN", "Darn"]);
        assert!(found(&blocklist, "darned darnit undarn").is_empty(), "whole words only");
        assert_eq!(found(&blocklist, "So ein ÄRGER."), ["ÄRGER"]);
        assert!(found(&blocklist, "ärgerlich").is_empty(), "Unicode letters continue a word");
        assert_eq!(found(&blocklist, "I like C++ a lot"), ["C++"]);
        assert_eq!(found(&blocklist, "no BIG\n  deal"), ["BIG\n  deal"]);
        assert_eq!(found(&blocklist, "Scheiß!"), ["Scheiß"]);
    }

    #[test]
    fn words_are_literal_text_not_expressions() {
        let blocklist = list(&["a.b"], &[]).unwrap();
        assert_eq!(found(&blocklist, "a.b axb"), ["a.b"]);
    }

    #[test]
    fn patterns_match_as_written() {
        let blocklist = list(&[], &[r"fr[e3]{2}\s+money", r"(?i)casino"]).unwrap();
        assert_eq!(found(&blocklist, "fr33 money at CASINO"), ["CASINO", "fr33 money"]);
        assert!(found(&blocklist, "FREE MONEY").is_empty(), "case-sensitive unless (?i)");
    }

    #[test]
    fn a_pattern_that_does_not_compile_or_matches_nothing_in_particular_is_refused() {
        let refusal = |error: ConfigError| match error {
            ConfigError::Invalid { key, reason, .. } => (key, reason),
            other => panic!("expected Invalid, got {other:?}"),
        };
        let (key, reason) = refusal(list(&[], &["(unclosed"]).unwrap_err());
        assert_eq!(key, "blocklist_patterns");
        assert_eq!(reason, "blocklist pattern \"(unclosed\" does not compile: error: unclosed group");
        let (key, reason) = refusal(list(&[], &["x*"]).unwrap_err());
        assert_eq!(key, "blocklist_patterns");
        assert!(reason.contains("matches the empty string"), "{reason}");
        assert_eq!(refusal(list(&["  "], &[]).unwrap_err()).0, "blocklist");
    }

    #[test]
    fn a_namespace_overrides_the_default_content_keys_it_sets() {
        let defaults = RawContent {
            blocklist: Some(vec!["a".into()]),
            links: Some(LinkPolicy::Strip),
            hook: RawHook { url: Some("http://h/".into()), ..RawHook::default() },
            ..RawContent::default()
        };
        let namespace = RawContent {
            blocklist: Some(vec!["b".into()]),
            hook: RawHook { failure: Some(HookFailure::Open), ..RawHook::default() },
            ..RawContent::default()
        };
        let merged = defaults.overridden_by(&namespace);
        assert_eq!(merged.blocklist, Some(vec!["b".into()]));
        assert_eq!(merged.links, Some(LinkPolicy::Strip));
        assert_eq!(merged.hook.url.as_deref(), Some("http://h/"));
        assert_eq!(merged.hook.failure, Some(HookFailure::Open));
    }
}
