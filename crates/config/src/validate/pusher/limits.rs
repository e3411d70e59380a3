//! The limits of one Pusher app, under the names users migrate with.
//!
//! Fanfare's names are the keys; Soketi's are accepted as well, in their
//! own units. Its `_per_sec` / `_req_` rate names and
//! `max_presence_members_per_channel` are serde aliases (`raw.rs`); the two
//! sizes it gives in KiB, `max_event_payload_in_kb` and
//! `max_presence_member_size_in_kb`, are converted to bytes here. Rates and
//! counts hold per node; 0 means unlimited. Name lengths are 1 to 200
//! characters, the most the Pusher name rules allow.

use std::time::Duration;

use fanfare_protocol::pusher::{MAX_EVENT_NAME_LEN, MAX_PUSHER_CHANNEL_NAME_LEN};

use super::Check;
use crate::error::ConfigError;
use crate::pusher::AppSettings;
use crate::raw::RawPusherApp;

/// The timeout `user_authentication = true` means when no
/// `user_authentication_timeout` is given (Soketi's default).
const DEFAULT_USER_AUTHENTICATION_TIMEOUT: Duration = Duration::from_secs(30);

const KIB: f64 = 1024.0;

impl Check<'_> {
    /// Reads the limits of `raw` into `app`, whose fields hold the defaults.
    pub(super) fn limits(
        &self,
        table: &str,
        raw: &RawPusherApp,
        app: &mut AppSettings,
    ) -> Result<(), ConfigError> {
        app.user_authentication_timeout = self.user_authentication(table, raw)?;
        let sizes = [
            (
                &mut app.max_event_bytes,
                "max_event_bytes",
                raw.max_event_bytes,
                "max_event_payload_in_kb",
                raw.max_event_payload_in_kb,
            ),
            (
                &mut app.max_presence_user_info_bytes,
                "max_presence_user_info_bytes",
                raw.max_presence_user_info_bytes,
                "max_presence_member_size_in_kb",
                raw.max_presence_member_size_in_kb,
            ),
        ];
        for (field, name, bytes, kib_name, kib) in sizes {
            if let Some(bytes) = self.bytes_or_kib(table, (name, bytes), (kib_name, kib))? {
                *field = bytes;
            }
        }
        let plain = [
            (&mut app.max_presence_members, raw.max_presence_members),
            (&mut app.max_client_events_per_second, raw.max_client_events_per_second),
            (&mut app.max_backend_events_per_second, raw.max_backend_events_per_second),
            (&mut app.max_read_requests_per_second, raw.max_read_requests_per_second),
            (&mut app.max_event_channels_at_once, raw.max_event_channels_at_once),
            (&mut app.max_event_batch_size, raw.max_event_batch_size),
        ];
        for (field, value) in plain {
            *field = value.unwrap_or(*field);
        }
        let lengths = [
            (
                &mut app.max_channel_name_length,
                "max_channel_name_length",
                raw.max_channel_name_length,
                MAX_PUSHER_CHANNEL_NAME_LEN,
            ),
            (
                &mut app.max_event_name_length,
                "max_event_name_length",
                raw.max_event_name_length,
                MAX_EVENT_NAME_LEN,
            ),
        ];
        for (field, name, value, most) in lengths {
            let value = value.unwrap_or(*field);
            if value == 0 || value > most {
                return Err(
                    self.invalid(&format!("{table}.{name}"), format!("= {value}: must be 1 to {most}"))
                );
            }
            *field = value;
        }
        Ok(())
    }

    /// `user_authentication` (on or off) and `user_authentication_timeout`
    /// (how long; `"0s"` is off) must agree when both are given.
    fn user_authentication(&self, table: &str, raw: &RawPusherApp) -> Result<Duration, ConfigError> {
        let timeout = raw.user_authentication_timeout.map(|t| t.0);
        match (raw.user_authentication, timeout) {
            (None | Some(false), None) => Ok(Duration::ZERO),
            (Some(true), None) => Ok(DEFAULT_USER_AUTHENTICATION_TIMEOUT),
            (None, Some(timeout)) => Ok(timeout),
            (Some(on), Some(timeout)) if on != timeout.is_zero() => Ok(timeout),
            (Some(on), Some(_)) => Err(self.invalid(
                &format!("{table}.user_authentication_timeout"),
                format!(
                    "contradicts user_authentication = {on}: a timeout of 0s turns the rule off; give one of the two"
                ),
            )),
        }
    }

    /// A size given in bytes (Fanfare's key) or in KiB (Soketi's), not both.
    fn bytes_or_kib(
        &self,
        table: &str,
        (name, bytes): (&str, Option<usize>),
        (kib_name, kib): (&str, Option<f64>),
    ) -> Result<Option<usize>, ConfigError> {
        let Some(kib) = kib else { return Ok(bytes) };
        if bytes.is_some() {
            return Err(self.invalid(
                &format!("{table}.{kib_name}"),
                format!("is {name} in KiB: give one of the two, not both"),
            ));
        }
        if !kib.is_finite() || kib * KIB < 1.0 || kib * KIB > usize::MAX as f64 {
            return Err(self.invalid(
                &format!("{table}.{kib_name}"),
                format!("= {kib}: must be a size of at least 1 byte, in KiB"),
            ));
        }
        // Soketi refuses a payload when bytes / 1024 > the limit.
        Ok(Some((kib * KIB).floor() as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_toml;

    fn app(fields: &str) -> Result<AppSettings, ConfigError> {
        let text = format!("[[pusher.apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n{fields}\n");
        from_toml(&text).map(|settings| settings.pusher.apps[0].clone())
    }

    fn refused_key(fields: &str) -> String {
        match app(fields).unwrap_err() {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_pushers_published_limits_else_unlimited() {
        let app = app("").unwrap();
        assert_eq!(app.max_client_events_per_second, 10);
        assert_eq!((app.max_event_channels_at_once, app.max_event_batch_size), (100, 10));
        assert_eq!((app.max_channel_name_length, app.max_event_name_length), (200, 200));
        assert_eq!((app.max_backend_events_per_second, app.max_read_requests_per_second), (0, 0));
        assert_eq!(app.user_authentication_timeout, Duration::ZERO);
    }

    #[test]
    fn every_limit_is_read_under_its_fanfare_name() {
        let app = app("max_client_events_per_second = 3\nmax_backend_events_per_second = 50\n\
             max_read_requests_per_second = 20\nmax_channel_name_length = 64\nmax_event_name_length = 32\n\
             max_event_channels_at_once = 5\nmax_event_batch_size = 0\nuser_authentication_timeout = \"5s\"")
        .unwrap();
        assert_eq!((app.max_client_events_per_second, app.max_backend_events_per_second), (3, 50));
        assert_eq!(app.max_read_requests_per_second, 20);
        assert_eq!((app.max_channel_name_length, app.max_event_name_length), (64, 32));
        assert_eq!((app.max_event_channels_at_once, app.max_event_batch_size), (5, 0));
        assert_eq!(app.user_authentication_timeout, Duration::from_secs(5));
    }

    #[test]
    fn soketis_names_are_accepted_in_soketis_units() {
        let app = app("enable_client_messages = true\nenable_user_authentication = true\n\
             max_client_events_per_sec = 4\nmax_backend_events_per_sec = 40\nmax_read_req_per_sec = 8\n\
             max_presence_members_per_channel = 7\nmax_presence_member_size_in_kb = 2\n\
             max_event_payload_in_kb = 0.5")
        .unwrap();
        assert!(app.client_events);
        assert_eq!(app.user_authentication_timeout, Duration::from_secs(30));
        assert_eq!((app.max_client_events_per_second, app.max_backend_events_per_second), (4, 40));
        assert_eq!((app.max_read_requests_per_second, app.max_presence_members), (8, 7));
        assert_eq!((app.max_presence_user_info_bytes, app.max_event_bytes), (2048, 512));
    }

    #[test]
    fn a_limit_given_under_both_names_is_refused() {
        let error = app("max_client_events_per_second = 1\nmax_client_events_per_sec = 2").unwrap_err();
        assert!(error.to_string().contains("duplicate"), "{error}");
        assert_eq!(
            refused_key("max_event_bytes = 100\nmax_event_payload_in_kb = 1"),
            "pusher.apps[0].max_event_payload_in_kb"
        );
    }

    #[test]
    fn names_longer_than_the_pusher_rules_or_empty_are_refused() {
        for bad in ["max_channel_name_length = 0", "max_channel_name_length = 201"] {
            assert_eq!(refused_key(bad), "pusher.apps[0].max_channel_name_length");
        }
        assert_eq!(refused_key("max_event_name_length = 201"), "pusher.apps[0].max_event_name_length");
        assert_eq!(refused_key("max_event_payload_in_kb = 0"), "pusher.apps[0].max_event_payload_in_kb");
    }

    #[test]
    fn user_authentication_and_its_timeout_must_agree() {
        assert_eq!(
            app("user_authentication = true").unwrap().user_authentication_timeout,
            Duration::from_secs(30)
        );
        assert_eq!(
            app("user_authentication_timeout = \"0s\"").unwrap().user_authentication_timeout,
            Duration::ZERO
        );
        let both = app("user_authentication = true\nuser_authentication_timeout = \"10s\"").unwrap();
        assert_eq!(both.user_authentication_timeout, Duration::from_secs(10));
        for bad in [
            "user_authentication = false\nuser_authentication_timeout = \"10s\"",
            "user_authentication = true\nuser_authentication_timeout = \"0s\"",
        ] {
            assert_eq!(refused_key(bad), "pusher.apps[0].user_authentication_timeout");
        }
    }
}
