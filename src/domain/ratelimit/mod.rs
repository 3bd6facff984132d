//! Rate limiting in two tiers, per client (`CF-Connecting-IP`), group and fixed window
//! (`rateLimitWindowSeconds`).
//!
//! * Strict groups (`strictRateLimits`): exact across isolates and locations, by leases of
//!   the window's tokens from D1 ([`check_strict`]): a concurrent burst admits exactly `limit`, with
//!   D1 writes per lease rather than per request. D1 failing: fail closed (unavailable).
//! * Approximate groups: counted in the isolate ([`ApproxCounters`]) and shared through KV
//!   with one key per isolate, `rl:<group>:<client>:<window start>:<isolate id>`, whose
//!   metadata carries that isolate's count ([`IsolateCount`]). Only its own isolate writes a
//!   key, at most once a second ([`WriteGate`]), so no counter key is ever written twice in
//!   a second however many isolates count the same client: KV's write rule holds by
//!   construction. At most once a second per counter, an isolate that admitted something
//!   writes its count and lists the window's keys (one `list` reads every isolate's count);
//!   most requests do no KV work. An isolate refuses once its own count plus the others'
//!   (as last listed) reaches the limit.
//!
//!   Bound: within one isolate the count is exact. Another isolate's admissions are seen
//!   once it has written them (within a second of admitting) and this isolate has listed
//!   them (within the next second), plus KV's propagation between locations: a window
//!   over-admits by at most what the other isolates admitted in the 2 s before their count
//!   reached this one (plus the propagation delay, up to ~60 s, across locations), and never
//!   more than `limit` per isolate. KV failing: fail open, logged.

mod failures;
mod strict;

pub use failures::{Failures, FAILURE_WINDOW_SECONDS, MAX_FAILURES};
pub use strict::{check_strict, prune, CounterDb, Lease, StrictDecision, StrictLeases};

use crate::domain::config::AppConfig;
use crate::domain::error::{DomainError, DomainResult, StoreResult};
use crate::domain::ip;
use crate::domain::keymap::KeyMap;
use crate::domain::kv::{Kv, KvKey, KvMetadata, PutOptions, Ttl, WriteGate};
use crate::domain::time::{Clock, Millis};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// The client key: the address Cloudflare saw, normalised, an IPv6 address by its /64
/// ([`ip::client_network`]); `anonymous` when absent or not an address (so header junk can
/// never blow up a KV key).
pub fn client(cf_connecting_ip: Option<&str>) -> String {
    cf_connecting_ip
        .and_then(|s| ip::client_network(s.trim()))
        .unwrap_or_else(|| "anonymous".to_string())
}

/// A fixed window: `[start, start + len_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Its first instant.
    pub start: Millis,
    /// Its length.
    pub len_ms: i64,
}

impl Window {
    /// The window of `seconds` that holds `now`.
    pub fn containing(now: Millis, seconds: u32) -> Self {
        let len_ms = i64::from(seconds.max(1)) * 1000;
        Window {
            start: Millis(now.0.div_euclid(len_ms) * len_ms),
            len_ms,
        }
    }

    /// Its first instant after the end.
    pub fn end(&self) -> Millis {
        self.start.plus_ms(self.len_ms)
    }

    /// Whole seconds until the window ends, at least 1.
    pub fn reset_seconds(&self, now: Millis) -> u64 {
        now.seconds_until_ceil(self.end())
    }
}

/// The outcome of one rate-limit check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The group's limit per window.
    pub limit: u32,
    /// Requests left in this window after this one.
    pub remaining: u32,
    /// Seconds until the window ends.
    pub reset_seconds: u64,
    /// Whether this request is admitted.
    pub allowed: bool,
}

impl Decision {
    /// Admitted, with `remaining` requests left in the window after it.
    pub fn admitted(limit: u32, remaining: u32, reset_seconds: u64) -> Self {
        Decision {
            limit,
            remaining,
            reset_seconds,
            allowed: true,
        }
    }

    /// Refused: nothing left in the window.
    pub fn refused(limit: u32, reset_seconds: u64) -> Self {
        Decision {
            limit,
            remaining: 0,
            reset_seconds,
            allowed: false,
        }
    }

    fn from_count(limit: u32, count: u64, reset_seconds: u64) -> Self {
        let allowed = count <= u64::from(limit);
        let remaining = u64::from(limit).saturating_sub(count);
        Decision {
            limit,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_seconds,
            allowed,
        }
    }

    /// The decision if admitted, else rate limited with the seconds until the window ends.
    pub fn into_result(self) -> DomainResult<Decision> {
        if self.allowed {
            Ok(self)
        } else {
            Err(DomainError::RateLimited {
                retry_after_seconds: self.reset_seconds,
            })
        }
    }
}

/// What an isolate's counter key carries as metadata: that isolate's admissions in the
/// window, so one listing reads every isolate's count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IsolateCount {
    /// Admissions by that isolate in the window.
    pub count: u64,
}

#[derive(Debug, Clone, Default)]
struct LocalCount {
    /// Admitted by this isolate in the window (exact).
    own: u64,
    /// How many of those this isolate's KV key holds.
    written: u64,
    /// The other isolates' admissions as of the last listing (never decreases).
    others: u64,
    loaded: bool,
    window_end: Millis,
    /// KV could not be listed: admit everything (fail open) and retry after this.
    open_until: Millis,
}

/// How long a counter fails open before its KV listing is retried.
const FAIL_OPEN_MS: i64 = 1_000;

/// This isolate's approximate counters, by counter key. Isolate state (see `isolate.rs`).
#[derive(Debug, Default)]
pub struct ApproxCounters {
    by_key: RefCell<KeyMap<LocalCount>>,
}

impl ApproxCounters {
    fn state(&self, key: &KvKey) -> (bool, Millis) {
        self.by_key
            .borrow()
            .get(key.as_str())
            .map_or((false, Millis(0)), |l| (l.loaded, l.open_until))
    }

    fn fail_open_until(&self, key: &KvKey, until: Millis) {
        let mut by_key = self.by_key.borrow_mut();
        by_key
            .get_or_insert_with(key.as_str(), LocalCount::default)
            .open_until = until;
    }

    /// Takes in what a listing showed of the other isolates.
    fn learn(&self, key: &KvKey, others: u64, window: &Window, now: Millis) {
        let mut by_key = self.by_key.borrow_mut();
        by_key.retain(|l| l.window_end > now || !l.loaded);
        let l = by_key.get_or_insert_with(key.as_str(), LocalCount::default);
        l.others = l.others.max(others);
        l.loaded = true;
        l.window_end = window.end();
    }

    /// Counts one request: the count it makes, admitted or not (a refused one is not kept).
    fn count(&self, key: &KvKey, limit: u32) -> u64 {
        let mut by_key = self.by_key.borrow_mut();
        let l = by_key.get_or_insert_with(key.as_str(), LocalCount::default);
        if l.own + l.others >= u64::from(limit) {
            l.own + l.others + 1
        } else {
            l.own += 1;
            l.own + l.others
        }
    }

    /// This isolate's count, if its KV key does not hold it yet.
    fn unwritten(&self, key: &KvKey) -> Option<u64> {
        let by_key = self.by_key.borrow();
        let l = by_key.get(key.as_str())?;
        (l.own > l.written).then_some(l.own)
    }

    fn written(&self, key: &KvKey, count: u64) {
        if let Some(l) = self.by_key.borrow_mut().get_mut(key.as_str()) {
            l.written = l.written.max(count);
        }
    }
}

/// The isolate state the approximate tier uses.
#[derive(Debug, Clone, Copy)]
pub struct ApproxState<'a> {
    /// This isolate's counters.
    pub counters: &'a ApproxCounters,
    /// This isolate's KV write times.
    pub gate: &'a WriteGate,
    /// When a counter write finished (the gate's second runs from then).
    pub clock: &'a dyn Clock,
    /// This isolate's id: the last part of its own counter keys.
    pub isolate: &'a str,
}

/// One counter as KV holds it: every isolate's key shares `window` (the listing prefix),
/// `own` is this isolate's.
struct CounterKeys {
    window: KvKey,
    own: KvKey,
}

impl CounterKeys {
    fn new(group: &str, client: &str, window: &Window, isolate: &str) -> DomainResult<Self> {
        let start = window.start.0 / 1000;
        let window = KvKey::new("rl:", &format!("{group}:{client}:{start}:"))?;
        let own = KvKey::new(window.as_str(), isolate)?;
        Ok(CounterKeys { window, own })
    }
}

/// Approximate tier: no KV work on most requests; one listing the first time an isolate sees
/// a counter, then at most one write (of its own key) and one listing per second per
/// counter, and none while nothing new is admitted.
pub async fn check_approx<K: Kv>(
    kv: &K,
    st: ApproxState<'_>,
    cfg: &AppConfig,
    group: &str,
    client: &str,
    now: Millis,
) -> DomainResult<Decision> {
    let window = Window::containing(now, cfg.rate_limit_window_seconds);
    let keys = CounterKeys::new(group, client, &window, st.isolate)?;
    let limit = cfg.limit_for(group);
    let (loaded, open_until) = st.counters.state(&keys.own);
    if !loaded {
        if now < open_until {
            return Ok(fail_open(limit, &window, now));
        }
        if let Err(e) = learn(kv, st.counters, &keys, &window, now).await {
            crate::log::warn_cause("approximate rate limit failing open", &e.0);
            st.counters
                .fail_open_until(&keys.own, now.plus_ms(FAIL_OPEN_MS));
            return Ok(fail_open(limit, &window, now));
        }
        // The listing counts as this second's sync: the first write waits a second.
        st.gate.try_claim(&keys.own, now);
    }
    let count = st.counters.count(&keys.own, limit);
    if st.counters.unwritten(&keys.own).is_some() && st.gate.try_claim(&keys.own, now) {
        sync(kv, st, &keys, &window, now).await;
    }
    Ok(Decision::from_count(
        limit,
        count,
        window.reset_seconds(now),
    ))
}

/// The answer while KV cannot be read: admitted, with the headers of an untouched window.
fn fail_open(limit: u32, window: &Window, now: Millis) -> Decision {
    Decision {
        limit,
        remaining: limit,
        reset_seconds: window.reset_seconds(now),
        allowed: true,
    }
}

/// Lists the window's keys and learns the other isolates' counts from their metadata.
async fn learn<K: Kv>(
    kv: &K,
    counters: &ApproxCounters,
    keys: &CounterKeys,
    window: &Window,
    now: Millis,
) -> StoreResult<()> {
    let others = kv
        .list(&keys.window)
        .await?
        .iter()
        .filter(|k| k.name != keys.own.as_str())
        .filter_map(|k| k.metadata.as_ref()?.get("count")?.as_u64())
        .fold(0u64, u64::saturating_add);
    counters.learn(&keys.own, others, window, now);
    Ok(())
}

/// Writes this isolate's count to its own key (expiring with the window, never under KV's
/// 60 s minimum), then learns the others'. Failures are logged and retried a second later.
async fn sync<K: Kv>(
    kv: &K,
    st: ApproxState<'_>,
    keys: &CounterKeys,
    window: &Window,
    now: Millis,
) {
    let counters = st.counters;
    if let Some(own) = counters.unwritten(&keys.own) {
        let written = async {
            // `IsolateCount`'s JSON, built directly (no Value serializer in the Wasm).
            let meta = KvMetadata::new(serde_json::json!({ "count": own }))?;
            let ttl = Ttl::at_least_minimum(now.seconds_until(window.end()) + 1);
            let opts = PutOptions {
                ttl: Some(ttl),
                metadata: Some(meta),
            };
            let put = kv.put(&keys.own, &own.to_string(), opts).await;
            st.gate.finished(&keys.own, st.clock.now());
            put.map_err(DomainError::from)
        }
        .await;
        match written {
            Ok(()) => counters.written(&keys.own, own),
            Err(e) => crate::log::warn(&format!("approximate rate limit write failed: {e}")),
        }
    }
    if let Err(e) = learn(kv, counters, keys, window, now).await {
        crate::log::warn_cause("approximate rate limit listing failed", &e.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolate_count_metadata_is_its_serde_json() {
        let by_serde = serde_json::to_value(IsolateCount { count: 7 }).unwrap();
        assert_eq!(serde_json::json!({ "count": 7u64 }), by_serde);
    }
    use crate::storage::fake::{block_on, FakeTimer, Hooked, Interleaving, MemKv};

    fn cfg(limit: u32, window: u32) -> AppConfig {
        let mut c = AppConfig {
            rate_limit_window_seconds: window,
            ..AppConfig::default()
        };
        c.rate_limits.insert("default".into(), limit);
        c
    }

    /// One isolate's state.
    #[derive(Default)]
    struct Isolate {
        counters: ApproxCounters,
        gate: WriteGate,
        /// Reads the time of the request being checked: fake KV answers at once.
        clock: FakeTimer,
        id: String,
    }

    impl Isolate {
        fn named(id: &str) -> Self {
            Isolate {
                id: id.to_string(),
                ..Isolate::default()
            }
        }

        fn st(&self) -> ApproxState<'_> {
            ApproxState {
                counters: &self.counters,
                gate: &self.gate,
                clock: &self.clock,
                isolate: &self.id,
            }
        }

        fn check(&self, kv: &MemKv, c: &AppConfig, group: &str, client: &str, at: i64) -> Decision {
            self.clock.set(at);
            block_on(check_approx(kv, self.st(), c, group, client, Millis(at))).unwrap()
        }
    }

    #[test]
    fn clients() {
        assert_eq!(client(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(client(Some(" 2001:DB8::1 ")), "2001:db8::/64");
        for same in [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff:ffff:ffff:ffff",
            "2001:db8:1:2:3:4:5:6",
        ] {
            assert_eq!(client(Some(same)), "2001:db8:1:2::/64", "{same}");
        }
        assert_eq!(client(Some("2001:db8:1:3::1")), "2001:db8:1:3::/64");
        assert_eq!(client(Some("::ffff:192.0.2.1")), "::ffff:192.0.2.1");
        assert_eq!(client(None), "anonymous");
        assert_eq!(client(Some("x".repeat(600).as_str())), "anonymous");
    }

    #[test]
    fn window_arithmetic() {
        let w = Window::containing(Millis(61_500), 60);
        assert_eq!(w.start, Millis(60_000));
        assert_eq!(w.reset_seconds(Millis(61_500)), 59);
        assert_eq!(w.reset_seconds(Millis(119_999)), 1);
        assert_eq!(
            Window::containing(Millis(120_000), 60).start,
            Millis(120_000)
        );
        assert_eq!(Window::containing(Millis(0), 1).reset_seconds(Millis(0)), 1);
    }

    #[test]
    fn decisions() {
        let d = Decision::from_count(3, 3, 10);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let d = Decision::from_count(3, 4, 10);
        assert!(!d.allowed);
        assert_eq!(
            d.clone().into_result(),
            Err(DomainError::RateLimited {
                retry_after_seconds: 10
            })
        );
    }

    #[test]
    fn approx_counts_locally_and_writes_at_most_once_a_second() {
        let (kv, iso) = (MemKv::default(), Isolate::named("i1"));
        let c = cfg(10, 60);
        let allowed = (0..30)
            .filter(|i| {
                iso.check(&kv, &c, "users", "9.9.9.9", 1_000 + i * 50)
                    .allowed
            })
            .count();
        assert_eq!(allowed, 10, "exact within one isolate");
        assert_eq!(kv.reads(), 0, "counts are listed, never read one by one");
        assert!(kv.writes() <= 2, "{} writes in 1.5 s", kv.writes());
        assert!(kv.lists() <= 3, "{} listings in 1.5 s", kv.lists());
        let written = kv.written();
        assert!(
            written.iter().all(|k| k == "rl:users:9.9.9.9:0:i1"),
            "{written:?}"
        );
    }

    #[test]
    fn approx_sees_other_isolates_through_their_keys() {
        let (kv, iso) = (MemKv::default(), Isolate::named("mine"));
        kv.insert("rl:users:anonymous:0:other", "9");
        kv.entries
            .borrow_mut()
            .get_mut("rl:users:anonymous:0:other")
            .unwrap()
            .metadata = Some(serde_json::json!({"count": 9}));
        let c = cfg(10, 60);
        let first = iso.check(&kv, &c, "users", "anonymous", 100);
        assert!(first.allowed);
        assert_eq!(first.remaining, 0);
        assert!(!iso.check(&kv, &c, "users", "anonymous", 200).allowed);
        assert_eq!(kv.lists(), 1);
    }

    #[test]
    fn approx_fails_open_and_retries_kv_after_a_second() {
        let (kv, iso) = (MemKv::default(), Isolate::named("i"));
        kv.fail(true);
        let c = cfg(1, 60);
        for i in 0..10 {
            assert!(iso.check(&kv, &c, "g", "c", i).allowed);
        }
        assert_eq!(
            kv.lists(),
            1,
            "one failed listing, then open without retrying for a second"
        );
        kv.fail(false);
        assert!(iso.check(&kv, &c, "g", "c", 1_000).allowed);
        assert!(
            !iso.check(&kv, &c, "g", "c", 1_001).allowed,
            "limits again once KV answers"
        );
    }

    /// Two isolates sharing one KV, each sending a request every `every_ms` from its own
    /// start for `for_ms`. Returns what each admitted and every KV write as (time, key).
    fn two_isolates(
        kv: &MemKv,
        c: &AppConfig,
        starts: [i64; 2],
        every_ms: i64,
        for_ms: i64,
    ) -> ([usize; 2], Vec<(i64, String)>) {
        let isolates = [Isolate::named("a"), Isolate::named("b")];
        let mut times: Vec<(i64, usize)> = (0..2)
            .flat_map(|i| {
                (0..)
                    .map(move |n| (starts[i] + n * every_ms, i))
                    .take_while(move |(t, _)| *t < starts[i] + for_ms)
            })
            .collect();
        times.sort();
        let (mut admitted, mut writes) = ([0, 0], Vec::new());
        for (t, i) in times {
            let before = kv.written().len();
            if isolates[i].check(kv, c, "g", "c", t).allowed {
                admitted[i] += 1;
            }
            writes.extend(kv.written()[before..].iter().map(|k| (t, k.clone())));
        }
        (admitted, writes)
    }

    #[test]
    fn over_admission_is_within_two_seconds_of_the_other_isolates_traffic() {
        // Limit 60, two isolates at 20 requests per second each, in every phase of one
        // against the other: at most 60 + 2 s × 20 admitted, at least 60, and neither
        // isolate alone more than the limit.
        let c = cfg(60, 60);
        for phase in (0..1_000).step_by(25) {
            let kv = MemKv::default();
            let (admitted, _) = two_isolates(&kv, &c, [100, 100 + phase], 50, 8_000);
            let total = admitted[0] + admitted[1];
            assert!((60..=100).contains(&total), "phase {phase}: {admitted:?}");
            assert!(
                admitted.iter().all(|n| *n <= 60),
                "phase {phase}: {admitted:?}"
            );
        }
    }

    #[test]
    fn a_slow_counter_write_pushes_the_next_a_second_past_its_end() {
        // KV may receive a write as late as it finishes: the next write of the key waits a
        // second from then, not from when the first was sent.
        let (kv, iso) = (MemKv::default(), Isolate::named("i"));
        // Call 0 is the first listing; call 1 the first write, which takes 400 ms.
        let slow = Interleaving::at(1, || iso.clock.set(1_400));
        let hooked = Hooked {
            inner: &kv,
            on: &slow,
        };
        let c = cfg(1_000, 60);
        let check = |at: i64| {
            iso.clock.set(at);
            block_on(check_approx(&hooked, iso.st(), &c, "g", "c", Millis(at))).unwrap();
            kv.writes()
        };
        check(0); // lists, and claims this second
        assert_eq!(check(1_000), 1, "the first write, finishing at 1,400");
        assert_eq!(check(2_000), 1, "within a second of the first write's end");
        assert_eq!(check(2_399), 1);
        assert_eq!(check(2_400), 2);
    }

    #[test]
    fn no_counter_key_is_written_twice_in_a_second_across_isolates() {
        let c = cfg(1_000, 60);
        for phase in [0, 1, 499, 999] {
            let kv = MemKv::default();
            let (admitted, writes) = two_isolates(&kv, &c, [0, phase], 50, 5_000);
            assert_eq!(admitted[0] + admitted[1], 200, "under the limit all pass");
            let mut last = std::collections::HashMap::new();
            for (t, key) in &writes {
                if let Some(prev) = last.insert(key, *t) {
                    assert!(t - prev >= 1_000, "{key} written at {prev} and {t}");
                }
            }
            let keys: std::collections::BTreeSet<_> = writes.iter().map(|(_, k)| k).collect();
            assert_eq!(keys.len(), 2, "one key per isolate: {keys:?}");
            // Most requests do no KV work: per isolate and second, one write and one listing.
            assert!(
                kv.writes() <= 2 * 6 && kv.lists() <= 2 * 7,
                "{} {}",
                kv.writes(),
                kv.lists()
            );
        }
    }

    #[test]
    fn exact_once_an_isolate_has_listed_the_others_count() {
        // A writes its count (a second after its first listing) before B's first listing:
        // B sees it, and the two together admit exactly the limit.
        let kv = MemKv::default();
        let c = cfg(10, 60);
        let (a, b) = (Isolate::named("a"), Isolate::named("b"));
        let a_admitted = (0..15)
            .filter(|i| a.check(&kv, &c, "g", "c", 100 + i * 100).allowed)
            .count();
        let b_admitted = (0..15)
            .filter(|i| b.check(&kv, &c, "g", "c", 3_000 + i * 10).allowed)
            .count();
        assert_eq!(a_admitted + b_admitted, 10);
    }

    #[test]
    fn approx_counter_ttl_respects_kv_minimum() {
        let (kv, iso) = (MemKv::default(), Isolate::named("i"));
        let c = cfg(100, 2);
        // A listing at 2.0 s, a write at 3.1 s: 0.9 s before the 2 s window ends.
        iso.check(&kv, &c, "g", "c", 2_000);
        iso.check(&kv, &c, "g", "c", 3_100);
        assert_eq!(kv.writes(), 1);
        for e in kv.entries.borrow().values() {
            assert!(e.ttl.unwrap() >= 60);
            assert!(e.metadata.as_ref().unwrap()["count"].as_u64().unwrap() >= 1);
        }
    }
}
