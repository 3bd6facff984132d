//! Cloudflare Access's signing keys: implements the domain's [`AccessKeys`] port with the
//! runtime's `fetch` and Web Crypto.
//!
//! The team's keys are fetched from its certs URL on first need and kept by the isolate. A
//! token naming a key the isolate does not have makes it fetch them again (Access rotates its
//! keys), at most once per [`REFETCH_MS`], so tokens with made-up key ids cost at most one
//! fetch per isolate in that time; after a failed fetch the next waits as long. Each fetch
//! replaces the set, so a key the team withdrew is dropped with it. While the keys cannot be
//! fetched, an unknown key is an error (unavailable), not a refusal.

use crate::domain::access::AccessKeys;
use crate::error::{StorageError, StoreResult};
use crate::storage::describe;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::js_sys::Promise;
use worker::wasm_bindgen_futures::JsFuture;

/// The least time between two fetches of the keys by one isolate.
pub const REFETCH_MS: u32 = 10_000;

#[wasm_bindgen(inline_js = "
const access = { url: null, keys: new Map(), refetchedAt: -Infinity, failedAt: -Infinity,
  loading: null, error: null };
async function load(url) {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`Access certs: HTTP ${response.status}`);
  const keys = new Map();
  for (const jwk of (await response.json()).keys ?? []) {
    if (jwk.kty !== 'RSA' || typeof jwk.kid !== 'string') continue;
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const key = { kty: 'RSA', n: jwk.n, e: jwk.e };
    keys.set(jwk.kid, await crypto.subtle.importKey('jwk', key, algorithm, false, ['verify']));
  }
  Object.assign(access, { url, keys, error: null });
}
export async function accessVerify(url, kid, signed, signature, pause) {
  const now = Date.now(), loaded = access.url === url;
  const known = loaded && access.keys.has(kid);
  const due = now - access.failedAt >= pause && (!loaded || now - access.refetchedAt >= pause);
  if (!known && !access.loading && due) {
    if (loaded) access.refetchedAt = now;
    access.loading = load(url)
      .catch((e) => { Object.assign(access, { error: e, failedAt: Date.now() }); })
      .finally(() => { access.loading = null; });
  }
  if (!known && access.loading) await access.loading;
  const key = access.url === url ? access.keys.get(kid) : undefined;
  if (key) return crypto.subtle.verify('RSASSA-PKCS1-v1_5', key, signature, signed);
  if (access.error) throw access.error;
  return false;
}")]
extern "C" {
    /// Verifies an RS256 signature with the team's key `kid` from `url`, fetching the keys
    /// as the module documentation says: a promise of a boolean, rejected when the keys
    /// cannot be had.
    #[wasm_bindgen(js_name = accessVerify)]
    fn access_verify(
        url: &str,
        kid: &str,
        signed: &[u8],
        signature: &[u8],
        refetch_ms: u32,
    ) -> Promise;
}

/// The keys of the team whose certs are at `url`.
pub struct AccessCerts {
    /// The team's certs URL.
    pub url: String,
}

impl AccessKeys for AccessCerts {
    async fn verify(&self, kid: &str, signed: &[u8], signature: &[u8]) -> StoreResult<bool> {
        let verdict = access_verify(&self.url, kid, signed, signature, REFETCH_MS);
        match JsFuture::from(verdict).await {
            Ok(v) => Ok(v.as_bool() == Some(true)),
            Err(e) => Err(StorageError(describe(&e))),
        }
    }
}
