//! The isolate's own state: everything edgestate keeps between requests.
//!
//! A Worker isolate runs one request handler at a time on one thread and may serve many
//! requests (concurrently, interleaved at `await`s) before the platform evicts it. Each
//! isolate has its own copy of this state, created empty on its first request and lost when
//! the isolate is evicted or a new version is deployed; nothing here is shared between
//! isolates or locations, and nothing here is needed for correctness across them (KV and D1
//! are). The pieces:
//!
//! | piece | owner | lifetime | what resets it |
//! |---|---|---|---|
//! | `config` | `domain::config` | one copy of `config:app` | re-read from KV after 5 s; replaced by a write through this isolate |
//! | `prefs` | `domain::prefs` | acknowledged writes not yet in KV | the KV write that carries them |
//! | `counters` | `domain::ratelimit` | approximate counters of current windows | dropped when their window ends |
//! | `kv_writes` | `domain::kv::WriteGate` | when this isolate last wrote each KV key | entries older than a second are pruned past 10,000 keys |
//! | `flights` | this module | keys with deferred work under way | the work finishing |
//! | log level | `log` (a thread-local there, not a field here: the domain's warnings read it, and this module depends on the domain) | `LOG_LEVEL`, read on the isolate's first request | a new isolate |

use crate::domain::config::ConfigCache;
use crate::domain::kv::WriteGate;
use crate::domain::prefs::{PendingPrefs, PrefsState};
use crate::domain::ratelimit::{ApproxCounters, ApproxState};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

/// Everything one isolate keeps between requests (see the module documentation).
#[derive(Debug, Default)]
pub struct Isolate {
    /// The config copy.
    pub config: ConfigCache,
    /// Preference writes not yet in KV.
    pub prefs: PendingPrefs,
    /// Approximate rate-limit counters.
    pub counters: ApproxCounters,
    /// KV's one-write-per-second-per-key rule, as seen from here.
    pub kv_writes: WriteGate,
    /// Single flight for deferred work.
    pub flights: Rc<Flights>,
}

impl Isolate {
    /// What the preferences domain needs.
    pub fn prefs_state(&self) -> PrefsState<'_> {
        PrefsState {
            pending: &self.prefs,
            gate: &self.kv_writes,
        }
    }

    /// What the approximate rate limiter needs.
    pub fn approx_state(&self) -> ApproxState<'_> {
        ApproxState {
            counters: &self.counters,
            gate: &self.kv_writes,
        }
    }
}

thread_local! {
    static STATE: Rc<Isolate> = Rc::new(Isolate::default());
}

/// This isolate's state.
pub fn state() -> Rc<Isolate> {
    STATE.with(Rc::clone)
}

/// Keys with deferred work under way in this isolate.
#[derive(Debug, Default)]
pub struct Flights {
    keys: RefCell<HashSet<String>>,
}

/// Proof that this isolate is the only one working on a key; released on drop.
#[derive(Debug)]
pub struct Flight {
    flights: Rc<Flights>,
    key: String,
}

impl Flights {
    /// Starts the single flight for `key`, or `None` if one is already under way.
    pub fn begin(self: &Rc<Self>, key: &str) -> Option<Flight> {
        self.keys
            .borrow_mut()
            .insert(key.to_string())
            .then(|| Flight {
                flights: self.clone(),
                key: key.to_string(),
            })
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.flights.keys.borrow_mut().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_flight_releases_on_drop() {
        let flights = Rc::new(Flights::default());
        let f = flights.begin("user:1").unwrap();
        assert!(flights.begin("user:1").is_none());
        assert!(flights.begin("user:2").is_some());
        drop(f);
        assert!(flights.begin("user:1").is_some());
    }

    #[test]
    fn each_thread_is_its_own_isolate() {
        let here = state();
        let there = std::thread::spawn(|| Rc::as_ptr(&state()) as usize)
            .join()
            .unwrap();
        assert_ne!(Rc::as_ptr(&here) as usize, there);
        assert!(
            Rc::ptr_eq(&here, &state()),
            "the same isolate sees the same state"
        );
    }
}
