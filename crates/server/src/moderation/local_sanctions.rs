//! [`LocalSanctions`]: a single node's bans and mutes, in memory and in
//! `data_dir/moderation/sanctions.json` (rewritten on each change), so
//! they last across restarts.

use std::path::Path;

use fanfare_cluster::{ClusterError, Sanction, SanctionKind, Sanctions, Scope};
use fanfare_protocol::ChannelName;
use parking_lot::Mutex;

use crate::data_dir::ModerationFile;

pub struct LocalSanctions {
    sanctions: Mutex<Vec<Sanction>>,
    /// `None` keeps them in memory only (tests).
    file: Option<ModerationFile>,
}

impl LocalSanctions {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let file = ModerationFile::new(data_dir, "sanctions.json");
        Ok(Self { sanctions: Mutex::new(file.read()?), file: Some(file) })
    }

    pub fn in_memory() -> Self {
        Self { sanctions: Mutex::default(), file: None }
    }

    async fn save(&self) -> Result<(), ClusterError> {
        let Some(file) = &self.file else { return Ok(()) };
        let now = super::now_ms();
        let kept: Vec<Sanction> = {
            let mut sanctions = self.sanctions.lock();
            sanctions.retain(|s| s.in_force(now));
            sanctions.clone()
        };
        file.write(&kept).await
    }
}

fn same(a: &Sanction, kind: SanctionKind, user: &str, scope: &Scope) -> bool {
    a.kind == kind && a.user == user && a.scope == *scope
}

#[async_trait::async_trait]
impl Sanctions for LocalSanctions {
    async fn impose(&self, sanction: Sanction) -> Result<(), ClusterError> {
        {
            let mut sanctions = self.sanctions.lock();
            sanctions.retain(|s| !same(s, sanction.kind, &sanction.user, &sanction.scope));
            sanctions.push(sanction);
        }
        self.save().await
    }

    async fn in_force(
        &self,
        user: &str,
        channel: &ChannelName,
        now_ms: u64,
    ) -> Result<Vec<Sanction>, ClusterError> {
        let sanctions = self.sanctions.lock();
        Ok(sanctions
            .iter()
            .filter(|s| s.user == user && s.scope.covers(channel) && s.in_force(now_ms))
            .cloned()
            .collect())
    }

    async fn lift(
        &self,
        kind: SanctionKind,
        user: &str,
        scope: &Scope,
        now_ms: u64,
    ) -> Result<bool, ClusterError> {
        let held = {
            let mut sanctions = self.sanctions.lock();
            let held = sanctions.iter().any(|s| same(s, kind, user, scope) && s.in_force(now_ms));
            sanctions.retain(|s| !same(s, kind, user, scope));
            held
        };
        self.save().await?;
        Ok(held)
    }

    async fn list(&self, scope: &Scope, now_ms: u64) -> Result<Vec<Sanction>, ClusterError> {
        let mut listed: Vec<Sanction> = self
            .sanctions
            .lock()
            .iter()
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
