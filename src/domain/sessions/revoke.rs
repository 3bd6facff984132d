//! Revocation: one session (logout, or by its handle) or all of a user's, in D1 first
//! and then their KV copies.

use super::checks::FEED_HORIZON_MS;
use super::{delete_copy, hash_id, kv_key, remove_copy, SessionDb, SessionStores};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::{SessionHandle, SessionId, UserId};
use crate::domain::kv::Kv;
use crate::domain::time::{Millis, Timer};
use serde::Serialize;

/// Logout of a session D1 has just vouched for. If it was revoked meanwhile: unauthorized. If the
/// KV delete fails twice: unavailable (D1 already refuses the session), and a retry removes the copy.
pub async fn revoke<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    id: &SessionId,
) -> DomainResult<()> {
    let hash = hash_id(id);
    let key = kv_key(&hash)?;
    let revoked = st.db.revoke(&hash, now).await?;
    if !revoked {
        st.checks.note_unknown(&hash, now);
        remove_copy(st.kv, &key).await;
        return Err(DomainError::Unauthorized);
    }
    drop_copy(st, &hash, now).await?;
    Ok(())
}

/// After D1 has revoked a session: this isolate refuses it at once, and its KV copy goes.
/// A delete KV refuses twice is reported (D1 and the feed already refuse the session), and
/// the feed is told the copy lingers, so that isolates started later still refuse it until
/// the copy expires.
async fn drop_copy<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    hash: &str,
    now: Millis,
) -> DomainResult<()> {
    st.checks
        .note_revoked(hash, now.plus_ms(FEED_HORIZON_MS), now);
    let Err(e) = delete_copy(st, &kv_key(hash)?).await else {
        return Ok(());
    };
    if let Err(linger) = st.db.linger(hash, now).await {
        crate::log::warn_cause("revoked session's KV copy lingers, unrecorded", &linger.0);
    }
    Err(e.into())
}

/// What `DELETE /admin/users/:userId/sessions` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Revoked {
    /// How many active sessions were revoked.
    pub revoked: usize,
}

/// At most this many KV copies are deleted by one request (KV allows 1,000 operations per
/// invocation, and each delete is a round trip). Past that, every copy of the user is
/// recorded in the revocation feed as lingering, in one statement: every isolate refuses
/// them until they expire, deleted or not.
pub const MAX_COPY_DELETES: usize = 100;

/// Revokes every active session of `user` but the one whose hash is `except` (a user ending
/// their other sessions), in D1 and then their KV copies (up to [`MAX_COPY_DELETES`] copies
/// are deleted, the rest recorded as lingering; if a delete fails twice, unavailable: D1 and
/// the feed already refuse them all).
pub async fn revoke_user<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    user: &UserId,
    except: Option<&str>,
) -> DomainResult<Revoked> {
    let hashes = st.db.revoke_user(user, except, now).await?;
    if hashes.len() > MAX_COPY_DELETES {
        st.db.linger_user(user, now).await?;
    }
    let mut failed = None;
    for (i, hash) in hashes.iter().enumerate() {
        if i >= MAX_COPY_DELETES {
            st.checks
                .note_revoked(hash, now.plus_ms(FEED_HORIZON_MS), now);
        } else if let Err(e) = drop_copy(st, hash, now).await {
            failed = Some(e);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(Revoked {
            revoked: hashes.len(),
        }),
    }
}

/// Revokes the one session with this handle (of `owner`'s only, when given: a user ending
/// one of their own) in D1, then drops its KV copy. Revoking a session that is already
/// revoked or expired succeeds again (the KV delete is repeated, so a retry after a failed
/// delete removes the copy); an unknown handle, or another user's, is not found. If the KV
/// delete fails it is unavailable and D1 already refuses the session.
pub async fn revoke_handle<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    handle: &SessionHandle,
    owner: Option<&UserId>,
) -> DomainResult<()> {
    let hash = st
        .db
        .revoke_handle(handle, owner, now)
        .await?
        .ok_or(DomainError::NotFound)?;
    drop_copy(st, &hash, now).await?;
    Ok(())
}
