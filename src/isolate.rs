//! Small pieces of isolate-local state shared by the features: a per-key KV write gate
//! (KV allows one write per second per key) and single flight (one background refresh per
//! key at a time). A Worker isolate is single-threaded, so `thread_local!` + `RefCell` is the
//! whole synchronisation story; each isolate has its own copy.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// Workers KV accepts one write per second per key.
pub const KV_WRITE_INTERVAL_MS: f64 = 1_000.0;
/// Beyond this many tracked keys, entries older than the interval are dropped.
const MAX_TRACKED: usize = 10_000;

thread_local! {
    static LAST_WRITE: RefCell<HashMap<String, f64>> = RefCell::new(HashMap::new());
    static IN_FLIGHT: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// Claims the right to write `key` to KV now: true at most once per second per key from
/// this isolate.
pub fn try_claim_kv_write(key: &str, now: f64) -> bool {
    LAST_WRITE.with(|m| {
        let mut m = m.borrow_mut();
        if m.get(key)
            .is_some_and(|at| now - at < KV_WRITE_INTERVAL_MS && now >= *at)
        {
            return false;
        }
        if m.len() >= MAX_TRACKED {
            m.retain(|_, at| now - *at < KV_WRITE_INTERVAL_MS);
        }
        m.insert(key.to_string(), now);
        true
    })
}

/// Milliseconds until `key` may be written again (0 if now).
pub fn kv_write_wait_ms(key: &str, now: f64) -> f64 {
    LAST_WRITE.with(|m| {
        m.borrow()
            .get(key)
            .map_or(0.0, |at| (at + KV_WRITE_INTERVAL_MS - now).max(0.0))
    })
}

/// Proof that this isolate is the only one refreshing `key`; released on drop.
#[derive(Debug)]
pub struct Flight(String);

impl Drop for Flight {
    fn drop(&mut self) {
        IN_FLIGHT.with(|s| s.borrow_mut().remove(&self.0));
    }
}

/// Starts the single flight for `key`, or `None` if one is already under way.
pub fn begin_flight(key: &str) -> Option<Flight> {
    IN_FLIGHT
        .with(|s| s.borrow_mut().insert(key.to_string()))
        .then(|| Flight(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_kv_write_per_second_per_key() {
        assert!(try_claim_kv_write("k", 0.0));
        assert!(!try_claim_kv_write("k", 1.0));
        assert!(!try_claim_kv_write("k", 999.0));
        assert!(try_claim_kv_write("other", 999.0));
        assert_eq!(kv_write_wait_ms("k", 400.0), 600.0);
        assert!(try_claim_kv_write("k", 1_000.0));
        assert_eq!(kv_write_wait_ms("never", 5.0), 0.0);
    }

    #[test]
    fn single_flight_releases_on_drop() {
        let f = begin_flight("user:1").unwrap();
        assert!(begin_flight("user:1").is_none());
        assert!(begin_flight("user:2").is_some());
        drop(f);
        assert!(begin_flight("user:1").is_some());
    }
}
