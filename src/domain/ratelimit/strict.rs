//! The strict tier: exact across every isolate and location, with D1 writes bounded per
//! isolate and counter rather than one per request.
//!
//! D1 holds, per client, group and window, how many of the window's tokens have been handed
//! out. An isolate takes tokens in leases: one conditional upsert hands out up to the
//! wanted number and never more than the limit, so however the requests of a client are
//! spread over isolates and locations, no more than `limit` are admitted in a window. The
//! isolate then admits from its lease without D1 until it is used up.
//!
//! * Lease sizes follow demand: the client's requests of the last second here, and, while
//!   leases follow each other within a second, the previous lease doubled. A steady client
//!   costs about one write per second per isolate (a few in its first second).
//! * A request that finds no token left leases for itself, even while another lease is in
//!   flight: requests of one isolate never wait on each other, because workerd ties every
//!   timer and I/O to the request that started it, and a request resumed by another's
//!   wake-up loses its own. A concurrent burst therefore costs up to one write per request
//!   in flight, each asking for what the leases already in flight do not cover.
//! * Once D1 grants nothing, the window is used up: the isolate refuses the client until
//!   the window ends without asking D1 again.
//! * Bound: never over-admits. It may under-admit by the tokens other isolates leased and
//!   did not use before the window ended: at most each one's last leases, about two
//!   seconds of the client's traffic there (and never more than the limit).
//! * D1 failing: fail closed (unavailable), as before.

use super::{Decision, Window};
use crate::domain::config::AppConfig;
use crate::domain::error::{DomainResult, StoreResult};
use crate::domain::keymap::KeyMap;
use crate::domain::time::Millis;
use std::cell::RefCell;

/// What a lease got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Tokens granted now (0: the window is used up).
    pub granted: u32,
    /// Tokens the window has handed out in all, these included.
    pub handed_out: u64,
}

/// The D1 side of strict limits.
#[allow(async_fn_in_trait)]
pub trait CounterDb {
    /// Hands out up to `wanted` of the window's `limit` tokens for the bucket, atomically,
    /// never past the limit.
    async fn lease(
        &self,
        bucket: &str,
        window_start: Millis,
        wanted: u32,
        limit: u32,
    ) -> StoreResult<Lease>;
    /// Deletes counters of windows that started before `before`.
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

/// One counter's lease in this isolate.
#[derive(Debug, Default)]
struct Held {
    window_end: Millis,
    /// Leased tokens not used yet.
    left: u32,
    /// D1 granted nothing: the window is used up.
    exhausted: bool,
    /// What the window had handed out at the last lease.
    handed_out: u64,
    /// Leases in flight, and the tokens they ask for.
    leasing: u32,
    asking: u32,
    /// The size of the last lease and when it was taken.
    last_size: u32,
    last_at: Millis,
    /// Requests in the current second and the one before.
    second: i64,
    this_second: u32,
    last_second: u32,
}

impl Held {
    fn demand(&mut self, now: Millis) {
        let second = now.0.div_euclid(1_000);
        if second != self.second {
            self.last_second = if second == self.second + 1 {
                self.this_second
            } else {
                0
            };
            self.second = second;
            self.this_second = 0;
        }
        self.this_second += 1;
    }

    /// The next lease's size: at least the client's requests of the last second here (a
    /// concurrent burst counts every request that arrived); while leases follow each other
    /// within a second, the last one doubled (at most two seconds of that demand); less
    /// what leases in flight already ask for, so a concurrent burst leases about what it
    /// uses. At least one, never more than the limit.
    fn lease_size(&self, now: Millis, limit: u32) -> u32 {
        let rate = self.this_second.max(self.last_second).max(1);
        let doubled = match now.ms_since(self.last_at) < 1_000 {
            true => self.last_size.saturating_mul(2),
            false => 0,
        };
        let wanted = rate.max(doubled.min(rate.saturating_mul(2)));
        wanted.saturating_sub(self.asking).max(1).min(limit.max(1))
    }
}

/// Every strict counter this isolate holds a lease on. Isolate state (see `isolate.rs`).
#[derive(Debug, Default)]
pub struct StrictLeases {
    by_key: RefCell<KeyMap<Held>>,
    /// The window whose start this isolate last pruned before.
    pruned: std::cell::Cell<Option<Millis>>,
}

impl StrictLeases {
    fn with<R>(&self, key: &str, f: impl FnOnce(&mut Held) -> R) -> R {
        let mut by_key = self.by_key.borrow_mut();
        let held = by_key.get_or_insert_with(key, Held::default);
        f(held)
    }

    /// Drops the leases of ended windows (nobody waits on them).
    fn prune(&self, now: Millis) {
        self.by_key
            .borrow_mut()
            .retain(|h| h.window_end > now || h.leasing > 0);
    }
}

/// What a request finds when it looks at its counter.
enum Step {
    Admit(Decision),
    Refuse(Decision),
    Lease(u32),
}

/// Strict tier: admits or refuses one request of `client` in `group`.
pub async fn check_strict<D: CounterDb>(
    db: &D,
    leases: &StrictLeases,
    cfg: &AppConfig,
    group: &str,
    client: &str,
    now: Millis,
) -> DomainResult<StrictDecision> {
    let window = Window::containing(now, cfg.rate_limit_window_seconds);
    let limit = cfg.limit_for(group);
    let bucket = format!("{group}:{client}");
    let key = format!("{bucket}@{}", window.start.0);
    let reset = window.reset_seconds(now);
    let mut prune_before = None;
    if leases.with(&key, |h| h.window_end) != window.end() {
        leases.prune(now);
    }
    leases.with(&key, |h| {
        h.window_end = window.end();
        h.demand(now);
    });
    loop {
        match next_step(leases, &key, limit, reset, now) {
            Step::Admit(decision) | Step::Refuse(decision) => {
                return Ok(StrictDecision {
                    decision,
                    prune_before,
                })
            }
            Step::Lease(size) => {
                let lease = db.lease(&bucket, window.start, size, limit).await;
                let first = end_lease(leases, &key, size, now, lease)?;
                // The first lease of a window is a good moment to drop ended windows' rows:
                // once per window and isolate, whatever the number of clients.
                if first && leases.pruned.get().is_none_or(|p| p < window.start) {
                    leases.pruned.set(Some(window.start));
                    prune_before = Some(window.start);
                }
            }
        }
    }
}

/// Takes a token, refuses, waits for the lease in flight, or starts one.
fn next_step(leases: &StrictLeases, key: &str, limit: u32, reset: u64, now: Millis) -> Step {
    leases.with(key, |h| {
        let left_after =
            |h: &Held| u64::from(limit).saturating_sub(h.handed_out) + u64::from(h.left);
        if h.left > 0 {
            h.left -= 1;
            let remaining = u32::try_from(left_after(h)).unwrap_or(u32::MAX);
            return Step::Admit(Decision::admitted(limit, remaining, reset));
        }
        if h.exhausted {
            return Step::Refuse(Decision::refused(limit, reset));
        }
        let size = h.lease_size(now, limit);
        h.leasing += 1;
        h.asking = h.asking.saturating_add(size);
        Step::Lease(size)
    })
}

/// Takes in a lease's outcome. Whether it was the first of its window.
fn end_lease(
    leases: &StrictLeases,
    key: &str,
    size: u32,
    now: Millis,
    lease: StoreResult<Lease>,
) -> DomainResult<bool> {
    leases.with(key, |h| {
        h.leasing = h.leasing.saturating_sub(1);
        h.asking = h.asking.saturating_sub(size);
        let lease = lease?;
        h.left += lease.granted;
        h.exhausted |= lease.granted == 0;
        h.handed_out = lease.handed_out;
        h.last_size = size;
        h.last_at = now;
        Ok(lease.handed_out == u64::from(lease.granted) && lease.granted > 0)
    })
}

/// Deletes counters of windows that started before `before`; a failure is logged (the
/// next window's first lease tries again).
pub async fn prune<D: CounterDb>(db: &D, before: Millis) {
    if let Err(e) = db.prune(before).await {
        crate::log::warn_cause("pruning rate-limit counters failed", &e.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::DomainError;
    use crate::storage::fake::{block_on, MemCounters};

    fn cfg(limit: u32, window: u32) -> AppConfig {
        let mut c = AppConfig {
            rate_limit_window_seconds: window,
            ..AppConfig::default()
        };
        c.rate_limits.insert("default".into(), limit);
        c
    }

    fn check(db: &MemCounters, leases: &StrictLeases, c: &AppConfig, ms: i64) -> StrictDecision {
        block_on(check_strict(
            db,
            leases,
            c,
            "sessions",
            "1.2.3.4",
            Millis(ms),
        ))
        .unwrap()
    }

    #[test]
    fn admits_exactly_the_limit_across_isolates() {
        let (db, a, b) = (
            MemCounters::default(),
            StrictLeases::default(),
            StrictLeases::default(),
        );
        let c = cfg(5, 60);
        let admitted = (0..40)
            .filter(|i| {
                let isolate = if i % 2 == 0 { &a } else { &b };
                check(&db, isolate, &c, 1_000 + i * 10).decision.allowed
            })
            .count();
        assert_eq!(admitted, 5);
        let next = check(&db, &a, &c, 61_000);
        assert!(next.decision.allowed, "a new window");
        assert_eq!(next.prune_before, Some(Millis(60_000)));
    }

    #[test]
    fn ended_windows_are_pruned_once_per_window_and_isolate_whatever_the_clients() {
        let (db, iso) = (MemCounters::default(), StrictLeases::default());
        let c = cfg(5, 60);
        let prunes = |from_ms: i64| {
            (0..50)
                .filter_map(|i| {
                    let client = format!("198.51.100.{i}");
                    let d = block_on(check_strict(
                        &db,
                        &iso,
                        &c,
                        "sessions",
                        &client,
                        Millis(from_ms + i),
                    ));
                    d.unwrap().prune_before
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(prunes(1_000), vec![Millis(0)]);
        assert_eq!(
            prunes(61_000),
            vec![Millis(60_000)],
            "50 clients, one prune"
        );
    }

    #[test]
    fn a_steady_client_costs_about_one_lease_a_second() {
        let (db, iso) = (MemCounters::default(), StrictLeases::default());
        let c = cfg(100_000, 60);
        // 100 requests a second for 5 s, one at a time.
        for i in 0..500 {
            assert!(check(&db, &iso, &c, 1_000 + i * 10).decision.allowed);
        }
        let leases = db.db.queries.get();
        assert!(leases <= 12, "{leases} leases for 500 requests over 5 s");
        // The tokens leased but unused are what this isolate holds: at most a second's worth.
        let handed_out = db.rows.borrow().values().sum::<u64>();
        assert!(
            handed_out - 500 <= 200,
            "{handed_out} handed out for 500 admitted"
        );
    }

    #[test]
    fn a_used_up_window_refuses_without_asking_d1_again() {
        let (db, iso) = (MemCounters::default(), StrictLeases::default());
        let c = cfg(3, 60);
        let decisions: Vec<bool> = (0..10)
            .map(|i| check(&db, &iso, &c, 100 + i).decision.allowed)
            .collect();
        assert_eq!(decisions.iter().filter(|a| **a).count(), 3);
        let queries = db.db.queries.get();
        for i in 0..100 {
            let refused = check(&db, &iso, &c, 200 + i);
            assert!(!refused.decision.allowed);
            assert_eq!(refused.decision.remaining, 0);
        }
        assert_eq!(db.db.queries.get(), queries, "no D1 query once used up");
    }

    #[test]
    fn remaining_counts_what_the_window_has_left_and_the_isolate_holds() {
        let (db, iso) = (MemCounters::default(), StrictLeases::default());
        let c = cfg(10, 60);
        let first = check(&db, &iso, &c, 0).decision;
        assert_eq!((first.allowed, first.remaining), (true, 9));
        let second = check(&db, &iso, &c, 1).decision;
        assert_eq!((second.allowed, second.remaining), (true, 8));
    }

    #[test]
    fn fails_closed() {
        let (db, iso) = (MemCounters::default(), StrictLeases::default());
        db.db.failing.set(true);
        assert!(matches!(
            block_on(check_strict(&db, &iso, &cfg(5, 60), "g", "c", Millis(0))),
            Err(DomainError::Unavailable(_))
        ));
        db.db.failing.set(false);
        assert!(
            check(&db, &iso, &cfg(5, 60), 1).decision.allowed,
            "and recovers"
        );
    }
}
