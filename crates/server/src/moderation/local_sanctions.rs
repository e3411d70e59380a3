//! [`LocalSanctions`]: a single node's bans and mutes, in memory and in
//! `data_dir/moderation/sanctions.json` (rewritten on each change), so
//! they last across restarts.

use std::collections::HashMap;
use std::path::Path;

use fanfare_cluster::{ClusterError, Sanction, SanctionKind, Sanctions, Scope};
use fanfare_protocol::ChannelName;
use parking_lot::Mutex;

use crate::data_dir::ModerationFile;

/// The sanctions of each user: a publication's check reads one user's few,
/// however many users are sanctioned.
type ByUser = HashMap<String, Vec<Sanction>>;

pub struct LocalSanctions {
    sanctions: Mutex<ByUser>,
    /// `None` keeps them in memory only (tests).
    file: Option<ModerationFile>,
}

impl LocalSanctions {
    /// Reads the file, a list of sanctions.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let file = ModerationFile::new(data_dir, "sanctions.json");
        let mut by_user = ByUser::new();
        for sanction in file.read::<Vec<Sanction>>()? {
            by_user.entry(sanction.user.clone()).or_default().push(sanction);
        }
        Ok(Self { sanctions: Mutex::new(by_user), file: Some(file) })
    }

    pub fn in_memory() -> Self {
        Self { sanctions: Mutex::default(), file: None }
    }

    /// Rewrites the file with the sanctions in force, dropping expired ones.
    async fn save(&self) -> Result<(), ClusterError> {
        let Some(file) = &self.file else { return Ok(()) };
        let now = super::now_ms();
        let kept: Vec<Sanction> = {
            let mut by_user = self.sanctions.lock();
            by_user.retain(|_, sanctions| {
                sanctions.retain(|s| s.in_force(now));
                !sanctions.is_empty()
            });
            by_user.values().flatten().cloned().collect()
        };
        file.write(&kept).await
    }
}

/// Removes `user`'s sanction of `kind` on `scope` from `by_user`; whether
/// one in force at `now_ms` was there.
fn remove(by_user: &mut ByUser, kind: SanctionKind, user: &str, scope: &Scope, now_ms: u64) -> bool {
    let Some(sanctions) = by_user.get_mut(user) else { return false };
    let held = sanctions.iter().any(|s| s.kind == kind && s.scope == *scope && s.in_force(now_ms));
    sanctions.retain(|s| !(s.kind == kind && s.scope == *scope));
    if sanctions.is_empty() {
        by_user.remove(user);
    }
    held
}

#[async_trait::async_trait]
impl Sanctions for LocalSanctions {
    async fn impose(&self, sanction: Sanction) -> Result<(), ClusterError> {
        {
            let mut by_user = self.sanctions.lock();
            remove(&mut by_user, sanction.kind, &sanction.user, &sanction.scope, 0);
            by_user.entry(sanction.user.clone()).or_default().push(sanction);
        }
        self.save().await
    }

    async fn in_force(
        &self,
        user: &str,
        channel: &ChannelName,
        now_ms: u64,
    ) -> Result<Vec<Sanction>, ClusterError> {
        let by_user = self.sanctions.lock();
        let Some(sanctions) = by_user.get(user) else { return Ok(Vec::new()) };
        Ok(sanctions.iter().filter(|s| s.scope.covers(channel) && s.in_force(now_ms)).cloned().collect())
    }

    async fn lift(
        &self,
        kind: SanctionKind,
        user: &str,
        scope: &Scope,
        now_ms: u64,
    ) -> Result<bool, ClusterError> {
        let held = remove(&mut self.sanctions.lock(), kind, user, scope, now_ms);
        self.save().await?;
        Ok(held)
    }

    async fn list(&self, scope: &Scope, now_ms: u64) -> Result<Vec<Sanction>, ClusterError> {
        let mut listed: Vec<Sanction> = self
            .sanctions
            .lock()
            .values()
            .flatten()
            .filter(|s| s.scope == *scope && s.in_force(now_ms))
            .cloned()
            .collect();
        Sanction::sort_for_listing(&mut listed);
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use fanfare_cluster::conformance::Subject;

    async fn local_sanctions() -> Option<Subject<dyn Sanctions>> {
        let sanctions: Arc<dyn Sanctions> = Arc::new(LocalSanctions::in_memory());
        Some(Subject::new((), move || {
            let sanctions = sanctions.clone();
            async move { sanctions }
        }))
    }

    mod local {
        fanfare_cluster::sanctions_conformance!(super::local_sanctions());
    }

    #[tokio::test]
    async fn sanctions_are_read_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let room = ChannelName::new("live:a").unwrap();
        let ban = Sanction {
            kind: SanctionKind::Ban,
            user: "ann".into(),
            scope: Scope::Channel(room.clone()),
            at_ms: 1,
            until_ms: None,
            by: "api".into(),
            reason: Some("spam".into()),
        };
        LocalSanctions::open(dir.path()).unwrap().impose(ban.clone()).await.unwrap();
        let again = LocalSanctions::open(dir.path()).unwrap();
        assert_eq!(again.in_force("ann", &room, 2).await.unwrap(), [ban]);
    }
}
