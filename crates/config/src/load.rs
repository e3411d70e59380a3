//! Layering: built-in defaults < TOML file < `FANFARE_*` environment <
//! command-line flags, merged with figment into one [`RawConfig`], then
//! validated once.
//!
//! Each layer is a figment provider whose metadata records where its values
//! came from, so an error can say "set by environment variable
//! FANFARE_LISTEN" or "config file /etc/fanfare.toml". Defaults are not a
//! layer: a key nobody set stays `None` in the raw struct and validation
//! fills it in.

use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::demo;
use super::env::{ENV_VARS, EnvKind, EnvVar, parse_bool, var_for_key};
use super::error::{ConfigError, Origin};
use super::raw::RawConfig;
use super::settings::Settings;
use super::validate::validate;

/// Flags shared by `fanfare serve` and `fanfare config check`; the CLI
/// flattens this struct into both commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ServeArgs {
    /// Address for the HTTP API and WebSocket, e.g. 0.0.0.0:6001 [env: FANFARE_LISTEN]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for the embedded store and the generated API key [env: FANFARE_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Join the cluster on this Redis, e.g. redis://127.0.0.1:6379 [env: FANFARE_CLUSTER_URL]
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
    /// TOML configuration file [env: FANFARE_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve the demos at /demo/ with tokens for made-up users (loopback addresses only)
    #[arg(long)]
    pub demo: bool,
}

/// The configuration keys command-line flags set.
const FLAGS: [(&str, &str); 3] =
    [("listen", "--listen"), ("data_dir", "--data-dir"), ("cluster.url", "--cluster")];

const FILE_LAYER: &str = "config file";
const ENV_LAYER: &str = "environment";
const FLAG_LAYER: &str = "command line";
const DEMO_LAYER: &str = "--demo defaults";

/// Loads the configuration from the file, the process environment and
/// `args`, and validates it.
pub fn load(args: &ServeArgs) -> Result<Settings, ConfigError> {
    if let Some(var) =
        ENV_VARS.iter().find(|var| std::env::var_os(var.name).is_some_and(|v| v.to_str().is_none()))
    {
        return Err(ConfigError::EnvNotUnicode { var: var.name });
    }
    load_from(args, |name| std::env::var(name).ok())
}

/// [`load`] with the environment given as a lookup function, so that tests
/// need not touch the (process-wide) environment. Only the variables in
/// [`ENV_VARS`] are looked up.
pub fn load_from(args: &ServeArgs, env: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
    let env: Vec<(&'static EnvVar, String)> = ENV_VARS
        .iter()
        .filter_map(|var| env(var.name).filter(|value| !value.is_empty()).map(|value| (var, value)))
        .collect();
    let config_file = args
        .config
        .clone()
        .or_else(|| env.iter().find(|(var, _)| var.key.is_none()).map(|(_, value)| PathBuf::from(value)));
    let file = match &config_file {
        Some(path) => Some(file_layer(path)?),
        None => None,
    };
    let mut figment =
        file.into_iter().fold(Figment::new(), Figment::merge).merge(env_layer(&env)?).merge(flag_layer(args));
    if args.demo {
        let dict = demo::defaults(|key| figment.find_value(key).is_ok());
        figment = figment.join(Layer { name: DEMO_LAYER, source: None, dict });
    }
    let mut settings = extract_and_validate(&figment, config_file)?;
    if args.demo {
        demo::check_loopback(settings.listen).map_err(|error| with_origin(error, &figment))?;
        settings.demo = true;
    }
    Ok(settings)
}

/// `error`, naming where its key was set.
fn with_origin(error: ConfigError, figment: &Figment) -> ConfigError {
    match error {
        ConfigError::Invalid { key, reason, origin: None } => {
            let origin = figment.find_metadata(&key).and_then(|metadata| origin(metadata, &key));
            ConfigError::Invalid { key, reason, origin }
        }
        other => other,
    }
}

/// Settings from TOML text alone (no environment, no flags): for tests
/// and tools that build a configuration in code.
pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
    let path = PathBuf::from("<inline>");
    let dict = parse_toml(&path, text)?;
    let figment = Figment::from(Layer { name: FILE_LAYER, source: Some(path), dict });
    extract_and_validate(&figment, None)
}

fn extract_and_validate(figment: &Figment, config_file: Option<PathBuf>) -> Result<Settings, ConfigError> {
    let raw: RawConfig = figment.extract().map_err(|error| from_figment(figment, error))?;
    let origins = |key: &str| figment.find_metadata(key).and_then(|metadata| origin(metadata, key));
    validate(raw, &origins, config_file)
}

/// One layer of configuration values and where they came from.
struct Layer {
    name: &'static str,
    source: Option<PathBuf>,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let metadata = Metadata::named(self.name);
        match &self.source {
            Some(path) => metadata.source(Source::File(path.clone())),
            None => metadata,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::File { path: path.to_owned(), source })?;
    Ok(Layer { name: FILE_LAYER, source: Some(path.to_owned()), dict: parse_toml(path, &text)? })
}

fn parse_toml(path: &Path, text: &str) -> Result<Dict, ConfigError> {
    let mut dict: Dict = toml::from_str(text)
        .map_err(|error| ConfigError::Syntax { path: path.to_owned(), message: error.to_string() })?;
    log_filter_as_level(&mut dict);
    Ok(dict)
}

/// `log = "FILTER"`, the form before `[log]`, is `log.level`: so a file of
/// either form merges with `FANFARE_LOG` and `FANFARE_LOG_FORMAT` alike.
fn log_filter_as_level(dict: &mut Dict) {
    if let Some(Value::String(tag, filter)) = dict.get("log") {
        let level = Dict::from([("level".to_owned(), Value::String(*tag, filter.clone()))]);
        dict.insert("log".to_owned(), Value::Dict(*tag, level));
    }
}

fn env_layer(values: &[(&'static EnvVar, String)]) -> Result<Layer, ConfigError> {
    let mut dict = Dict::new();
    for (var, text) in values {
        let Some(key) = var.key else { continue };
        let value = match var.kind {
            EnvKind::Text => Value::from(text.as_str()),
            EnvKind::Bool => Value::from(parse_bool(text).ok_or_else(|| ConfigError::Invalid {
                key: key.to_owned(),
                reason: format!("expected true or false, found `{text}`"),
                origin: Some(Origin::Env(var.name)),
            })?),
            EnvKind::Count => Value::from(text.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                key: key.to_owned(),
                reason: format!("expected a whole number (0 or more), found `{text}`"),
                origin: Some(Origin::Env(var.name)),
            })?),
            EnvKind::List => Value::from(
                text.split(',').map(str::trim).filter(|item| !item.is_empty()).collect::<Vec<_>>(),
            ),
        };
        insert(&mut dict, key, value);
    }
    Ok(Layer { name: ENV_LAYER, source: None, dict })
}

fn flag_layer(args: &ServeArgs) -> Layer {
    let mut dict = Dict::new();
    if let Some(listen) = &args.listen {
        insert(&mut dict, "listen", Value::from(listen.as_str()));
    }
    if let Some(data_dir) = &args.data_dir {
        insert(&mut dict, "data_dir", Value::from(data_dir.to_string_lossy().as_ref()));
    }
    if let Some(url) = &args.cluster {
        insert(&mut dict, "cluster.url", Value::from(url.as_str()));
    }
    Layer { name: FLAG_LAYER, source: None, dict }
}

/// Inserts `value` at a dotted key, creating the tables on the way.
fn insert(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((table, rest)) => {
            let entry = dict.entry(table.to_owned()).or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// Where the value of `key` came from, given the metadata of its layer.
fn origin(metadata: &Metadata, key: &str) -> Option<Origin> {
    match &*metadata.name {
        FILE_LAYER => {
            metadata.source.as_ref().and_then(Source::file_path).map(|path| Origin::File(path.to_owned()))
        }
        ENV_LAYER => var_for_key(key).map(|var| Origin::Env(var.name)),
        FLAG_LAYER => FLAGS.iter().find(|(flag_key, _)| *flag_key == key).map(|(_, flag)| Origin::Flag(flag)),
        _ => None,
    }
}

/// Rust type names as a reader of the TOML file would say them.
fn plain_type(expected: &str) -> &str {
    match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number (0 or more)",
        "a boolean" | "bool" => "true or false",
        "a string" => "a string",
        other => other,
    }
}

/// A deserialization error as a [`ConfigError`] naming the dotted key.
fn from_figment(figment: &Figment, error: figment::Error) -> ConfigError {
    let mut key = error.path.join(".");
    let origin_of = |key: &str| {
        figment.find_metadata(key).or(error.metadata.as_ref()).and_then(|metadata| origin(metadata, key))
    };
    let reason = match error.kind {
        Kind::UnknownField(field, expected) => {
            // figment's path usually ends with the unknown key already.
            if error.path.last() != Some(&field) {
                key = if key.is_empty() { field } else { format!("{key}.{field}") };
            }
            let origin = origin_of(&key);
            return ConfigError::UnknownKey { key, expected: expected.join(", "), origin };
        }
        Kind::UnknownVariant(found, expected) => {
            format!("expected one of {}, found `{found}`", expected.join(", "))
        }
        Kind::InvalidType(found, expected) | Kind::InvalidValue(found, expected) => {
            format!("expected {}, found {found}", plain_type(&expected))
        }
        Kind::Message(message) => message,
        other => other.to_string(),
    };
    let origin = origin_of(&key);
    ConfigError::Invalid { key, reason, origin }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::{Durability, NamespaceSettings, PublishPolicy, StoreKind, SubscribePolicy};

    /// A config file in a temporary directory (kept alive by the guard).
    fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fanfare.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    fn with_file(path: &Path) -> ServeArgs {
        ServeArgs { config: Some(path.to_owned()), ..ServeArgs::default() }
    }

    #[test]
    fn nothing_given_yields_the_documented_defaults() {
        let settings = load_from(&ServeArgs::default(), env(&[])).unwrap();
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.listen.to_string(), "0.0.0.0:6001");
        assert_eq!(settings.data_dir, PathBuf::from("./fanfare-data"));
        assert_eq!(settings.store.kind, StoreKind::Embedded(PathBuf::from("./fanfare-data/store")));
        assert_eq!(settings.store.durability, Durability::Fsync);
        assert_eq!(settings.api_key, None);
        assert_eq!(settings.shutdown_grace, Duration::from_secs(30));
        assert!(settings.tcp_nodelay, "Nagle's algorithm is off unless asked for");
        assert_eq!(settings.worker_threads, 0, "one worker thread per core");
        assert_eq!(settings.log_filter, "info,fjall=warn,lsm_tree=warn");
        assert_eq!(settings.limits.max_frame_bytes, 65536);
        assert_eq!(settings.limits.outbox_frames, 1024);
        assert_eq!(settings.limits.outbox_bytes, 4 * 1024 * 1024);
        assert_eq!(settings.limits.idle_timeout(), Duration::from_secs(35));
        assert!(settings.auth.allow_anonymous);
        assert!(settings.auth.jwt.is_none());
        assert_eq!(settings.auth.channels_claim, "channels");
        let defaults = settings.namespaces.defaults();
        assert_eq!(**defaults, NamespaceSettings::default());
        assert_eq!(defaults.channel.history.max_len, 1000);
        assert_eq!(defaults.channel.history.max_age, Duration::from_secs(24 * 3600));
        assert_eq!(defaults.publish, PublishPolicy::Server);
        assert_eq!(defaults.subscribe, SubscribePolicy::Anyone);
        assert!(!defaults.channel.presence);
    }

    #[test]
    fn flags_override_environment_which_overrides_the_file() {
        let (_dir, path) = config_file(
            "listen = \"127.0.0.1:1000\"\ndata_dir = \"/from/file\"\nshutdown_grace = \"5s\"\n\
             [store]\ndurability = \"buffered\"\n",
        );
        let env = env(&[("FANFARE_LISTEN", "127.0.0.1:2000"), ("FANFARE_DATA_DIR", "/from/env")]);

        let file_and_env = load_from(&with_file(&path), &env).unwrap();
        assert_eq!(file_and_env.listen.to_string(), "127.0.0.1:2000", "env beats file");
        assert_eq!(file_and_env.data_dir, PathBuf::from("/from/env"));
        assert_eq!(file_and_env.shutdown_grace, Duration::from_secs(5), "file beats defaults");
        assert_eq!(file_and_env.store.durability, Durability::Buffered);
        assert_eq!(file_and_env.config_file.as_deref(), Some(path.as_path()));

        let args = ServeArgs { listen: Some("127.0.0.1:3000".into()), ..with_file(&path) };
        let all = load_from(&args, &env).unwrap();
        assert_eq!(all.listen.to_string(), "127.0.0.1:3000", "flag beats env");
        assert_eq!(all.data_dir, PathBuf::from("/from/env"), "env still applies where no flag is given");
        assert_eq!(all.store.kind, StoreKind::Embedded(PathBuf::from("/from/env/store")));
    }

    #[test]
    fn the_config_file_can_be_named_by_the_environment_and_the_flag_wins() {
        let (_a, from_env) = config_file("listen = \"127.0.0.1:1111\"\n");
        let (_b, from_flag) = config_file("listen = \"127.0.0.1:2222\"\n");
        let env = env(&[("FANFARE_CONFIG", from_env.to_str().unwrap())]);
        assert_eq!(load_from(&ServeArgs::default(), &env).unwrap().listen.port(), 1111);
        assert_eq!(load_from(&with_file(&from_flag), &env).unwrap().listen.port(), 2222);
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error_naming_it() {
        let (_dir, path) = config_file("[limits]\nmax_frames = 10\n");
        let error = load_from(&with_file(&path), env(&[])).unwrap_err();
        let ConfigError::UnknownKey { key, expected, origin } = &error else { panic!("{error:?}") };
        assert_eq!(key, "limits.max_frames");
        assert!(expected.contains("max_frame_bytes"), "{expected}");
        assert_eq!(origin, &Some(Origin::File(path.clone())));
        assert!(error.to_string().starts_with("unknown key `limits.max_frames`"), "{error}");

        let (_dir, path) = config_file("lisen = \"0.0.0.0:1\"\n");
        let error = load_from(&with_file(&path), env(&[])).unwrap_err();
        assert_eq!(error.key(), Some("lisen"));

        let (_dir, path) = config_file("[namespaces.chat]\npublsh = \"anyone\"\n");
        let error = load_from(&with_file(&path), env(&[])).unwrap_err();
        assert_eq!(error.key(), Some("namespaces.chat.publsh"));
    }

    #[test]
    fn a_bad_enum_value_is_an_error_naming_the_key_and_the_choices() {
        let (_dir, path) = config_file("[namespaces.chat]\npublish = \"everyone\"\n");
        let error = load_from(&with_file(&path), env(&[])).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(
                "namespaces.chat.publish: expected one of server, subscribers, anyone, members, found `everyone`"
            ),
            "{message}"
        );
        assert!(message.contains(&format!("config file {}", path.display())), "{message}");
    }

    #[test]
    fn a_namespace_takes_the_store_durability_unless_it_or_channel_defaults_set_one() {
        let (_dir, path) = config_file(
            "[store]\ndurability = \"buffered\"\n\
             [namespaces.chat]\ndurability = \"fsync\"\n\
             [namespaces.comments]\nhistory_size = 0\n",
        );
        let settings = load_from(&with_file(&path), env(&[])).unwrap();
        let durability = |namespace| settings.namespaces.get(namespace).channel.durability;
        assert_eq!(durability("chat"), fanfare_store::Durability::Fsync);
        assert_eq!(durability("comments"), fanfare_store::Durability::Buffered);
        assert_eq!(durability("not-configured"), fanfare_store::Durability::Buffered);

        let (_dir, path) = config_file("[channel_defaults]\ndurability = \"buffered\"\n");
        let settings = load_from(&with_file(&path), env(&[("FANFARE_DURABILITY", "fsync")])).unwrap();
        assert_eq!(settings.store.durability, Durability::Fsync);
        assert_eq!(settings.namespaces.get("chat").channel.durability, fanfare_store::Durability::Buffered);

        let (_dir, path) = config_file("[namespaces.chat]\ndurability = \"sometimes\"\n");
        let error = load_from(&with_file(&path), env(&[])).unwrap_err();
        assert_eq!(error.key(), Some("namespaces.chat.durability"), "{error}");
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable() {
        let error =
            load_from(&ServeArgs::default(), env(&[("FANFARE_DURABILITY", "sometimes")])).unwrap_err();
        assert_eq!(error.key(), Some("store.durability"));
        assert!(error.to_string().contains("environment variable FANFARE_DURABILITY"), "{error}");

        let error = load_from(&ServeArgs::default(), env(&[("FANFARE_LISTEN", "nowhere")])).unwrap_err();
        assert!(error.to_string().contains("set by environment variable FANFARE_LISTEN"), "{error}");

        let error =
            load_from(&ServeArgs::default(), env(&[("FANFARE_ALLOW_ANONYMOUS", "maybe")])).unwrap_err();
        let threads =
            load_from(&ServeArgs::default(), env(&[("FANFARE_WORKER_THREADS", "two")])).unwrap_err();
        assert_eq!(threads.key(), Some("worker_threads"));
        assert_eq!(error.key(), Some("auth.allow_anonymous"));
    }

    #[test]
    fn a_bad_flag_names_the_flag() {
        let args = ServeArgs { listen: Some("not-an-address".into()), ..ServeArgs::default() };
        let error = load_from(&args, env(&[])).unwrap_err();
        assert!(error.to_string().contains("set by flag --listen"), "{error}");
    }

    #[test]
    fn a_negative_number_is_refused_in_plain_words() {
        let error = from_toml("[limits]\nmax_frame_bytes = -1\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "limits.max_frame_bytes: expected a whole number (0 or more), found signed int `-1` (set by config file <inline>)"
        );
    }

    #[test]
    fn a_number_where_a_duration_string_is_expected_is_refused() {
        let error = from_toml("shutdown_grace = 30\n").unwrap_err();
        assert_eq!(error.key(), Some("shutdown_grace"));
        assert!(error.to_string().contains("duration string"), "{error}");
        let error = from_toml("[limits]\nping_interval = \"25 seconds\"\n").unwrap_err();
        assert_eq!(error.key(), Some("limits.ping_interval"));
    }

    #[test]
    fn other_fanfare_variables_are_ignored_and_empty_ones_are_unset() {
        let env = env(&[
            ("FANFARE_PUSHER_FEATURE", "123"),
            ("FANFARE_SOMETHING_ELSE", "x"),
            ("FANFARE_API_KEY", ""),
            ("FANFARE_STORE_URL", "memory://"),
        ]);
        let settings = load_from(&ServeArgs::default(), env).unwrap();
        assert_eq!(settings.api_key, None);
        assert_eq!(settings.store.kind, StoreKind::Memory);
    }

    #[test]
    fn every_listed_variable_sets_its_key() {
        let examples = [
            ("FANFARE_LISTEN", "127.0.0.1:7000"),
            ("FANFARE_DATA_DIR", "/tmp/fanfare-env-test"),
            ("FANFARE_API_KEY", "0123456789abcdef0123"),
            ("FANFARE_LOG", "debug"),
            ("FANFARE_LOG_FORMAT", "json"),
            ("FANFARE_SHUTDOWN_GRACE", "1m"),
            ("FANFARE_STORE_URL", "memory://"),
            ("FANFARE_DURABILITY", "buffered"),
            ("FANFARE_ALLOW_ANONYMOUS", "false"),
            ("FANFARE_TCP_NODELAY", "off"),
            ("FANFARE_WORKER_THREADS", "1"),
            ("FANFARE_JWT_ALGORITHM", "HS256"),
            ("FANFARE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("FANFARE_PUSHER_APP_ID", "app-env"),
            ("FANFARE_PUSHER_APP_KEY", "key-env"),
            ("FANFARE_PUSHER_APP_SECRET", "secret-env"),
            ("FANFARE_PUSHER_APP_CLIENT_EVENTS", "true"),
        ];
        let settings = load_from(&ServeArgs::default(), env(&examples)).unwrap();
        assert_eq!(settings.listen.port(), 7000);
        assert_eq!(settings.data_dir, PathBuf::from("/tmp/fanfare-env-test"));
        assert_eq!(settings.api_key.as_deref(), Some("0123456789abcdef0123"));
        assert_eq!(settings.log_filter, "debug");
        assert_eq!(settings.log_format, crate::LogFormat::Json);
        assert_eq!(settings.shutdown_grace, Duration::from_secs(60));
        assert_eq!(settings.store.kind, StoreKind::Memory);
        assert_eq!(settings.store.durability, Durability::Buffered);
        assert!(!settings.auth.allow_anonymous);
        assert!(!settings.tcp_nodelay);
        assert_eq!(settings.worker_threads, 1);
        assert!(settings.auth.jwt.is_some());
        let app = &settings.pusher.apps[0];
        assert_eq!((&*app.id, &*app.key, &*app.secret), ("app-env", "key-env", "secret-env"));
        assert!(app.client_events);

        // The PEM variables are covered in auth's tests; every other
        // listed variable must have been exercised here.
        for var in ENV_VARS {
            let covered = examples.iter().any(|(name, _)| *name == var.name)
                || matches!(
                    var.name,
                    "FANFARE_CONFIG" | "FANFARE_JWT_PUBLIC_KEY" | "FANFARE_JWT_PUBLIC_KEY_FILE"
                )
                || var.name.starts_with("FANFARE_CLUSTER_") // a_cluster_is_configured_by_its_variables
                || var.name.starts_with("FANFARE_LIMITS_") // admission_limits_are_configured_by_their_variables
                || var.name.starts_with("FANFARE_TLS_"); // tls_is_configured_by_its_variables
            assert!(covered, "{} has no test", var.name);
        }
    }

    #[test]
    fn admission_limits_are_configured_by_their_variables() {
        let examples = [
            ("FANFARE_LIMITS_MAX_HANDSHAKES_PER_SECOND", "500"),
            ("FANFARE_LIMITS_MAX_HANDSHAKES_PER_IP_PER_SECOND", "20"),
            ("FANFARE_LIMITS_MAX_CONNECTIONS_PER_IP", "200"),
            ("FANFARE_LIMITS_MAX_CONNECTIONS_PER_USER", "10"),
            ("FANFARE_LIMITS_TRUSTED_PROXIES", " 10.0.0.0/8, fd00::/8 ,"),
        ];
        let admission = load_from(&ServeArgs::default(), env(&examples)).unwrap().admission;
        assert_eq!(admission.max_handshakes_per_second, 500);
        assert_eq!(admission.max_handshakes_per_ip_per_second, 20);
        assert_eq!(admission.max_connections_per_ip, 200);
        assert_eq!(admission.max_connections_per_user, 10);
        assert_eq!(admission.trusted_proxies.to_strings(), ["10.0.0.0/8", "fd00::/8"]);
        for (name, _) in examples {
            assert!(ENV_VARS.iter().any(|var| var.name == name), "{name} is not listed");
        }

        let bad = [("FANFARE_LIMITS_TRUSTED_PROXIES", "10.0.0.0/8,lb.internal")];
        let error = load_from(&ServeArgs::default(), env(&bad)).unwrap_err().to_string();
        assert!(error.contains("limits.trusted_proxies"), "{error}");
        assert!(error.contains("`lb.internal` is not an IP address"), "{error}");
        assert!(error.contains("FANFARE_LIMITS_TRUSTED_PROXIES"), "{error}");
    }

    #[test]
    fn tls_is_configured_by_its_variables() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("any.pem");
        std::fs::write(&pem, "-").unwrap();
        let pem_text = pem.to_str().unwrap();
        let examples = [
            ("FANFARE_TLS_CERT_FILE", pem_text),
            ("FANFARE_TLS_KEY_FILE", pem_text),
            ("FANFARE_TLS_WEBHOOK_CA_FILE", pem_text),
        ];
        let settings = load_from(&ServeArgs::default(), env(&examples)).unwrap();
        let certificate = settings.tls.certificate.unwrap();
        assert_eq!((certificate.cert_file, certificate.key_file), (pem.clone(), pem.clone()));
        assert_eq!(settings.tls.webhook_ca_file, Some(pem));
    }

    #[test]
    fn the_log_is_a_table_and_the_older_filter_string_still_sets_its_level() {
        let table = from_toml("[log]\nlevel = \"warn\"\nformat = \"json\"\n").unwrap();
        assert_eq!((table.log_filter.as_str(), table.log_format), ("warn", crate::LogFormat::Json));
        let older = from_toml("log = \"debug\"\n").unwrap();
        assert_eq!((older.log_filter.as_str(), older.log_format), ("debug", crate::LogFormat::Text));
        assert!(
            older.to_toml().contains("[log]\nlevel = \"debug\"\nformat = \"text\""),
            "{}",
            older.to_toml()
        );

        // The older form in the file, the format from the environment.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fanfare.toml");
        std::fs::write(&path, "log = \"debug\"\n").unwrap();
        let args = ServeArgs { config: Some(path), ..ServeArgs::default() };
        let settings = load_from(&args, env(&[("FANFARE_LOG_FORMAT", "json")])).unwrap();
        assert_eq!((settings.log_filter.as_str(), settings.log_format), ("debug", crate::LogFormat::Json));

        let error = from_toml("[log]\nformat = \"xml\"\n").unwrap_err().to_string();
        assert!(error.contains("log.format") && error.contains("xml"), "{error}");
    }

    #[test]
    fn a_cluster_is_configured_by_its_variables() {
        let examples = [
            ("FANFARE_CLUSTER_URL", "redis://:secret@127.0.0.1:6379"),
            ("FANFARE_CLUSTER_ADVERTISE", "10.0.0.7:6001"),
            ("FANFARE_CLUSTER_NODE_LEASE", "20s"),
            ("FANFARE_CLUSTER_HEARTBEAT", "2s"),
            ("FANFARE_API_KEY", "0123456789abcdef0123"),
        ];
        let settings = load_from(&ServeArgs::default(), env(&examples)).unwrap();
        let cluster = settings.cluster.as_ref().unwrap();
        assert_eq!(cluster.url, "redis://:secret@127.0.0.1:6379");
        assert_eq!(cluster.advertise.as_deref(), Some("10.0.0.7:6001"));
        assert_eq!(
            (cluster.node_lease, cluster.heartbeat),
            (Duration::from_secs(20), Duration::from_secs(2))
        );
        assert_eq!(
            settings.store.kind,
            StoreKind::Redis(cluster.url.clone()),
            "the store follows the cluster"
        );
        let rendered = settings.to_toml();
        assert!(!rendered.contains("secret@"), "{rendered}");
        assert!(!format!("{settings:?}").contains("secret@"));
        let flag = ServeArgs { cluster: Some("redis://127.0.0.1:7777".into()), ..ServeArgs::default() };
        let settings = load_from(&flag, env(&examples)).unwrap();
        assert_eq!(settings.cluster.unwrap().url, "redis://127.0.0.1:7777", "--cluster beats the variable");
    }

    #[test]
    fn a_cluster_refuses_a_store_of_its_own_and_a_missing_api_key() {
        let key = ("FANFARE_API_KEY", "0123456789abcdef0123");
        let cluster = ("FANFARE_CLUSTER_URL", "redis://127.0.0.1:6379");
        for store in ["embedded://", "memory://", "redis://127.0.0.1:6380"] {
            let error = load_from(&ServeArgs::default(), env(&[key, cluster, ("FANFARE_STORE_URL", store)]));
            let error = error.unwrap_err();
            assert_eq!(error.key(), Some("store.url"), "{store}: {error}");
        }
        let same = load_from(&ServeArgs::default(), env(&[key, cluster, ("FANFARE_STORE_URL", cluster.1)]));
        assert!(same.is_ok(), "the cluster's own Redis is fine");
        let error = load_from(&ServeArgs::default(), env(&[cluster])).unwrap_err();
        assert_eq!(error.key(), Some("api_key"), "{error}");
        let error = load_from(&ServeArgs::default(), env(&[("FANFARE_STORE_URL", cluster.1)])).unwrap_err();
        assert!(error.to_string().contains("cluster.url"), "a Redis store without a cluster: {error}");
        let lease = [key, cluster, ("FANFARE_CLUSTER_NODE_LEASE", "5s"), ("FANFARE_CLUSTER_HEARTBEAT", "5s")];
        assert_eq!(
            load_from(&ServeArgs::default(), env(&lease)).unwrap_err().key(),
            Some("cluster.node_lease")
        );
        let nats = [key, ("FANFARE_CLUSTER_URL", "nats://127.0.0.1:4222")];
        assert_eq!(load_from(&ServeArgs::default(), env(&nats)).unwrap_err().key(), Some("cluster.url"));
    }

    #[test]
    fn a_missing_config_file_is_an_error_naming_the_path() {
        let args = with_file(Path::new("/nonexistent/fanfare.toml"));
        let error = load_from(&args, env(&[])).unwrap_err();
        assert!(matches!(error, ConfigError::File { .. }), "{error:?}");
        assert!(error.to_string().contains("/nonexistent/fanfare.toml"));
    }

    #[test]
    fn invalid_toml_is_a_syntax_error_with_the_line() {
        let (_dir, path) = config_file("listen = \n");
        let error = load_from(&with_file(&path), env(&[])).unwrap_err();
        assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn the_public_key_file_can_come_from_the_environment() {
        let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/src/auth/testdata/es256_public.pem");
        let settings = load_from(
            &ServeArgs::default(),
            env(&[("FANFARE_JWT_ALGORITHM", "ES256"), ("FANFARE_JWT_PUBLIC_KEY_FILE", pem)]),
        )
        .unwrap();
        let jwt = settings.auth.jwt.unwrap();
        assert_eq!(jwt.algorithm, crate::JwtAlgorithm::Es256);
        assert!(matches!(jwt.key, crate::JwtKey::PublicKeyPem { file: Some(_), .. }));

        let inline = std::fs::read_to_string(pem).unwrap();
        let settings = load_from(
            &ServeArgs::default(),
            env(&[("FANFARE_JWT_ALGORITHM", "ES256"), ("FANFARE_JWT_PUBLIC_KEY", &inline)]),
        )
        .unwrap();
        assert!(settings.auth.jwt.is_some());
    }

    #[test]
    fn demo_listens_on_loopback_with_its_namespaces_under_the_users_keys() {
        let args = ServeArgs { demo: true, ..ServeArgs::default() };
        let settings = load_from(&args, env(&[])).unwrap();
        assert!(settings.demo);
        assert_eq!(settings.listen.to_string(), "127.0.0.1:6001");
        let team = settings.namespaces.get("team");
        assert_eq!((team.subscribe, team.publish), (SubscribePolicy::Members, PublishPolicy::Members));
        assert_eq!(settings.namespaces.get("stream").publish, PublishPolicy::Anyone);

        let (_dir, path) = config_file("[namespaces.team]\npublish = \"server\"\n");
        let args = ServeArgs { demo: true, ..with_file(&path) };
        let team = load_from(&args, env(&[])).unwrap().namespaces.get("team").clone();
        assert_eq!((team.subscribe, team.publish), (SubscribePolicy::Anyone, PublishPolicy::Server));
    }

    #[test]
    fn demo_on_an_address_others_can_reach_is_refused_naming_the_flag() {
        let args = ServeArgs { demo: true, listen: Some("0.0.0.0:6001".into()), ..ServeArgs::default() };
        let error = load_from(&args, env(&[])).unwrap_err();
        assert_eq!(error.key(), Some("listen"));
        assert!(error.to_string().contains("--listen"), "{error}");
        let error = load_from(
            &ServeArgs { demo: true, ..ServeArgs::default() },
            env(&[("FANFARE_LISTEN", "10.0.0.1:80")]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("FANFARE_LISTEN"), "{error}");
    }
}
