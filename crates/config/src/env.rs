//! Every `FANFARE_*` environment variable the server reads, in one table.
//!
//! Only the variables listed here are read; any other `FANFARE_*` variable
//! (for a feature this build does not have, or a typo) is ignored rather
//! than turned into a configuration key. An empty value counts as unset,
//! so `FANFARE_API_KEY=` in a compose file does not configure an empty key.
//! `docs/operations.md` carries the same table ([`markdown_table`]).

/// How a variable's text becomes a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    /// Taken as it is (addresses, paths, secrets, enum names, durations).
    Text,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// A whole number, 0 or more.
    Count,
    /// A comma-separated list (of addresses, networks).
    List,
}

/// One environment variable.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    pub name: &'static str,
    /// The configuration key it sets (dotted TOML path), or `None` for
    /// `FANFARE_CONFIG`, which names the configuration file itself.
    pub key: Option<&'static str>,
    pub kind: EnvKind,
    pub example: &'static str,
    pub description: &'static str,
}

const fn var(
    name: &'static str,
    key: &'static str,
    kind: EnvKind,
    example: &'static str,
    description: &'static str,
) -> EnvVar {
    EnvVar { name, key: Some(key), kind, example, description }
}

use EnvKind::{Bool, Count, List, Text};

/// The complete list. Precedence: a variable overrides the config file and
/// is overridden by the matching command-line flag.
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "FANFARE_CONFIG",
        key: None,
        kind: Text,
        example: "/etc/fanfare/fanfare.toml",
        description: "Path of the TOML configuration file (like `--config`, which wins). No file is read when unset.",
    },
    var("FANFARE_LISTEN", "listen", Text, "0.0.0.0:6001", "Address and port for the HTTP API and WebSocket."),
    var(
        "FANFARE_DATA_DIR",
        "data_dir",
        Text,
        "/var/lib/fanfare",
        "Directory for the embedded store and the generated API key.",
    ),
    var(
        "FANFARE_API_KEY",
        "api_key",
        Text,
        "(a random string, at least 16 characters)",
        "Bearer key for the HTTP API. When unset, one is generated on first start and kept in `DATA_DIR/api_key`.",
    ),
    var(
        "FANFARE_TCP_NODELAY",
        "tcp_nodelay",
        Bool,
        "true",
        "`TCP_NODELAY` on client connections; `false` lets Nagle's algorithm batch small writes under load at the cost of delayed-ACK latency.",
    ),
    var(
        "FANFARE_WORKER_THREADS",
        "worker_threads",
        Count,
        "0",
        "Threads for connections, fan-out and the HTTP API; `0` means one per CPU core.",
    ),
    var("FANFARE_LOG", "log.level", Text, "info,fanfare=debug", "Log filter (tracing `EnvFilter` syntax)."),
    var(
        "FANFARE_LOG_FORMAT",
        "log.format",
        Text,
        "json",
        "`text` (the default) or `json`: one JSON object per line.",
    ),
    var(
        "FANFARE_TLS_CERT_FILE",
        "tls.cert_file",
        Text,
        "/etc/fanfare/tls/fullchain.pem",
        "Serve HTTPS and `wss://` with this PEM certificate chain (with `FANFARE_TLS_KEY_FILE`); both files are read again at SIGHUP.",
    ),
    var(
        "FANFARE_TLS_KEY_FILE",
        "tls.key_file",
        Text,
        "/etc/fanfare/tls/privkey.pem",
        "The PEM private key of `tls.cert_file` (PKCS#8, PKCS#1 or SEC1).",
    ),
    var(
        "FANFARE_TLS_WEBHOOK_CA_FILE",
        "tls.webhook_ca_file",
        Text,
        "/etc/fanfare/tls/internal-ca.pem",
        "PEM root certificates trusted for `https://` webhook URLs besides the system's (a private CA).",
    ),
    var(
        "FANFARE_SHUTDOWN_GRACE",
        "shutdown_grace",
        Text,
        "30s",
        "How long SIGTERM waits for clients to leave before exiting.",
    ),
    var(
        "FANFARE_STORE_URL",
        "store.url",
        Text,
        "embedded://",
        "History store: `embedded://` (under the data directory), `embedded:///abs/path` or `memory://`; with a cluster URL it defaults to the cluster's Redis (and may only be that).",
    ),
    var(
        "FANFARE_CLUSTER_URL",
        "cluster.url",
        Text,
        "redis://127.0.0.1:6379",
        "Join a cluster on this Redis (like `--cluster`): history, offsets, live fan-out, presence and the node registry live there. Unset: a single node.",
    ),
    var(
        "FANFARE_CLUSTER_ADVERTISE",
        "cluster.advertise",
        Text,
        "10.0.0.7:6001",
        "The address this node is reached at, as `GET /api/nodes` lists it.",
    ),
    var(
        "FANFARE_CLUSTER_NODE_LEASE",
        "cluster.node_lease",
        Text,
        "15s",
        "A node silent this long is dead: a survivor removes its presence members and subscriptions. A node that was only paused or cut off records them again once it is back and that removal is done (observers see a `leave`, then a `join`).",
    ),
    var(
        "FANFARE_CLUSTER_HEARTBEAT",
        "cluster.heartbeat",
        Text,
        "5s",
        "How often a node renews its lease (at most half of `cluster.node_lease`).",
    ),
    var(
        "FANFARE_LIMITS_MAX_HANDSHAKES_PER_SECOND",
        "limits.max_handshakes_per_second",
        Count,
        "1000",
        "WebSocket handshakes this node accepts per second (bursts of as many); more get HTTP 503 `unavailable` with `Retry-After`. `0`: no limit.",
    ),
    var(
        "FANFARE_LIMITS_MAX_HANDSHAKES_PER_IP_PER_SECOND",
        "limits.max_handshakes_per_ip_per_second",
        Count,
        "20",
        "Handshakes one client address (IPv6: its /64) may make per second; more get HTTP 429 `rate_limited` with `Retry-After`. `0` (the default): no limit.",
    ),
    var(
        "FANFARE_LIMITS_MAX_CONNECTIONS_PER_IP",
        "limits.max_connections_per_ip",
        Count,
        "200",
        "Connections one client address (IPv6: its /64) may hold on this node; more get HTTP 429 `too_many_connections`. `0` (the default): no limit.",
    ),
    var(
        "FANFARE_LIMITS_MAX_CONNECTIONS_PER_USER",
        "limits.max_connections_per_user",
        Count,
        "10",
        "Connections one user may hold on this node; more are refused at `connect` (native, close 4004) or `pusher:signin` (Pusher, close 4004). `0` (the default): no limit.",
    ),
    var(
        "FANFARE_LIMITS_TRUSTED_PROXIES",
        "limits.trusted_proxies",
        List,
        "10.0.0.0/8,fd00::/8",
        "Comma-separated addresses and CIDR networks of the proxies in front of the server: a connection from one of them is from the client its `X-Forwarded-For` names. Unset: the socket's peer is the client.",
    ),
    var(
        "FANFARE_DURABILITY",
        "store.durability",
        Text,
        "fsync",
        "Durability of every namespace that sets none: `fsync` (acknowledge after group commit reaches disk) or `buffered`.",
    ),
    var(
        "FANFARE_ALLOW_ANONYMOUS",
        "auth.allow_anonymous",
        Bool,
        "false",
        "Whether clients may connect without a token.",
    ),
    var(
        "FANFARE_JWT_ALGORITHM",
        "auth.jwt_algorithm",
        Text,
        "RS256",
        "Algorithm of connection tokens: `HS256`, `RS256` or `ES256`.",
    ),
    var(
        "FANFARE_JWT_SECRET",
        "auth.jwt_secret",
        Text,
        "(a random string, at least 32 bytes)",
        "HMAC secret for HS256 connection tokens.",
    ),
    var(
        "FANFARE_JWT_PUBLIC_KEY",
        "auth.jwt_public_key",
        Text,
        "-----BEGIN PUBLIC KEY-----…",
        "PEM public key for RS256 / ES256 tokens, inline.",
    ),
    var(
        "FANFARE_JWT_PUBLIC_KEY_FILE",
        "auth.jwt_public_key_file",
        Text,
        "/etc/fanfare/jwt.pem",
        "File holding the PEM public key for RS256 / ES256 tokens.",
    ),
    var(
        "FANFARE_PUSHER_APP_ID",
        "pusher.app_id",
        Text,
        "app-1",
        "Pusher default app: its `app_id` (with `FANFARE_PUSHER_APP_KEY` and `FANFARE_PUSHER_APP_SECRET`; \
         channel prefix `\"\"`). Naming an app of `[[pusher.apps]]` overrides that app's key, secret and \
         client events instead. With no app configured anywhere, one is generated on first start and kept \
         in `DATA_DIR/pusher_app.json`.",
    ),
    var("FANFARE_PUSHER_APP_KEY", "pusher.app_key", Text, "key-1", "Pusher default app: its public key."),
    var(
        "FANFARE_PUSHER_APP_SECRET",
        "pusher.app_secret",
        Text,
        "(a random string)",
        "Pusher default app: its secret (signs auth, HTTP API requests and webhooks).",
    ),
    var(
        "FANFARE_PUSHER_APP_CLIENT_EVENTS",
        "pusher.app_client_events",
        Bool,
        "true",
        "Pusher default app: whether clients may send `client-*` events (off by default).",
    ),
];

/// The variable that sets `key`, if there is one.
pub fn var_for_key(key: &str) -> Option<&'static EnvVar> {
    ENV_VARS.iter().find(|var| var.key == Some(key))
}

/// The table as Markdown, for `docs/operations.md`.
pub fn markdown_table() -> String {
    let mut out = String::from("| Variable | Sets | Example | Description |\n|---|---|---|---|\n");
    for var in ENV_VARS {
        let sets = var.key.map_or_else(|| "(the config file)".to_owned(), |key| format!("`{key}`"));
        let example =
            if var.example.starts_with('(') { var.example.to_owned() } else { format!("`{}`", var.example) };
        out.push_str(&format!("| `{}` | {sets} | {example} | {} |\n", var.name, var.description));
    }
    out
}

/// Reads a boolean the way people write them in environment files.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prefixed_and_keys_are_unique() {
        let mut names = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        for var in ENV_VARS {
            assert!(var.name.starts_with("FANFARE_"), "{}", var.name);
            assert!(names.insert(var.name), "{} twice", var.name);
            if let Some(key) = var.key {
                assert!(keys.insert(key), "{key} set by two variables");
            }
            assert!(!var.description.is_empty());
        }
    }

    #[test]
    fn the_variables_the_operations_guide_promises_are_listed() {
        for name in [
            "FANFARE_LISTEN",
            "FANFARE_DATA_DIR",
            "FANFARE_API_KEY",
            "FANFARE_CONFIG",
            "FANFARE_STORE_URL",
            "FANFARE_DURABILITY",
            "FANFARE_JWT_SECRET",
            "FANFARE_JWT_PUBLIC_KEY_FILE",
            "FANFARE_LOG",
        ] {
            assert!(ENV_VARS.iter().any(|var| var.name == name), "{name} missing");
            assert!(markdown_table().contains(name));
        }
    }

    #[test]
    fn the_operations_guide_carries_this_table_and_names_no_other_variable() {
        let guide = include_str!("../../../docs/operations.md");
        assert!(
            guide.contains(&markdown_table()),
            "docs/operations.md §3 differs from ENV_VARS; paste markdown_table()'s output:\n{}",
            markdown_table()
        );
        let docs = [guide, include_str!("../../../docs/api.md"), include_str!("../../../docs/pusher.md")];
        for text in docs {
            // Whole names only: `FANFARE_*` and `FANFARE_PUSHER_APP_*` name groups.
            let names = text.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
            for name in names.filter(|name| name.starts_with("FANFARE_") && !name.ends_with('_')) {
                assert!(
                    ENV_VARS.iter().any(|var| var.name == name),
                    "the docs name {name}, which is not read"
                );
            }
        }
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("nope"), None);
    }
}
