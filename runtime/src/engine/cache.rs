//! The bound on the components kept in memory: by count and by the size of their
//! compiled code, the least recently used going first.
//!
//! Evicting only drops the cache's reference: a run holding a component keeps it, and
//! the next load of an evicted one reads its compiled code back from the disk cache
//! (milliseconds) instead of compiling it again. A few hundred entries at most, so
//! eviction scans them rather than keeping a list in order.

use std::collections::HashMap;

pub(super) struct Lru<V> {
    entries: HashMap<String, Slot<V>>,
    /// Of every entry, in bytes.
    bytes: usize,
    /// Bumped at every use: the entry with the smallest `used` is the least recent.
    clock: u64,
}

struct Slot<V> {
    value: V,
    bytes: usize,
    used: u64,
}

impl<V> Default for Lru<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            bytes: 0,
            clock: 0,
        }
    }
}

impl<V: Clone> Lru<V> {
    pub(super) fn get(&mut self, key: &str) -> Option<V> {
        self.clock += 1;
        let slot = self.entries.get_mut(key)?;
        slot.used = self.clock;
        Some(slot.value.clone())
    }

    /// Keeps `value` under `key` (or returns the value kept there already), then evicts
    /// the least recently used others while more than `max_count` entries or
    /// `max_bytes` bytes are kept. The new entry itself always stays.
    pub(super) fn insert(
        &mut self,
        key: &str,
        value: V,
        bytes: usize,
        max_count: usize,
        max_bytes: usize,
    ) -> V {
        if let Some(kept) = self.get(key) {
            return kept;
        }
        let slot = Slot {
            value: value.clone(),
            bytes,
            used: self.clock,
        };
        self.entries.insert(key.to_owned(), slot);
        self.bytes += bytes;
        while self.entries.len() > max_count.max(1)
            || (self.bytes > max_bytes && self.entries.len() > 1)
        {
            let Some(oldest) = self
                .entries
                .iter()
                .filter(|(k, _)| k.as_str() != key)
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(slot) = self.entries.remove(&oldest) {
                self.bytes -= slot.bytes;
                tracing::debug!("component {oldest} evicted from memory");
            }
        }
        value
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(lru: &Lru<u32>) -> Vec<String> {
        let mut k: Vec<String> = lru.entries.keys().cloned().collect();
        k.sort();
        k
    }

    #[test]
    fn past_the_count_the_least_recently_used_goes() {
        let mut lru = Lru::default();
        lru.insert("a", 1, 10, 2, usize::MAX);
        lru.insert("b", 2, 10, 2, usize::MAX);
        assert_eq!(lru.get("a"), Some(1), "a is now more recent than b");
        lru.insert("c", 3, 10, 2, usize::MAX);
        assert_eq!(keys(&lru), ["a", "c"]);
        assert_eq!((lru.len(), lru.bytes()), (2, 20));
        assert_eq!(lru.get("b"), None);
    }

    #[test]
    fn past_the_bytes_the_oldest_go_but_the_newest_stays() {
        let mut lru = Lru::default();
        lru.insert("a", 1, 40, 100, 100);
        lru.insert("b", 2, 40, 100, 100);
        lru.insert("c", 3, 40, 100, 100);
        assert_eq!(keys(&lru), ["b", "c"]);
        lru.insert("huge", 4, 500, 100, 100);
        assert_eq!(keys(&lru), ["huge"], "alone over the bound, it still stays");
        assert_eq!(lru.bytes(), 500);
    }

    #[test]
    fn inserting_a_kept_key_returns_the_kept_value() {
        let mut lru = Lru::default();
        lru.insert("a", 1, 10, 2, usize::MAX);
        assert_eq!(lru.insert("a", 9, 10, 2, usize::MAX), 1);
        assert_eq!((lru.len(), lru.bytes()), (1, 10));
    }
}
