//! Why a publication was refused: which rule, and what it matched. One
//! value for every rule, so that whatever is told of a refusal (the
//! client's error, the metric, the moderation webhook's `publication_rejected`)
//! reads it here.

use std::fmt;

use fanfare_protocol::{ErrorCode, ErrorInfo};

/// The rule that refused a publication; its name is the `rule` label of
/// `fanfare_content_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Rule {
    /// A blocklist word or pattern, with `blocklist_action = "reject"`.
    Blocklist,
    /// A link, with `links = "reject"`.
    Links,
    /// The pre-publish hook answered `reject`.
    Hook,
    /// The hook call failed (timeout, status, body) with `failure = "closed"`.
    HookFailure,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Blocklist => "blocklist",
            Rule::Links => "links",
            Rule::Hook => "hook",
            Rule::HookFailure => "hook_failure",
        }
    }
}

/// A refused publication: the rule, the text that matched, and the reason
/// the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub rule: Rule,
    /// The publication's text that matched (a blocked word as written, a
    /// link); `None` for the hook's rules.
    pub matched: Option<String>,
    /// The blocklist pattern as configured, when a pattern (not one of
    /// the words) matched.
    pub pattern: Option<String>,
    /// The hook's `reason`, or what went wrong with the call.
    pub detail: Option<String>,
}

/// The longest hook reason passed on to the client, in characters.
const MAX_DETAIL_CHARS: usize = 200;

impl Rejection {
    pub fn new(rule: Rule, matched: Option<String>, pattern: Option<String>) -> Self {
        Self { rule, matched, pattern, detail: None }
    }

    pub fn with_detail(rule: Rule, detail: Option<String>) -> Self {
        let detail = detail.map(|text| text.chars().take(MAX_DETAIL_CHARS).collect());
        Self { rule, matched: None, pattern: None, detail }
    }

    /// The error the client gets: `content_rejected`, this as its message.
    pub fn error(&self) -> ErrorInfo {
        ErrorInfo::new(ErrorCode::ContentRejected, self.to_string())
    }
}

/// The client's message. It quotes the client's own text that matched,
/// never the configured pattern (which would teach how to get round it).
impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let matched = self.matched.as_deref().unwrap_or_default();
        match (self.rule, self.detail.as_deref()) {
            (Rule::Blocklist, _) => write!(f, "the message contains blocked text: {matched:?}"),
            (Rule::Links, _) => write!(f, "links are not allowed in this channel: {matched:?}"),
            (Rule::Hook, Some(reason)) if !reason.is_empty() => {
                write!(f, "the moderation hook rejected the message: {reason}")
            }
            (Rule::Hook, _) => write!(f, "the moderation hook rejected the message"),
            (Rule::HookFailure, Some(cause)) => {
                write!(f, "the moderation hook could not check the message ({cause}); it was not published")
            }
            (Rule::HookFailure, None) => write!(f, "the moderation hook could not check the message"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_told_what_matched_but_not_the_pattern() {
        let rejection = Rejection::new(Rule::Blocklist, Some("CASINO".into()), Some("(?i)casino".into()));
        let error = rejection.error();
        assert_eq!(error.code, ErrorCode::ContentRejected);
        assert_eq!(error.message, "the message contains blocked text: \"CASINO\"");
        assert!(!error.retry);
    }

    #[test]
    fn a_long_hook_reason_is_cut() {
        let rejection = Rejection::with_detail(Rule::Hook, Some("x".repeat(1000)));
        assert_eq!(rejection.detail.unwrap().len(), MAX_DETAIL_CHARS);
        let bare = Rejection::with_detail(Rule::Hook, None);
        assert_eq!(bare.to_string(), "the moderation hook rejected the message");
    }
}
