//! What counts as a link (`docs/moderation.md`, "Links"), found in a text.
//!
//! Three shapes, case-insensitive:
//! 1. a URL with a scheme: `http://` or `https://` and what follows up to
//!    the next whitespace;
//! 2. `www.` followed by a dotted name (`www.example`, `www.example.org/x`);
//! 3. a bare domain: dotted labels of letters, digits and `-` whose last
//!    label is one of [`BARE_TLDS`] (`example.com`, `shop.example.co/path`,
//!    `example.io:8080`), not right after an `@` (an e-mail address is not a
//!    link) nor inside a longer word.
//!
//! A path, query or port after the name belongs to the link. Trailing
//! punctuation (`. , ; : ! ?` and a `)` without its `(`) does not: it ends
//! a sentence more often than a URL.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// The last labels that make a bare name a link. Short list on purpose:
/// a longer one (`.it`, `.me`, `.to`, `.in`, `.us`, `.md`, `.rs`, `.py`)
/// catches sentences missing a space (`did it.It`) and file names.
pub(crate) const BARE_TLDS: &[&str] = &[
    "com", "net", "org", "info", "biz", "io", "co", "app", "dev", "xyz", "ai", "gg", "tv", "ly", "cc",
    "site", "online", "shop", "store", "club", "link", "live", "blog", "tech", "cloud", "ru", "cn", "de",
    "uk", "fr", "nl", "eu", "jp", "br", "au", "ca", "pl", "ch", "se", "kr",
];

static LINK: LazyLock<Regex> = LazyLock::new(|| {
    let rest = r#"[^\s<>"`]*"#;
    let label = r"[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?";
    let expression = format!(
        r"(?i)\b(?:https?://[^\s<>`]+|www\.{label}(?:\.{label})*(?:[:/?#]{rest})?|(?:{label}\.)+(?:{tlds})\b(?:[:/?#]{rest})?)",
        tlds = BARE_TLDS.join("|"),
    );
    Regex::new(&expression).expect("the link expression compiles")
});

/// The byte ranges of the links in `text`, in order.
pub(crate) fn find_links(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    LINK.find_iter(text).filter(|found| !after_at_sign(text, found.start())).map(|found| {
        let link = trim_trailing_punctuation(found.as_str());
        found.start()..found.start() + link.len()
    })
}

/// `alice@example.com`: the domain of an e-mail address.
fn after_at_sign(text: &str, start: usize) -> bool {
    text[..start].ends_with('@')
}

fn trim_trailing_punctuation(link: &str) -> &str {
    let mut link = link;
    loop {
        let trimmed = link.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"']);
        let trimmed = match trimmed.strip_suffix(')') {
            Some(inner) if !inner.contains('(') => inner,
            _ => trimmed,
        };
        if trimmed.len() == link.len() {
            return link;
        }
        link = trimmed;
    }
}

/// `text` without its links; `None` when it has none.
pub(crate) fn strip_links(text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    for range in find_links(text) {
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..range.start]);
        copied = range.end;
    }
    out.map(|mut out| {
        out.push_str(&text[copied..]);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(text: &str) -> Vec<&str> {
        find_links(text).map(|range| &text[range]).collect()
    }

    #[test]
    fn urls_with_a_scheme_are_links_up_to_the_next_space() {
        assert_eq!(links("see https://example.com/a?b=c#d now"), ["https://example.com/a?b=c#d"]);
        assert_eq!(links("HTTP://10.0.0.1:8080/x"), ["HTTP://10.0.0.1:8080/x"]);
        assert_eq!(links("https://пример.рф/путь."), ["https://пример.рф/путь"]);
        assert!(links("ftp://example.com, mailto:a@b").iter().all(|l| !l.starts_with("ftp")));
    }

    #[test]
    fn www_names_and_bare_domains_with_a_known_last_label_are_links() {
        assert_eq!(links("go to www.example.org/page today"), ["www.example.org/page"]);
        assert_eq!(links("Visit Example.COM!"), ["Example.COM"]);
        assert_eq!(
            links("shop.example.co/sale, and api.example.io:8443"),
            ["shop.example.co/sale", "api.example.io:8443"]
        );
        assert_eq!(links("(see example.net)"), ["example.net"]);
        assert_eq!(links("wiki.example.de/a_(b)"), ["wiki.example.de/a_(b)"]);
    }

    #[test]
    fn file_names_numbers_abbreviations_and_email_addresses_are_not_links() {
        for text in [
            "open main.rs or README.md",
            "pi is 3.14",
            "e.g. this, i.e. that",
            "write to alice@example.com",
            "I did it.It worked",
            "the community.committee",
            "node.js and vue.js",
        ] {
            assert!(links(text).is_empty(), "{text}: {:?}", links(text));
        }
    }

    #[test]
    fn stripping_removes_each_link_and_keeps_the_rest() {
        assert_eq!(strip_links("a https://x.example.com/p b example.com c").as_deref(), Some("a  b  c"));
        assert_eq!(strip_links("no links here"), None);
    }
}
