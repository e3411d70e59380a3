//! `[members]`: the limits of members channels and what a user's feed
//! receives (`docs/members.md`). As written ([`RawMembers`]) and checked
//! ([`MemberSettings`]).

use serde::{Deserialize, Serialize};

/// The most members a channel may be configured to hold.
pub const MAX_MEMBERS_BOUND: u64 = 1_000_000;
/// The largest feed preview: a notice is meant to be small.
pub const MAX_PREVIEW_BYTES: usize = 4_096;

/// `[members]` as written; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMembers {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_members: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_channels_per_user: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed_max_members: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed_preview_bytes: Option<usize>,
}

/// The limits of members channels and the feed's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberSettings {
    /// The most members one channel may have (`too_many_members` past it).
    pub max_members: u64,
    /// The most members channels one user may be in (`too_many_memberships`).
    pub max_channels_per_user: u64,
    /// Publications in channels of at most this many members send a notice
    /// to each member's feed; bigger channels send none (one message would
    /// be that many appends). 0: no feed notices at all.
    pub feed_max_members: u64,
    /// The most bytes of a notice's `preview` (cut on a character boundary).
    pub feed_preview_bytes: usize,
}

impl Default for MemberSettings {
    /// 10,000 members per channel, 10,000 channels per user (direct
    /// channels count: a messenger's user has many), notices for
    /// channels of up to 100 members with 140-byte previews.
    fn default() -> Self {
        Self {
            max_members: 10_000,
            max_channels_per_user: 10_000,
            feed_max_members: 100,
            feed_preview_bytes: 140,
        }
    }
}

impl MemberSettings {
    /// Checks `raw` over the defaults; an error names the key.
    pub(crate) fn check(raw: &RawMembers) -> Result<Self, (&'static str, String)> {
        let defaults = Self::default();
        let settings = Self {
            max_members: raw.max_members.unwrap_or(defaults.max_members),
            max_channels_per_user: raw.max_channels_per_user.unwrap_or(defaults.max_channels_per_user),
            feed_max_members: raw.feed_max_members.unwrap_or(defaults.feed_max_members),
            feed_preview_bytes: raw.feed_preview_bytes.unwrap_or(defaults.feed_preview_bytes),
        };
        if !(2..=MAX_MEMBERS_BOUND).contains(&settings.max_members) {
            return Err(("max_members", format!("must be from 2 to {MAX_MEMBERS_BOUND}")));
        }
        if !(1..=MAX_MEMBERS_BOUND).contains(&settings.max_channels_per_user) {
            return Err(("max_channels_per_user", format!("must be from 1 to {MAX_MEMBERS_BOUND}")));
        }
        if settings.feed_max_members > settings.max_members {
            return Err(("feed_max_members", "must not exceed max_members".to_owned()));
        }
        if settings.feed_max_members > fanfare_store::MAX_MEMBER_PAGE as u64 {
            let max = fanfare_store::MAX_MEMBER_PAGE;
            return Err(("feed_max_members", format!("must be at most {max} (one page of members)")));
        }
        if settings.feed_preview_bytes > MAX_PREVIEW_BYTES {
            return Err(("feed_preview_bytes", format!("must be at most {MAX_PREVIEW_BYTES}")));
        }
        Ok(settings)
    }

    pub(crate) fn to_raw(self) -> RawMembers {
        RawMembers {
            max_members: Some(self.max_members),
            max_channels_per_user: Some(self.max_channels_per_user),
            feed_max_members: Some(self.feed_max_members),
            feed_preview_bytes: Some(self.feed_preview_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_ten_thousand_members_and_notify_channels_of_a_hundred() {
        let settings = MemberSettings::check(&RawMembers::default()).unwrap();
        assert_eq!(settings, MemberSettings::default());
        assert_eq!((settings.max_members, settings.feed_max_members), (10_000, 100));
    }

    #[test]
    fn each_bad_key_is_named() {
        let bad = |raw: RawMembers| MemberSettings::check(&raw).unwrap_err().0;
        assert_eq!(bad(RawMembers { max_members: Some(1), ..RawMembers::default() }), "max_members");
        assert_eq!(
            bad(RawMembers { max_channels_per_user: Some(0), ..RawMembers::default() }),
            "max_channels_per_user"
        );
        assert_eq!(
            bad(RawMembers { max_members: Some(50), feed_max_members: Some(60), ..RawMembers::default() }),
            "feed_max_members"
        );
        assert_eq!(
            bad(RawMembers { feed_preview_bytes: Some(5000), ..RawMembers::default() }),
            "feed_preview_bytes"
        );
    }
}
