//! A namespace's huge-room shaping (`shaping` under `[channel_defaults]`
//! and `[namespaces.NAME]`): as written ([`RawShaping`]), checked and
//! resolved ([`ShapingRules`]). The hub applies the budget, the window and
//! the reactions (`fanfare_hub::Shaping`); the server decides who publishes
//! in the priority lane. `docs/moderation.md` §6 is the user's description.

use std::num::NonZeroU32;
use std::time::Duration;

use fanfare_hub::Shaping;
use serde::{Deserialize, Serialize};

use super::duration::{HumanDuration, format_duration, parse_duration};

/// The largest budget: beyond it shaping would keep nothing from anyone.
pub const MAX_BUDGET: u32 = 10_000;
/// The sampling window's bounds.
pub const WINDOWS: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(60));
/// The reaction window's bounds.
pub const REACTION_WINDOWS: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(10));
const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
const DEFAULT_REACTIONS: Duration = Duration::from_millis(250);
const DEFAULT_BATCH: Duration = Duration::from_millis(250);
/// The longest a kept ordinary publication may wait for its batch.
pub const MAX_BATCH: Duration = Duration::from_secs(1);
/// The roles of the priority lane, as written.
pub const ROLES: [&str; 3] = ["server", "moderators", "hosts"];

/// `shaping` as written; every key optional. A namespace's keys override
/// `[channel_defaults.shaping]` one by one; `budget` is required once
/// merged (a table without one is an error, not a silent "off").
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShaping {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Vec<String>>,
    /// A duration, or `"off"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reactions: Option<String>,
    /// `"0s"`: no batching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<HumanDuration>,
}

impl RawShaping {
    /// These keys over `base`'s.
    pub(crate) fn overridden_by(&self, over: &RawShaping) -> RawShaping {
        RawShaping {
            budget: over.budget.or(self.budget),
            window: over.window.or(self.window),
            priority: over.priority.clone().or_else(|| self.priority.clone()),
            reactions: over.reactions.clone().or_else(|| self.reactions.clone()),
            batch: over.batch.or(self.batch),
        }
    }
}

/// Who publishes in the priority lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityLane {
    /// The HTTP APIs (native and Pusher).
    pub server: bool,
    /// Connections whose token has a `moderate` grant for the channel.
    pub moderators: bool,
    /// Connections whose token has a `host` grant for the channel.
    pub hosts: bool,
}

/// A namespace's shaping, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapingRules {
    /// What the hub applies to every channel of the namespace.
    pub hub: Shaping,
    pub priority: PriorityLane,
}

impl ShapingRules {
    /// Checks `raw` (merged); the error names the key (under `shaping.`)
    /// and says why.
    pub(crate) fn check(raw: &RawShaping) -> Result<ShapingRules, (&'static str, String)> {
        let budget = raw.budget.ok_or(("budget", "is required in a shaping table".to_owned()))?;
        let budget = NonZeroU32::new(budget)
            .filter(|b| b.get() <= MAX_BUDGET)
            .ok_or(("budget", format!("= {budget}: must be 1 to {MAX_BUDGET} publications per second")))?;
        let window = raw.window.map_or(DEFAULT_WINDOW, |w| w.0);
        if !(WINDOWS.0..=WINDOWS.1).contains(&window) {
            return Err(("window", "must be 100ms to 60s".to_owned()));
        }
        let reactions = match raw.reactions.as_deref().map(str::trim) {
            None => Some(DEFAULT_REACTIONS),
            Some("off") => None,
            Some(text) => {
                let window = parse_duration(text).map_err(|reason| ("reactions", reason))?;
                if !(REACTION_WINDOWS.0..=REACTION_WINDOWS.1).contains(&window) {
                    return Err(("reactions", "must be \"off\" or 50ms to 10s".to_owned()));
                }
                Some(window)
            }
        };
        let batch = raw.batch.map_or(DEFAULT_BATCH, |b| b.0);
        if batch > MAX_BATCH {
            return Err(("batch", "must be 0s (no batching) to 1s".to_owned()));
        }
        let batch = (!batch.is_zero()).then_some(batch);
        let priority = lane(raw.priority.as_deref())?;
        Ok(ShapingRules { hub: Shaping { budget, window, reactions, batch }, priority })
    }

    /// Every key, as written.
    pub(crate) fn to_raw(self) -> RawShaping {
        let lane = self.priority;
        let roles = ROLES.iter().zip([lane.server, lane.moderators, lane.hosts]);
        RawShaping {
            budget: Some(self.hub.budget.get()),
            window: Some(HumanDuration(self.hub.window)),
            priority: Some(roles.filter(|(_, on)| *on).map(|(role, _)| (*role).to_owned()).collect()),
            reactions: Some(self.hub.reactions.map_or_else(|| "off".to_owned(), format_duration)),
            batch: Some(HumanDuration(self.hub.batch.unwrap_or_default())),
        }
    }
}

/// The roles listed (all three when unset).
fn lane(roles: Option<&[String]>) -> Result<PriorityLane, (&'static str, String)> {
    let Some(roles) = roles else { return Ok(PriorityLane { server: true, moderators: true, hosts: true }) };
    let mut lane = PriorityLane { server: false, moderators: false, hosts: false };
    for role in roles {
        let slot = match role.as_str() {
            "server" => &mut lane.server,
            "moderators" => &mut lane.moderators,
            "hosts" => &mut lane.hosts,
            other => {
                let known = ROLES.join(", ");
                return Err(("priority", format!("`{other}` is not a role: the roles are {known}")));
            }
        };
        *slot = true;
    }
    Ok(lane)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(budget: Option<u32>) -> RawShaping {
        RawShaping { budget, ..RawShaping::default() }
    }

    #[test]
    fn defaults_fill_every_key_but_the_budget() {
        let rules = ShapingRules::check(&raw(Some(20))).unwrap();
        assert_eq!(rules.hub.budget.get(), 20);
        assert_eq!(rules.hub.window, Duration::from_secs(1));
        assert_eq!(rules.hub.reactions, Some(Duration::from_millis(250)));
        assert_eq!(rules.hub.batch, Some(Duration::from_millis(250)));
        assert_eq!(rules.priority, PriorityLane { server: true, moderators: true, hosts: true });
        assert_eq!(ShapingRules::check(&rules.to_raw()).unwrap(), rules, "round trip");
    }

    #[test]
    fn bad_keys_are_named_with_the_reason() {
        let key = |raw: RawShaping| ShapingRules::check(&raw).unwrap_err();
        assert_eq!(key(raw(None)).0, "budget");
        assert!(key(raw(Some(0))).1.contains("must be 1 to 10000"));
        let window = RawShaping { window: Some(HumanDuration(Duration::from_millis(10))), ..raw(Some(5)) };
        assert_eq!(key(window).0, "window");
        let role = RawShaping { priority: Some(vec!["server".into(), "vips".into()]), ..raw(Some(5)) };
        let (name, reason) = key(role);
        assert_eq!(name, "priority");
        assert!(reason.contains("`vips` is not a role: the roles are server, moderators, hosts"), "{reason}");
        assert_eq!(key(RawShaping { reactions: Some("fast".into()), ..raw(Some(5)) }).0, "reactions");
        assert_eq!(key(RawShaping { reactions: Some("1m".into()), ..raw(Some(5)) }).0, "reactions");
        let batch = RawShaping { batch: Some(HumanDuration(Duration::from_secs(2))), ..raw(Some(5)) };
        assert_eq!(key(batch).0, "batch");
        let unbatched = RawShaping { batch: Some(HumanDuration(Duration::ZERO)), ..raw(Some(5)) };
        let rules = ShapingRules::check(&unbatched).unwrap();
        assert_eq!(rules.hub.batch, None);
        assert_eq!(ShapingRules::check(&rules.to_raw()).unwrap(), rules, "0s reads back");
    }

    #[test]
    fn reactions_may_be_off_and_roles_may_be_few() {
        let raw = RawShaping {
            reactions: Some("off".into()),
            priority: Some(vec!["server".into()]),
            ..raw(Some(3))
        };
        let rules = ShapingRules::check(&raw).unwrap();
        assert_eq!(rules.hub.reactions, None);
        assert_eq!(rules.priority, PriorityLane { server: true, moderators: false, hosts: false });
        assert_eq!(rules.to_raw().reactions.as_deref(), Some("off"));
    }

    #[test]
    fn the_configuration_names_a_bad_key_and_config_check_shows_the_resolved_tables() {
        let refused = crate::from_toml("[namespaces.live.shaping]\nbudget = 20\npriority = [\"vips\"]\n");
        let Err(crate::ConfigError::Invalid { key, reason, .. }) = refused else { panic!("{refused:?}") };
        assert_eq!(key, "namespaces.live.shaping.priority");
        assert!(reason.contains("`vips` is not a role"), "{reason}");
        let toml = "[channel_defaults.shaping]\nbudget = 5\nreactions = \"off\"\n\
                    [namespaces.live.shaping]\nbudget = 20\n";
        let settings = crate::from_toml(toml).unwrap();
        let live = settings.namespaces.get("live");
        assert_eq!(live.channel.shaping.map(|s| (s.budget.get(), s.reactions)), Some((20, None)));
        assert_eq!(settings.namespaces.get("other").shaping.map(|s| s.hub.budget.get()), Some(5));
        let text = settings.to_toml();
        assert!(text.contains("[namespaces.live.shaping]\nbudget = 20\nwindow = \"1s\""), "{text}");
        assert!(text.contains("reactions = \"off\""), "{text}");
        let raw = toml::to_string(&settings.to_raw(false)).unwrap();
        assert_eq!(crate::from_toml(&raw).unwrap(), settings, "{raw}");
    }

    #[test]
    fn a_namespace_overrides_the_defaults_key_by_key() {
        let base = RawShaping { budget: Some(10), reactions: Some("off".into()), ..RawShaping::default() };
        let merged = base.overridden_by(&RawShaping { budget: Some(30), ..RawShaping::default() });
        assert_eq!((merged.budget, merged.reactions.as_deref()), (Some(30), Some("off")));
    }
}
