//! [`KeyMap`], the map type of the isolate's state (revoked and unknown sessions, renewals,
//! rate-limit counters and leases, failures, missing profiles, pending preferences, KV write
//! times): values by string key.
//!
//! # Why not `std::collections::HashMap`
//!
//! It links hashbrown and SipHash (about 3 KB gzip of Wasm) for maps this small: each holds
//! at most some thousands of keys (most are capped at 10,000). A [`KeyMap`] is a fixed number
//! of buckets, each a vector sorted by key; a key's bucket is an FNV-1a hash of it. A lookup
//! hashes the key and searches its bucket (binary search); an insertion or removal moves the
//! entries after it in its bucket. Keys spread evenly over the buckets (session id hashes,
//! client networks, user ids, KV keys), so with `n` keys a bucket holds about `n / 64`.
//!
//! The hash is not keyed, so keys can be chosen to land in one bucket. That makes the map
//! one sorted vector and no worse: a lookup still compares `log2 n` keys (a hash table whose
//! keys collide compares every one), and an insertion moves at most the `n` entries, a
//! `memmove` of `n` times the entry's size (at 10,000 keys of 24 bytes, 240 KB: some tens of
//! microseconds, for a request that needed a KV or D1 call to add its key).

/// Buckets per map (a power of two): `BITS` bits of the key's hash choose one.
const BITS: u32 = 6;
const BUCKETS: usize = 1 << BITS;

/// Values by string key (see the module documentation).
#[derive(Debug)]
pub struct KeyMap<V> {
    buckets: [Vec<(String, V)>; BUCKETS],
    len: usize,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            buckets: [const { Vec::new() }; BUCKETS],
            len: 0,
        }
    }
}

/// The bucket of `key`: FNV-1a (32 bits), its top bits after a multiplicative mix.
fn bucket(key: &str) -> usize {
    let h = key.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (h.wrapping_mul(0x9e37_79b9) >> (32 - BITS)) as usize
}

/// Where `key` is in `entries` (sorted by key), or where it would go.
fn search<V>(entries: &[(String, V)], key: &str) -> Result<usize, usize> {
    entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
}

impl<V> KeyMap<V> {
    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        let entries = &self.buckets[bucket(key)];
        entries.get(search(entries, key).ok()?).map(|(_, v)| v)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let entries = &mut self.buckets[bucket(key)];
        let i = search(entries, key).ok()?;
        entries.get_mut(i).map(|(_, v)| v)
    }

    /// Whether it holds `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets the value of `key`.
    pub fn insert(&mut self, key: &str, value: V) {
        let entries = &mut self.buckets[bucket(key)];
        match search(entries, key) {
            Ok(i) => entries[i].1 = value,
            Err(i) => {
                entries.insert(i, (key.to_string(), value));
                self.len += 1;
            }
        }
    }

    /// The value of `key`, `make()` inserted first if it has none.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        let entries = &mut self.buckets[bucket(key)];
        let i = match search(entries, key) {
            Ok(i) => i,
            Err(i) => {
                entries.insert(i, (key.to_string(), make()));
                self.len += 1;
                i
            }
        };
        &mut entries[i].1
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        let entries = &mut self.buckets[bucket(key)];
        if let Ok(i) = search(entries, key) {
            entries.remove(i);
            self.len -= 1;
        }
    }

    /// Keeps only the keys whose value `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.len = 0;
        for entries in &mut self.buckets {
            entries.retain(|(_, v)| keep(v));
            self.len += entries.len();
        }
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.retain(|_| false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_of_keys() {
        let mut m = KeyMap::default();
        assert!(m.is_empty() && m.get("a").is_none());
        m.insert("a", 1);
        m.insert("b", 2);
        m.insert("a", 3);
        assert_eq!((m.len(), m.get("a"), m.get("b")), (2, Some(&3), Some(&2)));
        *m.get_or_insert_with("c", || 0) += 5;
        *m.get_or_insert_with("c", || 0) += 5;
        assert_eq!(m.get("c"), Some(&10));
        if let Some(v) = m.get_mut("b") {
            *v = 7;
        }
        assert!(m.contains_key("b") && !m.contains_key("d"));
        m.remove("b");
        m.remove("d");
        assert_eq!((m.len(), m.get("b")), (2, None));
        m.retain(|v| *v > 5);
        assert_eq!((m.len(), m.get("a"), m.get("c")), (1, None, Some(&10)));
        m.clear();
        assert!(m.is_empty() && m.get("c").is_none());
    }

    #[test]
    fn agrees_with_a_sorted_map_over_many_keys() {
        let mut reference = std::collections::BTreeMap::new();
        let mut m = KeyMap::default();
        for i in 0..5_000u32 {
            let key = format!("k{}", i.wrapping_mul(2_654_435_761) % 1_777);
            match i % 5 {
                0 => {
                    m.remove(&key);
                    reference.remove(&key);
                }
                _ => {
                    m.insert(&key, i);
                    reference.insert(key, i);
                }
            }
            if i % 1_000 == 999 {
                m.retain(|v| v % 3 != 0);
                reference.retain(|_, v| *v % 3 != 0);
            }
        }
        assert_eq!(m.len(), reference.len());
        for (k, v) in &reference {
            assert_eq!(m.get(k), Some(v), "{k}");
        }
        let used = m.buckets.iter().filter(|b| !b.is_empty()).count();
        assert_eq!(used, BUCKETS, "keys spread over every bucket");
    }
}
