//! Rates as written in the configuration: `"<count>/<duration>"`, such as
//! `"5/s"`, `"30/10s"` or `"100/m"` — `count` publications per duration,
//! in bursts of up to `count` — or `"off"`. A bare unit means one of it
//! (`"5/s"` is `"5/1s"`). A count of zero is refused: a bucket that never
//! holds a token would refuse everything, which `publish = "server"`
//! says more clearly.

use std::fmt;
use std::num::NonZeroU32;

use fanfare_cluster::Rate;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::{format_duration, parse_duration};

/// Parses `"<count>/<duration>"`; `None` for `"off"`.
pub fn parse_rate(text: &str) -> Result<Option<Rate>, String> {
    let text = text.trim();
    if text == "off" {
        return Ok(None);
    }
    let expected = || {
        format!(
            "`{text}` is not a rate: expected \"<count>/<duration>\" (e.g. \"5/s\", \"30/10s\") or \"off\""
        )
    };
    let (count, per) = text.split_once('/').ok_or_else(expected)?;
    let count: u32 = count.trim().parse().map_err(|_| expected())?;
    let count = NonZeroU32::new(count)
        .ok_or_else(|| format!("`{text}`: a rate of zero would refuse everything; write \"off\" for no limit, or a count of at least 1"))?;
    let per = per.trim();
    let per = if per.starts_with(|c: char| c.is_ascii_digit()) { per.to_owned() } else { format!("1{per}") };
    let period = parse_duration(&per).map_err(|e| format!("`{text}`: {e}"))?;
    if period.is_zero() {
        return Err(format!("`{text}`: the duration must be longer than zero"));
    }
    Ok(Some(Rate { count, period }))
}

/// Writes a rate so that [`parse_rate`] reads it back: `"5/1s"`, `"off"`.
pub fn format_rate(rate: Option<Rate>) -> String {
    match rate {
        Some(rate) => format!("{}/{}", rate.count, format_duration(rate.period)),
        None => "off".to_owned(),
    }
}

/// A rate or `"off"`, (de)serialized as its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanRate(pub Option<Rate>);

impl Serialize for HumanRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rate(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RateVisitor;

        impl Visitor<'_> for RateVisitor {
            type Value = HumanRate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate such as \"5/s\" or \"30/10s\", or \"off\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<HumanRate, E> {
                parse_rate(text).map(HumanRate).map_err(E::custom)
            }
        }

        d.deserialize_str(RateVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rate(count: u32, secs: u64) -> Option<Rate> {
        Some(Rate { count: NonZeroU32::new(count).unwrap(), period: Duration::from_secs(secs) })
    }

    #[test]
    fn rates_read_with_or_without_a_number_before_the_unit() {
        assert_eq!(parse_rate("5/s"), Ok(rate(5, 1)));
        assert_eq!(parse_rate(" 30 / 10s "), Ok(rate(30, 10)));
        assert_eq!(parse_rate("100/m"), Ok(rate(100, 60)));
        assert_eq!(parse_rate("off"), Ok(None));
    }

    #[test]
    fn zero_and_malformed_rates_are_refused_with_the_reason() {
        assert!(parse_rate("0/s").unwrap_err().contains("zero would refuse everything"));
        assert!(parse_rate("5/0s").unwrap_err().contains("longer than zero"));
        assert!(parse_rate("5").unwrap_err().contains("not a rate"));
        assert!(parse_rate("-1/s").unwrap_err().contains("not a rate"));
        assert!(parse_rate("5/fortnight").unwrap_err().contains("unit must be one of"));
    }

    #[test]
    fn namespace_rates_are_resolved_and_a_bad_one_names_its_key() {
        let toml = "[channel_defaults]\npublish_rate_per_user = \"5/10s\"\n\n[namespaces.live]\nslow_mode = \"2s\"\npublish_rate_per_user = \"off\"\n";
        let settings = crate::from_toml(toml).unwrap();
        let live = settings.namespaces.get("live").publish_limits;
        assert_eq!(
            (live.per_user, live.slow_mode),
            (None, Duration::from_secs(2)),
            "off overrides the default"
        );
        assert_eq!(settings.namespaces.get("other").publish_limits.per_user, rate(5, 10));
        let error = crate::from_toml("[namespaces.live]\npublish_rate_per_channel = \"0/s\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("namespaces.live.publish_rate_per_channel"), "{error}");
        assert!(error.contains("zero would refuse everything"), "{error}");
    }

    #[test]
    fn a_formatted_rate_reads_back_the_same() {
        for text in ["5/s", "30/10s", "100/m", "off", "7/250ms"] {
            let parsed = parse_rate(text).unwrap();
            assert_eq!(parse_rate(&format_rate(parsed)).unwrap(), parsed, "{text}");
        }
    }
}
