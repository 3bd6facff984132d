//! Sessions: KV is the fast read path, D1 the authority.
//!
//! * The id handed to the client is 32 bytes from the platform CSPRNG (256 bits), base64url.
//!   Only its SHA-256 is stored (KV key `session:<hex>`, D1 primary key), so a dump of KV or
//!   D1 yields no usable session.
//! * Lifetime ([`Lifetime`], from the config): a session is refused once its absolute deadline
//!   (`expiresAt`, `sessionAbsoluteSeconds` after it was minted) or its idle deadline
//!   (`idleExpiresAt`, `sessionIdleSeconds` after its last renewal) has passed. Use renews it
//!   (moves the idle deadline, never past the absolute one) at most once per
//!   `renewAfterSeconds`: one conditional D1 update, so at most one D1 write per session and
//!   interval however many isolates serve it, and one attempt per isolate.
//! * Create: D1 first, then KV with metadata and `expirationTtl` = time to the idle deadline;
//!   no KV copy ever outlives the absolute deadline (one with less than KV's 60 s minimum TTL
//!   left is not written).
//! * Read ([`Check::Fast`]): KV first; on a miss D1's primary, and a valid D1 hit is written
//!   back to KV. Expired sessions are refused even if KV still holds them; a copy whose idle
//!   deadline has passed is checked in D1 (another location may have renewed it).
//! * Revocation everywhere within [`RECHECK_MS`] (10 s), at a D1 cost that grows with the
//!   number of isolates, not of sessions: each revocation is a row of the revocation feed,
//!   and an isolate accepts a KV copy only while its last read of the feed is at most 10 s
//!   old (one query per isolate and read, see `checks`), so a stale KV copy in another
//!   location (KV takes up to ~60 s to drop it) cannot outlive a revocation by more than
//!   10 s. Ids D1 refused are remembered, so a revoked or unknown id costs no D1 query after
//!   the first. If the feed cannot be read, KV copies are trusted (logged): during a D1
//!   outage the bound is KV's.
//! * Revocation marks the D1 row, adds it to the feed in the same batch, and deletes the KV
//!   entry, so this location refuses the session at once; a delete KV refuses (one write
//!   per second per key) is retried once after a second. Revocation checks D1 ([`Check::Authoritative`]).
//! * Read-repair cannot resurrect: after writing a D1 hit back to KV, D1 is asked again; if
//!   the session was revoked in between (the revoker's KV delete may have landed before this
//!   write), the copy is removed again and the request refused.
//! * Each session also gets a random [`SessionHandle`] when minted: the admin listing shows
//!   it, and `DELETE /admin/sessions/:handle` revokes that one session with it. A handle
//!   is neither the id nor its hash, so the listing hands out nothing that authenticates.

mod auth;
mod checks;
mod copy;
mod feed;
mod housekeeping;
mod lifetime;
mod listing;
mod mint;
mod record;
mod revoke;

pub use auth::authenticate;
pub use checks::{FeedAge, SessionChecks, FEED_HORIZON_MS, FEED_REFRESH_MS, RECHECK_MS};
pub use copy::kv_key;
pub use feed::{read_feed, FEED_PAGE};
pub use housekeeping::{prune, KEEP_EXPIRED_MS, PRUNE_BATCH, PRUNE_EVERY_MS};
pub use lifetime::Lifetime;
pub use listing::{list, Cursor, ListQuery, ListedSession, SessionPage, DEFAULT_PAGE, MAX_PAGE};
pub use mint::{create, hash_id, new_handle, new_id};
pub use record::{MintedSession, NewSession, SessionRecord, SessionView};
pub use revoke::{revoke, revoke_handle, revoke_user, Revoked, MAX_COPY_DELETES};

use copy::{cache, delete_copy, read_copy, remove_copy};

use crate::domain::error::StoreResult;
use crate::domain::ids::{SessionHandle, UserId};
use crate::domain::time::Millis;

/// A revoked session, as the revocation feed lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Revocation {
    /// Its position in the feed.
    pub seq: u64,
    /// The session's hash.
    pub id_hash: String,
    /// When it was revoked.
    pub at: Millis,
    /// Until when its KV copy may still exist, if it could not be deleted.
    pub lingers_until: Option<Millis>,
}

/// One read of the revocation feed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedPage {
    /// The rows, oldest first.
    pub rows: Vec<Revocation>,
    /// The position the next read starts after.
    pub next: u64,
}

/// What session code works with: KV, D1, a clock to wait out KV's write rule, this
/// isolate's record of D1 checks, and the config's lifetime.
pub struct SessionStores<'a, K, D, T> {
    /// KV, the read path.
    pub kv: &'a K,
    /// D1, the authority.
    pub db: &'a D,
    /// Waits before retrying a KV write.
    pub timer: &'a T,
    /// This isolate's D1 checks.
    pub checks: &'a SessionChecks,
    /// How long sessions live.
    pub lifetime: Lifetime,
}

/// The D1 side of sessions.
#[allow(async_fn_in_trait)]
pub trait SessionDb {
    /// Stores a new session.
    async fn insert(&self, s: &SessionRecord) -> StoreResult<()>;
    /// The session with this hash, valid or not.
    async fn find(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Marks one session revoked and appends it to the revocation feed, in one
    /// transaction; false if it was not active.
    async fn revoke(&self, id_hash: &str, now: Millis) -> StoreResult<bool>;
    /// Revokes every active session of a user (but the one whose hash is `except`) and
    /// appends them to the feed, in one transaction; returns their hashes.
    async fn revoke_user(
        &self,
        user: &UserId,
        except: Option<&str>,
        now: Millis,
    ) -> StoreResult<Vec<String>>;
    /// Active sessions, newest first, after the cursor; at most `limit` rows.
    async fn list(&self, q: &ListQuery, now: Millis, limit: u32)
        -> StoreResult<Vec<SessionRecord>>;
    /// Moves the idle deadline of a valid session to `idle_expires_at`, if its current one
    /// is at most `due_until` (renewed long enough ago), in one statement. The renewed
    /// session, or `None` if nothing changed.
    async fn renew(
        &self,
        id_hash: &str,
        now: Millis,
        idle_expires_at: Millis,
        due_until: Millis,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Marks the session with this handle revoked (if it is not already; the feed gets it
    /// then, in the same transaction); returns its hash, or `None` if no session has that
    /// handle (of `owner`'s, when given).
    async fn revoke_handle(
        &self,
        handle: &SessionHandle,
        owner: Option<&UserId>,
        now: Millis,
    ) -> StoreResult<Option<String>>;
    /// The revocation feed after position `cursor`, oldest first, at most `limit` rows;
    /// without a position (a new reader), the rows revoked at `since` or later and those
    /// still lingering at `now`. The page says where the next read starts.
    async fn revocations(
        &self,
        cursor: Option<u64>,
        since: Millis,
        now: Millis,
        limit: u32,
    ) -> StoreResult<FeedPage>;
    /// A revoked session whose KV copy could not be deleted: the feed names it until that
    /// copy has expired (its idle deadline, or KV's minimum lifetime from `now`).
    async fn linger(&self, id_hash: &str, now: Millis) -> StoreResult<()>;
    /// [`SessionDb::linger`] for every unexpired session of `user`, in one statement.
    async fn linger_user(&self, user: &UserId, now: Millis) -> StoreResult<()>;
    /// Deletes at most `limit` sessions whose idle deadline (never later than the absolute
    /// one) is before `expired_before`,
    /// and at most `limit` feed rows revoked before `revoked_before` that do not linger at
    /// `now`.
    async fn prune(
        &self,
        expired_before: Millis,
        revoked_before: Millis,
        now: Millis,
        limit: u32,
    ) -> StoreResult<()>;
}

/// How much to trust KV when resolving a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// KV first, D1 on a miss (reads).
    Fast,
    /// D1 only (revocation). A KV copy of a session D1 refuses is removed on the way.
    Authoritative,
    /// KV only: a session without a KV copy is refused without asking D1 (for a client over
    /// its failed-authentication allowance, whose guesses must not reach D1).
    CopyOnly,
}

#[cfg(test)]
mod tests;
