//! Editing the string values of a JSON text in place.
//!
//! The rules read and change the text of strings only; everything else
//! (keys, numbers, spacing, order) is copied byte for byte, so a masked
//! publication differs from the original only inside the strings that
//! matched, and a number too large for a float is not rounded.

/// Calls `edit` with the decoded text of every string value of `json`
/// (object keys are skipped), in order. Returns the new JSON text when some
/// call returned a replacement, `None` when nothing changed; the first
/// error ends the walk. `json` must be valid JSON (a `JsonData`).
pub(crate) fn edit_strings<E>(
    json: &str,
    mut edit: impl FnMut(&str) -> Result<Option<String>, E>,
) -> Result<Option<String>, E> {
    let bytes = json.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'"') {
        let start = at + offset;
        let end = string_end(bytes, start);
        at = end;
        if is_key(bytes, end) {
            continue;
        }
        let token = &json[start..end];
        // Valid JSON: the token decodes.
        let Ok(text) = serde_json::from_str::<String>(token) else { continue };
        if let Some(replacement) = edit(&text)? {
            let out = out.get_or_insert_with(|| String::with_capacity(json.len()));
            out.push_str(&json[copied..start]);
            out.push_str(&serde_json::to_string(&replacement).expect("a string always serializes"));
            copied = end;
        }
    }
    Ok(out.map(|mut out| {
        out.push_str(&json[copied..]);
        out
    }))
}

/// The index just past the closing quote of the string opening at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// Whether the string ending at `end` is an object key (a `:` follows).
fn is_key(bytes: &[u8], end: usize) -> bool {
    bytes[end..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':')
}

/// The text of `json` when it is one string that itself holds a JSON
/// object or array: how Pusher clients often send `data`
/// (`"{\"text\":\"hi\"}"`), whose strings the rules then read.
pub(crate) fn embedded_json(json: &str) -> Option<String> {
    let text: String = serde_json::from_str(json).ok()?;
    let inner = text.trim_start();
    let opens_container = inner.starts_with('{') || inner.starts_with('[');
    (opens_container && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper_if_has(json: &str, needle: &str) -> Option<String> {
        edit_strings(json, |text| Ok::<_, ()>(text.contains(needle).then(|| text.to_uppercase()))).unwrap()
    }

    #[test]
    fn only_string_values_change_and_the_rest_is_copied_exactly() {
        let json = r#"{"say": "hi there", "n": 12345678901234567890123, "list": ["hi", 1.50, {"hi": "x"}]}"#;
        let edited = upper_if_has(json, "hi").unwrap();
        assert_eq!(
            edited,
            r#"{"say": "HI THERE", "n": 12345678901234567890123, "list": ["HI", 1.50, {"hi": "x"}]}"#
        );
        assert_eq!(upper_if_has(json, "absent"), None);
    }

    #[test]
    fn escapes_are_decoded_before_and_encoded_after() {
        let json = r#"["a \"quoted\" hi\nline", "\u00e9t\u00e9 hi"]"#;
        let edited = upper_if_has(json, "hi").unwrap();
        let values: Vec<String> = serde_json::from_str(&edited).unwrap();
        assert_eq!(values, ["A \"QUOTED\" HI\nLINE", "ÉTÉ HI"]);
    }

    #[test]
    fn a_key_followed_by_spaces_before_its_colon_is_still_a_key() {
        assert_eq!(upper_if_has(r#"{"hi" : "hi"}"#, "hi").unwrap(), r#"{"hi" : "HI"}"#);
        assert_eq!(upper_if_has(r#""hi""#, "hi").unwrap(), r#""HI""#);
    }

    #[test]
    fn the_first_error_stops_the_walk() {
        let mut seen = Vec::new();
        let result = edit_strings(r#"["a", "stop", "c"]"#, |text| {
            seen.push(text.to_owned());
            if text == "stop" { Err(text.to_owned()) } else { Ok(None) }
        });
        assert_eq!(result, Err("stop".to_owned()));
        assert_eq!(seen, ["a", "stop"]);
    }

    #[test]
    fn a_string_holding_a_json_object_is_embedded_json() {
        assert_eq!(embedded_json(r#""{\"text\":\"hi\"}""#).as_deref(), Some(r#"{"text":"hi"}"#));
        assert_eq!(embedded_json(r#""[1, 2]""#).as_deref(), Some("[1, 2]"));
        assert_eq!(embedded_json(r#""{not json""#), None);
        assert_eq!(embedded_json(r#""plain""#), None);
        assert_eq!(embedded_json(r#"{"text":"hi"}"#), None);
    }
}
