//! What an isolate knows about revoked sessions (isolate state): the revocation feed it
//! follows, the sessions it names, and the ids D1 refused here.
//!
//! Revocation reaches every isolate through the feed (D1 table `revocations`, one row per
//! revoked session), not through a D1 query per session: an isolate accepts a KV copy only
//! while its last read of the feed is at most [`RECHECK_MS`] old, and reads it again (one
//! query, whatever the number of sessions) in the background once it is [`FEED_REFRESH_MS`]
//! old, or before answering when it is older than the bound. So the D1 work of session
//! checks grows with the number of isolates, not of sessions or requests.
//!
//! A revoked session is remembered until its KV copy cannot exist anywhere any more: the
//! revoker deletes the copy, and KV drops it everywhere within about a minute, so
//! [`FEED_HORIZON_MS`] after the revocation; a copy KV refused to delete lingers until it
//! expires (the feed row says until when). A new isolate starts by reading the revocations
//! of the last [`FEED_HORIZON_MS`] and the lingering ones.

use super::Revocation;
use crate::domain::keymap::KeyMap;
use crate::domain::time::Millis;
use std::cell::{Cell, RefCell};

/// How long an isolate trusts its last read of the revocation feed: the bound on how long a
/// revoked session is still accepted anywhere (the read itself goes to D1's primary).
pub const RECHECK_MS: i64 = 10_000;
/// A feed read older than this is renewed in the background (deferred work), so an isolate
/// in steady use never waits for it on a request.
pub const FEED_REFRESH_MS: i64 = 5_000;
/// How far back a new isolate reads the feed, and how long a revocation is remembered
/// unless its KV copy lingers: KV drops a deleted copy everywhere within about a minute.
pub const FEED_HORIZON_MS: i64 = 300_000;
/// After a failed feed read, the next try waits this long (D1 is down: KV copies are
/// trusted meanwhile, as before the feed).
const FEED_RETRY_MS: i64 = 1_000;

/// Beyond this many remembered ids of a kind, the ones that no longer count are dropped.
const MAX_REMEMBERED: usize = 10_000;

/// What this isolate knows about revoked and refused sessions, by id hash. Isolate state
/// (see `isolate.rs`).
#[derive(Debug, Default)]
pub struct SessionChecks {
    /// Revoked sessions (from the feed or revoked here), until when they must be refused.
    revoked: RefCell<KeyMap<Millis>>,
    /// Ids D1 did not accept when KV had no copy (unknown, revoked or expired): no KV copy
    /// exists, so forgetting one costs a D1 query at most.
    unknown: RefCell<KeyMap<Millis>>,
    /// When this isolate last tried to renew each session.
    renewals: RefCell<KeyMap<Millis>>,
    feed: Cell<Feed>,
    /// When this isolate last pruned D1 (housekeeping).
    pruned_at: Cell<Option<Millis>>,
}

/// Where this isolate is in the revocation feed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Feed {
    /// The position after the last row read (`None`: never read), and when it moved.
    cursor: Option<u64>,
    moved_at: Millis,
    /// When the last complete read started.
    read_at: Option<Millis>,
    /// No read before this (the last one failed).
    retry_at: Millis,
}

/// Whether something done at `at` still counts at `now` for `window_ms`. Concurrent requests
/// see each other's results, so `at` can be a little after `now`: that counts too (a clock
/// that jumps back by more than the window does not).
pub(super) fn within(now: Millis, at: Millis, window_ms: i64) -> bool {
    (-window_ms..window_ms).contains(&now.ms_since(at))
}

/// How fresh this isolate's view of the feed is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedAge {
    /// Read within [`FEED_REFRESH_MS`].
    Fresh,
    /// Within the bound, but due for a background read.
    Due,
    /// Older than [`RECHECK_MS`] (or never read): read it before trusting a KV copy.
    Stale,
    /// The last read failed moments ago: trust KV copies until the retry.
    Failing,
}

impl SessionChecks {
    /// Whether the session must be refused: revoked (and not yet forgotten), or refused by
    /// D1 before.
    pub(super) fn refused(&self, hash: &str, now: Millis) -> bool {
        let revoked = self.revoked.borrow().get(hash).is_some_and(|t| now < *t);
        revoked || self.unknown.borrow().contains_key(hash)
    }

    /// Remembers a session D1 did not accept.
    pub(super) fn note_unknown(&self, hash: &str, now: Millis) {
        let mut unknown = self.unknown.borrow_mut();
        if unknown.len() >= MAX_REMEMBERED {
            unknown.clear();
        }
        unknown.insert(hash, now);
    }

    /// Remembers a revoked session until `until`.
    pub(super) fn note_revoked(&self, hash: &str, until: Millis, now: Millis) {
        let mut revoked = self.revoked.borrow_mut();
        if revoked.len() >= MAX_REMEMBERED {
            revoked.retain(|t| now < *t);
        }
        let until = revoked.get(hash).map_or(until, |t| until.max(*t));
        revoked.insert(hash, until);
    }

    /// True if this isolate has not pruned within `every_ms` (and it now counts as done).
    pub(super) fn claim_prune(&self, now: Millis, every_ms: i64) -> bool {
        if self
            .pruned_at
            .get()
            .is_some_and(|at| within(now, at, every_ms))
        {
            return false;
        }
        self.pruned_at.set(Some(now));
        true
    }

    /// How fresh the feed is at `now`.
    pub fn feed_age(&self, now: Millis) -> FeedAge {
        let feed = self.feed.get();
        match feed.read_at {
            _ if now < feed.retry_at => FeedAge::Failing,
            Some(at) if within(now, at, FEED_REFRESH_MS) => FeedAge::Fresh,
            Some(at) if within(now, at, RECHECK_MS) => FeedAge::Due,
            _ => FeedAge::Stale,
        }
    }

    /// The position to read the feed from (`None`: from the horizon, as a new reader). A
    /// reader whose position has not moved for longer than the horizon starts over from the
    /// horizon (rows before it may have been pruned).
    pub(super) fn feed_cursor(&self, now: Millis) -> Option<u64> {
        let feed = self.feed.get();
        feed.cursor
            .filter(|_| within(now, feed.moved_at, FEED_HORIZON_MS))
    }

    /// Takes in one page of the feed: every session it names is refused until it can have
    /// no KV copy left, and the cursor moves to `next`.
    pub(super) fn apply_feed(&self, rows: &[Revocation], next: u64, now: Millis) {
        for r in rows {
            let until =
                r.at.plus_ms(FEED_HORIZON_MS)
                    .max(r.lingers_until.unwrap_or(r.at));
            if now < until {
                self.note_revoked(&r.id_hash, until, now);
            }
        }
        let mut feed = self.feed.get();
        feed.cursor = Some(feed.cursor.map_or(next, |c| c.max(next)));
        feed.moved_at = now;
        self.feed.set(feed);
    }

    /// A complete read that started at `started` (every revocation committed before then
    /// has been taken in).
    pub(super) fn feed_read(&self, started: Millis) {
        let mut feed = self.feed.get();
        feed.read_at = Some(feed.read_at.map_or(started, |at| at.max(started)));
        feed.retry_at = Millis(0);
        self.feed.set(feed);
    }

    /// A read that failed at `now`: the next waits [`FEED_RETRY_MS`].
    pub(super) fn feed_failed(&self, now: Millis) {
        let mut feed = self.feed.get();
        feed.retry_at = now.plus_ms(FEED_RETRY_MS);
        self.feed.set(feed);
    }

    /// Claims the renewal of a session: true at most once per `every_ms` per isolate.
    pub(super) fn claim_renewal(&self, hash: &str, now: Millis, every_ms: i64) -> bool {
        let mut renewals = self.renewals.borrow_mut();
        if renewals
            .get(hash)
            .is_some_and(|at| within(now, *at, every_ms))
        {
            return false;
        }
        if renewals.len() >= MAX_REMEMBERED {
            renewals.retain(|at| within(now, *at, every_ms));
        }
        renewals.insert(hash, now);
        true
    }

    /// Gives a failed renewal back, so the next request tries again.
    pub(super) fn release_renewal(&self, hash: &str) {
        self.renewals.borrow_mut().remove(hash);
    }
}
