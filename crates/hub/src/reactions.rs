//! Reactions (`docs/moderation.md` §6.3): in a shaped namespace, a tap on
//! an emoji is not a publication. The node that receives it counts it in
//! the channel's current window; when the window ends, one ephemeral
//! publication carries the counts of every reaction in it, so a thousand
//! taps cost one push per subscriber instead of a thousand. In a cluster
//! each node counts its own taps and pushes its own aggregate: a
//! subscriber sums what it receives.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use fanfare_protocol::{ChannelName, JsonData};
use parking_lot::Mutex;

use crate::HubError;
use crate::hub::{Hub, Publish, Shared, now_ms, publish_ephemeral};

/// The event name of an aggregate (`docs/protocol.md` §6.1).
pub const REACTIONS_EVENT: &str = "fanfare:reactions";
/// The longest reaction, in bytes (an emoji with modifiers, or a short name).
pub const MAX_REACTION_BYTES: usize = 32;
/// The most different reactions counted in one channel's window.
pub const MAX_REACTION_KINDS: usize = 64;

/// Every channel's open window on this node: the counts so far.
#[derive(Default)]
pub(crate) struct Reactions {
    windows: Mutex<HashMap<ChannelName, BTreeMap<String, u64>>>,
}

impl Reactions {
    /// Counts one reaction; `Ok(true)` when it opened the channel's window.
    fn count(&self, channel: &ChannelName, reaction: &str) -> Result<bool, HubError> {
        let mut windows = self.windows.lock();
        let Some(counts) = windows.get_mut(channel) else {
            windows.insert(channel.clone(), BTreeMap::from([(reaction.to_owned(), 1)]));
            return Ok(true);
        };
        if let Some(count) = counts.get_mut(reaction) {
            *count += 1;
        } else if counts.len() >= MAX_REACTION_KINDS {
            return Err(HubError::TooManyReactionKinds);
        } else {
            counts.insert(reaction.to_owned(), 1);
        }
        Ok(false)
    }

    fn take(&self, channel: &ChannelName) -> Option<BTreeMap<String, u64>> {
        self.windows.lock().remove(channel)
    }
}

impl Hub {
    /// Counts a reaction in `channel`, to be pushed with the others of its
    /// window. [`HubError::ReactionsOff`] where the namespace takes none.
    pub fn react(&self, channel: &ChannelName, reaction: &str) -> Result<(), HubError> {
        let window = self.channel_options(channel).shaping.and_then(|shaping| shaping.reactions);
        let Some(window) = window else { return Err(HubError::ReactionsOff) };
        check_reaction(reaction)?;
        if self.shared.reactions.count(channel, reaction)? {
            tokio::spawn(push_after(self.shared.clone(), channel.clone(), window));
        }
        self.shared.metrics.reactions.increment(1);
        Ok(())
    }
}

/// A reaction is 1 to [`MAX_REACTION_BYTES`] bytes of text without
/// control characters.
fn check_reaction(reaction: &str) -> Result<(), HubError> {
    let fits = (1..=MAX_REACTION_BYTES).contains(&reaction.len());
    if fits && !reaction.chars().any(char::is_control) { Ok(()) } else { Err(HubError::BadReaction) }
}

/// Waits out the window, then pushes its counts as one ephemeral
/// publication: `{"window_ms":…,"counts":{"👍":12,…}}`.
async fn push_after(shared: Arc<Shared>, channel: ChannelName, window: Duration) {
    tokio::time::sleep(window).await;
    let Some(counts) = shared.reactions.take(&channel) else { return };
    let publish = Publish {
        event: Some(REACTIONS_EVENT.to_owned()),
        ephemeral: true,
        ..Publish::new(channel, aggregate(window, &counts))
    };
    shared.metrics.reaction_aggregates.increment(1);
    if let Err(error) = publish_ephemeral(&shared, &publish, now_ms()).await {
        tracing::warn!(channel = %publish.channel, %error, "a reaction aggregate was not pushed");
    }
}

/// An aggregate's data: `{"counts":{…},"window_ms":…}`, keys in byte order.
fn aggregate(window: Duration, counts: &BTreeMap<String, u64>) -> JsonData {
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    JsonData::from_value(&serde_json::json!({ "counts": counts, "window_ms": window_ms }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_open_a_window_once_and_cap_the_kinds() {
        let (reactions, channel) = (Reactions::default(), ChannelName::new("live:stage").unwrap());
        assert!(reactions.count(&channel, "👍").unwrap());
        assert!(!reactions.count(&channel, "👍").unwrap());
        for n in 1..MAX_REACTION_KINDS {
            reactions.count(&channel, &n.to_string()).unwrap();
        }
        assert!(matches!(reactions.count(&channel, "one too many"), Err(HubError::TooManyReactionKinds)));
        assert!(!reactions.count(&channel, "👍").unwrap(), "a known one still counts");
        let counts = reactions.take(&channel).unwrap();
        assert_eq!((counts["👍"], counts.len()), (3, MAX_REACTION_KINDS));
        assert!(reactions.take(&channel).is_none());
    }

    #[test]
    fn an_aggregate_is_the_counts_in_byte_order_and_the_window() {
        let counts = BTreeMap::from([("👍".to_owned(), 120), ("❤️".to_owned(), 31)]);
        let data = aggregate(Duration::from_millis(250), &counts);
        assert_eq!(data.as_str(), r#"{"counts":{"❤️":31,"👍":120},"window_ms":250}"#);
    }

    #[test]
    fn a_reaction_is_short_text_without_control_characters() {
        assert!(check_reaction("👍🏽").is_ok());
        assert!(check_reaction("clap").is_ok());
        assert!(check_reaction("").is_err());
        assert!(check_reaction("a\nb").is_err());
        assert!(check_reaction(&"x".repeat(MAX_REACTION_BYTES + 1)).is_err());
    }
}
