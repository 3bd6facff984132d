//! The Workers KV adapter: implements the domain's [`Kv`] port. Every call is metered; a
//! missing binding is a storage error (the routes then degrade as documented) rather than a
//! panic.

use crate::clock::now_ms;
use crate::domain::json;
use crate::domain::kv::{Found, Kv, KvKey, ListedKey, PutOptions, KV_MAX_LIST_KEYS};
use crate::error::{StorageError, StoreResult};
use crate::storage::meter::{KvOp, Meter};
use crate::storage::{describe, env_value, text_of};
use serde_json::Value;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Object, Promise, Reflect};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

/// The binding name in `wrangler.toml`.
pub const BINDING: &str = "CACHE";

#[wasm_bindgen(inline_js = "
const utf8 = new TextEncoder();
export async function getMany(namespace, keysJson) {
  const keys = JSON.parse(keysJson);
  const found = await namespace.get(keys, 'text');
  return utf8.encode(JSON.stringify(keys.map((key) => found.get(key) ?? null)));
}
export async function getBytes(namespace, key) {
  return namespace.get(key, 'arrayBuffer');
}
export async function openWithMetadata(namespace, key) {
  const { value, metadata } = await namespace.getWithMetadata(key, { type: 'stream' });
  return value === null ? null : [value, metadata == null ? null : JSON.stringify(metadata)];
}
export async function readValue(stream) {
  return new Response(stream).arrayBuffer();
}
export function dropValue(stream) {
  stream.cancel().catch(() => {});
}
export async function putText(namespace, key, value, ttl, metadataJson) {
  const options = {};
  if (ttl !== undefined) options.expirationTtl = ttl;
  if (metadataJson !== undefined) options.metadata = JSON.parse(metadataJson);
  return namespace.put(key, value, options);
}
export async function deleteKey(namespace, key) {
  return namespace.delete(key);
}
export async function listKeys(namespace, prefix, limit) {
  const { keys } = await namespace.list({ prefix, limit });
  return JSON.stringify(keys.map((k) => [k.name, k.metadata ?? null]));
}")]
extern "C" {
    // Every helper is `async`: a failure, thrown at once or later, is a rejected promise,
    // which `WorkersKv::run` reports like any other (no `catch` glue per binding).

    /// A bulk read whose keys and values cross between Wasm and JS as one JSON text each way,
    /// rather than one string per key and per value (the values' text as UTF-8 bytes).
    #[wasm_bindgen(js_name = getMany)]
    fn get_many_json(namespace: &KvNamespace, keys_json: &str) -> Promise;

    /// A read as an `ArrayBuffer` (`null` if absent): the value crosses into the Wasm as
    /// bytes (see [`crate::storage::text_of`]).
    #[wasm_bindgen(js_name = getBytes)]
    fn get_bytes(namespace: &KvNamespace, key: &str) -> Promise;

    /// A read with metadata whose value is not read yet: `[stream, metadata JSON or null]`
    /// (`null` if absent). The value is then read ([`read_value`]) or cancelled unread
    /// ([`drop_value`]), so a caller that needs only the metadata never transfers the value.
    #[wasm_bindgen(js_name = openWithMetadata)]
    fn open_with_metadata(namespace: &KvNamespace, key: &str) -> Promise;

    /// The whole of a value's stream, as an `ArrayBuffer`.
    #[wasm_bindgen(js_name = readValue)]
    fn read_value(stream: &JsValue) -> Promise;

    /// Cancels a value's stream unread (the runtime stops fetching it).
    #[wasm_bindgen(js_name = dropValue)]
    fn drop_value(stream: &JsValue);

    /// A write with its options object (`expirationTtl`, `metadata`) built in JS from the
    /// TTL and the metadata's JSON text (which the Worker wrote: it parses).
    #[wasm_bindgen(js_name = putText)]
    fn put_text(
        namespace: &KvNamespace,
        key: &str,
        value: &str,
        ttl: Option<f64>,
        metadata_json: Option<String>,
    ) -> Promise;

    /// A listing of at most `limit` keys, as the JSON text `[[name, metadata], ...]`.
    #[wasm_bindgen(js_name = listKeys)]
    fn list_json(namespace: &KvNamespace, prefix: &str, limit: u32) -> Promise;

    /// A delete.
    #[wasm_bindgen(js_name = deleteKey)]
    fn delete_key(namespace: &KvNamespace, key: &str) -> Promise;
}

#[wasm_bindgen]
extern "C" {
    /// The runtime's `KVNamespace`, called directly: one JS call per operation, without the
    /// option objects `worker::KvStore` serialises through `serde-wasm-bindgen` on every call.
    #[wasm_bindgen(extends = Object)]
    #[derive(Clone)]
    type KvNamespace;
}

/// The KV binding, metered.
#[derive(Clone)]
pub struct WorkersKv {
    store: Option<KvNamespace>,
    meter: Rc<Meter>,
}

impl WorkersKv {
    /// The binding from the environment (absent: every call fails as a storage error).
    pub fn from_env(env: &Env, meter: Rc<Meter>) -> Self {
        let store = Some(env_value(env, BINDING))
            .filter(JsValue::is_object)
            .map(JsCast::unchecked_into);
        WorkersKv { store, meter }
    }

    /// A copy for `waitUntil` work, whose operations are not counted in this response.
    pub fn detached(&self) -> Self {
        WorkersKv {
            store: self.store.clone(),
            meter: Rc::new(Meter::default()),
        }
    }

    fn store(&self) -> StoreResult<&KvNamespace> {
        self.store
            .as_ref()
            .ok_or_else(|| StorageError::new("KV binding is not configured"))
    }

    /// Awaits the operation's promise, meters it, and names a failure.
    async fn run(&self, op: KvOp, call: Promise) -> StoreResult<JsValue> {
        let started = now_ms();
        let result = JsFuture::from(call).await;
        self.meter.kv(op, now_ms() - started);
        result.map_err(|e| StorageError(format!("KV {op:?} failed: {}", describe(&e))))
    }

    /// One read of `key` and its metadata, whose value is read only if `want` asks for it
    /// (else its stream is cancelled unread). Not generic: one copy for every caller.
    async fn read_with_metadata(
        &self,
        key: &KvKey,
        want: &mut dyn FnMut(Option<&Value>) -> bool,
    ) -> StoreResult<Option<Found>> {
        let opened = self.run(KvOp::Read, open_with_metadata(self.store()?, key.as_str()));
        let opened = opened.await?;
        if opened.is_null() {
            return Ok(None);
        }
        let stream = Reflect::get_u32(&opened, 0).unwrap_or_default();
        let metadata = match Reflect::get_u32(&opened, 1)
            .ok()
            .and_then(|m| m.as_string())
        {
            Some(text) => match json::read(&text) {
                Ok(metadata) => Some(metadata),
                Err(e) => {
                    drop_value(&stream);
                    return Err(StorageError(format!("KV read with metadata: {e}")));
                }
            },
            None => None,
        };
        if !want(metadata.as_ref()) {
            drop_value(&stream);
            return Ok(Some((None, metadata)));
        }
        // The read was counted when it opened; the time spent reading its value is added.
        let started = now_ms();
        let bytes = JsFuture::from(read_value(&stream)).await;
        self.meter.kv_time(now_ms() - started);
        let bytes = bytes.map_err(|e| StorageError(format!("KV read failed: {}", describe(&e))))?;
        Ok(Some((text_of(&bytes), metadata)))
    }
}

impl Kv for WorkersKv {
    async fn get(&self, key: &KvKey) -> StoreResult<Option<String>> {
        let store = self.store()?;
        let value = self.run(KvOp::Read, get_bytes(store, key.as_str()));
        Ok(text_of(&value.await?))
    }

    async fn get_with_metadata(
        &self,
        key: &KvKey,
    ) -> StoreResult<Option<(String, Option<serde_json::Value>)>> {
        let found = self.read_with_metadata(key, &mut |_| true).await?;
        Ok(found.and_then(|(value, metadata)| value.map(|v| (v, metadata))))
    }

    async fn get_with_metadata_if(
        &self,
        key: &KvKey,
        want: impl FnOnce(Option<&Value>) -> bool,
    ) -> StoreResult<Option<Found>> {
        let mut want = Some(want);
        let mut want = |metadata: Option<&Value>| want.take().is_some_and(|w| w(metadata));
        self.read_with_metadata(key, &mut want).await
    }

    async fn get_bulk(&self, keys: &[KvKey]) -> StoreResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.store()?;
        let names: Vec<&str> = keys.iter().map(KvKey::as_str).collect();
        let names_json = serde_json::to_string(&names).unwrap_or_default();
        let found = self.run(KvOp::Read, get_many_json(store, &names_json));
        let values = match json::read(&text_of(&found.await?).unwrap_or_default()) {
            Ok(Value::Array(values)) => values,
            Ok(_) => return Err(StorageError("KV bulk read: not an array".into())),
            Err(e) => return Err(StorageError(format!("KV bulk read: {e}"))),
        };
        let mut texts: Vec<Option<String>> = Vec::with_capacity(names.len());
        for value in values {
            texts.push(match value {
                Value::String(s) => Some(s),
                _ => None,
            });
        }
        texts.resize(names.len(), None);
        Ok(texts)
    }

    async fn put(&self, key: &KvKey, value: &str, opts: PutOptions) -> StoreResult<()> {
        let store = self.store()?;
        let ttl = opts.ttl.map(|ttl| ttl.seconds() as f64);
        let metadata = opts.metadata.map(|meta| json::text(meta.value()));
        let call = put_text(store, key.as_str(), value, ttl, metadata);
        self.run(KvOp::Write, call).await.map(|_| ())
    }

    async fn delete(&self, key: &KvKey) -> StoreResult<()> {
        let store = self.store()?;
        let call = delete_key(store, key.as_str());
        self.run(KvOp::Delete, call).await.map(|_| ())
    }

    async fn list(&self, prefix: &KvKey) -> StoreResult<Vec<ListedKey>> {
        let store = self.store()?;
        let call = list_json(store, prefix.as_str(), KV_MAX_LIST_KEYS as u32);
        let json = self.run(KvOp::List, call).await?.as_string();
        let keys = match json::read(json.as_deref().unwrap_or("[]")) {
            Ok(Value::Array(keys)) => keys,
            Ok(_) => return Err(StorageError("KV list: not an array".into())),
            Err(e) => return Err(StorageError(format!("KV list: {e}"))),
        };
        // A plain loop, not `collect` into a `Result`: each such `collect` is its own
        // iterator adapter code in the Wasm.
        let mut listed = Vec::with_capacity(keys.len());
        for entry in keys {
            listed.push(listed_key(entry)?);
        }
        Ok(listed)
    }
}

/// One `[name, metadata]` entry of a listing.
fn listed_key(entry: Value) -> StoreResult<ListedKey> {
    match entry {
        Value::Array(mut pair) if pair.len() == 2 && pair[0].is_string() => {
            let metadata = pair.pop().filter(|m| !m.is_null());
            let name = pair.pop().and_then(|v| v.as_str().map(str::to_owned));
            Ok(ListedKey {
                name: name.unwrap_or_default(),
                metadata,
            })
        }
        _ => Err(StorageError(
            "KV list: an entry is not [name, metadata]".into(),
        )),
    }
}
