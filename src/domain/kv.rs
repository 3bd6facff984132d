//! The KV port: the subset of Workers KV the domain uses (reads, reads of the metadata that
//! transfer the value only when wanted, bulk reads, writes, deletes and prefix listings),
//! and the platform's limits carried in types so that no call can break them. A [`KvKey`]
//! is at most 512 bytes, a [`Ttl`] at least 60 seconds, [`KvMetadata`] at most 1024 bytes,
//! and a [`WriteGate`] lets an isolate write a key at most once a second.

use crate::domain::error::{DomainError, StoreResult};
use crate::domain::keymap::KeyMap;
use crate::domain::time::Millis;
use std::borrow::Cow;
use std::cell::RefCell;

/// Workers KV refuses keys longer than 512 bytes.
pub const KV_MAX_KEY_BYTES: usize = 512;
/// Workers KV refuses metadata whose JSON is longer than 1024 bytes.
pub const KV_MAX_METADATA_BYTES: usize = 1024;
/// Workers KV refuses an `expirationTtl` below 60 seconds.
pub const KV_MIN_TTL_SECONDS: u64 = 60;
/// Workers KV accepts one write per second per key.
pub const KV_WRITE_INTERVAL_MS: i64 = 1_000;

/// A KV key known to be within KV's 512-byte limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KvKey(Cow<'static, str>);

impl KvKey {
    /// A constant key, checked at compile time when used in a `const`.
    pub const fn fixed(key: &'static str) -> Self {
        assert!(!key.is_empty() && key.len() <= KV_MAX_KEY_BYTES);
        KvKey(Cow::Borrowed(key))
    }

    /// Builds `prefix` + `rest`. Every key is built from validated parts, so an overlong key
    /// is a bug, reported as `internal` rather than sent to KV.
    pub fn new(prefix: &str, rest: &str) -> Result<Self, DomainError> {
        // Not `format!`: this runs for every key a request reads, and formatting costs more.
        let mut key = String::with_capacity(prefix.len() + rest.len());
        key.push_str(prefix);
        key.push_str(rest);
        if key.is_empty() || key.len() > KV_MAX_KEY_BYTES {
            return Err(DomainError::Internal(format!(
                "KV key of {} bytes",
                key.len()
            )));
        }
        Ok(KvKey(Cow::Owned(key)))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A KV `expirationTtl` known to be at least KV's 60-second minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(u64);

impl Ttl {
    /// Rounds up to KV's minimum: asking for less than 60 s gives 60 s.
    pub fn at_least_minimum(seconds: u64) -> Self {
        Ttl(seconds.max(KV_MIN_TTL_SECONDS))
    }

    /// The TTL in seconds.
    pub fn seconds(self) -> u64 {
        self.0
    }
}

/// KV metadata known to serialise within KV's 1024-byte limit.
#[derive(Debug, Clone, PartialEq)]
pub struct KvMetadata(serde_json::Value);

impl KvMetadata {
    /// Checks the serialised size; an oversize value is a bug (`internal`).
    pub fn new(value: serde_json::Value) -> Result<Self, DomainError> {
        let len = crate::domain::json::text(&value).len();
        if len > KV_MAX_METADATA_BYTES {
            return Err(DomainError::Internal(format!("KV metadata of {len} bytes")));
        }
        Ok(KvMetadata(value))
    }

    /// The metadata as JSON.
    pub fn value(&self) -> &serde_json::Value {
        &self.0
    }
}

/// Options of a KV write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Expiry after the write.
    pub ttl: Option<Ttl>,
    /// Metadata stored beside the value.
    pub metadata: Option<KvMetadata>,
}

impl PutOptions {
    /// A write that expires after `ttl`.
    pub fn ttl(ttl: Ttl) -> Self {
        PutOptions {
            ttl: Some(ttl),
            metadata: None,
        }
    }
}

/// Workers KV returns at most 1000 keys per listing.
pub const KV_MAX_LIST_KEYS: usize = 1000;

/// One key of a listing, with the metadata stored beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedKey {
    /// The key.
    pub name: String,
    /// Its metadata, if it was written with some.
    pub metadata: Option<serde_json::Value>,
}

/// What [`Kv::get_with_metadata_if`] found: the value if it was wanted, and the metadata.
pub type Found = (Option<String>, Option<serde_json::Value>);

/// The subset of Workers KV the domain uses. Values are JSON text.
#[allow(async_fn_in_trait)]
pub trait Kv {
    /// One read; `None` when the key is absent.
    async fn get(&self, key: &KvKey) -> StoreResult<Option<String>>;
    /// One read of the value and its metadata (one KV operation, as `get`).
    async fn get_with_metadata(
        &self,
        key: &KvKey,
    ) -> StoreResult<Option<(String, Option<serde_json::Value>)>> {
        Ok(self.get(key).await?.map(|v| (v, None)))
    }
    /// One read of the metadata that transfers the value only if `want` asks for it, given
    /// the metadata: `None` when the key is absent, else the value (`None` when not wanted)
    /// and the metadata. One KV operation either way; an unwanted value is never read.
    async fn get_with_metadata_if(
        &self,
        key: &KvKey,
        want: impl FnOnce(Option<&serde_json::Value>) -> bool,
    ) -> StoreResult<Option<Found>> {
        Ok(self.get_with_metadata(key).await?.map(|(value, metadata)| {
            let value = want(metadata.as_ref()).then_some(value);
            (value, metadata)
        }))
    }
    /// One read of the metadata alone (the value is not transferred): `None` when the key is
    /// absent, `Some(None)` when it is present without metadata.
    async fn metadata(&self, key: &KvKey) -> StoreResult<Option<Option<serde_json::Value>>> {
        let found = self.get_with_metadata_if(key, |_| false).await?;
        Ok(found.map(|(_, metadata)| metadata))
    }
    /// One bulk read (at most 100 keys): the values in the order of `keys`, `None` where
    /// absent.
    async fn get_bulk(&self, keys: &[KvKey]) -> StoreResult<Vec<Option<String>>>;
    /// One write.
    async fn put(&self, key: &KvKey, value: &str, opts: PutOptions) -> StoreResult<()>;
    /// One delete.
    async fn delete(&self, key: &KvKey) -> StoreResult<()>;
    /// One listing: the keys starting with `prefix`, in key order, with their metadata (at
    /// most [`KV_MAX_LIST_KEYS`]; the rest are not read).
    async fn list(&self, prefix: &KvKey) -> StoreResult<Vec<ListedKey>>;
}

/// Beyond this many tracked keys, entries older than the interval are dropped.
const MAX_TRACKED: usize = 10_000;

/// KV's one-write-per-second-per-key rule, as seen from one isolate: remembers when this
/// isolate last wrote each key. Isolate state (see `isolate.rs`).
///
/// KV counts the second from when it receives a write, which this isolate cannot see: a
/// write that spent longer on its way than the next one could land less than a second
/// before it even when the two were sent a second apart. So a writer that awaits its write
/// reports when it finished ([`WriteGate::finished`]); KV received it no later than that,
/// and the key's second runs from then.
#[derive(Debug, Default)]
pub struct WriteGate {
    last_write: RefCell<KeyMap<Millis>>,
}

/// How far a request's `now` (when it started) may lie before a write another request
/// finished meanwhile and still count as within that write's second. Only a clock that went
/// back further than this frees a key early.
const STALE_NOW_MS: i64 = 30_000;

/// Whether `now` is within the second of a write at `at`.
fn within_second(at: Millis, now: Millis) -> bool {
    (-STALE_NOW_MS..KV_WRITE_INTERVAL_MS).contains(&now.ms_since(at))
}

impl WriteGate {
    /// Claims the right to write `key` now: true at most once per second per key.
    pub fn try_claim(&self, key: &KvKey, now: Millis) -> bool {
        let mut last = self.last_write.borrow_mut();
        if last
            .get(key.as_str())
            .is_some_and(|at| within_second(*at, now))
        {
            return false;
        }
        if last.len() >= MAX_TRACKED {
            last.retain(|at| within_second(*at, now));
        }
        last.insert(key.as_str(), now);
        true
    }

    /// Records that the write claimed for `key` finished at `at`: the key's second runs
    /// from then.
    pub fn finished(&self, key: &KvKey, at: Millis) {
        if let Some(last) = self.last_write.borrow_mut().get_mut(key.as_str()) {
            *last = (*last).max(at);
        }
    }

    /// Milliseconds until `key` may be written again (0 if now).
    pub fn wait_ms(&self, key: &KvKey, now: Millis) -> i64 {
        self.last_write
            .borrow()
            .get(key.as_str())
            .filter(|at| within_second(**at, now))
            .map_or(0, |at| at.plus_ms(KV_WRITE_INTERVAL_MS).ms_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_key_limit_is_512_bytes() {
        assert!(KvKey::new("p:", &"k".repeat(510)).is_ok());
        assert!(KvKey::new("p:", &"k".repeat(511)).is_err());
        assert!(KvKey::new("", "").is_err());
    }

    #[test]
    fn ttl_never_below_60() {
        assert_eq!(Ttl::at_least_minimum(0).seconds(), 60);
        assert_eq!(Ttl::at_least_minimum(59).seconds(), 60);
        assert_eq!(Ttl::at_least_minimum(61).seconds(), 61);
    }

    #[test]
    fn metadata_limit_is_1024_bytes() {
        let fits = serde_json::json!({ "k": "v".repeat(1024 - 8) });
        assert_eq!(fits.to_string().len(), 1024);
        assert!(KvMetadata::new(fits).is_ok());
        let over = serde_json::json!({ "k": "v".repeat(1024 - 7) });
        assert!(KvMetadata::new(over).is_err());
    }

    #[test]
    fn metadata_alone_tells_absent_from_present_without_metadata() {
        use crate::storage::fake::{block_on, MemKv};
        let kv = MemKv::default();
        let key = KvKey::fixed("k");
        assert_eq!(block_on(kv.metadata(&key)).unwrap(), None);
        kv.insert("k", "text");
        assert_eq!(block_on(kv.metadata(&key)).unwrap(), Some(None));
        let meta = KvMetadata::new(serde_json::json!({"version": 2})).unwrap();
        kv.insert_with_metadata("k", "text", Some(meta.clone()));
        assert_eq!(
            block_on(kv.metadata(&key)).unwrap(),
            Some(Some(meta.value().clone()))
        );
        assert_eq!((kv.reads(), kv.values_read()), (3, 0));
        let found = block_on(kv.get_with_metadata_if(&key, |m| m.is_some())).unwrap();
        assert_eq!(
            found,
            Some((Some("text".into()), Some(meta.value().clone())))
        );
        assert_eq!((kv.reads(), kv.values_read()), (4, 1));
    }

    #[test]
    fn one_kv_write_per_second_per_key() {
        let gate = WriteGate::default();
        let (k, other) = (KvKey::fixed("k"), KvKey::fixed("other"));
        assert!(gate.try_claim(&k, Millis(0)));
        assert!(!gate.try_claim(&k, Millis(1)));
        assert!(!gate.try_claim(&k, Millis(999)));
        assert!(gate.try_claim(&other, Millis(999)));
        assert_eq!(gate.wait_ms(&k, Millis(400)), 600);
        assert!(gate.try_claim(&k, Millis(1_000)));
        assert_eq!(gate.wait_ms(&KvKey::fixed("never"), Millis(5)), 0);
    }

    #[test]
    fn the_second_runs_from_when_the_write_finished() {
        let gate = WriteGate::default();
        let k = KvKey::fixed("k");
        assert!(gate.try_claim(&k, Millis(0)));
        // The write took 300 ms: KV may have received it as late as 300.
        gate.finished(&k, Millis(300));
        assert!(!gate.try_claim(&k, Millis(1_000)));
        assert!(!gate.try_claim(&k, Millis(1_299)));
        assert_eq!(gate.wait_ms(&k, Millis(1_000)), 300);
        assert!(gate.try_claim(&k, Millis(1_300)));
        // A finish earlier than the claim changes nothing.
        gate.finished(&k, Millis(1_000));
        assert!(!gate.try_claim(&k, Millis(2_299)));
        // A request that started while the write was in flight (its `now` is before the
        // write finished) sees the key as taken.
        gate.finished(&k, Millis(1_700));
        assert!(!gate.try_claim(&k, Millis(1_500)));
        assert_eq!(gate.wait_ms(&k, Millis(1_500)), 1_200);
        assert!(gate.try_claim(&k, Millis(2_700)));
    }

    #[test]
    fn a_clock_that_goes_back_does_not_lock_a_key_for_long() {
        let gate = WriteGate::default();
        let k = KvKey::fixed("k");
        assert!(gate.try_claim(&k, Millis(40_000)));
        assert!(
            !gate.try_claim(&k, Millis(10_000)),
            "within 30 s before: a request that started before the write"
        );
        assert!(
            gate.try_claim(&k, Millis(9_999)),
            "further back is not within the second"
        );
    }
}
