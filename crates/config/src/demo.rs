//! `fanfare serve --demo`: the defaults the demos need, as the lowest
//! layer of the configuration, so that whatever the user set wins.
//!
//! - `listen` is `127.0.0.1:6001` unless set; the demo hands out tokens for
//!   any made-up user to whoever asks, so [`check_loopback`] refuses it on
//!   any other address.
//! - the namespaces `stream` (live comments: anyone signed in publishes,
//!   presence counts the viewers) and `team` (members channels with
//!   presence) are added unless the user configured a namespace of that
//!   name; `dm` and `feed` are built in.
//!
//! - `auth.jwt_secret`, when no JWT key is configured: a random one, in
//!   memory only (the demo signs its tokens with it; after a restart the
//!   pages simply ask for new tokens).

use figment::value::{Dict, Value};

use super::error::ConfigError;

/// The namespaces the demos use, as TOML, each added only if the user has
/// no table of that name.
const NAMESPACES: [(&str, &str); 2] = [
    ("stream", "publish = \"anyone\"\npresence = true\njoin_leave = true\nhistory_size = 500\n"),
    ("team", "subscribe = \"members\"\npublish = \"members\"\npresence = true\njoin_leave = true\n"),
];

/// Where the demo listens unless told otherwise.
const LISTEN: &str = "127.0.0.1:6001";

/// The keys any one of which configures how tokens are verified.
const JWT_KEYS: [&str; 3] = ["auth.jwt_secret", "auth.jwt_public_key", "auth.jwt_public_key_file"];

/// The demo's defaults, given what the user's layers already set
/// (`is_set("namespaces.team")`).
pub(crate) fn defaults(is_set: impl Fn(&str) -> bool) -> Dict {
    let mut namespaces = Dict::new();
    for (name, toml_text) in NAMESPACES {
        if is_set(&format!("namespaces.{name}")) {
            continue;
        }
        let table: Dict = toml::from_str(toml_text).expect("the demo's namespace tables are valid TOML");
        namespaces.insert(name.to_owned(), Value::from(table));
    }
    let mut dict = Dict::new();
    dict.insert("listen".to_owned(), Value::from(LISTEN));
    dict.insert("namespaces".to_owned(), Value::from(namespaces));
    if !JWT_KEYS.iter().any(|key| is_set(key)) {
        let auth = Dict::from([("jwt_secret".to_owned(), Value::from(random_secret()))]);
        dict.insert("auth".to_owned(), Value::from(auth));
    }
    dict
}

/// 32 random bytes in hex: an HS256 key as long as the hash.
fn random_secret() -> String {
    rand::random::<[u8; 32]>().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Refuses a demo on an address other machines can reach.
pub(crate) fn check_loopback(listen: std::net::SocketAddr) -> Result<(), ConfigError> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    Err(ConfigError::invalid(
        "listen",
        format!(
            "--demo issues tokens for made-up users to anyone who asks, so it listens on a loopback \
             address only (such as {LISTEN}), not {listen}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_the_user_configured_is_left_alone() {
        let dict = defaults(|key| key == "namespaces.team");
        let Some(Value::Dict(_, namespaces)) = dict.get("namespaces") else { panic!("{dict:?}") };
        assert!(namespaces.contains_key("stream"));
        assert!(!namespaces.contains_key("team"));
        assert!(dict.contains_key("auth"), "no JWT key configured: one is generated");
        assert!(!defaults(|key| key == "auth.jwt_public_key_file").contains_key("auth"));
    }

    #[test]
    fn only_a_loopback_address_serves_the_demo() {
        assert!(check_loopback("127.0.0.1:6001".parse().unwrap()).is_ok());
        assert!(check_loopback("[::1]:6001".parse().unwrap()).is_ok());
        let error = check_loopback("0.0.0.0:6001".parse().unwrap()).unwrap_err();
        assert_eq!(error.key(), Some("listen"));
        assert!(error.to_string().contains("loopback"), "{error}");
    }
}
