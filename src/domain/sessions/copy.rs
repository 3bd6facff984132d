//! The KV copy of a session: its key, writing it (never outliving the session), reading
//! it, and removing it.

use super::{SessionRecord, SessionStores, SessionView};
use crate::domain::error::{DomainError, DomainResult, StoreResult};
use crate::domain::json;
use crate::domain::kv::KV_WRITE_INTERVAL_MS;
use crate::domain::kv::{Kv, KvKey, KvMetadata, PutOptions, Ttl, KV_MIN_TTL_SECONDS};
use crate::domain::time::{Millis, Timer};

const KV_PREFIX: &str = "session:";

/// The KV key of a session's copy, by the hash of its id.
pub fn kv_key(id_hash: &str) -> DomainResult<KvKey> {
    KvKey::new(KV_PREFIX, id_hash)
}

/// Writes the KV copy of a session, expiring at its idle deadline; true if written. KV's
/// minimum TTL is 60 s: a copy whose idle deadline is nearer lives 60 s (its view still
/// carries the deadline), and a session with less than 60 s to its absolute deadline gets
/// no copy, so no copy outlives the session. Best effort: D1 is the authority, and a
/// missing KV entry is found through D1 on the next read.
pub(super) async fn cache<K: Kv>(kv: &K, rec: &SessionRecord, now: Millis) -> bool {
    if now.seconds_until(rec.expires_at) < KV_MIN_TTL_SECONDS {
        return false;
    }
    let result = async {
        let view = rec.view();
        let text =
            serde_json::to_string(&view).map_err(|e| DomainError::Internal(e.to_string()))?;
        // The metadata is the same document: read back from the text rather than serialised
        // a second time through `serde_json`'s Value serializer (more Wasm for one call).
        let meta =
            KvMetadata::new(json::read(&text).map_err(|e| DomainError::Internal(e.to_string()))?)?;
        let opts = PutOptions {
            ttl: Some(Ttl::at_least_minimum(
                now.seconds_until(rec.idle_expires_at),
            )),
            metadata: Some(meta),
        };
        kv.put(&kv_key(&rec.id_hash)?, &text, opts)
            .await
            .map_err(DomainError::from)
    }
    .await;
    if let Err(e) = &result {
        crate::log::warn(&format!("session KV write skipped: {e}"));
    }
    result.is_ok()
}

pub(super) async fn read_copy<K: Kv>(kv: &K, key: &KvKey) -> Option<SessionView> {
    match kv.get(key).await {
        Ok(Some(text)) => json::read(&text)
            .ok()
            .and_then(|v| SessionView::from_json(&v)),
        Ok(None) => None,
        Err(e) => {
            crate::log::warn_cause("session KV read failed, asking D1", &e.0);
            None
        }
    }
}

/// Removes a KV copy D1 no longer backs (a failed delete, say). Best effort.
pub(super) async fn remove_copy<K: Kv>(kv: &K, key: &KvKey) {
    if let Err(e) = kv.delete(key).await {
        crate::log::warn_cause("stale session KV cleanup failed", &e.0);
    }
}

/// Deletes a KV copy; a delete KV refuses (a write to the key less than a second ago) is
/// retried once a second later.
pub(super) async fn delete_copy<K: Kv, D, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    key: &KvKey,
) -> StoreResult<()> {
    if st.kv.delete(key).await.is_ok() {
        return Ok(());
    }
    st.timer.sleep(KV_WRITE_INTERVAL_MS).await;
    st.kv.delete(key).await
}
