//! A reusable stale-while-revalidate cache over KV, generic over the value and its fetcher.
//!
//! The KV entry is a [`CachedCopy`] `{"data", "cachedAt", "ttl"}`:
//! * age < ttl: fresh (`HIT`);
//! * ttl <= age < 2*ttl: stale (`STALE`), served while the caller refreshes it in the
//!   background (single flight per key within an isolate);
//! * older or absent: fetched from the source (`MISS`) and stored.
//!
//! If the source fails while any copy exists, the copy is served as `STALE` (stale-if-error).
//! KV expires the entry after `max(60, 2*ttl)` seconds (KV refuses less than 60).

use crate::domain::error::{DomainError, DomainResult, StorageError, StoreResult};
use crate::domain::json;
use crate::domain::kv::{Kv, KvKey, PutOptions, Ttl};
use crate::domain::time::Millis;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;

/// What the cache keeps in KV: the value, when it was cached, and the TTL it was cached
/// with (seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedCopy<T> {
    /// The cached value.
    pub data: T,
    /// When it was read from the source.
    pub cached_at: Millis,
    /// Its freshness in seconds.
    pub ttl: u64,
}

/// Where a copy stands against its TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than the TTL.
    Fresh,
    /// Between one and two TTLs old.
    Stale,
    /// Two TTLs old or more.
    Expired,
}

/// Where an entry of age `now - cached_at` stands against `ttl` seconds. An entry from the
/// future (clock skew between locations) counts as fresh.
pub fn classify(cached_at: Millis, ttl_seconds: u64, now: Millis) -> Freshness {
    let age = now.ms_since(cached_at);
    let ttl = i64::try_from(ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    if age < ttl {
        Freshness::Fresh
    } else if age < ttl.saturating_mul(2) {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
}

/// What a request gets from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served fresh from KV.
    Hit,
    /// Served stale from KV (and refreshed in the background, or the source failed).
    Stale,
    /// Read from the source.
    Miss,
}

impl CacheStatus {
    /// The status in the cache's usual words: `HIT`, `STALE` or `MISS`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Stale => "STALE",
            CacheStatus::Miss => "MISS",
        }
    }
}

/// The outcome of a read through the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup<T> {
    /// `None`: the source has no such value.
    pub value: Option<T>,
    /// Where it came from.
    pub status: CacheStatus,
    /// The entry is stale: the caller should refresh it in the background.
    pub refresh: bool,
}

impl<T> Lookup<T> {
    fn of(value: Option<T>, status: CacheStatus, refresh: bool) -> Self {
        Lookup {
            value,
            status,
            refresh,
        }
    }
}

/// KV's expiry of a copy: twice the TTL, never below KV's minimum.
pub fn entry_ttl(ttl_seconds: u64) -> Ttl {
    Ttl::at_least_minimum(ttl_seconds.saturating_mul(2))
}

/// Decodes a stored copy; anything unreadable counts as absent.
pub fn decode<T: DeserializeOwned>(text: Option<&str>) -> Option<CachedCopy<T>> {
    decode_with(text, |data| T::deserialize(data).ok())
}

/// [`decode`] with `data` read by `read_data` (a hand decoder: see [`json`]).
pub fn decode_with<T>(
    text: Option<&str>,
    read_data: impl FnOnce(&Value) -> Option<T>,
) -> Option<CachedCopy<T>> {
    let doc = json::read(text?).ok()?;
    Some(CachedCopy {
        cached_at: json::millis_of(&doc, "cachedAt")?,
        ttl: doc.get("ttl")?.as_u64()?,
        data: read_data(doc.get("data")?)?,
    })
}

/// Writes a fresh copy of `data`.
pub async fn store<K: Kv, T: Serialize>(
    kv: &K,
    key: &KvKey,
    data: T,
    ttl_seconds: u64,
    now: Millis,
) -> StoreResult<()> {
    let copy = CachedCopy {
        data,
        cached_at: now,
        ttl: ttl_seconds,
    };
    let text = serde_json::to_string(&copy).map_err(|e| StorageError(e.to_string()))?;
    kv.put(key, &text, PutOptions::ttl(entry_ttl(ttl_seconds)))
        .await
}

/// Decides from an already-read copy, fetching only when the copy is expired or absent.
/// (The batch path classifies many copies itself so that all misses share one query.)
async fn resolve<K, T, F, Fut>(
    kv: &K,
    key: &KvKey,
    cached: Option<CachedCopy<T>>,
    ttl_seconds: u64,
    now: Millis,
    fetch: F,
) -> DomainResult<Lookup<T>>
where
    K: Kv,
    T: Serialize + Clone,
    F: FnOnce() -> Fut,
    Fut: Future<Output = StoreResult<Option<T>>>,
{
    let cached = match cached {
        Some(copy) => match classify(copy.cached_at, copy.ttl, now) {
            Freshness::Fresh => return Ok(Lookup::of(Some(copy.data), CacheStatus::Hit, false)),
            Freshness::Stale => return Ok(Lookup::of(Some(copy.data), CacheStatus::Stale, true)),
            Freshness::Expired => Some(copy.data),
        },
        None => None,
    };
    match fetch().await {
        Ok(Some(value)) => {
            if let Err(e) = store(kv, key, value.clone(), ttl_seconds, now).await {
                crate::log::warn_cause("SWR store skipped", &e.0);
            }
            Ok(Lookup::of(Some(value), CacheStatus::Miss, false))
        }
        Ok(None) => Ok(Lookup::of(None, CacheStatus::Miss, false)),
        Err(e) => match cached {
            Some(old) => {
                crate::log::warn_cause("source failed, serving a stale copy", &e.0);
                Ok(Lookup::of(Some(old), CacheStatus::Stale, false))
            }
            None => Err(DomainError::from(e)),
        },
    }
}

/// Reads `key` through the cache: one KV read, plus the fetcher only on a miss.
pub async fn get<K, T, F, Fut>(
    kv: &K,
    key: &KvKey,
    ttl_seconds: u64,
    now: Millis,
    fetch: F,
) -> DomainResult<Lookup<T>>
where
    K: Kv,
    T: Serialize + DeserializeOwned + Clone,
    F: FnOnce() -> Fut,
    Fut: Future<Output = StoreResult<Option<T>>>,
{
    get_with(kv, key, ttl_seconds, now, |text| decode(Some(text)), fetch).await
}

/// [`get`] with the stored copy read by `decode` (a hand decoder: see [`decode_with`]).
pub async fn get_with<K, T, R, F, Fut>(
    kv: &K,
    key: &KvKey,
    ttl_seconds: u64,
    now: Millis,
    decode: R,
    fetch: F,
) -> DomainResult<Lookup<T>>
where
    K: Kv,
    T: Serialize + Clone,
    R: FnOnce(&str) -> Option<CachedCopy<T>>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = StoreResult<Option<T>>>,
{
    let text = match kv.get(key).await {
        Ok(t) => t,
        Err(e) => {
            crate::log::warn_cause("SWR read failed, treating as a miss", &e.0);
            None
        }
    };
    let cached = text.as_deref().and_then(decode);
    resolve(kv, key, cached, ttl_seconds, now, fetch).await
}

/// The background half of a stale hit: fetch and store. Run it under a single flight.
pub async fn refresh<K, T, F, Fut>(kv: &K, key: &KvKey, ttl_seconds: u64, now: Millis, fetch: F)
where
    K: Kv,
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = StoreResult<Option<T>>>,
{
    let result = match fetch().await {
        Ok(Some(v)) => store(kv, key, v, ttl_seconds, now).await,
        Ok(None) => kv.delete(key).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        crate::log::warn_cause("background refresh failed", &e.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fake::{block_on, MemKv};
    use std::cell::Cell;

    #[test]
    fn copies_decode_by_hand_as_serde_does() {
        let text = r#"{"data":"x","cachedAt":5,"ttl":60}"#;
        let by_serde: CachedCopy<String> = serde_json::from_str(text).unwrap();
        let read = |v: &Value| v.as_str().map(str::to_owned);
        assert_eq!(decode_with(Some(text), read), Some(by_serde.clone()));
        assert_eq!(decode::<String>(Some(text)), Some(by_serde));
        for bad in [
            r#"{"data":"x","ttl":60}"#,
            r#"{"data":1,"cachedAt":5,"ttl":60}"#,
            r#"{"data":"x","cachedAt":5,"ttl":-1}"#,
            "[",
            "",
        ] {
            assert_eq!(decode_with(Some(bad), read), None, "{bad}");
            assert_eq!(decode::<String>(Some(bad)), None, "{bad}");
        }
        assert_eq!(decode::<String>(None), None);
    }

    const T0: Millis = Millis(1_000_000);

    fn t(ms: i64) -> Millis {
        T0.plus_ms(ms)
    }

    #[test]
    fn classify_every_boundary() {
        let ttl = 10;
        assert_eq!(classify(T0, ttl, T0), Freshness::Fresh);
        assert_eq!(classify(T0, ttl, t(9_999)), Freshness::Fresh);
        assert_eq!(classify(T0, ttl, t(10_000)), Freshness::Stale);
        assert_eq!(classify(T0, ttl, t(19_999)), Freshness::Stale);
        assert_eq!(classify(T0, ttl, t(20_000)), Freshness::Expired);
        assert_eq!(classify(T0, ttl, t(-5_000)), Freshness::Fresh, "clock skew");
        assert_eq!(classify(T0, u64::MAX, t(1)), Freshness::Fresh);
    }

    #[test]
    fn kv_expiry_is_twice_ttl_but_never_below_60() {
        assert_eq!(entry_ttl(1).seconds(), 60);
        assert_eq!(entry_ttl(30).seconds(), 60);
        assert_eq!(entry_ttl(300).seconds(), 600);
    }

    fn key() -> KvKey {
        KvKey::new("user:", "1").unwrap()
    }

    #[test]
    fn miss_then_hit_then_stale_then_expired() {
        let kv = MemKv::default();
        let calls = Cell::new(0);
        let fetch = || async {
            calls.set(calls.get() + 1);
            Ok(Some(calls.get()))
        };
        let l = block_on(get(&kv, &key(), 10, T0, fetch)).unwrap();
        assert_eq!(
            (l.value, l.status, l.refresh),
            (Some(1), CacheStatus::Miss, false)
        );
        assert_eq!(kv.entry("user:1").unwrap().ttl, Some(60));
        let l = block_on(get(&kv, &key(), 10, t(5_000), fetch)).unwrap();
        assert_eq!((l.value, l.status), (Some(1), CacheStatus::Hit));
        let l = block_on(get(&kv, &key(), 10, t(15_000), fetch)).unwrap();
        assert_eq!(
            (l.value, l.status, l.refresh),
            (Some(1), CacheStatus::Stale, true)
        );
        assert_eq!(
            calls.get(),
            1,
            "stale is served without waiting for the source"
        );
        let l = block_on(get(&kv, &key(), 10, t(25_000), fetch)).unwrap();
        assert_eq!((l.value, l.status), (Some(2), CacheStatus::Miss));
    }

    #[test]
    fn refresh_replaces_the_entry() {
        let kv = MemKv::default();
        block_on(store(&kv, &key(), "old", 10, T0)).unwrap();
        block_on(refresh(&kv, &key(), 10, t(15_000), || async {
            Ok(Some("new"))
        }));
        let l = block_on(get(&kv, &key(), 10, t(16_000), || async {
            Ok(Some("x".to_string()))
        }))
        .unwrap();
        assert_eq!(
            (l.value, l.status),
            (Some("new".to_string()), CacheStatus::Hit)
        );
    }

    #[test]
    fn stale_if_error_and_unavailable_without_a_copy() {
        let kv = MemKv::default();
        let failing = || async { Err::<Option<String>, _>(StorageError::new("d1 down")) };
        assert!(matches!(
            block_on(get(&kv, &key(), 10, T0, failing)),
            Err(DomainError::Unavailable(_))
        ));
        block_on(store(&kv, &key(), "old".to_string(), 10, T0)).unwrap();
        let l = block_on(get(&kv, &key(), 10, t(30_000), failing)).unwrap();
        assert_eq!(
            (l.value.as_deref(), l.status),
            (Some("old"), CacheStatus::Stale)
        );
    }

    #[test]
    fn absent_at_the_source_is_none_and_not_cached() {
        let kv = MemKv::default();
        let l = block_on(get(&kv, &key(), 10, T0, || async { Ok(None::<String>) })).unwrap();
        assert_eq!((l.value, l.status), (None, CacheStatus::Miss));
        assert!(kv.entry("user:1").is_none());
    }

    #[test]
    fn kv_read_failure_falls_through_to_the_source() {
        let kv = MemKv::default();
        kv.fail(true);
        let l = block_on(get(&kv, &key(), 10, T0, || async { Ok(Some(7)) })).unwrap();
        assert_eq!((l.value, l.status), (Some(7), CacheStatus::Miss));
    }
}
