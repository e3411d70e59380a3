//! The local rules, on the text of every string value of a publication's
//! `data`: first the link policy, then the blocklist.
//!
//! 1. A `data` that is one string holding a JSON object or array (Pusher
//!    clients' usual `data`) is read as that JSON.
//! 2. Each string value is checked in order (keys are the application's
//!    field names and are not checked): links rejected or stripped, then
//!    blocklist matches rejected or masked.
//! 3. The first rejection ends the check; otherwise the edited JSON text
//!    (changed only inside the strings that matched) is returned.

use std::borrow::Cow;
use std::ops::Range;

use crate::config::content::{BlocklistAction, ContentRules, LinkPolicy};

use super::json_text::{edit_strings, embedded_json};
use super::links::{find_links, strip_links};
use super::rejection::{Rejection, Rule};

/// Checks `data` (valid JSON text) against `rules`: `Ok(Some(text))` when
/// masking or stripping changed it, `Ok(None)` when it passes unchanged.
pub(crate) fn apply_text_rules(rules: &ContentRules, data: &str) -> Result<Option<String>, Rejection> {
    if let Some(inner) = embedded_json(data) {
        let edited = edit_strings(&inner, |text| screen_text(rules, text))?;
        return Ok(edited.map(|inner| serde_json::to_string(&inner).expect("a string always serializes")));
    }
    edit_strings(data, |text| screen_text(rules, text))
}

/// One string's text: `Ok(Some(new text))` when it changed.
pub(crate) fn screen_text(rules: &ContentRules, text: &str) -> Result<Option<String>, Rejection> {
    let mut text = Cow::Borrowed(text);
    match rules.links {
        LinkPolicy::Allow => {}
        LinkPolicy::Reject => {
            if let Some(range) = find_links(&text).next() {
                return Err(Rejection::new(Rule::Links, Some(text[range].to_owned()), None));
            }
        }
        LinkPolicy::Strip => {
            if let Some(stripped) = strip_links(&text) {
                text = Cow::Owned(stripped);
            }
        }
    }
    match rules.blocklist_action {
        BlocklistAction::Reject => reject_blocked(rules, &text)?,
        BlocklistAction::Mask => {
            if let Some(masked) = mask_blocked(rules, &text) {
                text = Cow::Owned(masked);
            }
        }
    }
    Ok(match text {
        Cow::Owned(text) => Some(text),
        Cow::Borrowed(_) => None,
    })
}

/// The first blocklist match (the words first, then each pattern).
fn reject_blocked(rules: &ContentRules, text: &str) -> Result<(), Rejection> {
    let words = rules.blocklist.words().len();
    for (index, matcher) in rules.blocklist.matchers().enumerate() {
        if let Some(found) = matcher.find_iter(text).find(|m| !m.is_empty()) {
            let pattern = (index > 0 || words == 0).then(|| matcher.as_str().to_owned());
            return Err(Rejection::new(Rule::Blocklist, Some(found.as_str().to_owned()), pattern));
        }
    }
    Ok(())
}

/// `text` with every blocklist match replaced by as many `*` as it has
/// characters (overlapping matches merged); `None` when nothing matched.
fn mask_blocked(rules: &ContentRules, text: &str) -> Option<String> {
    let mut ranges: Vec<Range<usize>> = rules
        .blocklist
        .matchers()
        .flat_map(|matcher| matcher.find_iter(text).filter(|m| !m.is_empty()).map(|m| m.range()))
        .collect();
    if ranges.is_empty() {
        return None;
    }
    ranges.sort_unstable_by_key(|range| range.start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for range in ranges {
        let start = range.start.max(copied);
        if range.end <= start {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.extend(std::iter::repeat_n('*', text[start..range.end].chars().count()));
        copied = range.end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::content::Blocklist;

    fn rules(words: &[&str], patterns: &[&str], action: BlocklistAction, links: LinkPolicy) -> ContentRules {
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ContentRules {
            blocklist: Blocklist::compile(&owned(words), &owned(patterns)).unwrap(),
            blocklist_action: action,
            links,
            hook: None,
        }
    }

    fn mask(words: &[&str], patterns: &[&str]) -> ContentRules {
        rules(words, patterns, BlocklistAction::Mask, LinkPolicy::Allow)
    }

    #[test]
    fn masking_replaces_each_match_with_one_star_per_character() {
        let rules = mask(&["darn", "ärger", "big deal"], &[r"\d{4}-\d{4}"]);
        assert_eq!(screen_text(&rules, "Darn, ÄRGER!").unwrap().as_deref(), Some("****, *****!"));
        assert_eq!(
            screen_text(&rules, "no BIG deal: 1234-5678").unwrap().as_deref(),
            Some("no ********: *********")
        );
        assert_eq!(screen_text(&rules, "darned undarn").unwrap(), None, "whole words only");
    }

    #[test]
    fn overlapping_matches_of_words_and_patterns_are_masked_once() {
        let rules = mask(&["free money"], &["(?i)money now"]);
        assert_eq!(screen_text(&rules, "FREE MONEY NOW!").unwrap().as_deref(), Some("**************!"));
    }

    #[test]
    fn masking_keeps_the_json_valid_and_leaves_keys_and_other_values_alone() {
        let rules = mask(&["darn", "\"quoted\""], &[]);
        let data = r#"{"darn": "darn \"quoted\" it", "n": 1.50, "list": ["Darn"]}"#;
        let masked = apply_text_rules(&rules, data).unwrap().unwrap();
        assert_eq!(masked, r#"{"darn": "**** ******** it", "n": 1.50, "list": ["****"]}"#);
        serde_json::from_str::<serde_json::Value>(&masked).unwrap();
    }

    #[test]
    fn a_pusher_style_string_of_json_is_masked_inside_and_stays_a_string_of_json() {
        let rules = mask(&["darn"], &[]);
        let data = serde_json::to_string(r#"{"text":"darn it","darn":1}"#).unwrap();
        let masked = apply_text_rules(&rules, &data).unwrap().unwrap();
        let inner: String = serde_json::from_str(&masked).unwrap();
        assert_eq!(inner, r#"{"text":"**** it","darn":1}"#);
    }

    #[test]
    fn rejecting_names_the_rule_and_what_matched() {
        let rules = rules(&["darn"], &["(?i)casino"], BlocklistAction::Reject, LinkPolicy::Allow);
        let rejection = apply_text_rules(&rules, r#"{"text": "oh DARN"}"#).unwrap_err();
        assert_eq!((rejection.rule, rejection.matched.as_deref()), (Rule::Blocklist, Some("DARN")));
        assert_eq!(rejection.pattern, None, "a word, not a pattern");
        let rejection = apply_text_rules(&rules, r#"["ok", "Casino night"]"#).unwrap_err();
        assert_eq!(rejection.matched.as_deref(), Some("Casino"));
        assert_eq!(rejection.pattern.as_deref(), Some("(?i)casino"));
        assert_eq!(apply_text_rules(&rules, r#"{"darn": "keys are not checked"}"#).unwrap(), None);
    }

    #[test]
    fn links_are_allowed_stripped_or_rejected() {
        let text = "look at https://spam.example.com/x and www.example.org";
        let allow = rules(&[], &[], BlocklistAction::Reject, LinkPolicy::Allow);
        assert_eq!(screen_text(&allow, text).unwrap(), None);
        let strip = rules(&[], &[], BlocklistAction::Reject, LinkPolicy::Strip);
        assert_eq!(screen_text(&strip, text).unwrap().as_deref(), Some("look at  and "));
        let reject = rules(&[], &[], BlocklistAction::Reject, LinkPolicy::Reject);
        let rejection = screen_text(&reject, text).unwrap_err();
        assert_eq!(
            (rejection.rule, rejection.matched.as_deref()),
            (Rule::Links, Some("https://spam.example.com/x"))
        );
        assert_eq!(screen_text(&reject, "mail alice@example.com").unwrap(), None);
    }

    #[test]
    fn links_are_stripped_before_the_blocklist_reads_the_text() {
        let rules = rules(&["casino"], &[], BlocklistAction::Reject, LinkPolicy::Strip);
        assert_eq!(screen_text(&rules, "win at casino.com").unwrap().as_deref(), Some("win at "));
    }
}
