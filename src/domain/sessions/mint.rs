//! Session ids, handles and their stored hash, and minting a session: D1 first, then KV.

use super::{cache, MintedSession, NewSession, SessionDb, SessionRecord, SessionStores};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::{SessionHandle, SessionId};
use crate::domain::kv::Kv;
use crate::domain::time::{Millis, Timer};
use sha2::{Digest, Sha256};

/// The stored form of a session id: SHA-256, lowercase hex.
pub fn hash_id(id: &SessionId) -> String {
    crate::domain::ids::hex(&Sha256::digest(id.as_str().as_bytes()))
}

/// The platform's random source failed (its error's text would link `getrandom`'s messages).
fn random_failed() -> DomainError {
    DomainError::Internal("the platform's random source (getrandom) failed".into())
}

/// A fresh session id: 256 bits from the platform's cryptographic random source.
pub fn new_id() -> DomainResult<SessionId> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| random_failed())?;
    Ok(SessionId::from_random(&bytes))
}

/// A fresh session handle: 128 bits from the same source, unrelated to the id.
pub fn new_handle() -> DomainResult<SessionHandle> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| random_failed())?;
    Ok(SessionHandle::from_random(&bytes))
}

/// Mints a session: D1 first (the authority), then the KV copy.
pub async fn create<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    new: NewSession,
) -> DomainResult<MintedSession> {
    let id = new_id()?;
    let expires_at = now.plus_seconds(st.lifetime.absolute_seconds);
    let rec = SessionRecord {
        id_hash: hash_id(&id),
        user_id: new.user.as_str().to_string(),
        email: new.email.as_str().to_string(),
        created_at: now,
        expires_at,
        idle_expires_at: st.lifetime.idle_deadline(now, expires_at),
        revoked_at: None,
        handle: Some(new_handle()?.as_str().to_string()),
    };
    st.db.insert(&rec).await?;
    cache(st.kv, &rec, now).await;
    Ok(MintedSession {
        session_id: id,
        view: rec.view(),
    })
}
