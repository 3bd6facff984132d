//! The Workers KV adapter: implements the domain's [`Kv`] port. Every call is metered; a
//! missing binding is a storage error (the routes then degrade as documented) rather than a
//! panic.

use crate::clock::now_ms;
use crate::domain::kv::{Kv, KvKey, ListedKey, PutOptions, KV_MAX_LIST_KEYS};
use crate::error::{StorageError, StoreResult};
use crate::storage::meter::{KvOp, Meter};
use std::collections::HashMap;
use std::rc::Rc;
use worker::{Env, KvStore};

/// The binding name in `wrangler.toml`.
pub const BINDING: &str = "CACHE";

/// The KV binding, metered.
#[derive(Clone)]
pub struct WorkersKv {
    store: Option<KvStore>,
    meter: Rc<Meter>,
}

impl WorkersKv {
    /// The binding from the environment (absent: every call fails as a storage error).
    pub fn from_env(env: &Env, meter: Rc<Meter>) -> Self {
        WorkersKv {
            store: env.kv(BINDING).ok(),
            meter,
        }
    }

    /// A copy for `waitUntil` work, whose operations are not counted in this response.
    pub fn detached(&self) -> Self {
        WorkersKv {
            store: self.store.clone(),
            meter: Rc::new(Meter::default()),
        }
    }

    fn store(&self) -> StoreResult<&KvStore> {
        self.store
            .as_ref()
            .ok_or_else(|| StorageError::new("KV binding is not configured"))
    }

    fn done<T>(&self, op: KvOp, started: f64, r: Result<T, worker::KvError>) -> StoreResult<T> {
        self.meter.kv(op, now_ms() - started);
        r.map_err(|e| StorageError(format!("KV {op:?} failed: {e}")))
    }
}

impl Kv for WorkersKv {
    async fn get(&self, key: &KvKey) -> StoreResult<Option<String>> {
        let store = self.store()?;
        let t = now_ms();
        let r = store.get(key.as_str()).text().await;
        self.done(KvOp::Read, t, r)
    }

    async fn get_with_metadata(
        &self,
        key: &KvKey,
    ) -> StoreResult<Option<(String, Option<serde_json::Value>)>> {
        let store = self.store()?;
        let t = now_ms();
        let r = store
            .get(key.as_str())
            .text_with_metadata::<serde_json::Value>()
            .await;
        let (value, metadata) = self.done(KvOp::Read, t, r)?;
        Ok(value.map(|v| (v, metadata)))
    }

    async fn get_bulk(&self, keys: &[KvKey]) -> StoreResult<HashMap<String, Option<String>>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let store = self.store()?;
        let names: Vec<&str> = keys.iter().map(KvKey::as_str).collect();
        let t = now_ms();
        let r = store.get_bulk(&names).text().await;
        self.done(KvOp::Read, t, r)
    }

    async fn put(&self, key: &KvKey, value: &str, opts: PutOptions) -> StoreResult<()> {
        let store = self.store()?;
        let t = now_ms();
        let r = async {
            let mut put = store.put(key.as_str(), value)?;
            if let Some(ttl) = opts.ttl {
                put = put.expiration_ttl(ttl.seconds());
            }
            if let Some(meta) = opts.metadata {
                put = put.metadata(meta.value())?;
            }
            put.execute().await
        }
        .await;
        self.done(KvOp::Write, t, r)
    }

    async fn delete(&self, key: &KvKey) -> StoreResult<()> {
        let store = self.store()?;
        let t = now_ms();
        let r = store.delete(key.as_str()).await;
        self.done(KvOp::Delete, t, r)
    }

    async fn list(&self, prefix: &KvKey) -> StoreResult<Vec<ListedKey>> {
        let store = self.store()?;
        let t = now_ms();
        let r = store
            .list()
            .prefix(prefix.as_str().to_string())
            .limit(KV_MAX_LIST_KEYS as u64)
            .execute()
            .await;
        let listed = self.done(KvOp::List, t, r)?;
        Ok(listed
            .keys
            .into_iter()
            .map(|k| ListedKey {
                name: k.name,
                metadata: k.metadata,
            })
            .collect())
    }
}
