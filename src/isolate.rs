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
//! | `config` | `domain::config` | one copy of `config:app` and its version | re-read from KV after 5 s (an older version is ignored); replaced by a write through this isolate |
//! | `sessions` | `domain::sessions` | the revocation feed's cursor and when it was last read (trusted for 10 s, read again in the background after 5 s), the sessions it names (until their KV copies are gone), the ids D1 refused, and when this isolate last tried to renew each session | a revocation is forgotten once its KV copy cannot exist; the others past 10,000 entries |
//! | `prefs` | `domain::prefs` | acknowledged writes not yet in KV | the KV write that carries them |
//! | `id` | this module | 64 random bits naming this isolate's approximate counter keys | never (a new isolate draws a new id) |
//! | `counters` | `domain::ratelimit` | approximate counters of current windows | dropped when their window ends |
//! | `leases` | `domain::ratelimit::strict` | strict tokens leased from D1 and not used yet, per counter; whether its window is used up | dropped when their window ends |
//! | `failures` | `domain::ratelimit::failures` | failed authentications per client in the current minute | the next minute |
//! | `tokens` | `domain::tokens` | the scoped admin tokens (their hashes, names and scopes) | re-read from D1 after 10 s, or 2 s for an unknown token; a token created or revoked through this isolate |
//! | `usage` | `domain::usage` | the flags evaluated one by one, and the last bulk evaluation, since this isolate last wrote them to D1 | the write, at most once a minute |
//! | `missing_users` | `domain::users` | profile ids D1 did not have, for 30 s (negative cache) | a write of that profile through this isolate, or 30 s |
//! | `kv_writes` | `domain::kv::WriteGate` | when this isolate last wrote each KV key | entries older than a second are pruned past 10,000 keys |
//! | `flights` | this module | keys with deferred work under way | the work finishing |
//! | `origins` | `origins` | `ALLOWED_ORIGINS`, parsed on the isolate's first request (vars do not change within an isolate) | a new isolate (a deploy or a changed var starts new ones) |
//! | `checked` | the pipeline | whether the first-request self-check ran (its warnings are logged once per isolate) | a new isolate |
//! | log level | `log` (a thread-local there, not a field here: the domain's warnings read it, and this module depends on the domain) | `LOG_LEVEL`, read on the isolate's first request | a new isolate |

use crate::clock::RuntimeTimer;
use crate::domain::config::ConfigCache;
use crate::domain::kv::WriteGate;
use crate::domain::prefs::{PendingPrefs, PrefsState};
use crate::domain::ratelimit::{ApproxCounters, ApproxState, Failures, StrictLeases};
use crate::domain::sessions::SessionChecks;
use crate::domain::tokens::TokenCache;
use crate::domain::usage::UsageLog;
use crate::domain::users::MissingUsers;
use crate::origins::AllowedOrigins;
use std::cell::{Cell, OnceCell, RefCell};

/// Everything one isolate keeps between requests (see the module documentation).
#[derive(Debug, Default)]
pub struct Isolate {
    /// This isolate's id.
    pub id: IsolateId,
    /// The config copy.
    pub config: ConfigCache,
    /// What D1 last said about each session seen here.
    pub sessions: SessionChecks,
    /// Preference writes not yet in KV.
    pub prefs: PendingPrefs,
    /// Approximate rate-limit counters.
    pub counters: ApproxCounters,
    /// Leases of strict rate-limit tokens.
    pub leases: StrictLeases,
    /// Failed authentications per client.
    pub failures: Failures,
    /// The admin token table.
    pub tokens: TokenCache,
    /// Flags evaluated since the last write of their times.
    pub usage: UsageLog,
    /// Profiles D1 does not have, for a short while.
    pub missing_users: MissingUsers,
    /// KV's one-write-per-second-per-key rule, as seen from here.
    pub kv_writes: WriteGate,
    /// Single flight for deferred work.
    pub flights: Flights,
    /// The origins CORS allows.
    pub origins: OnceCell<AllowedOrigins>,
    /// Whether the self-check ran.
    checked: Cell<bool>,
}

impl Isolate {
    /// What the preferences domain needs.
    pub fn prefs_state(&self) -> PrefsState<'_> {
        PrefsState {
            pending: &self.prefs,
            gate: &self.kv_writes,
            clock: &RuntimeTimer,
        }
    }

    /// True exactly once: for the first request this isolate serves.
    pub fn first_request(&self) -> bool {
        !self.checked.replace(true)
    }

    /// What the approximate rate limiter needs.
    pub fn approx_state(&self) -> ApproxState<'_> {
        ApproxState {
            counters: &self.counters,
            gate: &self.kv_writes,
            clock: &RuntimeTimer,
            isolate: self.id.as_str(),
        }
    }
}

/// An isolate's id: 16 hex digits from the platform's random source, drawn when the isolate
/// starts. It names the KV keys only this isolate writes (approximate counters), so no
/// two isolates ever write one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolateId(String);

impl IsolateId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for IsolateId {
    fn default() -> Self {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            // No random source (never seen on Workers): the start time still tells
            // isolates apart in practice.
            bytes = crate::clock::now_ms().to_bits().to_le_bytes();
        }
        IsolateId(crate::domain::ids::hex(&bytes))
    }
}

thread_local! {
    // Leaked once: it lives as long as the isolate, and a `&'static` spares every request
    // the reference counting (and the Wasm the state's drop code, which never runs).
    static STATE: &'static Isolate = Box::leak(Box::default());
}

/// This isolate's state.
pub fn state() -> &'static Isolate {
    // `try_with`, not `with`: the same on wasm32 (thread locals are never torn down there),
    // without `with`'s panic path and its message formatting in the Wasm.
    STATE
        .try_with(|s| *s)
        .unwrap_or_else(|_| Box::leak(Box::default()))
}

/// Keys with deferred work under way in this isolate. A list, not a set: it holds the few
/// keys of work in flight, and a scan of them costs less Wasm than a hash set's own code.
#[derive(Debug, Default)]
pub struct Flights {
    keys: RefCell<Vec<String>>,
}

/// Proof that this isolate is the only one working on a key; released on drop.
#[derive(Debug)]
pub struct Flight {
    flights: &'static Flights,
    key: String,
}

impl Flights {
    /// Starts the single flight for `key`, or `None` if one is already under way.
    pub fn begin(&'static self, key: &str) -> Option<Flight> {
        let mut keys = self.keys.borrow_mut();
        if keys.iter().any(|k| k == key) {
            return None;
        }
        keys.push(key.to_string());
        Some(Flight {
            flights: self,
            key: key.to_string(),
        })
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut keys = self.flights.keys.borrow_mut();
        if let Some(at) = keys.iter().position(|k| *k == self.key) {
            keys.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_flight_releases_on_drop() {
        let flights: &'static Flights = Box::leak(Box::default());
        let f = flights.begin("user:1").unwrap();
        assert!(flights.begin("user:1").is_none());
        assert!(flights.begin("user:2").is_some());
        drop(f);
        assert!(flights.begin("user:1").is_some());
    }

    #[test]
    fn isolate_ids_are_16_hex_digits_and_differ() {
        let (a, b) = (IsolateId::default(), IsolateId::default());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 16);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn only_the_first_request_is_the_first() {
        let isolate = Isolate::default();
        assert!(isolate.first_request());
        assert!(!isolate.first_request());
        assert!(!isolate.first_request());
    }

    #[test]
    fn each_thread_is_its_own_isolate() {
        let here = state();
        let there = std::thread::spawn(|| std::ptr::from_ref(state()) as usize)
            .join()
            .unwrap();
        assert_ne!(std::ptr::from_ref(here) as usize, there);
        assert!(
            std::ptr::eq(here, state()),
            "the same isolate sees the same state"
        );
    }
}
