//! The one step from [`RawConfig`] (as written) to [`Settings`] (as used):
//! defaults filled in, every value checked, keys that only make sense
//! together checked together. Errors name the key and where it was set.

mod admission;
mod content;
mod pusher;
mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fanfare_protocol::ChannelName;
use pusher::validate_pusher;
use reqwest::Url;
use webhooks::validate_webhooks;

use super::error::{ConfigError, Origins};
use super::kinds::{Durability, JwtAlgorithm, SubscribePolicy};
use super::namespaces::{NamespaceSettings, Namespaces};
use super::raw::{RawAuth, RawCluster, RawConfig, RawLimits, RawNamespace, RawStore, RawTls};
use super::settings::{
    AuthSettings, CertificateFiles, ClusterSettings, JwtKey, JwtSettings, Limits, Settings, StoreKind,
    StoreSettings, TlsSettings,
};

/// Room a publication's envelope (channel, offset, time) takes in a frame
/// beyond its payload, when checking that one message fits in an outbox.
const FRAME_ENVELOPE_BYTES: usize = 1024;
use super::namespaces::BUILT_IN;
/// Shortest API key accepted when one is configured.
const MIN_API_KEY_LEN: usize = 16;
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits).
const MIN_HMAC_SECRET_LEN: usize = 32;

pub(crate) fn validate(
    raw: RawConfig,
    origins: Origins<'_>,
    config_file: Option<PathBuf>,
) -> Result<Settings, ConfigError> {
    let check = Check { origins };
    let defaults = Settings::default();
    let listen = match &raw.listen {
        Some(text) => check.listen(text)?,
        None => defaults.listen,
    };
    let data_dir = raw.data_dir.clone().unwrap_or(defaults.data_dir);
    if data_dir.as_os_str().is_empty() {
        return Err(check.invalid("data_dir", "must not be empty"));
    }
    let api_key = raw.api_key.as_deref().map(|key| check.api_key(key)).transpose()?;
    let log_filter = check.log_filter(raw.log.level.as_deref().unwrap_or(&defaults.log_filter))?;
    let log_format = raw.log.format.unwrap_or(defaults.log_format);
    let cluster = check.cluster(&raw.cluster)?;
    let tls = check.tls(&raw.tls)?;
    let store = check.store(&raw.store, &data_dir, cluster.as_ref())?;
    if cluster.is_some() && api_key.is_none() {
        return Err(check.invalid(
            "api_key",
            "a cluster node needs a configured API key (every node must accept the same one; \
             nothing is generated with a cluster URL)",
        ));
    }
    let limits = check.limits(&raw.limits)?;
    let admission = check.admission(&raw.limits)?;
    let auth = check.auth(&raw.auth)?;
    let namespaces = check.namespaces(&raw, &store, &limits, &auth)?;
    let pusher = validate_pusher(&raw.pusher, &limits, origins)?;
    let webhooks = validate_webhooks(&raw.webhooks, origins)?;
    let members = crate::MemberSettings::check(&raw.members)
        .map_err(|(key, reason)| check.invalid(&format!("members.{key}"), reason))?;
    Ok(Settings {
        listen,
        data_dir,
        api_key,
        shutdown_grace: raw.shutdown_grace.map_or(defaults.shutdown_grace, |d| d.0),
        tcp_nodelay: raw.tcp_nodelay.unwrap_or(defaults.tcp_nodelay),
        worker_threads: raw.worker_threads.unwrap_or(defaults.worker_threads),
        log_filter,
        log_format,
        store,
        cluster,
        tls,
        limits,
        admission,
        auth,
        namespaces,
        pusher,
        webhooks,
        members,
        config_file,
        demo: false,
    })
}

/// An `http://` or `https://` URL with a host: what every webhook and
/// hook URL must be (the reason names the text as written).
fn http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("`{text}` is not a URL: {error}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(format!("`{text}` is not an http:// or https:// URL with a host")),
    }
}

/// A cluster URL's engine, if it is one this build has.
fn check_cluster_url(url: &str) -> Result<(), String> {
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    match scheme {
        "redis" if url.len() > scheme.len() + 3 => Ok(()),
        "redis" => Err("a redis:// URL needs a host, e.g. redis://127.0.0.1:6379".to_owned()),
        "rediss" => {
            Err("rediss:// (TLS to Redis) is not part of this build yet; use redis://host:port".to_owned())
        }
        "nats" | "postgres" | "postgresql" => {
            Err(format!("{scheme}:// clusters are not part of this build yet; use redis://host:port"))
        }
        _ => Err("expected redis://host:port".to_owned()),
    }
}

/// Where a store URL points, relative to the data directory.
pub(crate) fn parse_store_url(url: &str, data_dir: &Path) -> Result<StoreKind, String> {
    let (scheme, rest) = url.split_once("://").unwrap_or((url, ""));
    match scheme {
        "memory" if rest.is_empty() => Ok(StoreKind::Memory),
        "embedded" if rest.is_empty() => Ok(StoreKind::Embedded(data_dir.join("store"))),
        "embedded" if rest.starts_with('/') => Ok(StoreKind::Embedded(PathBuf::from(rest))),
        "embedded" => Err(format!(
            "`{url}`: embedded:// takes an absolute path (embedded:///var/lib/fanfare/store) \
             or none (the store goes under data_dir)"
        )),
        "memory" => Err(format!("`{url}`: memory:// takes no path")),
        // Not echoing these URLs: they may carry a password.
        "redis" | "rediss" => Err(format!(
            "{scheme}:// is the store of a cluster: set cluster.url (FANFARE_CLUSTER_URL, --cluster) \
             to the Redis, and the store follows it"
        )),
        "postgres" | "postgresql" | "nats" => Err(format!(
            "{scheme}:// is a cluster backend this build does not have yet; \
             use embedded:// (one node, on disk), memory://, or a Redis cluster"
        )),
        _ => Err("expected embedded://, embedded:///absolute/path or memory://".to_owned()),
    }
}

struct Check<'a> {
    origins: Origins<'a>,
}

impl Check<'_> {
    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { key: key.to_owned(), reason: reason.into(), origin: (self.origins)(key) }
    }

    fn listen(&self, text: &str) -> Result<SocketAddr, ConfigError> {
        text.trim().parse().map_err(|_| {
            self.invalid(
                "listen",
                format!("`{text}` is not an IP address and port, e.g. 0.0.0.0:6001 or [::]:6001"),
            )
        })
    }

    fn api_key(&self, key: &str) -> Result<String, ConfigError> {
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(self.invalid(
                "api_key",
                "must be printable ASCII without spaces (it travels in an HTTP header)",
            ));
        }
        if key.len() < MIN_API_KEY_LEN {
            return Err(self.invalid(
                "api_key",
                format!(
                    "must be at least {MIN_API_KEY_LEN} characters (or leave it unset to have one generated)"
                ),
            ));
        }
        Ok(key.to_owned())
    }

    fn log_filter(&self, filter: &str) -> Result<String, ConfigError> {
        match tracing_subscriber::EnvFilter::try_new(filter) {
            Ok(_) if !filter.trim().is_empty() => Ok(filter.to_owned()),
            Ok(_) => Err(self.invalid("log.level", "must not be empty (e.g. \"info\")")),
            Err(error) => Err(self.invalid("log.level", format!("`{filter}` is not a log filter: {error}"))),
        }
    }

    fn cluster(&self, raw: &RawCluster) -> Result<Option<ClusterSettings>, ConfigError> {
        let Some(url) = raw.url.as_deref().map(str::trim).filter(|url| !url.is_empty()) else {
            if !raw.is_empty() {
                return Err(self.invalid("cluster.url", "cluster settings need cluster.url"));
            }
            return Ok(None);
        };
        check_cluster_url(url).map_err(|reason| self.invalid("cluster.url", reason))?;
        let node_lease = raw.node_lease.map_or(std::time::Duration::from_secs(15), |d| d.0);
        let heartbeat = raw.heartbeat.map_or(std::time::Duration::from_secs(5), |d| d.0);
        if heartbeat.is_zero() {
            return Err(self.invalid("cluster.heartbeat", "must be more than 0"));
        }
        if node_lease < heartbeat * 2 {
            return Err(self.invalid(
                "cluster.node_lease",
                "must be at least twice cluster.heartbeat (a node must be able to miss one heartbeat)",
            ));
        }
        let advertise = raw.advertise.as_deref().map(str::trim).filter(|a| !a.is_empty()).map(Into::into);
        Ok(Some(ClusterSettings { url: url.to_owned(), advertise, node_lease, heartbeat }))
    }

    fn tls(&self, raw: &RawTls) -> Result<TlsSettings, ConfigError> {
        let certificate = match (&raw.cert_file, &raw.key_file) {
            (Some(cert_file), Some(key_file)) => Some(CertificateFiles {
                cert_file: self.readable_file("tls.cert_file", cert_file)?,
                key_file: self.readable_file("tls.key_file", key_file)?,
            }),
            (None, None) => None,
            (Some(_), None) => return Err(self.invalid("tls.key_file", "tls.cert_file needs tls.key_file")),
            (None, Some(_)) => return Err(self.invalid("tls.cert_file", "tls.key_file needs tls.cert_file")),
        };
        let webhook_ca_file = raw
            .webhook_ca_file
            .as_deref()
            .map(|file| self.readable_file("tls.webhook_ca_file", file))
            .transpose()?;
        Ok(TlsSettings { certificate, webhook_ca_file })
    }

    /// A file that exists now (its contents are checked where it is read).
    fn readable_file(&self, key: &str, path: &Path) -> Result<PathBuf, ConfigError> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(path.to_owned()),
            Ok(_) => Err(self.invalid(key, format!("`{}` is not a file", path.display()))),
            Err(error) => Err(self.invalid(key, format!("`{}`: {error}", path.display()))),
        }
    }

    fn store(
        &self,
        raw: &RawStore,
        data_dir: &Path,
        cluster: Option<&ClusterSettings>,
    ) -> Result<StoreSettings, ConfigError> {
        let durability = raw.durability.unwrap_or(Durability::Fsync);
        let url = raw.url.as_deref().map(str::trim);
        let Some(cluster) = cluster else {
            let kind = match url {
                Some(url) => {
                    parse_store_url(url, data_dir).map_err(|reason| self.invalid("store.url", reason))?
                }
                None => StoreKind::Embedded(data_dir.join("store")),
            };
            return Ok(StoreSettings { kind, durability });
        };
        match url {
            None => Ok(StoreSettings { kind: StoreKind::Redis(cluster.url.clone()), durability }),
            Some(url) if url == cluster.url => Ok(StoreSettings { kind: StoreKind::Redis(url.to_owned()), durability }),
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Err(self.invalid(
                "store.url",
                "a Redis store must be the cluster's Redis (its append script publishes to the cluster's \
                 pub/sub): leave store.url unset, or set it to cluster.url",
            )),
            Some(_) => Err(self.invalid(
                "store.url",
                "with a cluster URL the store must be shared by every node: embedded:// and memory:// \
                 would let each node hand out its own offsets; leave store.url unset to use the cluster's Redis",
            )),
        }
    }

    fn limits(&self, raw: &RawLimits) -> Result<Limits, ConfigError> {
        let defaults = Limits::default();
        let count = |key: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(self.invalid(key, "must be at least 1")),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let time = |key: &str, value: Option<super::duration::HumanDuration>, default| match value {
            Some(d) if d.0.is_zero() => Err(self.invalid(key, "must be longer than 0s")),
            Some(d) => Ok(d.0),
            None => Ok(default),
        };
        Ok(Limits {
            max_frame_bytes: count("limits.max_frame_bytes", raw.max_frame_bytes, defaults.max_frame_bytes)?,
            max_channels_per_connection: count(
                "limits.max_channels_per_connection",
                raw.max_channels_per_connection,
                defaults.max_channels_per_connection,
            )?,
            max_commands_per_second: count(
                "limits.max_commands_per_second",
                raw.max_commands_per_second,
                defaults.max_commands_per_second,
            )?,
            outbox_frames: count("limits.outbox_frames", raw.outbox_frames, defaults.outbox_frames)?,
            outbox_bytes: count("limits.outbox_bytes", raw.outbox_bytes, defaults.outbox_bytes)?,
            handshake_timeout: time(
                "limits.handshake_timeout",
                raw.handshake_timeout,
                defaults.handshake_timeout,
            )?,
            ping_interval: time("limits.ping_interval", raw.ping_interval, defaults.ping_interval)?,
            pong_timeout: time("limits.pong_timeout", raw.pong_timeout, defaults.pong_timeout)?,
            max_history_read: count(
                "limits.max_history_read",
                raw.max_history_read,
                defaults.max_history_read,
            )?,
            max_http_body_bytes: count(
                "limits.max_http_body_bytes",
                raw.max_http_body_bytes,
                defaults.max_http_body_bytes,
            )?,
            max_connections: raw.max_connections.unwrap_or(defaults.max_connections),
            ready_below_percent: match raw.ready_below_percent {
                Some(percent @ 1..=100) => percent,
                Some(_) => return Err(self.invalid("limits.ready_below_percent", "must be 1 to 100")),
                None => defaults.ready_below_percent,
            },
        })
    }

    fn auth(&self, raw: &RawAuth) -> Result<AuthSettings, ConfigError> {
        let defaults = AuthSettings::default();
        let channels_claim = raw.channels_claim.clone().unwrap_or(defaults.channels_claim);
        if channels_claim.trim().is_empty() {
            return Err(self.invalid("auth.channels_claim", "must not be empty"));
        }
        let jwt = self.jwt(raw)?;
        let allow_anonymous = raw.allow_anonymous.unwrap_or(defaults.allow_anonymous);
        if !allow_anonymous && jwt.is_none() {
            return Err(self.invalid(
                "auth.allow_anonymous",
                "is false but no JWT key is configured (auth.jwt_secret, auth.jwt_public_key or \
                 auth.jwt_public_key_file): no client could connect",
            ));
        }
        let auth = AuthSettings { allow_anonymous, jwt, channels_claim };
        // Parses the key now, so that `fanfare config check` catches a bad PEM.
        if let Some(jwt) = &auth.jwt {
            crate::jwt_key::decoding_key(jwt).map_err(|error| match error {
                ConfigError::Invalid { key, reason, origin: None } => {
                    let origin = (self.origins)(&key);
                    ConfigError::Invalid { key, reason, origin }
                }
                other => other,
            })?;
        }
        Ok(auth)
    }

    fn jwt(&self, raw: &RawAuth) -> Result<Option<JwtSettings>, ConfigError> {
        let public_key = self.public_key(raw)?;
        let (algorithm, key) = match (raw.jwt_algorithm, &raw.jwt_secret, public_key) {
            (_, Some(_), Some(_)) => {
                return Err(self.invalid(
                    "auth.jwt_secret",
                    "set either jwt_secret (HS256) or a public key (RS256, ES256), not both",
                ));
            }
            (None | Some(JwtAlgorithm::Hs256), Some(secret), None) => {
                (JwtAlgorithm::Hs256, self.hmac_secret(secret)?)
            }
            (Some(algorithm @ (JwtAlgorithm::Rs256 | JwtAlgorithm::Es256)), None, Some(key)) => {
                (algorithm, key)
            }
            (None, None, None) => {
                if raw.audience.is_some() {
                    return Err(self.invalid("auth.audience", "is set but no JWT key is configured"));
                }
                if raw.issuer.is_some() {
                    return Err(self.invalid("auth.issuer", "is set but no JWT key is configured"));
                }
                return Ok(None);
            }
            (None, None, Some(_)) => {
                return Err(
                    self.invalid("auth.jwt_algorithm", "must be set to RS256 or ES256 to use a public key")
                );
            }
            (Some(algorithm), _, _) => {
                let needs = if algorithm.is_hmac() {
                    "auth.jwt_secret (a public key is for RS256 or ES256)"
                } else {
                    "auth.jwt_public_key or auth.jwt_public_key_file (jwt_secret is for HS256)"
                };
                return Err(self.invalid("auth.jwt_algorithm", format!("= {algorithm} needs {needs}")));
            }
        };
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        Ok(Some(JwtSettings {
            algorithm,
            key,
            audience: non_empty(&raw.audience),
            issuer: non_empty(&raw.issuer),
        }))
    }

    fn hmac_secret(&self, secret: &str) -> Result<JwtKey, ConfigError> {
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(self.invalid(
                "auth.jwt_secret",
                format!("must be at least {MIN_HMAC_SECRET_LEN} bytes (HS256 needs a 256-bit key)"),
            ));
        }
        Ok(JwtKey::Secret(secret.to_owned()))
    }

    fn public_key(&self, raw: &RawAuth) -> Result<Option<JwtKey>, ConfigError> {
        match (&raw.jwt_public_key, &raw.jwt_public_key_file) {
            (Some(_), Some(_)) => Err(self.invalid(
                "auth.jwt_public_key",
                "set either jwt_public_key or jwt_public_key_file, not both",
            )),
            (Some(pem), None) => Ok(Some(JwtKey::PublicKeyPem { pem: pem.clone(), file: None })),
            (None, Some(path)) => {
                let key = "auth.jwt_public_key_file";
                let pem = std::fs::read_to_string(path).map_err(|source| ConfigError::KeyFile {
                    key,
                    path: path.clone(),
                    origin: (self.origins)(key),
                    source,
                })?;
                Ok(Some(JwtKey::PublicKeyPem { pem, file: Some(path.clone()) }))
            }
            (None, None) => Ok(None),
        }
    }

    /// `[channel_defaults]` and `[namespaces.*]`, over the built-in
    /// defaults with the store's durability.
    fn namespaces(
        &self,
        raw: &RawConfig,
        store: &StoreSettings,
        limits: &Limits,
        auth: &AuthSettings,
    ) -> Result<Namespaces, ConfigError> {
        let mut base = NamespaceSettings::default();
        base.channel.durability = store.durability.into();
        base.apply(&raw.channel_defaults);
        let default_content = raw.channel_defaults.content.clone().unwrap_or_default();
        base.content = self.content("channel_defaults", &default_content)?;
        let default_shaping = raw.channel_defaults.shaping.clone();
        base.set_shaping(self.shaping("channel_defaults", default_shaping.as_ref())?);
        self.namespace("channel_defaults", &base, limits, auth)?;
        let mut resolved = Vec::with_capacity(raw.namespaces.len());
        for (name, raw) in &raw.namespaces {
            let prefix = format!("namespaces.{name}");
            let valid_name =
                !name.contains(':') && (name.is_empty() || ChannelName::new(&format!("{name}:x")).is_ok());
            if !valid_name {
                return Err(self.invalid(
                    &prefix,
                    format!(
                        "`{name}` is not a namespace name: use the characters of channel names, without `:`"
                    ),
                ));
            }
            let mut settings = base.clone();
            settings.apply(raw);
            if let Some(content) = &raw.content {
                settings.content = self.content(&prefix, &default_content.overridden_by(content))?;
            }
            if let Some(shaping) = &raw.shaping {
                let merged = default_shaping.clone().unwrap_or_default().overridden_by(shaping);
                settings.set_shaping(self.shaping(&prefix, Some(&merged))?);
            }
            self.built_in(&prefix, name, raw)?;
            let settings = settings.built_in(name);
            self.namespace(&prefix, &settings, limits, auth)?;
            resolved.push((name.clone(), settings));
        }
        Ok(Namespaces::new(base, resolved))
    }

    /// A built-in namespace's table may set anything but its fixed
    /// permissions (`docs/members.md`): `dm` (direct messages: its members
    /// are in the channel name) and `feed` (each user's own feed, published
    /// by the server).
    fn built_in(&self, prefix: &str, name: &str, raw: &RawNamespace) -> Result<(), ConfigError> {
        let Some((subscribe, publish)) = crate::namespaces::built_in_policies(name) else { return Ok(()) };
        let fixed = [
            ("subscribe", raw.subscribe.is_none_or(|set| set == subscribe)),
            ("publish", raw.publish.is_none_or(|set| set == publish)),
        ];
        if let Some((key, _)) = fixed.iter().find(|(_, same)| !same) {
            let wanted = if *key == "subscribe" { format!("{subscribe:?}") } else { format!("{publish:?}") };
            return Err(self.invalid(
                &format!("{prefix}.{key}"),
                format!("the built-in `{name}` namespace's {key} is always \"{}\"", wanted.to_lowercase()),
            ));
        }
        if name == "dm" && raw.manage_members == Some(crate::kinds::ManageMembers::Grant) {
            return Err(self.invalid(
                &format!("{prefix}.manage_members"),
                "a direct channel's members are the two users its name holds: nobody adds or removes them",
            ));
        }
        Ok(())
    }

    /// `prefix.shaping`, merged, checked.
    fn shaping(
        &self,
        prefix: &str,
        raw: Option<&crate::shaping::RawShaping>,
    ) -> Result<Option<crate::shaping::ShapingRules>, ConfigError> {
        let Some(raw) = raw else { return Ok(None) };
        crate::shaping::ShapingRules::check(raw)
            .map(Some)
            .map_err(|(name, reason)| self.invalid(&format!("{prefix}.shaping.{name}"), reason))
    }

    /// Checks one namespace's resolved settings; `prefix` is its table.
    fn namespace(
        &self,
        prefix: &str,
        settings: &NamespaceSettings,
        limits: &Limits,
        auth: &AuthSettings,
    ) -> Result<(), ConfigError> {
        let key = |name: &str| format!("{prefix}.{name}");
        let channel = &settings.channel;
        if settings.max_message_bytes == 0 {
            return Err(self.invalid(&key("max_message_bytes"), "must be at least 1"));
        }
        let size = settings.max_message_bytes;
        if let Some(reason) = outbox_misfit(size, FRAME_ENVELOPE_BYTES, "message", limits) {
            return Err(self.invalid(&key("max_message_bytes"), reason));
        }
        if channel.history.max_len > 0 && channel.history.max_age.is_zero() {
            return Err(self.invalid(
                &key("history_ttl"),
                "must be longer than 0s while history is on (history_size = 0 turns history off)",
            ));
        }
        if settings.typing_interval < MIN_TYPING_INTERVAL || settings.typing_interval > MAX_TYPING_INTERVAL {
            return Err(self.invalid(&key("typing_interval"), "must be between 100ms and 1m"));
        }
        if settings.receipt_interval < MIN_TYPING_INTERVAL || settings.receipt_interval > MAX_TYPING_INTERVAL
        {
            return Err(self.invalid(&key("receipt_interval"), "must be between 100ms and 1m"));
        }
        if channel.join_leave && !channel.presence {
            return Err(self.invalid(
                &key("join_leave"),
                "= true needs presence = true (join and leave are presence events)",
            ));
        }
        let needs_users = match settings.subscribe {
            SubscribePolicy::TokenClaim => Some("token_claim"),
            SubscribePolicy::Members => Some("members"),
            SubscribePolicy::Owner => Some("owner"),
            SubscribePolicy::Anyone => None,
        };
        let built_in = BUILT_IN.iter().any(|name| prefix == format!("namespaces.{name}"));
        if let Some(policy) = needs_users.filter(|_| auth.jwt.is_none() && !built_in) {
            return Err(self.invalid(
                &key("subscribe"),
                format!(
                    "= \"{policy}\" needs a JWT key (auth.jwt_secret, auth.jwt_public_key or \
                     auth.jwt_public_key_file): without tokens no one could subscribe"
                ),
            ));
        }
        Ok(())
    }
}

/// The bounds of `typing_interval` and `receipt_interval`: shorter would
/// let indicators and receipts flood a channel, longer would make them
/// useless.
const MIN_TYPING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
const MAX_TYPING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Why the largest `what` (`size` bytes plus its `envelope`) cannot be
/// configured: it would not fit in one outbox, so every such one would
/// disconnect its subscribers. `None` when it fits.
fn outbox_misfit(size: usize, envelope: usize, what: &str, limits: &Limits) -> Option<String> {
    (size.saturating_add(envelope) > limits.outbox_bytes).then(|| {
        format!(
            "= {size} does not fit, with its envelope, in limits.outbox_bytes = {}: every such {what} \
             would disconnect its subscribers as slow consumers",
            limits.outbox_bytes
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Origin;
    use crate::raw::RawNamespace;

    fn no_origins(_: &str) -> Option<Origin> {
        None
    }

    fn validate_raw(raw: RawConfig) -> Result<Settings, ConfigError> {
        validate(raw, &no_origins, None)
    }

    fn reason(error: ConfigError) -> (String, String) {
        match error {
            ConfigError::Invalid { key, reason, .. } => (key, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn nothing_configured_gives_the_built_in_defaults() {
        assert_eq!(validate_raw(RawConfig::default()).unwrap(), Settings::default());
    }

    #[test]
    fn store_urls_select_the_backend() {
        let data = Path::new("/data");
        assert_eq!(parse_store_url("embedded://", data), Ok(StoreKind::Embedded("/data/store".into())));
        assert_eq!(parse_store_url("embedded:///srv/h", data), Ok(StoreKind::Embedded("/srv/h".into())));
        assert_eq!(parse_store_url("memory://", data), Ok(StoreKind::Memory));
        assert!(parse_store_url("embedded://relative", data).unwrap_err().contains("absolute path"));
        let cluster = parse_store_url("redis://:hunter2@redis:6379", data).unwrap_err();
        assert!(cluster.contains("cluster.url"), "{cluster}");
        assert!(!cluster.contains("hunter2"), "{cluster}");
        assert!(parse_store_url("sqlite://x", data).unwrap_err().contains("expected embedded://"));
    }

    #[test]
    fn an_unparsable_listen_address_is_refused_by_key() {
        let raw = RawConfig { listen: Some("localhost:6001".into()), ..RawConfig::default() };
        let (key, reason) = reason(validate_raw(raw).unwrap_err());
        assert_eq!(key, "listen");
        assert!(reason.contains("not an IP address and port"), "{reason}");
    }

    #[test]
    fn short_or_spaced_api_keys_are_refused() {
        for bad in ["short", "has a space in it, long enough"] {
            let raw = RawConfig { api_key: Some(bad.into()), ..RawConfig::default() };
            assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "api_key");
        }
        let raw = RawConfig { api_key: Some("k".repeat(16)), ..RawConfig::default() };
        assert_eq!(validate_raw(raw).unwrap().api_key.as_deref(), Some(&*"k".repeat(16)));
    }

    #[test]
    fn a_bad_log_filter_is_refused() {
        let log = crate::raw::RawLog { level: Some("info,fanfare=loud".into()), format: None };
        let raw = RawConfig { log, ..RawConfig::default() };
        assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "log.level");
    }

    #[test]
    fn tls_needs_both_files_and_files_that_exist() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("cert.pem");
        std::fs::write(&pem, "not checked here").unwrap();
        let tls = |cert_file: Option<&Path>, key_file: Option<&Path>| RawConfig {
            tls: RawTls {
                cert_file: cert_file.map(Into::into),
                key_file: key_file.map(Into::into),
                ..RawTls::default()
            },
            ..RawConfig::default()
        };
        assert_eq!(reason(validate_raw(tls(Some(&pem), None)).unwrap_err()).0, "tls.key_file");
        assert_eq!(reason(validate_raw(tls(None, Some(&pem))).unwrap_err()).0, "tls.cert_file");
        let missing = dir.path().join("missing.pem");
        let (key, why) = reason(validate_raw(tls(Some(&pem), Some(&missing))).unwrap_err());
        assert_eq!(key, "tls.key_file");
        assert!(why.contains("missing.pem"), "{why}");
        let (key, _) = reason(validate_raw(tls(Some(dir.path()), Some(&pem))).unwrap_err());
        assert_eq!(key, "tls.cert_file", "a directory is not a certificate");
        let served = validate_raw(tls(Some(&pem), Some(&pem))).unwrap().tls.certificate.unwrap();
        assert_eq!((served.cert_file, served.key_file), (pem.clone(), pem));
        assert_eq!(validate_raw(RawConfig::default()).unwrap().tls, TlsSettings::default());
    }

    #[test]
    fn zero_limits_are_refused_by_key() {
        let raw = RawConfig {
            limits: RawLimits { outbox_frames: Some(0), ..RawLimits::default() },
            ..RawConfig::default()
        };
        assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "limits.outbox_frames");
    }

    #[test]
    fn a_ready_share_outside_1_to_100_percent_is_refused() {
        for percent in [0, 101, 255] {
            let raw = RawConfig {
                limits: RawLimits { ready_below_percent: Some(percent), ..RawLimits::default() },
                ..RawConfig::default()
            };
            assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "limits.ready_below_percent", "{percent}");
        }
        let limits =
            RawLimits { ready_below_percent: Some(100), max_connections: Some(0), ..RawLimits::default() };
        let limits = validate_raw(RawConfig { limits, ..RawConfig::default() }).unwrap().limits;
        assert_eq!((limits.ready_below_percent, limits.max_connections), (100, 0));
    }

    #[test]
    fn an_rs256_algorithm_without_a_public_key_is_refused() {
        let raw = RawConfig {
            auth: RawAuth { jwt_algorithm: Some(JwtAlgorithm::Rs256), ..RawAuth::default() },
            ..RawConfig::default()
        };
        let (key, reason) = reason(validate_raw(raw).unwrap_err());
        assert_eq!(key, "auth.jwt_algorithm");
        assert_eq!(
            reason,
            "= RS256 needs auth.jwt_public_key or auth.jwt_public_key_file (jwt_secret is for HS256)"
        );
    }

    #[test]
    fn a_short_hmac_secret_is_refused() {
        let raw = RawConfig {
            auth: RawAuth { jwt_secret: Some("secret".into()), ..RawAuth::default() },
            ..RawConfig::default()
        };
        assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "auth.jwt_secret");
    }

    #[test]
    fn refusing_anonymous_connections_needs_a_jwt_key() {
        let raw = RawConfig {
            auth: RawAuth { allow_anonymous: Some(false), ..RawAuth::default() },
            ..RawConfig::default()
        };
        assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "auth.allow_anonymous");
    }

    #[test]
    fn a_missing_public_key_file_names_the_key_and_path() {
        let raw = RawConfig {
            auth: RawAuth {
                jwt_algorithm: Some(JwtAlgorithm::Es256),
                jwt_public_key_file: Some("/nonexistent/fanfare-key.pem".into()),
                ..RawAuth::default()
            },
            ..RawConfig::default()
        };
        let message = validate_raw(raw).unwrap_err().to_string();
        assert!(
            message.starts_with("auth.jwt_public_key_file: cannot read /nonexistent/fanfare-key.pem"),
            "{message}"
        );
    }

    #[test]
    fn namespace_options_that_contradict_each_other_are_refused() {
        let mut raw = RawConfig::default();
        raw.namespaces
            .insert("chat".into(), RawNamespace { join_leave: Some(true), ..RawNamespace::default() });
        assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "namespaces.chat.join_leave");

        let mut raw = RawConfig::default();
        raw.channel_defaults.subscribe = Some(SubscribePolicy::TokenClaim);
        assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "channel_defaults.subscribe");

        let mut raw = RawConfig::default();
        raw.limits.outbox_bytes = Some(10_000);
        assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "channel_defaults.max_message_bytes");
    }

    #[test]
    fn namespaces_start_from_channel_defaults() {
        let mut raw = RawConfig::default();
        raw.channel_defaults.history_size = Some(10);
        raw.namespaces
            .insert("chat".into(), RawNamespace { presence: Some(true), ..RawNamespace::default() });
        let settings = validate_raw(raw).unwrap();
        let chat = settings.namespaces.get("chat");
        assert!(chat.channel.presence);
        assert_eq!(chat.channel.history.max_len, 10);
        assert_eq!(settings.namespaces.get("news").channel.history.max_len, 10);
        assert!(!settings.namespaces.get("news").channel.presence);
    }

    #[test]
    fn namespace_names_must_be_channel_name_characters_without_colon() {
        let mut raw = RawConfig::default();
        raw.namespaces.insert("a b".into(), RawNamespace::default());
        assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "namespaces.a b");
        let mut raw = RawConfig::default();
        raw.namespaces.insert("a:b".into(), RawNamespace::default());
        assert!(validate_raw(raw).is_err());
    }

    #[test]
    fn dm_and_feed_exist_unconfigured_with_their_fixed_permissions() {
        let settings = validate_raw(RawConfig::default()).unwrap();
        let (dm, feed) = (settings.namespaces.get("dm"), settings.namespaces.get("feed"));
        assert_eq!((dm.subscribe, dm.publish), (SubscribePolicy::Members, crate::PublishPolicy::Members));
        assert_eq!((feed.subscribe, feed.publish), (SubscribePolicy::Owner, crate::PublishPolicy::Server));
        assert!(dm.channel.observed && !feed.channel.observed, "only members channels send notices");
        assert!(!dm.allow_anonymous);
    }

    #[test]
    fn a_built_in_namespace_keeps_its_permissions_and_takes_the_other_keys() {
        let mut raw = RawConfig::default();
        let dm = RawNamespace { history_size: Some(50), ..RawNamespace::default() };
        raw.namespaces.insert("dm".into(), dm);
        let settings = validate_raw(raw).unwrap();
        assert_eq!(settings.namespaces.get("dm").channel.history.max_len, 50);
        assert_eq!(settings.namespaces.get("dm").subscribe, SubscribePolicy::Members);
        for (name, raw) in [
            ("dm", RawNamespace { subscribe: Some(SubscribePolicy::Anyone), ..RawNamespace::default() }),
            ("feed", RawNamespace { publish: Some(crate::PublishPolicy::Anyone), ..RawNamespace::default() }),
            (
                "dm",
                RawNamespace { manage_members: Some(crate::ManageMembers::Grant), ..RawNamespace::default() },
            ),
        ] {
            let mut config = RawConfig::default();
            config.namespaces.insert(name.into(), raw);
            let key = reason(validate_raw(config).unwrap_err()).0;
            assert!(key.starts_with(&format!("namespaces.{name}.")), "{key}");
        }
    }

    #[test]
    fn a_members_namespace_needs_tokens() {
        let mut raw = RawConfig::default();
        let team = RawNamespace { subscribe: Some(SubscribePolicy::Members), ..RawNamespace::default() };
        raw.namespaces.insert("team".into(), team);
        assert_eq!(reason(validate_raw(raw).unwrap_err()).0, "namespaces.team.subscribe");
    }
}
