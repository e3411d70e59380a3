//! Read state (`docs/members.md` §4): a member's read cursor per channel,
//! moved forward by `read` (and by publishing), and the unread counts of
//! all of a user's channels in one call.
//!
//! A cursor is a position `{epoch, offset}`. A mark is clamped to the
//! channel's latest offset (a client cannot read the future) and must be
//! in the channel's current epoch. A channel's unread count is the number
//! of publications after the cursor, in the current epoch; all of them
//! when the cursor is of an older epoch (or there is none).

use fanfare_hub::Hub;
use fanfare_protocol::{ChannelName, Epoch, ErrorCode, ErrorInfo, StreamPosition, UserId};
use fanfare_store::{MarkOutcome, PageAfter};
use futures_util::future::join_all;
use serde::Serialize;

use super::{Members, store_error};
use crate::policy::hub_error;

/// An unread page when the request names no `limit`, and the most.
pub const DEFAULT_UNREAD: usize = 100;
pub const MAX_UNREAD: usize = fanfare_store::MAX_CURSORS_PER_READ;

/// One channel's read state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelUnread {
    pub channel: ChannelName,
    /// The channel's current epoch and latest offset.
    pub epoch: Epoch,
    pub offset: u64,
    /// The cursor's offset in the current epoch (0: nothing read).
    pub read: u64,
    pub unread: u64,
}

/// One page of a user's channels, bytewise by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadPage {
    pub channels: Vec<ChannelUnread>,
    /// The last channel of a full page: the `after` of the next one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<ChannelName>,
}

impl Members {
    /// Moves `user`'s cursor in `channel` to `read` (clamped to the
    /// channel's latest offset); the caller has checked membership.
    pub async fn mark_read(
        &self,
        hub: &Hub,
        user: &str,
        channel: &ChannelName,
        read: StreamPosition,
    ) -> Result<MarkOutcome, ErrorInfo> {
        let latest = hub.position(channel).await.map_err(hub_error)?;
        if read.epoch != latest.epoch {
            return Err(ErrorInfo::new(
                ErrorCode::BadRequest,
                format!("the channel's epoch is {}: positions of another epoch cannot be read", latest.epoch),
            ));
        }
        let read = StreamPosition::new(read.epoch, read.offset.min(latest.offset));
        let cursors = &self.stores().cursors;
        cursors.mark_read(&UserId::new(user), channel, read).await.map_err(store_error)
    }

    /// One page of `user`'s channels with their unread counts.
    pub async fn unread(
        &self,
        hub: &Hub,
        user: &str,
        after: Option<&ChannelName>,
        limit: Option<usize>,
    ) -> Result<UnreadPage, ErrorInfo> {
        let user = UserId::new(user);
        let limit = limit.unwrap_or(DEFAULT_UNREAD).clamp(1, MAX_UNREAD);
        let page = PageAfter { after, limit };
        let channels = self.store().channels_of(&user, page).await.map_err(store_error)?;
        let cursors = self.stores().cursors.cursors(&user, &channels).await.map_err(store_error)?;
        let positions = join_all(channels.iter().map(|channel| hub.position(channel))).await;
        let mut states = Vec::with_capacity(channels.len());
        for ((channel, cursor), latest) in channels.iter().zip(cursors).zip(positions) {
            let latest = latest.map_err(hub_error)?;
            let read = cursor.filter(|cursor| cursor.epoch == latest.epoch).map_or(0, |cursor| cursor.offset);
            states.push(ChannelUnread {
                channel: channel.clone(),
                unread: latest.offset.saturating_sub(read),
                epoch: latest.epoch,
                offset: latest.offset,
                read,
            });
        }
        let next = (channels.len() == limit).then(|| channels.last().cloned()).flatten();
        Ok(UnreadPage { channels: states, next })
    }
}
