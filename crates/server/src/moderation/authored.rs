//! Editing and deleting one publication by its offset: by its author (kept
//! with every publication) or by whoever moderates the channel (a token's
//! `moderate` grant; the HTTP API's key moderates every channel).
//!
//! 1. Find the target: a message of the channel at that offset, still
//!    kept (`not_found` otherwise: unknown, deleted, or a record).
//! 2. Check the editor: the target's author or a moderator
//!    (`permission_denied` otherwise; nothing is appended).
//! 3. Hand the edit or delete to the hub, which appends the update or
//!    delete record at the channel's next offset, in order with its
//!    publications, so live subscribers and recovering clients learn of it
//!    in order. A delete also takes the target's update records (their
//!    data is the target's too).
//!
//! Step 1 reads before step 3 writes: a target deleted in between fails in
//! the store (`not_found`); its author cannot change.

use fanfare_protocol::native::HistoryParams;
use fanfare_protocol::{ChannelName, Epoch, ErrorCode, ErrorInfo, JsonData, Publication, UserId};
use fanfare_store::DeleteTargets;
use serde::Serialize;

use super::ActionOutcome;
use crate::policy::hub_error;
use crate::server::AppState;

/// Pages of history a delete reads after its target for the target's
/// update records; edits older than that many pages stay.
const UPDATE_SCAN_PAGES: usize = 10;

/// Who edits or deletes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Editor<'a> {
    /// The HTTP API's key: every channel, as a moderator.
    Api,
    /// A native connection's user, and whether its token moderates the channel.
    User { user: &'a str, moderates: bool },
}

impl Editor<'_> {
    /// The author of the record appended (`None` for the HTTP API).
    fn author(&self) -> Option<UserId> {
        match self {
            Editor::Api => None,
            Editor::User { user, .. } => Some(UserId::new((*user).to_owned())).filter(|u| !u.is_empty()),
        }
    }

    /// Step 2: the target's author or a moderator.
    fn may_change(&self, target: &Publication) -> Result<(), ErrorInfo> {
        match self {
            Editor::Api | Editor::User { moderates: true, .. } => Ok(()),
            Editor::User { user, .. }
                if !user.is_empty() && target.author.as_ref().is_some_and(|a| a.as_str() == *user) =>
            {
                Ok(())
            }
            Editor::User { .. } => Err(ErrorInfo::new(
                ErrorCode::PermissionDenied,
                "only the publication's author or a moderator may change it",
            )),
        }
    }
}

/// The reply of an edit: the update record's position.
#[derive(Debug, Serialize)]
pub(crate) struct EditOutcome {
    pub epoch: Epoch,
    pub offset: u64,
}

/// Edits the message at `offset` to `data` (already checked against the
/// namespace's size limits and content rules by the caller).
pub(crate) async fn edit(
    app: &AppState,
    editor: Editor<'_>,
    channel: ChannelName,
    offset: u64,
    data: JsonData,
) -> Result<EditOutcome, ErrorInfo> {
    let target = find_target(app, &channel, offset).await?;
    editor.may_change(&target)?;
    let appended = app.hub.edit(channel.clone(), offset, data, editor.author()).await.map_err(hub_error)?;
    let record = appended.publication.offset;
    tracing::info!(%channel, offset, record, by = ?editor, "publication edited");
    Ok(EditOutcome { epoch: appended.epoch, offset: record })
}

/// Deletes the message at `offset` and its update records.
pub(crate) async fn delete(
    app: &AppState,
    editor: Editor<'_>,
    channel: ChannelName,
    offset: u64,
) -> Result<ActionOutcome, ErrorInfo> {
    let target = find_target(app, &channel, offset).await?;
    editor.may_change(&target)?;
    let offsets = with_update_records(app, &channel, &target).await?;
    super::action::delete(app, editor.author(), channel, DeleteTargets::Offsets(offsets)).await
}

/// What deleting the message at `offset` deletes: it and, once edited, its
/// update records; just `offset` when there is no such message (the
/// store then finds nothing, or the record there).
pub(crate) async fn delete_targets(
    app: &AppState,
    channel: &ChannelName,
    offset: u64,
) -> Result<DeleteTargets, ErrorInfo> {
    let offsets = match find_target(app, channel, offset).await {
        Ok(target) => with_update_records(app, channel, &target).await?,
        Err(_) => vec![offset],
    };
    Ok(DeleteTargets::Offsets(offsets))
}

async fn with_update_records(
    app: &AppState,
    channel: &ChannelName,
    target: &Publication,
) -> Result<Vec<u64>, ErrorInfo> {
    let mut offsets = vec![target.offset];
    if target.edited {
        offsets.extend(update_records_of(app, channel, target.offset).await?);
    }
    Ok(offsets)
}

/// Step 1: the message at `offset`, or `not_found`.
async fn find_target(app: &AppState, channel: &ChannelName, offset: u64) -> Result<Publication, ErrorInfo> {
    let not_found = || ErrorInfo::new(ErrorCode::NotFound, format!("no publication at offset {offset}"));
    let since = offset.checked_sub(1).ok_or_else(not_found)?;
    let params = HistoryParams { since: Some(since), limit: Some(1), reverse: false };
    let page = app.hub.history(channel, params).await.map_err(hub_error)?;
    let target = page.publications.into_iter().next().filter(|p| p.offset == offset && p.is_message());
    target.ok_or_else(not_found)
}

/// The offsets of the update records of the message at `target` still
/// kept (and not deleted), ascending.
async fn update_records_of(
    app: &AppState,
    channel: &ChannelName,
    target: u64,
) -> Result<Vec<u64>, ErrorInfo> {
    let mut found = Vec::new();
    let mut since = target;
    for _ in 0..UPDATE_SCAN_PAGES {
        let params = HistoryParams { since: Some(since), limit: Some(usize::MAX), reverse: false };
        let page = app.hub.history(channel, params).await.map_err(hub_error)?;
        let Some(last) = page.publications.last() else { break };
        since = last.offset;
        found.extend(page.publications.iter().filter(|p| p.updates == Some(target)).map(|p| p.offset));
        if since >= page.top_offset {
            break;
        }
    }
    Ok(found)
}
