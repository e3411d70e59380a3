//! [`ResumePoints`] for [`EmbeddedStore`]: one record per (user, channel,
//! holder) in the `resume_points` keyspace.
//!
//! Like cursors, these writes go beside the history writer, on the
//! caller's task, under [`Shared::resume_lock`] (a claim reads a pair's
//! points and moves one: the lock makes that atomic), each batch pushed to
//! the operating system before it is answered (`PersistMode::Buffer`): a
//! process crash keeps it, which is what a restart on the same data
//! directory needs; a power loss may take back the latest, which only
//! costs a replay.

use std::ops::Bound;

use fanfare_protocol::{ChannelName, Epoch, StreamPosition, UserId};
use fjall::PersistMode;

use super::member_keys::prefix_end;
use super::{EmbeddedStore, Shared, storage_error};
use crate::resume::{Held, check_save_size, oldest_unexpired};
use crate::{ResumePoint, ResumePoints, StoreError, Validity};

pub(super) const RESUME_POINTS: &str = "resume_points";

const U64_LEN: usize = 8;

/// `user length (u16 BE), user, channel, 0x00`: every point of the pair
/// starts with it (channel names hold no `0x00`, the user is
/// length-prefixed, so no other pair's keys do).
fn pair_prefix(user: &UserId, channel: &ChannelName) -> Vec<u8> {
    let user = user.as_str().as_bytes();
    let len = u16::try_from(user.len()).unwrap_or(u16::MAX);
    let user = &user[..usize::from(len)];
    let mut key = Vec::with_capacity(3 + user.len() + channel.as_str().len());
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(user);
    key.extend_from_slice(channel.as_str().as_bytes());
    key.push(0);
    key
}

fn point_key(prefix: &[u8], holder: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + holder.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(holder.as_bytes());
    key
}

/// `expires_at_ms (u64 BE), offset (u64 BE), epoch text`.
fn point_value(held: &Held) -> Vec<u8> {
    let mut value = Vec::with_capacity(2 * U64_LEN + held.position.epoch.as_str().len());
    value.extend_from_slice(&held.expires_at_ms.to_be_bytes());
    value.extend_from_slice(&held.position.offset.to_be_bytes());
    value.extend_from_slice(held.position.epoch.as_str().as_bytes());
    value
}

fn decode_point(value: &[u8]) -> Result<Held, StoreError> {
    let corrupt = |reason| StoreError::Corrupt { keyspace: RESUME_POINTS, key: String::new(), reason };
    let (expires, rest) = value.split_at_checked(U64_LEN).ok_or_else(|| corrupt("value too short"))?;
    let (offset, epoch) = rest.split_at_checked(U64_LEN).ok_or_else(|| corrupt("value too short"))?;
    let number = |bytes: &[u8]| u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
    let epoch = std::str::from_utf8(epoch).map_err(|_| corrupt("epoch not UTF-8"))?;
    let position = StreamPosition::new(Epoch::new(epoch), number(offset));
    Ok(Held { position, expires_at_ms: number(expires) })
}

impl Shared {
    /// Every point of the pair whose keys start with `prefix`, by key.
    fn pair_points(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Held)>, StoreError> {
        let end = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        let mut points = Vec::new();
        for guard in self.resume_points.range((Bound::Included(prefix.to_vec()), end)) {
            let (key, value) = guard.into_inner().map_err(storage_error)?;
            points.push((key.to_vec(), decode_point(&value)?));
        }
        Ok(points)
    }
}

impl EmbeddedStore {
    /// Like cursors, resume points close with the history.
    fn check_resume_open(&self) -> Result<&Shared, StoreError> {
        match self.queue.as_ref().is_some_and(|queue| !queue.is_closed()) {
            true => Ok(&self.shared),
            false => Err(StoreError::Closed),
        }
    }
}

#[async_trait::async_trait]
impl ResumePoints for EmbeddedStore {
    async fn save_resume_points(
        &self,
        user: &UserId,
        holder: &str,
        points: &[ResumePoint],
        validity: Validity,
    ) -> Result<(), StoreError> {
        check_save_size(points)?;
        let shared = self.check_resume_open()?;
        if points.is_empty() {
            return Ok(());
        }
        let _one_at_a_time = shared.resume_lock.lock();
        let mut batch = shared.db.batch().durability(Some(PersistMode::Buffer));
        for point in points {
            let prefix = pair_prefix(user, &point.channel);
            for (key, held) in shared.pair_points(&prefix)? {
                if held.expires_at_ms <= validity.now_ms {
                    batch.remove(&shared.resume_points, key);
                }
            }
            let held = Held { position: point.position.clone(), expires_at_ms: validity.expires_at_ms };
            let key = point_key(&prefix, holder);
            match held.expires_at_ms > validity.now_ms {
                true => batch.insert(&shared.resume_points, key, point_value(&held)),
                false => batch.remove(&shared.resume_points, key),
            }
        }
        batch.commit().map_err(storage_error)
    }

    async fn claim_resume_point(
        &self,
        user: &UserId,
        channel: &ChannelName,
        holder: &str,
        validity: Validity,
    ) -> Result<Option<StreamPosition>, StoreError> {
        let shared = self.check_resume_open()?;
        let _one_at_a_time = shared.resume_lock.lock();
        let prefix = pair_prefix(user, channel);
        let points = shared.pair_points(&prefix)?;
        let mut batch = shared.db.batch().durability(Some(PersistMode::Buffer));
        for (key, held) in &points {
            if held.expires_at_ms <= validity.now_ms {
                batch.remove(&shared.resume_points, key.clone());
            }
        }
        let oldest = oldest_unexpired(points.iter().map(|(key, held)| (key, held)), validity.now_ms);
        let claimed = oldest.map(|(key, held)| (key.clone(), held.position.clone()));
        if let Some((key, position)) = &claimed {
            batch.remove(&shared.resume_points, key.clone());
            let moved = Held { position: position.clone(), expires_at_ms: validity.expires_at_ms };
            batch.insert(&shared.resume_points, point_key(&prefix, holder), point_value(&moved));
        }
        batch.commit().map_err(storage_error)?;
        Ok(claimed.map(|(_, position)| position))
    }

    async fn forget_resume_point(
        &self,
        user: &UserId,
        channel: &ChannelName,
        holder: &str,
    ) -> Result<bool, StoreError> {
        let shared = self.check_resume_open()?;
        let _one_at_a_time = shared.resume_lock.lock();
        let key = point_key(&pair_prefix(user, channel), holder);
        let existed = shared.resume_points.contains_key(&key).map_err(storage_error)?;
        if existed {
            shared.resume_points.remove(key).map_err(storage_error)?;
            shared.db.persist(PersistMode::Buffer).map_err(storage_error)?;
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_short_ones_are_corrupt() {
        let held = Held { position: StreamPosition::new(Epoch::new("e p"), u64::MAX), expires_at_ms: 7 };
        assert_eq!(decode_point(&point_value(&held)).unwrap(), held);
        assert!(matches!(decode_point(b"12345678"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn pairs_of_users_that_share_a_prefix_stay_apart() {
        let channel = |name| ChannelName::new(name).unwrap();
        assert_ne!(
            pair_prefix(&UserId::new("a"), &channel("bc")),
            pair_prefix(&UserId::new("ab"), &channel("c"))
        );
        let ab = pair_prefix(&UserId::new("u"), &channel("ab"));
        assert!(!point_key(&pair_prefix(&UserId::new("u"), &channel("abc")), "h").starts_with(&ab));
    }
}
