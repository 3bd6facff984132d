//! Rate limiting in two tiers, per client (`CF-Connecting-IP`), group and fixed window
//! (`rateLimitWindowSeconds`).
//!
//! * Strict groups (`strictRateLimits`): one atomic D1 upsert with `RETURNING` per request,
//!   so a concurrent burst admits exactly `limit`. D1 failing: fail closed (503).
//! * Approximate groups: counted in the isolate ([`ApproxCounters`]) and synchronised with
//!   KV at most once a second per counter key (read, add, write). Within one isolate the
//!   count is exact; other isolates' admissions are seen after their next sync plus KV
//!   propagation, so a window can over-admit by what other isolates admitted in that lag
//!   (≤ 1 s of their traffic in the same location, up to ~60 s of it across locations;
//!   never more than `limit` per isolate). KV failing: fail open, logged.

use crate::domain::config::AppConfig;
use crate::domain::ip;
use crate::domain::kv::{Kv, KvKey, PutOptions, Ttl, WriteGate};
use crate::domain::time::Millis;
use crate::error::{ApiError, ApiResult, StorageError, StoreResult};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;

/// The client key: the address Cloudflare saw, normalised; `anonymous` when absent or not
/// an address (so header junk can never blow up a KV key).
pub fn client(cf_connecting_ip: Option<&str>) -> String {
    cf_connecting_ip
        .and_then(|s| ip::canonical(s.trim()))
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

    /// The decision if admitted, else 429 `rate_limited` with `Retry-After`.
    pub fn into_result(self) -> ApiResult<Decision> {
        if self.allowed {
            Ok(self)
        } else {
            Err(ApiError::RateLimited {
                retry_after: self.reset_seconds,
            })
        }
    }
}

/// The D1 side of strict limits.
#[allow(async_fn_in_trait)]
pub trait CounterDb {
    /// Adds one to the bucket's counter for the window, atomically, and returns the new count.
    async fn increment(&self, bucket: &str, window_start: Millis) -> StoreResult<u64>;
    /// Deletes counters of windows that ended before `before`.
    async fn prune(&self, before: Millis) -> StoreResult<()>;
}

/// A strict decision, and whether counters of ended windows should be pruned now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictDecision {
    /// The decision.
    pub decision: Decision,
    /// Prune counters of windows that started before this (in the background).
    pub prune_before: Option<Millis>,
}

/// Strict tier: exact across every isolate and location.
pub async fn check_strict<D: CounterDb>(
    db: &D,
    cfg: &AppConfig,
    group: &str,
    client: &str,
    now: Millis,
) -> ApiResult<StrictDecision> {
    let window = Window::containing(now, cfg.rate_limit_window_seconds);
    let count = db
        .increment(&format!("{group}:{client}"), window.start)
        .await?;
    Ok(StrictDecision {
        decision: Decision::from_count(cfg.limit_for(group), count, window.reset_seconds(now)),
        // The first request of a window is a good moment to drop counters of ended windows.
        prune_before: (count == 1).then_some(window.start),
    })
}

/// Deletes counters of windows that started before `before`; a failure is logged (the
/// next window's first request tries again).
pub async fn prune<D: CounterDb>(db: &D, before: Millis) {
    if let Err(e) = db.prune(before).await {
        crate::log::warn(&format!("pruning rate-limit counters failed: {}", e.0));
    }
}

/// What KV holds for an approximate counter: the count, and how many syncs wrote it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SharedCount {
    /// Admissions in the window, as far as KV knows.
    pub count: u64,
    /// How many syncs wrote it.
    pub syncs: u64,
}

#[derive(Debug, Clone, Default)]
struct LocalCount {
    /// The shared count as of the last sync.
    base: u64,
    /// Admitted here since the last sync.
    pending: u64,
    loaded: bool,
    window_end: Millis,
    /// KV could not be read: admit everything (fail open) and retry the read after this.
    open_until: Millis,
}

/// How long a counter fails open before its KV read is retried.
const FAIL_OPEN_MS: i64 = 1_000;

/// This isolate's approximate counters, by counter key. Isolate state (see `isolate.rs`).
#[derive(Debug, Default)]
pub struct ApproxCounters {
    by_key: RefCell<HashMap<String, LocalCount>>,
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
            .entry(key.as_str().to_string())
            .or_default()
            .open_until = until;
    }

    fn load(&self, key: &KvKey, base: u64, window: &Window, now: Millis) {
        let mut by_key = self.by_key.borrow_mut();
        by_key.retain(|_, l| l.window_end > now || !l.loaded);
        let l = by_key.entry(key.as_str().to_string()).or_default();
        l.base = l.base.max(base);
        l.loaded = true;
        l.window_end = window.end();
    }

    /// Counts one request: the count it makes, admitted or not (a refused one is not kept).
    fn count(&self, key: &KvKey, limit: u32) -> u64 {
        let mut by_key = self.by_key.borrow_mut();
        let l = by_key.entry(key.as_str().to_string()).or_default();
        if l.base + l.pending >= u64::from(limit) {
            l.base + l.pending + 1
        } else {
            l.pending += 1;
            l.base + l.pending
        }
    }

    fn pending(&self, key: &KvKey) -> u64 {
        self.by_key
            .borrow()
            .get(key.as_str())
            .map_or(0, |l| l.pending)
    }

    fn synced(&self, key: &KvKey, pushed: u64, total: u64) {
        if let Some(l) = self.by_key.borrow_mut().get_mut(key.as_str()) {
            l.pending -= pushed.min(l.pending);
            l.base = total;
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
}

fn counter_key(group: &str, client: &str, window: &Window) -> ApiResult<KvKey> {
    KvKey::new(
        "rl:",
        &format!("{group}:{client}:{}", window.start.0 / 1000),
    )
}

async fn read_shared<K: Kv>(kv: &K, key: &KvKey) -> StoreResult<SharedCount> {
    Ok(kv
        .get(key)
        .await?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

/// Approximate tier: no KV work on most requests; one read the first time an isolate sees a
/// counter, then at most one read and one write per second per counter key.
pub async fn check_approx<K: Kv>(
    kv: &K,
    st: ApproxState<'_>,
    cfg: &AppConfig,
    group: &str,
    client: &str,
    now: Millis,
) -> ApiResult<Decision> {
    let window = Window::containing(now, cfg.rate_limit_window_seconds);
    let key = counter_key(group, client, &window)?;
    let limit = cfg.limit_for(group);
    let (loaded, open_until) = st.counters.state(&key);
    if !loaded {
        if now < open_until {
            return Ok(fail_open(limit, &window, now));
        }
        match read_shared(kv, &key).await {
            Ok(shared) => st.counters.load(&key, shared.count, &window, now),
            Err(e) => {
                crate::log::warn(&format!("approximate rate limit failing open: {}", e.0));
                st.counters.fail_open_until(&key, now.plus_ms(FAIL_OPEN_MS));
                return Ok(fail_open(limit, &window, now));
            }
        }
        // Reading counts as this second's sync: the first write waits a second.
        st.gate.try_claim(&key, now);
    }
    let count = st.counters.count(&key, limit);
    if st.gate.try_claim(&key, now) {
        sync(kv, st.counters, &key, &window, now).await;
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

/// Pushes this isolate's pending admissions to KV and learns the others'.
async fn sync<K: Kv>(kv: &K, counters: &ApproxCounters, key: &KvKey, window: &Window, now: Millis) {
    let pending = counters.pending(key);
    if pending == 0 {
        return;
    }
    let result = async {
        let mut shared = read_shared(kv, key).await?;
        shared.count += pending;
        shared.syncs += 1;
        let text = serde_json::to_string(&shared).map_err(|e| StorageError(e.to_string()))?;
        let ttl_s = now.seconds_until(window.end()) + 1;
        kv.put(key, &text, PutOptions::ttl(Ttl::at_least_minimum(ttl_s)))
            .await?;
        Ok::<u64, StorageError>(shared.count)
    }
    .await;
    match result {
        Ok(total) => counters.synced(key, pending, total),
        Err(e) => crate::log::warn(&format!(
            "approximate rate limit sync failed (kept pending): {}",
            e.0
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fake::{block_on, MemCounters, MemKv};

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
    }

    impl Isolate {
        fn st(&self) -> ApproxState<'_> {
            ApproxState {
                counters: &self.counters,
                gate: &self.gate,
            }
        }

        fn check(&self, kv: &MemKv, c: &AppConfig, group: &str, client: &str, at: i64) -> Decision {
            block_on(check_approx(kv, self.st(), c, group, client, Millis(at))).unwrap()
        }
    }

    #[test]
    fn clients() {
        assert_eq!(client(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(client(Some(" 2001:DB8::1 ")), "2001:db8::1");
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
            Err(ApiError::RateLimited { retry_after: 10 })
        );
    }

    #[test]
    fn strict_admits_exactly_the_limit() {
        let db = MemCounters::default();
        let c = cfg(5, 60);
        let allowed = (0..20)
            .filter(|i| {
                block_on(check_strict(
                    &db,
                    &c,
                    "sessions",
                    "1.2.3.4",
                    Millis(1_000 + i),
                ))
                .unwrap()
                .decision
                .allowed
            })
            .count();
        assert_eq!(allowed, 5);
        let next = block_on(check_strict(&db, &c, "sessions", "1.2.3.4", Millis(61_000))).unwrap();
        assert!(next.decision.allowed);
        assert_eq!(next.prune_before, Some(Millis(60_000)));
    }

    #[test]
    fn strict_fails_closed() {
        let db = MemCounters::default();
        db.db.failing.set(true);
        assert!(matches!(
            block_on(check_strict(&db, &cfg(5, 60), "g", "c", Millis(0))),
            Err(ApiError::Unavailable(_))
        ));
    }

    #[test]
    fn approx_counts_locally_and_writes_at_most_once_a_second() {
        let (kv, iso) = (MemKv::default(), Isolate::default());
        let c = cfg(10, 60);
        let allowed = (0..30)
            .filter(|i| {
                iso.check(&kv, &c, "users", "9.9.9.9", 1_000 + i * 50)
                    .allowed
            })
            .count();
        assert_eq!(allowed, 10, "exact within one isolate");
        assert!(kv.writes() <= 2, "{} writes in 1.5 s", kv.writes());
        assert!(kv.reads() <= 3);
    }

    #[test]
    fn approx_sees_other_isolates_through_kv() {
        let (kv, iso) = (MemKv::default(), Isolate::default());
        kv.insert("rl:users:anonymous:0", r#"{"count":9,"syncs":3}"#);
        let c = cfg(10, 60);
        let first = iso.check(&kv, &c, "users", "anonymous", 100);
        assert!(first.allowed);
        assert_eq!(first.remaining, 0);
        assert!(!iso.check(&kv, &c, "users", "anonymous", 200).allowed);
    }

    #[test]
    fn approx_fails_open_and_retries_kv_after_a_second() {
        let (kv, iso) = (MemKv::default(), Isolate::default());
        kv.fail(true);
        let c = cfg(1, 60);
        for i in 0..10 {
            assert!(iso.check(&kv, &c, "g", "c", i).allowed);
        }
        assert_eq!(
            kv.reads(),
            1,
            "one failed read, then open without retrying for a second"
        );
        kv.fail(false);
        assert!(iso.check(&kv, &c, "g", "c", 1_000).allowed);
        assert!(
            !iso.check(&kv, &c, "g", "c", 1_001).allowed,
            "limits again once KV answers"
        );
    }

    /// Runs requests at `times` in a fresh isolate against a shared KV; returns how many
    /// were admitted.
    fn isolate(kv: &MemKv, times: impl Iterator<Item = i64>) -> usize {
        let (iso, c) = (Isolate::default(), cfg(10, 60));
        times
            .filter(|t| iso.check(kv, &c, "g", "c", *t).allowed)
            .count()
    }

    #[test]
    fn over_admission_is_bounded_by_isolates_times_limit() {
        // Isolate B starts before A has synced: each admits its own `limit` (the worst case).
        let kv = MemKv::default();
        let a = isolate(&kv, (0..15).map(|i| 100 + i * 10));
        let b = isolate(&kv, (0..15).map(|i| 400 + i * 10));
        assert_eq!((a, b), (10, 10));
        // A syncs (a second after its first read) before B's first read: B sees A's count.
        let kv = MemKv::default();
        let a = isolate(&kv, (0..15).map(|i| 100 + i * 100));
        let b = isolate(&kv, (0..15).map(|i| 3_000 + i * 10));
        assert_eq!(a + b, 10, "exact once the counts have met in KV");
    }

    #[test]
    fn approx_counter_ttl_respects_kv_minimum() {
        let (kv, iso) = (MemKv::default(), Isolate::default());
        let c = cfg(100, 1);
        for i in 0..3 {
            iso.check(&kv, &c, "g", "c", i * 1_000 + 1_500);
        }
        for e in kv.entries.borrow().values() {
            assert!(e.ttl.unwrap() >= 60);
        }
    }
}
