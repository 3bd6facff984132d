//! Storage ports and adapters. The generic `Kv` trait is implemented by the Workers KV
//! adapter and by an in-memory fake; each resource module defines the narrow D1 port it
//! needs (`SessionDb`, `PrefsDb`, `UserDb`, `CounterDb`), implemented by `d1::D1` and by
//! in-memory fakes. Domain logic is generic over these traits and is tested natively.

use crate::error::StoreResult;
use crate::types::{KvKey, KvMetadata, Ttl};
use std::collections::HashMap;

pub mod d1;
#[cfg(test)]
pub mod fake;
pub mod kv;

/// Options of a KV write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub ttl: Option<Ttl>,
    pub metadata: Option<KvMetadata>,
}

impl PutOptions {
    pub fn ttl(ttl: Ttl) -> Self {
        PutOptions {
            ttl: Some(ttl),
            metadata: None,
        }
    }
}

/// The subset of Workers KV edgestate uses. Values are JSON text.
#[allow(async_fn_in_trait)]
pub trait Kv {
    async fn get(&self, key: &KvKey) -> StoreResult<Option<String>>;
    /// One bulk read (at most 100 keys); absent keys map to `None`.
    async fn get_bulk(&self, keys: &[KvKey]) -> StoreResult<HashMap<String, Option<String>>>;
    async fn put(&self, key: &KvKey, value: &str, opts: PutOptions) -> StoreResult<()>;
    async fn delete(&self, key: &KvKey) -> StoreResult<()>;
}
