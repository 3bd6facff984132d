//! Following the revocation feed: one D1 query per isolate and read, whatever the number of
//! sessions (see `checks` for what the isolate does with it).

use super::checks::FEED_HORIZON_MS;
use super::{SessionChecks, SessionDb};
use crate::domain::error::StoreResult;
use crate::domain::time::Millis;

/// At most this many rows per query; a full page is followed by another at once.
pub const FEED_PAGE: u32 = 500;
/// At most this many pages per read: a longer backlog is left to the next read.
const MAX_PAGES: usize = 20;

/// Reads the feed from where this isolate left it (or, for a new isolate or one idle past
/// the horizon, from [`FEED_HORIZON_MS`] ago) and takes every revocation in. A read that
/// completes makes the isolate's view fresh as of `now` and answers `true`; one that stops
/// at its page limit with more to read answers `false` and leaves the view stale (the
/// next read goes on from there); a failed one is retried no sooner than a second later.
pub async fn read_feed<D: SessionDb>(
    db: &D,
    checks: &SessionChecks,
    now: Millis,
) -> StoreResult<bool> {
    let mut cursor = checks.feed_cursor(now);
    let since = Millis(now.0.saturating_sub(FEED_HORIZON_MS));
    for _ in 0..MAX_PAGES {
        let page = match db.revocations(cursor, since, now, FEED_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                checks.feed_failed(now);
                return Err(e);
            }
        };
        checks.apply_feed(&page.rows, page.next, now);
        cursor = Some(page.next);
        if page.rows.len() < FEED_PAGE as usize {
            checks.feed_read(now);
            return Ok(true);
        }
    }
    Ok(false)
}
