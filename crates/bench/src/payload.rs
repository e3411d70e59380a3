//! What every benchmark publication carries, so that a subscriber can tell
//! which publication it got and when it was sent without asking anyone.
//!
//! The payload is one JSON string, `"fb1.<seq>.<sent_us>.xxxx…"`: a JSON
//! string passes unchanged through both protocols (a Pusher event's `data`
//! is a string), and needs no escaping, so decoding it is a split, not a
//! JSON parse. `seq` counts the publications of one channel from 1 (the
//! Pusher protocol has no offsets, so it is what orders them there);
//! `sent_us` is the publisher's wall clock in microseconds since the Unix
//! epoch — wall clock because publisher and subscribers may be different
//! processes (`--workers`) on the same machine. Padding with `x` brings the
//! JSON text of the payload to the requested size.

use std::time::{SystemTime, UNIX_EPOCH};

const MAGIC: &str = "fb1";

/// The decoded header of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    pub seq: u64,
    pub sent_us: u64,
}

/// The JSON text (quotes included) of the payload for `seq` sent at
/// `sent_us`, padded to `size` bytes; never shorter than the header.
pub fn encode(seq: u64, sent_us: u64, size: usize) -> String {
    let mut text = String::with_capacity(size.max(48));
    text.push('"');
    text.push_str(MAGIC);
    text.push('.');
    text.push_str(&seq.to_string());
    text.push('.');
    text.push_str(&sent_us.to_string());
    text.push('.');
    // One byte left for the closing quote.
    while text.len() + 1 < size {
        text.push('x');
    }
    text.push('"');
    text
}

/// Decodes a payload from the JSON text of `data` (`"fb1.…"`); `None` for
/// anything else.
pub fn decode(json: &str) -> Option<Payload> {
    decode_text(json.strip_prefix('"')?.strip_suffix('"')?)
}

/// Decodes a payload from the text itself (`fb1.…`, no quotes): what a
/// feed notice's `preview` holds of a message whose `text` was a payload
/// (the padding may be cut; the header is well within a preview).
pub fn decode_text(inner: &str) -> Option<Payload> {
    let mut parts = inner.splitn(4, '.');
    if parts.next()? != MAGIC {
        return None;
    }
    let seq = parts.next()?.parse().ok()?;
    let sent_us = parts.next()?.parse().ok()?;
    parts.next()?;
    Some(Payload { seq, sent_us })
}

/// Wall clock, microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// Microseconds from `sent_us` to now (0 if the clock went backwards).
pub fn age_us(sent_us: u64) -> u64 {
    now_us().saturating_sub(sent_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_round_trips_and_has_the_requested_size() {
        let text = encode(42, 1_700_000_000_123_456, 100);
        assert_eq!(text.len(), 100);
        assert!(text.starts_with("\"fb1.42.1700000000123456.x") && text.ends_with("x\""), "{text}");
        assert_eq!(decode(&text), Some(Payload { seq: 42, sent_us: 1_700_000_000_123_456 }));
    }

    #[test]
    fn a_size_below_the_header_gives_just_the_header() {
        let text = encode(1, 2, 0);
        assert_eq!(text, "\"fb1.1.2.\"");
        assert_eq!(decode(&text), Some(Payload { seq: 1, sent_us: 2 }));
    }

    #[test]
    fn the_payload_is_valid_json_that_needs_no_escaping() {
        let text = encode(7, 8, 64);
        let value: String = serde_json::from_str(&text).unwrap();
        assert_eq!(format!("\"{value}\""), text);
    }

    #[test]
    fn other_data_is_not_a_payload() {
        for other in
            ["", "\"\"", "{}", "\"fb2.1.2.\"", "\"fb1.x.2.\"", "\"fb1.1.2\"", "fb1.1.2.", "\"fb1.1\""]
        {
            assert_eq!(decode(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_preview_of_a_payload_decodes_even_cut_short() {
        let text = encode(9, 1234, 300);
        let inner: String = serde_json::from_str(&text).unwrap();
        assert_eq!(decode_text(&inner[..140]), Some(Payload { seq: 9, sent_us: 1234 }));
        assert_eq!(decode_text("hello"), None);
    }

    #[test]
    fn age_is_never_negative() {
        assert_eq!(age_us(u64::MAX), 0);
        assert!(age_us(now_us() - 1_000) >= 1_000);
    }
}
