//! The resolved configuration as TOML, for `fanfare config check`: every
//! key with the value the server will use, secrets redacted.

use super::duration::HumanDuration;
use super::raw::{RawAuth, RawCluster, RawConfig, RawLimits, RawLog, RawStore, RawTls};
use super::settings::{JwtKey, Settings, StoreKind};

/// What a secret is replaced with in the rendered configuration.
pub const REDACTED: &str = "<redacted>";

impl Settings {
    /// Every key with its resolved value, in the configuration file's
    /// shape; `api_key` and `auth.jwt_secret` appear as `"<redacted>"`.
    pub fn to_toml(&self) -> String {
        let mut out =
            String::from("# Resolved configuration: defaults < config file < FANFARE_* variables < flags.\n");
        if let Some(path) = &self.config_file {
            out.push_str(&format!("# Config file: {}\n", path.display()));
        }
        if self.api_key.is_none() {
            out.push_str(&format!(
                "# api_key is not configured: the key generated on first start is kept in {}\n",
                crate::settings::api_key_file(&self.data_dir).display()
            ));
        }
        out.push('\n');
        match toml::to_string(&self.to_raw(true)) {
            Ok(text) => out.push_str(&text),
            Err(error) => out.push_str(&format!("# cannot render the configuration: {error}\n")),
        }
        out
    }

    /// The settings as raw keys; with `redact`, secrets are replaced.
    pub(crate) fn to_raw(&self, redact: bool) -> RawConfig {
        let secret = |value: &str| if redact { REDACTED.to_owned() } else { value.to_owned() };
        let limits = &self.limits;
        let mut auth = RawAuth {
            allow_anonymous: Some(self.auth.allow_anonymous),
            channels_claim: Some(self.auth.channels_claim.clone()),
            ..RawAuth::default()
        };
        if let Some(jwt) = &self.auth.jwt {
            auth.jwt_algorithm = Some(jwt.algorithm);
            auth.audience = jwt.audience.clone();
            auth.issuer = jwt.issuer.clone();
            match &jwt.key {
                JwtKey::Secret(value) => auth.jwt_secret = Some(secret(value)),
                JwtKey::PublicKeyPem { file: Some(path), .. } => {
                    auth.jwt_public_key_file = Some(path.clone())
                }
                JwtKey::PublicKeyPem { pem, file: None } => auth.jwt_public_key = Some(pem.clone()),
            }
        }
        RawConfig {
            listen: Some(self.listen.to_string()),
            data_dir: Some(self.data_dir.clone()),
            api_key: self.api_key.as_deref().map(secret),
            shutdown_grace: Some(HumanDuration(self.shutdown_grace)),
            tcp_nodelay: Some(self.tcp_nodelay),
            worker_threads: Some(self.worker_threads),
            log: RawLog { level: Some(self.log_filter.clone()), format: Some(self.log_format) },
            store: RawStore { url: Some(self.store_url()), durability: Some(self.store.durability) },
            cluster: match &self.cluster {
                Some(cluster) => RawCluster {
                    url: Some(if redact { cluster.url_redacted() } else { cluster.url.clone() }),
                    advertise: cluster.advertise.clone(),
                    node_lease: Some(HumanDuration(cluster.node_lease)),
                    heartbeat: Some(HumanDuration(cluster.heartbeat)),
                },
                None => RawCluster::default(),
            },
            tls: RawTls {
                cert_file: self.tls.certificate.as_ref().map(|c| c.cert_file.clone()),
                key_file: self.tls.certificate.as_ref().map(|c| c.key_file.clone()),
                webhook_ca_file: self.tls.webhook_ca_file.clone(),
            },
            limits: RawLimits {
                max_frame_bytes: Some(limits.max_frame_bytes),
                max_channels_per_connection: Some(limits.max_channels_per_connection),
                max_commands_per_second: Some(limits.max_commands_per_second),
                outbox_frames: Some(limits.outbox_frames),
                outbox_bytes: Some(limits.outbox_bytes),
                handshake_timeout: Some(HumanDuration(limits.handshake_timeout)),
                ping_interval: Some(HumanDuration(limits.ping_interval)),
                pong_timeout: Some(HumanDuration(limits.pong_timeout)),
                max_history_read: Some(limits.max_history_read),
                max_http_body_bytes: Some(limits.max_http_body_bytes),
                max_connections: Some(limits.max_connections),
                ready_below_percent: Some(limits.ready_below_percent),
                max_handshakes_per_second: Some(self.admission.max_handshakes_per_second),
                max_handshakes_per_ip_per_second: Some(self.admission.max_handshakes_per_ip_per_second),
                max_connections_per_ip: Some(self.admission.max_connections_per_ip),
                max_connections_per_user: Some(self.admission.max_connections_per_user),
                trusted_proxies: Some(self.admission.trusted_proxies.to_strings()),
            },
            auth,
            channel_defaults: self.namespaces.defaults().to_raw(&secret),
            namespaces: self
                .namespaces
                .configured()
                .into_iter()
                .map(|(name, settings)| (name.to_owned(), settings.to_raw(&secret)))
                .collect(),
            pusher: self.pusher.to_raw(secret),
            webhooks: self.webhooks.iter().map(|hook| hook.to_raw(secret)).collect(),
            members: self.members.to_raw(),
        }
    }

    fn store_url(&self) -> String {
        match &self.store.kind {
            StoreKind::Memory => "memory://".to_owned(),
            StoreKind::Embedded(path) if *path == self.data_dir.join("store") => "embedded://".to_owned(),
            StoreKind::Embedded(path) => format!("embedded://{}", path.display()),
            StoreKind::Redis(url) => crate::settings::redact_url_password(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_toml;

    const CONFIG: &str = r#"
listen = "127.0.0.1:7001"
data_dir = "/var/lib/fanfare"
api_key = "an-api-key-that-is-secret"
shutdown_grace = "45s"
tcp_nodelay = false
worker_threads = 2

[store]
url = "embedded:///srv/history"
durability = "buffered"

[limits]
ping_interval = "20s"
max_connections_per_user = 3
trusted_proxies = ["10.0.0.0/8", "192.0.2.7"]

[auth]
jwt_secret = "a-jwt-secret-of-at-least-32-bytes!!"
channels_claim = "rooms"

[channel_defaults]
history_size = 50

[namespaces.chat]
publish = "subscribers"
presence = true
join_leave = true

[namespaces.""]
publish = "anyone"
"#;

    #[test]
    fn the_rendered_configuration_hides_secrets_and_shows_resolved_values() {
        let text = from_toml(CONFIG).unwrap().to_toml();
        assert!(!text.contains("an-api-key-that-is-secret"), "{text}");
        assert!(!text.contains("a-jwt-secret"), "{text}");
        assert!(text.contains("api_key = \"<redacted>\""), "{text}");
        assert!(text.contains("jwt_secret = \"<redacted>\""), "{text}");
        assert!(text.contains("ping_interval = \"20s\""), "{text}");
        assert!(text.contains("tcp_nodelay = false"), "{text}");
        assert!(text.contains("worker_threads = 2"), "{text}");
        assert!(text.contains("pong_timeout = \"10s\""), "defaults are shown too:\n{text}");
        assert!(text.contains("max_handshakes_per_second = 1000"), "{text}");
        assert!(text.contains("max_connections_per_user = 3"), "{text}");
        assert!(text.contains(r#"trusted_proxies = ["10.0.0.0/8", "192.0.2.7"]"#), "{text}");
        assert!(text.contains("url = \"embedded:///srv/history\""), "{text}");
        assert!(text.contains("[namespaces.chat]"), "{text}");
    }

    #[test]
    fn the_unredacted_rendering_reads_back_as_the_same_settings() {
        let settings = from_toml(CONFIG).unwrap();
        let text = toml::to_string(&settings.to_raw(false)).unwrap();
        assert_eq!(from_toml(&text).unwrap(), settings, "{text}");

        let defaults = Settings::default();
        let text = toml::to_string(&defaults.to_raw(false)).unwrap();
        assert_eq!(from_toml(&text).unwrap(), defaults, "{text}");
    }

    #[test]
    fn a_missing_api_key_says_where_the_generated_one_lives() {
        let text = Settings::default().to_toml();
        assert!(text.contains("fanfare-data/api_key"), "{text}");
        assert!(!text.contains("\napi_key ="), "{text}");
    }
}
