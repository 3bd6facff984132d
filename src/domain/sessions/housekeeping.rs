//! Housekeeping: D1 keeps what session checks can still need, so that its size follows the
//! active sessions rather than every session ever minted. Each isolate, at most once per
//! [`PRUNE_EVERY_MS`], deletes in the background a batch of sessions a day past the
//! deadline that ended them (idle or absolute: past either, a session cannot come back) and
//! of revocation feed rows past twice the feed's horizon that no longer linger: two short
//! indexed statements, whatever the size of the tables.

use super::checks::FEED_HORIZON_MS;
use super::{SessionChecks, SessionDb};
use crate::domain::error::StoreResult;
use crate::domain::time::Millis;

/// How often one isolate prunes.
pub const PRUNE_EVERY_MS: i64 = 3_600_000;
/// At most this many rows of each table per prune.
pub const PRUNE_BATCH: u32 = 500;
/// How long an expired session's row is kept (a revocation by the handle of a session that
/// just expired still finds it, and answers as for any revoked session).
pub const KEEP_EXPIRED_MS: i64 = 86_400_000;

/// Prunes if this isolate has not within [`PRUNE_EVERY_MS`]; whether it did.
pub async fn prune<D: SessionDb>(db: &D, checks: &SessionChecks, now: Millis) -> StoreResult<bool> {
    if !checks.claim_prune(now, PRUNE_EVERY_MS) {
        return Ok(false);
    }
    let expired_before = Millis(now.0.saturating_sub(KEEP_EXPIRED_MS));
    let revoked_before = Millis(now.0.saturating_sub(2 * FEED_HORIZON_MS));
    db.prune(expired_before, revoked_before, now, PRUNE_BATCH)
        .await?;
    Ok(true)
}
