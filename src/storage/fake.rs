//! In-memory fakes of the storage ports, for native unit tests only. They implement the same
//! traits as the KV and D1 adapters and can be told to fail.

use super::{Kv, PutOptions};
use crate::error::{StorageError, StoreResult};
use crate::types::KvKey;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future that never really waits (every fake answers at once).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub value: String,
    pub ttl: Option<u64>,
    pub metadata: Option<serde_json::Value>,
}

#[derive(Default)]
pub struct MemKv {
    pub entries: RefCell<HashMap<String, Entry>>,
    reads: Cell<u32>,
    writes: Cell<u32>,
    deletes: Cell<u32>,
    failing: Cell<bool>,
}

impl MemKv {
    pub fn insert(&self, key: &str, value: &str) {
        self.entries.borrow_mut().insert(
            key.to_string(),
            Entry {
                value: value.to_string(),
                ttl: None,
                metadata: None,
            },
        );
    }
    pub fn get_raw(&self, key: &str) -> Option<String> {
        self.entries.borrow().get(key).map(|e| e.value.clone())
    }
    pub fn entry(&self, key: &str) -> Option<Entry> {
        self.entries.borrow().get(key).cloned()
    }
    pub fn remove(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
    }
    pub fn fail(&self, on: bool) {
        self.failing.set(on);
    }
    pub fn reads(&self) -> u32 {
        self.reads.get()
    }
    pub fn writes(&self) -> u32 {
        self.writes.get()
    }
    fn check(&self, counter: &Cell<u32>) -> StoreResult<()> {
        counter.set(counter.get() + 1);
        if self.failing.get() {
            Err(StorageError::new("fake KV failure"))
        } else {
            Ok(())
        }
    }
}

impl Kv for MemKv {
    async fn get(&self, key: &KvKey) -> StoreResult<Option<String>> {
        self.check(&self.reads)?;
        Ok(self.get_raw(key.as_str()))
    }

    async fn get_bulk(&self, keys: &[KvKey]) -> StoreResult<HashMap<String, Option<String>>> {
        self.check(&self.reads)?;
        Ok(keys
            .iter()
            .map(|k| (k.as_str().to_string(), self.get_raw(k.as_str())))
            .collect())
    }

    async fn put(&self, key: &KvKey, value: &str, opts: PutOptions) -> StoreResult<()> {
        self.check(&self.writes)?;
        let entry = Entry {
            value: value.to_string(),
            ttl: opts.ttl.map(|t| t.seconds()),
            metadata: opts.metadata.map(|m| m.value().clone()),
        };
        self.entries
            .borrow_mut()
            .insert(key.as_str().to_string(), entry);
        Ok(())
    }

    async fn delete(&self, key: &KvKey) -> StoreResult<()> {
        self.check(&self.deletes)?;
        self.remove(key.as_str());
        Ok(())
    }
}

/// A failure switch and call counter shared by the fake databases.
#[derive(Default)]
pub struct FakeDb {
    pub queries: Cell<u32>,
    pub failing: Cell<bool>,
}

impl FakeDb {
    pub fn query(&self) -> StoreResult<()> {
        self.queries.set(self.queries.get() + 1);
        if self.failing.get() {
            Err(StorageError::new("fake D1 failure"))
        } else {
            Ok(())
        }
    }
}
