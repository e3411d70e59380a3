//! The channels one connection is subscribed to.
//!
//! A sorted vector rather than a hash map: a connection usually holds a
//! handful of channels, and a hash map's smallest table (four buckets and
//! their control bytes) costs an idle connection several times more memory
//! (`docs/benchmarks.md`, memory per connection). Lookups stay
//! logarithmic; inserts move at most `limits.max_channels_per_connection`
//! entries.

use std::borrow::Borrow;

#[derive(Debug)]
pub(crate) struct Subscriptions<K, V> {
    entries: Vec<(K, V)>,
}

impl<K: Ord, V> Subscriptions<K, V> {
    pub fn new() -> Self {
        Self { entries: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).is_ok()
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// Adds or replaces; returns the value replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.find(key).ok()?;
        let (_, value) = self.entries.remove(i);
        if self.entries.is_empty() {
            self.entries = Vec::new();
        }
        Some(value)
    }

    /// Every entry, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(key, value)| (key, value))
    }

    /// Empties it, handing out every entry.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, V)> {
        std::mem::take(&mut self.entries).into_iter()
    }

    fn find<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map() {
        let mut map = Subscriptions::new();
        let mut model = std::collections::BTreeMap::new();
        let mut seed = 7u32;
        for _ in 0..2_000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let key = format!("channel-{}", (seed >> 16) % 40);
            match (seed >> 8) % 3 {
                0 => assert_eq!(map.insert(key.clone(), seed), model.insert(key, seed)),
                1 => assert_eq!(map.remove(key.as_str()), model.remove(key.as_str())),
                _ => {
                    assert_eq!(map.get(key.as_str()), model.get(key.as_str()));
                    assert_eq!(map.contains(key.as_str()), model.contains_key(key.as_str()));
                }
            }
            assert_eq!(map.len(), model.len());
        }
        let drained: Vec<_> = map.drain().collect();
        assert_eq!(drained, model.into_iter().collect::<Vec<_>>());
        assert_eq!(map.len(), 0);
    }
}
