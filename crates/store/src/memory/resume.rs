//! [`ResumePoints`] for [`MemoryStore`]: one map per (user, channel) of
//! holder → point, behind one lock (a save or a claim is a few map
//! operations, far below anything that would contend).

use std::collections::HashMap;

use fanfare_protocol::{ChannelName, StreamPosition, UserId};

use super::MemoryStore;
use crate::resume::{Held, check_save_size, oldest_unexpired};
use crate::{ResumePoint, ResumePoints, StoreError, Validity};

type Holders = HashMap<String, Held>;

/// Every pair's points. A pair whose points all expired or were taken is
/// removed, so memory follows the pairs written within the window.
#[derive(Default)]
pub(super) struct MemoryResumePoints {
    pairs: HashMap<(UserId, ChannelName), Holders>,
}

impl MemoryResumePoints {
    /// The pair's points without the expired ones; `None` if none is left.
    fn live(&mut self, pair: &(UserId, ChannelName), now_ms: u64) -> Option<&mut Holders> {
        let holders = self.pairs.get_mut(pair)?;
        holders.retain(|_, held| held.expires_at_ms > now_ms);
        if holders.is_empty() {
            self.pairs.remove(pair);
            return None;
        }
        self.pairs.get_mut(pair)
    }
}

#[async_trait::async_trait]
impl ResumePoints for MemoryStore {
    async fn save_resume_points(
        &self,
        user: &UserId,
        holder: &str,
        points: &[ResumePoint],
        validity: Validity,
    ) -> Result<(), StoreError> {
        check_save_size(points)?;
        let mut store = self.resume_points.lock();
        for point in points {
            let pair = (user.clone(), point.channel.clone());
            let _ = store.live(&pair, validity.now_ms);
            let held = Held { position: point.position.clone(), expires_at_ms: validity.expires_at_ms };
            if held.expires_at_ms > validity.now_ms {
                store.pairs.entry(pair).or_default().insert(holder.to_owned(), held);
            }
        }
        Ok(())
    }

    async fn claim_resume_point(
        &self,
        user: &UserId,
        channel: &ChannelName,
        holder: &str,
        validity: Validity,
    ) -> Result<Option<StreamPosition>, StoreError> {
        let mut store = self.resume_points.lock();
        let Some(holders) = store.live(&(user.clone(), channel.clone()), validity.now_ms) else {
            return Ok(None);
        };
        let Some((taken, held)) = oldest_unexpired(holders.iter(), validity.now_ms) else { return Ok(None) };
        let (taken, position) = (taken.clone(), held.position.clone());
        holders.remove(&taken);
        let moved = Held { position: position.clone(), expires_at_ms: validity.expires_at_ms };
        holders.insert(holder.to_owned(), moved);
        Ok(Some(position))
    }

    async fn forget_resume_point(
        &self,
        user: &UserId,
        channel: &ChannelName,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let mut store = self.resume_points.lock();
        let pair = (user.clone(), channel.clone());
        let Some(holders) = store.pairs.get_mut(&pair) else { return Ok(false) };
        let forgotten = holders.remove(holder).is_some();
        if holders.is_empty() {
            store.pairs.remove(&pair);
        }
        Ok(forgotten)
    }
}
