//! Durations as written in the configuration: a whole number and a unit,
//! `"500ms"`, `"10s"`, `"5m"`, `"24h"`, `"7d"`.
//!
//! A bare number is refused on purpose: `shutdown_grace = 30` could mean
//! seconds or milliseconds, and guessing wrong is a production incident.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const UNITS: [(&str, u64); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `"<whole number><unit>"` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("`{text}` is not a duration: expected a whole number and a unit, e.g. \"10s\""));
    }
    let Some(&(_, unit_ms)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!(
            "`{text}` is not a duration: the unit must be one of ms, s, m, h, d (e.g. \"10s\")"
        ));
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long a duration"))
}

/// Writes a duration in the largest unit up to hours that represents it exactly, so
/// that [`parse_duration`] reads it back unchanged (sub-millisecond parts,
/// which the parser cannot produce, are dropped).
pub fn format_duration(duration: Duration) -> String {
    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_owned();
    }
    // Days are read but not written: "24h" is how people say a day of history.
    let (unit, size) = UNITS[1..].iter().find(|(_, size)| ms % size == 0).copied().unwrap_or(("ms", 1));
    format!("{}{unit}", ms / size)
}

/// A [`Duration`] that (de)serializes as a string such as `"10s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, such as \"500ms\", \"10s\", \"5m\" or \"24h\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                parse_duration(text).map(HumanDuration).map_err(E::custom)
            }
        }

        d.deserialize_str(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn numbers_without_a_known_unit_are_refused_with_the_reason() {
        assert!(parse_duration("30").unwrap_err().contains("unit must be one of"));
        assert!(parse_duration("3 s").unwrap_err().contains("unit must be one of"));
        assert!(parse_duration("1.5s").unwrap_err().contains("unit must be one of"));
        assert!(parse_duration("10sec").unwrap_err().contains("unit must be one of"));
        assert!(parse_duration("s").unwrap_err().contains("whole number"));
        assert!(parse_duration("").unwrap_err().contains("whole number"));
        assert!(parse_duration("-5s").unwrap_err().contains("whole number"));
        assert!(parse_duration("99999999999999999999d").unwrap_err().contains("too long"));
    }

    #[test]
    fn formatting_picks_the_largest_exact_unit_up_to_hours_and_reads_back() {
        for (ms, text) in [
            (0, "0s"),
            (1500, "1500ms"),
            (30_000, "30s"),
            (300_000, "5m"),
            (86_400_000, "24h"),
            (7 * 86_400_000, "168h"),
            (90 * 60_000, "90m"),
        ] {
            let duration = Duration::from_millis(ms);
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
    }
}
