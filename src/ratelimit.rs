//! Rate limiting in two tiers, per client (`CF-Connecting-IP`), group (first path segment)
//! and fixed window (`rateLimitWindowSeconds`).
//!
//! * Strict groups (`strictRateLimits`): one atomic D1 upsert with `RETURNING` per request,
//!   so a concurrent burst admits exactly `limit`. D1 failing: fail closed (503).
//! * Approximate groups: counted in the isolate and synchronised with KV at most once a
//!   second per counter key (read, add, write). Within one isolate the count is exact; other
//!   isolates' admissions are seen after their next sync plus KV propagation, so a window can
//!   over-admit by what other isolates admitted in that lag (≤ 1 s of their traffic in the
//!   same location, up to ~60 s of it across locations; never more than `limit` per
//!   isolate). KV failing: fail open, logged.

use crate::config::AppConfig;
use crate::error::{ApiError, ApiResult, StoreResult};
use crate::isolate::try_claim_kv_write;
use crate::storage::{Kv, PutOptions};
use crate::types::{KvKey, Ttl};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;

/// The client key: the address Cloudflare saw, normalised; `anonymous` when absent or not
/// an address (so header junk can never blow up a KV key).
pub fn client(cf_connecting_ip: Option<&str>) -> String {
    cf_connecting_ip
        .and_then(|s| s.trim().parse::<IpAddr>().ok())
        .map_or_else(|| "anonymous".to_string(), |ip| ip.to_string())
}

/// A fixed window: `[start, start + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub len_ms: i64,
}

impl Window {
    pub fn containing(now: i64, seconds: u32) -> Self {
        let len_ms = i64::from(seconds.max(1)) * 1000;
        Window {
            start_ms: now.div_euclid(len_ms) * len_ms,
            len_ms,
        }
    }

    /// Whole seconds until the window ends, at least 1.
    pub fn reset_seconds(&self, now: i64) -> u64 {
        let left = (self.start_ms + self.len_ms - now).max(1);
        u64::try_from((left + 999) / 1000).unwrap_or(1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub limit: u32,
    pub remaining: u32,
    pub reset_seconds: u64,
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

    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RateLimit-Limit", self.limit.to_string()),
            ("RateLimit-Remaining", self.remaining.to_string()),
            ("RateLimit-Reset", self.reset_seconds.to_string()),
        ]
    }

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
    async fn increment(&self, bucket: &str, window_start: i64) -> StoreResult<u64>;
    /// Deletes counters of windows that ended before `before`.
    async fn prune(&self, before: i64) -> StoreResult<()>;
}

/// Strict tier: exact across every isolate and location.
pub async fn check_strict<D: CounterDb>(
    db: &D,
    cfg: &AppConfig,
    group: &str,
    client: &str,
    now: i64,
) -> ApiResult<(Decision, bool)> {
    let window = Window::containing(now, cfg.rate_limit_window_seconds);
    let count = db
        .increment(&format!("{group}:{client}"), window.start_ms)
        .await?;
    // The first request of a window is a good moment to drop counters of ended windows.
    let prune = count == 1;
    Ok((
        Decision::from_count(cfg.limit_for(group), count, window.reset_seconds(now)),
        prune,
    ))
}

/// What KV holds for an approximate counter: the count, and how many syncs wrote it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shared {
    pub count: u64,
    pub syncs: u64,
}

#[derive(Debug, Clone, Default)]
struct Local {
    /// The shared count as of the last sync.
    base: u64,
    /// Admitted here since the last sync.
    pending: u64,
    loaded: bool,
    window_end: i64,
    /// KV could not be read: admit everything (fail open) and retry the read after this.
    open_until: i64,
}

/// How long a counter fails open before its KV read is retried.
const FAIL_OPEN_MS: i64 = 1_000;

thread_local! {
    static COUNTERS: RefCell<HashMap<String, Local>> = RefCell::new(HashMap::new());
}

fn counter_key(group: &str, client: &str, window: &Window) -> ApiResult<KvKey> {
    KvKey::new(
        "rl:",
        &format!("{group}:{client}:{}", window.start_ms / 1000),
    )
}

async fn read_shared<K: Kv>(kv: &K, key: &KvKey) -> StoreResult<Shared> {
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
    cfg: &AppConfig,
    group: &str,
    client: &str,
    now: i64,
) -> ApiResult<Decision> {
    let window = Window::containing(now, cfg.rate_limit_window_seconds);
    let key = counter_key(group, client, &window)?;
    let limit = cfg.limit_for(group);
    let (loaded, open_until) = COUNTERS.with(|c| {
        c.borrow()
            .get(key.as_str())
            .map_or((false, 0), |l| (l.loaded, l.open_until))
    });
    if !loaded {
        if now < open_until {
            return Ok(fail_open(limit, &window, now));
        }
        let base = match read_shared(kv, &key).await {
            Ok(s) => s.count,
            Err(e) => {
                crate::log::warn(&format!("approximate rate limit failing open: {}", e.0));
                COUNTERS.with(|c| {
                    let mut c = c.borrow_mut();
                    c.entry(key.as_str().to_string()).or_default().open_until = now + FAIL_OPEN_MS;
                });
                return Ok(fail_open(limit, &window, now));
            }
        };
        COUNTERS.with(|c| {
            let mut c = c.borrow_mut();
            c.retain(|_, l| l.window_end > now || !l.loaded);
            let l = c.entry(key.as_str().to_string()).or_default();
            l.base = l.base.max(base);
            l.loaded = true;
            l.window_end = window.start_ms + window.len_ms;
        });
        // Reading counts as this second's sync: the first write waits a second.
        try_claim_kv_write(key.as_str(), now as f64);
    }
    let count = COUNTERS.with(|c| {
        let mut c = c.borrow_mut();
        let l = c.entry(key.as_str().to_string()).or_default();
        if l.base + l.pending >= u64::from(limit) {
            l.base + l.pending + 1
        } else {
            l.pending += 1;
            l.base + l.pending
        }
    });
    if try_claim_kv_write(key.as_str(), now as f64) {
        sync(kv, &key, &window, now).await;
    }
    Ok(Decision::from_count(
        limit,
        count,
        window.reset_seconds(now),
    ))
}

/// The answer while KV cannot be read: admitted, with the headers of an untouched window.
fn fail_open(limit: u32, window: &Window, now: i64) -> Decision {
    Decision {
        limit,
        remaining: limit,
        reset_seconds: window.reset_seconds(now),
        allowed: true,
    }
}

/// Pushes this isolate's pending admissions to KV and learns the others'.
async fn sync<K: Kv>(kv: &K, key: &KvKey, window: &Window, now: i64) {
    let pending = COUNTERS.with(|c| c.borrow().get(key.as_str()).map_or(0, |l| l.pending));
    if pending == 0 {
        return;
    }
    let result = async {
        let mut shared = read_shared(kv, key).await?;
        shared.count += pending;
        shared.syncs += 1;
        let text = serde_json::to_string(&shared)
            .map_err(|e| crate::error::StorageError(e.to_string()))?;
        let ttl_s = u64::try_from((window.start_ms + window.len_ms - now) / 1000 + 1).unwrap_or(0);
        kv.put(key, &text, PutOptions::ttl(Ttl::at_least_minimum(ttl_s)))
            .await?;
        Ok::<u64, crate::error::StorageError>(shared.count)
    }
    .await;
    match result {
        Ok(total) => COUNTERS.with(|c| {
            if let Some(l) = c.borrow_mut().get_mut(key.as_str()) {
                l.pending -= pending.min(l.pending);
                l.base = total;
            }
        }),
        Err(e) => crate::log::warn(&format!(
            "approximate rate limit sync failed (kept pending): {}",
            e.0
        )),
    }
}

#[cfg(test)]
pub mod fake {
    use super::*;
    use crate::storage::fake::FakeDb;

    #[derive(Default)]
    pub struct MemCounters {
        pub rows: RefCell<HashMap<(String, i64), u64>>,
        pub db: FakeDb,
    }

    impl CounterDb for MemCounters {
        async fn increment(&self, bucket: &str, window_start: i64) -> StoreResult<u64> {
            self.db.query()?;
            let mut rows = self.rows.borrow_mut();
            let n = rows.entry((bucket.to_string(), window_start)).or_insert(0);
            *n += 1;
            Ok(*n)
        }
        async fn prune(&self, before: i64) -> StoreResult<()> {
            self.db.query()?;
            self.rows
                .borrow_mut()
                .retain(|(_, start), _| *start >= before);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::MemCounters;
    use super::*;
    use crate::storage::fake::{block_on, MemKv};

    fn cfg(limit: u32, window: u32) -> AppConfig {
        let mut c = AppConfig {
            rate_limit_window_seconds: window,
            ..AppConfig::default()
        };
        c.rate_limits.insert("default".into(), limit);
        c
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
        let w = Window::containing(61_500, 60);
        assert_eq!(w.start_ms, 60_000);
        assert_eq!(w.reset_seconds(61_500), 59);
        assert_eq!(w.reset_seconds(119_999), 1);
        assert_eq!(Window::containing(120_000, 60).start_ms, 120_000);
        assert_eq!(Window::containing(0, 1).reset_seconds(0), 1);
    }

    #[test]
    fn decisions_and_headers() {
        let d = Decision::from_count(3, 3, 10);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let d = Decision::from_count(3, 4, 10);
        assert!(!d.allowed);
        assert_eq!(
            d.clone().into_result(),
            Err(ApiError::RateLimited { retry_after: 10 })
        );
        assert_eq!(d.headers()[0], ("RateLimit-Limit", "3".to_string()));
    }

    #[test]
    fn strict_admits_exactly_the_limit() {
        let db = MemCounters::default();
        let c = cfg(5, 60);
        let allowed = (0..20)
            .filter(|i| {
                block_on(check_strict(&db, &c, "sessions", "1.2.3.4", 1_000 + i))
                    .unwrap()
                    .0
                    .allowed
            })
            .count();
        assert_eq!(allowed, 5);
        let (next_window, prune) =
            block_on(check_strict(&db, &c, "sessions", "1.2.3.4", 61_000)).unwrap();
        assert!(next_window.allowed && prune);
    }

    #[test]
    fn strict_fails_closed() {
        let db = MemCounters::default();
        db.db.failing.set(true);
        assert!(matches!(
            block_on(check_strict(&db, &cfg(5, 60), "g", "c", 0)),
            Err(ApiError::Unavailable(_))
        ));
    }

    #[test]
    fn approx_counts_locally_and_writes_at_most_once_a_second() {
        let kv = MemKv::default();
        let c = cfg(10, 60);
        let mut allowed = 0;
        for i in 0..30 {
            // 30 requests over 1.5 s.
            let d = block_on(check_approx(&kv, &c, "users", "9.9.9.9", 1_000 + i * 50)).unwrap();
            allowed += usize::from(d.allowed);
        }
        assert_eq!(allowed, 10, "exact within one isolate");
        assert!(kv.writes() <= 2, "{} writes in 1.5 s", kv.writes());
        assert!(kv.reads() <= 3);
    }

    #[test]
    fn approx_sees_other_isolates_through_kv() {
        let kv = MemKv::default();
        kv.insert("rl:users:anonymous:0", r#"{"count":9,"syncs":3}"#);
        let c = cfg(10, 60);
        let first = block_on(check_approx(&kv, &c, "users", "anonymous", 100)).unwrap();
        assert!(first.allowed);
        assert_eq!(first.remaining, 0);
        assert!(
            !block_on(check_approx(&kv, &c, "users", "anonymous", 200))
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn approx_fails_open_and_retries_kv_after_a_second() {
        let kv = MemKv::default();
        kv.fail(true);
        let c = cfg(1, 60);
        for i in 0..10 {
            assert!(
                block_on(check_approx(&kv, &c, "g", "c", i))
                    .unwrap()
                    .allowed
            );
        }
        assert_eq!(
            kv.reads(),
            1,
            "one failed read, then open without retrying for a second"
        );
        kv.fail(false);
        assert!(
            block_on(check_approx(&kv, &c, "g", "c", 1_000))
                .unwrap()
                .allowed
        );
        let refused = !block_on(check_approx(&kv, &c, "g", "c", 1_001))
            .unwrap()
            .allowed;
        assert!(refused, "limits again once KV answers");
    }

    /// Runs requests at `times` in a fresh isolate (a thread has its own isolate-local
    /// state) against a shared KV; returns the KV and how many were admitted.
    fn isolate(kv: MemKv, times: Vec<i64>) -> (MemKv, usize) {
        std::thread::spawn(move || {
            let c = cfg(10, 60);
            let admitted = times
                .iter()
                .filter(|t| {
                    block_on(check_approx(&kv, &c, "g", "c", **t))
                        .unwrap()
                        .allowed
                })
                .count();
            (kv, admitted)
        })
        .join()
        .unwrap()
    }

    #[test]
    fn over_admission_is_bounded_by_isolates_times_limit() {
        // Isolate B starts before A has synced: each admits its own `limit` (the worst case).
        let (kv, a) = isolate(MemKv::default(), (0..15).map(|i| 100 + i * 10).collect());
        let (_, b) = isolate(kv, (0..15).map(|i| 400 + i * 10).collect());
        assert_eq!((a, b), (10, 10));
        // A syncs (a second after its first read) before B's first read: B sees A's count.
        let (kv, a) = isolate(MemKv::default(), (0..15).map(|i| 100 + i * 100).collect());
        let (_, b) = isolate(kv, (0..15).map(|i| 3_000 + i * 10).collect());
        assert_eq!(a + b, 10, "exact once the counts have met in KV");
    }

    #[test]
    fn approx_counter_ttl_respects_kv_minimum() {
        let kv = MemKv::default();
        let c = cfg(100, 1);
        for i in 0..3 {
            block_on(check_approx(&kv, &c, "g", "c", i * 1_000 + 1_500)).unwrap();
        }
        for e in kv.entries.borrow().values() {
            assert!(e.ttl.unwrap() >= 60);
        }
    }
}
