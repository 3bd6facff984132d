//! Resolving a presented session id to its session: KV first, checked against the
//! revocation feed; D1 when KV misses (or the copy's idle deadline has passed); renewal of
//! the idle deadline; read-repair that cannot resurrect.

use super::checks::FeedAge;
use super::{cache, delete_copy, hash_id, kv_key, read_copy, read_feed, remove_copy};
use super::{Check, SessionDb, SessionRecord, SessionStores, SessionView};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::SessionId;
use crate::domain::kv::{Kv, KvKey};
use crate::domain::time::{Millis, Timer};

/// Resolves a presented session id to its session, or unauthorized.
pub async fn authenticate<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    id: &SessionId,
    check: Check,
) -> DomainResult<SessionView> {
    let hash = hash_id(id);
    let key = kv_key(&hash)?;
    if check == Check::Authoritative {
        return authoritative(st, now, &hash, &key).await;
    }
    if st.checks.refused(&hash, now) {
        return Err(DomainError::Unauthorized);
    }
    let view = match read_copy(st.kv, &key).await {
        Some(view) => accept_copy(st, now, &hash, view).await?,
        None if check == Check::CopyOnly => return Err(DomainError::Unauthorized),
        None => {
            let rec = find_valid(st, now, &hash)
                .await?
                .ok_or(DomainError::Unauthorized)?;
            write_back(st, now, &rec).await?;
            rec.view()
        }
    };
    if st.lifetime.renewal_due(&view, now) {
        return renew(st, now, &hash, view).await;
    }
    Ok(view)
}

/// D1 only (logout): a KV copy of a session D1 refuses is removed on the way.
async fn authoritative<K: Kv, D: SessionDb, T>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    hash: &str,
    key: &KvKey,
) -> DomainResult<SessionView> {
    match find_valid(st, now, hash).await? {
        Some(rec) => Ok(rec.view()),
        None => {
            remove_copy(st.kv, key).await;
            Err(DomainError::Unauthorized)
        }
    }
}

/// Moves the idle deadline of a session in use: one attempt per isolate and
/// `renewAfterSeconds`, and one conditional D1 update, so one D1 write per interval however
/// many isolates try. The KV copy follows the new deadline (written as read-repair is, so
/// it cannot bring back a session revoked meanwhile). A failed attempt is retried by the
/// next request.
async fn renew<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    hash: &str,
    view: SessionView,
) -> DomainResult<SessionView> {
    let every_ms = i64::try_from(st.lifetime.renew_after_seconds * 1000).unwrap_or(i64::MAX);
    if !st.checks.claim_renewal(hash, now, every_ms) {
        return Ok(view);
    }
    let idle = st.lifetime.idle_deadline(now, view.expires_at);
    let due_until = st.lifetime.renewal_due_until(now);
    match st.db.renew(hash, now, idle, due_until).await {
        Ok(Some(rec)) => {
            write_back(st, now, &rec).await?;
            Ok(rec.view())
        }
        Ok(None) => Ok(view),
        Err(e) => {
            crate::log::warn_cause("session renewal failed, retried on next use", &e.0);
            st.checks.release_renewal(hash);
            Ok(view)
        }
    }
}

/// The session in D1 if D1 accepts it at `now`; remembers the answer in the isolate.
async fn find_valid<K, D: SessionDb, T>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    hash: &str,
) -> DomainResult<Option<SessionRecord>> {
    let rec = st.db.find(hash).await?.filter(|r| r.is_valid(now));
    if rec.is_none() {
        st.checks.note_unknown(hash, now);
    }
    Ok(rec)
}

/// A KV hit: accepted unless its deadline has passed or the revocation feed names it. The
/// feed is read first when this isolate's last read is older than the bound (a read that
/// fails leaves the copy trusted, logged: during a D1 outage the bound is KV's own). A copy
/// past its idle deadline is checked in D1, where a renewal elsewhere may have moved it.
async fn accept_copy<K, D: SessionDb, T>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    hash: &str,
    view: SessionView,
) -> DomainResult<SessionView> {
    if now >= view.expires_at {
        return Err(DomainError::Unauthorized);
    }
    if now >= view.idle_expires_at {
        return match find_valid(st, now, hash).await {
            Ok(Some(rec)) => Ok(rec.view()),
            _ => Err(DomainError::Unauthorized),
        };
    }
    if st.checks.feed_age(now) == FeedAge::Stale {
        match read_feed(st.db, st.checks, now).await {
            Ok(true) => {}
            // A backlog longer than one read (a mass revocation): until the feed is caught
            // up, D1 decides for each session.
            Ok(false) => {
                return match find_valid(st, now, hash).await? {
                    Some(rec) => Ok(rec.view()),
                    None => Err(DomainError::Unauthorized),
                }
            }
            Err(e) => crate::log::warn_cause("revocation feed unreadable, trusting KV", &e.0),
        }
    }
    // Asked again after the KV read: a feed read by a concurrent request may have named the
    // session meanwhile.
    if st.checks.refused(hash, now) {
        return Err(DomainError::Unauthorized);
    }
    Ok(view)
}

/// Read-repair that cannot resurrect: writes the copy, then asks D1 again. A session revoked
/// meanwhile (its revoker's KV delete may have come before this write) loses the copy
/// again, and the request is refused. If D1 cannot be asked again, the copy stays: the
/// revocation feed still names the session if it was revoked.
async fn write_back<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    rec: &SessionRecord,
) -> DomainResult<()> {
    if !cache(st.kv, rec, now).await {
        return Ok(());
    }
    match find_valid(st, now, &rec.id_hash).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            delete_copy(st, &kv_key(&rec.id_hash)?).await?;
            Err(DomainError::Unauthorized)
        }
        Err(e) => {
            crate::log::warn(&format!("session re-check after write-back failed: {e}"));
            Ok(())
        }
    }
}
