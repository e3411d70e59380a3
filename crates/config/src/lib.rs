//! Configuration: TOML file, `FANFARE_*` environment and flags → [`Settings`].
//!
//! Precedence, lowest first: built-in defaults < TOML file (`--config`) <
//! environment (`FANFARE_*`, all listed in [`ENV_VARS`]) < command-line
//! flags ([`ServeArgs`]). The layers are merged into one raw struct that
//! refuses unknown keys (`raw.rs`), which is validated once into the typed
//! [`Settings`] the rest of the server reads (`validate/`). Errors name
//! the key and where its value came from.
//!
//! Imports flow one way: `kinds.rs` (the enums both sides share),
//! `duration.rs` and `error.rs` are leaves; `raw.rs` uses only them; the
//! validated types (`settings.rs`, `namespaces.rs`, `pusher.rs`) know their
//! raw form (to render it back) but not the validation; `validate/`
//! (with `validate/pusher.rs` for the `[pusher]` section) reads the raw
//! config and builds them.
//!
//! - `load.rs`: the layering and [`load`] / [`load_from`] / [`from_toml`].
//! - `env.rs`: the table of environment variables.
//! - `settings.rs`, `namespaces.rs`: the validated types; channel settings
//!   are resolved per namespace by [`Namespaces::resolve`].
//! - `render.rs`: [`Settings::to_toml`] for `fanfare config check`.
//! - `pusher.rs`: the `[pusher]` section's settings (apps and their
//!   webhooks); `validate/pusher.rs` and `validate/pusher/limits.rs`
//!   check it.
//! - `admission.rs`: who may connect how fast (handshake rates, connections
//!   per IP and per user, trusted proxies); `validate/admission.rs` checks it.
//! - `content.rs`: a namespace's content rules (blocklist, links, the
//!   pre-publish hook), compiled by `validate/content.rs`.
//! - `webhooks.rs`: `[[webhooks]]`, the server's own webhooks (moderation
//!   and rejection events); `validate/webhooks.rs` checks them.
//! - `jwt_key.rs`: the JWT key, parsed once here so a bad key fails
//!   validation; the server's authenticator verifies tokens with it.
//! - `demo.rs`: what `--demo` adds under everything the user set.
//! - `example.toml`: every key, documented.
//!
//! On the message path this crate comes before everything the server
//! starts: it depends on the protocol, store and hub crates only for the
//! types their settings take, and the server re-exports it as
//! `fanfare::config`.

mod admission;
pub mod content;
mod demo;
mod duration;
mod env;
mod error;
pub mod jwt_key;
mod kinds;
mod load;
mod members;
mod namespaces;
mod pusher;
mod rate;
mod raw;
mod render;
mod settings;
mod shaping;
mod validate;
mod webhooks;

pub use admission::{Admission, TrustedProxies};
pub use duration::{format_duration, parse_duration};
pub use env::{ENV_VARS, EnvKind, EnvVar, markdown_table as env_markdown_table};
pub use error::{ConfigError, Origin};
pub use kinds::{
    Durability, JwtAlgorithm, LogFormat, ManageMembers, PublishPolicy, ServerEventKind, SubscribePolicy,
    WebhookKind,
};
pub use load::{ServeArgs, from_toml, load, load_from};
pub use members::MemberSettings;
pub use namespaces::{NamespaceSettings, Namespaces, PublishLimits};
pub use pusher::{AppSettings, PusherSettings, WebhookSettings};
pub use rate::{format_rate, parse_rate};
pub use render::REDACTED;
pub use settings::{
    AuthSettings, CertificateFiles, ClusterSettings, FILE_HEADROOM, JwtKey, JwtSettings, Limits, Settings,
    StoreKind, StoreSettings, TlsSettings, api_key_file, redact_url_password,
};
pub use shaping::{PriorityLane, ShapingRules};
pub use webhooks::{DEFAULT_SERVER_WEBHOOK_TIMEOUT, ServerWebhookSettings};

/// The documented example configuration (every key, with its default).
pub const EXAMPLE_TOML: &str = include_str!("example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_shows_the_defaults() {
        let settings = from_toml(EXAMPLE_TOML).unwrap();
        let defaults = Settings::default();
        assert_eq!(settings.listen, defaults.listen);
        assert_eq!(settings.limits, defaults.limits);
        assert_eq!(settings.admission, defaults.admission);
        assert_eq!(settings.store, defaults.store);
        assert_eq!(settings.auth, defaults.auth);
        assert_eq!(settings.namespaces.defaults(), defaults.namespaces.defaults());

        let chat = settings.namespaces.get("chat");
        assert_eq!(chat.publish, PublishPolicy::Subscribers);
        assert!(chat.channel.presence && chat.channel.join_leave);
        assert_eq!(chat.channel.history.max_len, 200);
    }

    #[test]
    fn the_operations_guide_shows_the_example_file_as_it_is() {
        let guide = include_str!("../../../docs/operations.md");
        assert!(
            guide.contains(EXAMPLE_TOML),
            "docs/operations.md §2.4 differs from crates/config/src/example.toml"
        );
    }

    #[test]
    fn the_example_file_mentions_every_key() {
        let raw = Settings::default().to_raw(false);
        let rendered = toml::to_string(&raw).unwrap();
        for line in rendered.lines() {
            if let Some((key, _)) = line.split_once(" = ") {
                assert!(EXAMPLE_TOML.contains(&format!("{key} = ")), "example.toml does not mention `{key}`");
            }
        }
        for key in [
            "api_key",
            "jwt_algorithm",
            "jwt_secret",
            "jwt_public_key_file",
            "jwt_public_key",
            "audience",
            "issuer",
            "cert_file",
            "key_file",
            "webhook_ca_file",
        ] {
            assert!(EXAMPLE_TOML.contains(&format!("# {key} = ")), "example.toml does not mention `{key}`");
        }
    }
}
