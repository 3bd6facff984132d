//! In-memory fakes of every storage port, for native tests: [`MemKv`] (the KV port),
//! [`MemSessions`], [`MemPrefs`], [`MemUsers`], [`MemCounters`], [`MemConfigDb`],
//! [`MemAccounts`] and [`MemSchema`] (the D1 ports), and [`FakeTimer`]. Each counts its
//! calls and can be told to fail. [`Hooked`] runs another party's work at an exact point
//! between calls ([`Interleaving`]), to test races.

// Test tooling, never in a deployed Worker: the size rules (clippy.toml) do not apply.
#![allow(clippy::disallowed_types)]

use crate::domain::accounts::AccountDb;
use crate::domain::health::{Schema, SchemaDb};
use crate::domain::ids::{ProfileId, SessionHandle, UserId};
use crate::domain::kv::{Found, Kv, KvKey, KvMetadata, ListedKey, PutOptions, KV_MAX_LIST_KEYS};
use crate::domain::prefs::{PrefsDb, PrefsPatch, PrefsRow};
use crate::domain::ratelimit::{CounterDb, Lease};
use crate::domain::sessions::{FeedPage, ListQuery, Revocation, SessionDb, SessionRecord};
use crate::domain::time::{Clock, Millis, Timer};
use crate::domain::tokens::{TokenDb, TokenRecord, MAX_TOKENS};
use crate::domain::users::{User, UserDb};
use crate::domain::versions::{ConfigDb, Entry as HistoryRow, HistoryEntry, Step};
use crate::error::{StorageError, StoreResult};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future whose awaits all complete at once (every fake answers at once).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// One stored KV entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value.
    pub value: String,
    /// The `expirationTtl` it was written with.
    pub ttl: Option<u64>,
    /// Its metadata.
    pub metadata: Option<serde_json::Value>,
}

/// An in-memory KV namespace.
#[derive(Default)]
pub struct MemKv {
    /// Everything stored, by key.
    pub entries: RefCell<HashMap<String, Entry>>,
    reads: Cell<u32>,
    values_read: Cell<u32>,
    writes: Cell<u32>,
    deletes: Cell<u32>,
    lists: Cell<u32>,
    written: RefCell<Vec<String>>,
    failing: Cell<bool>,
    failing_writes: Cell<u32>,
}

impl MemKv {
    /// Stores `value` under `key` without counting a write.
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
    /// Stores `value` with `metadata` under `key` without counting a write.
    pub fn insert_with_metadata(&self, key: &str, value: &str, metadata: Option<KvMetadata>) {
        self.insert(key, value);
        if let Some(e) = self.entries.borrow_mut().get_mut(key) {
            e.metadata = metadata.map(|m| m.value().clone());
        }
    }
    /// The value under `key`, without counting a read.
    pub fn get_raw(&self, key: &str) -> Option<String> {
        self.entries.borrow().get(key).map(|e| e.value.clone())
    }
    /// The entry under `key`, without counting a read.
    pub fn entry(&self, key: &str) -> Option<Entry> {
        self.entries.borrow().get(key).cloned()
    }
    /// Removes `key` without counting a delete.
    pub fn remove(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
    }
    /// Makes every call fail (or stop failing).
    pub fn fail(&self, on: bool) {
        self.failing.set(on);
    }
    /// Makes the next `n` writes (puts or deletes) fail, as KV refuses a second write to a
    /// key in a second.
    pub fn fail_next_writes(&self, n: u32) {
        self.failing_writes.set(n);
    }
    /// Reads so far (a bulk read counts one).
    pub fn reads(&self) -> u32 {
        self.reads.get()
    }
    /// Reads so far that transferred a value (a read of the metadata alone does not count;
    /// a bulk read counts one).
    pub fn values_read(&self) -> u32 {
        self.values_read.get()
    }
    /// Writes so far.
    pub fn writes(&self) -> u32 {
        self.writes.get()
    }
    /// Deletes so far.
    pub fn deletes(&self) -> u32 {
        self.deletes.get()
    }
    /// Listings so far.
    pub fn lists(&self) -> u32 {
        self.lists.get()
    }
    /// The keys of every write that succeeded so far, in order.
    pub fn written(&self) -> Vec<String> {
        self.written.borrow().clone()
    }
    fn check(&self, counter: &Cell<u32>) -> StoreResult<()> {
        counter.set(counter.get() + 1);
        if self.failing.get() {
            Err(StorageError::new("fake KV failure"))
        } else {
            Ok(())
        }
    }
    fn refuse_write(&self) -> StoreResult<()> {
        if self.failing_writes.get() > 0 {
            self.failing_writes.set(self.failing_writes.get() - 1);
            return Err(StorageError::new("fake KV: too many writes to one key"));
        }
        Ok(())
    }
}

impl Kv for MemKv {
    async fn get(&self, key: &KvKey) -> StoreResult<Option<String>> {
        self.check(&self.reads)?;
        self.values_read.set(self.values_read.get() + 1);
        Ok(self.get_raw(key.as_str()))
    }

    async fn get_with_metadata(
        &self,
        key: &KvKey,
    ) -> StoreResult<Option<(String, Option<serde_json::Value>)>> {
        let found = self.get_with_metadata_if(key, |_| true).await?;
        Ok(found.and_then(|(value, metadata)| value.map(|v| (v, metadata))))
    }

    async fn get_with_metadata_if(
        &self,
        key: &KvKey,
        want: impl FnOnce(Option<&serde_json::Value>) -> bool,
    ) -> StoreResult<Option<Found>> {
        self.check(&self.reads)?;
        let Some(entry) = self.entry(key.as_str()) else {
            return Ok(None);
        };
        let value = want(entry.metadata.as_ref()).then_some(entry.value);
        if value.is_some() {
            self.values_read.set(self.values_read.get() + 1);
        }
        Ok(Some((value, entry.metadata)))
    }

    async fn get_bulk(&self, keys: &[KvKey]) -> StoreResult<Vec<Option<String>>> {
        self.check(&self.reads)?;
        self.values_read.set(self.values_read.get() + 1);
        Ok(keys.iter().map(|k| self.get_raw(k.as_str())).collect())
    }

    async fn put(&self, key: &KvKey, value: &str, opts: PutOptions) -> StoreResult<()> {
        self.check(&self.writes)?;
        self.refuse_write()?;
        let entry = Entry {
            value: value.to_string(),
            ttl: opts.ttl.map(|t| t.seconds()),
            metadata: opts.metadata.map(|m| m.value().clone()),
        };
        self.entries
            .borrow_mut()
            .insert(key.as_str().to_string(), entry);
        self.written.borrow_mut().push(key.as_str().to_string());
        Ok(())
    }

    async fn delete(&self, key: &KvKey) -> StoreResult<()> {
        self.check(&self.deletes)?;
        self.refuse_write()?;
        self.remove(key.as_str());
        Ok(())
    }

    async fn list(&self, prefix: &KvKey) -> StoreResult<Vec<ListedKey>> {
        self.check(&self.lists)?;
        let entries = self.entries.borrow();
        let mut keys: Vec<ListedKey> = entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix.as_str()))
            .map(|(k, e)| ListedKey {
                name: k.clone(),
                metadata: e.metadata.clone(),
            })
            .collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        keys.truncate(KV_MAX_LIST_KEYS);
        Ok(keys)
    }
}

/// Runs a hook just before the `at`-th call (counting from 0) made through the [`Hooked`]
/// handles that share it: another isolate's work landing at an exact point of a sequence.
pub struct Interleaving<'a> {
    calls: Cell<usize>,
    at: usize,
    hook: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
}

impl<'a> Interleaving<'a> {
    /// Runs `hook` before call number `at`.
    pub fn at(at: usize, hook: impl FnOnce() + 'a) -> Self {
        Interleaving {
            calls: Cell::new(0),
            at,
            hook: RefCell::new(Some(Box::new(hook))),
        }
    }

    /// Calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.get()
    }

    /// Runs the hook now if no call has reached it (the other party comes last).
    pub fn finish(&self) {
        let hook = self.hook.borrow_mut().take();
        if let Some(hook) = hook {
            hook();
        }
    }

    fn step(&self) {
        let n = self.calls.get();
        self.calls.set(n + 1);
        if n == self.at {
            self.finish();
        }
    }
}

/// A fake whose calls step an [`Interleaving`] first.
pub struct Hooked<'a, 'h, T> {
    /// The fake answering the calls.
    pub inner: &'a T,
    /// The interleaving its calls count in.
    pub on: &'a Interleaving<'h>,
}

impl Kv for Hooked<'_, '_, MemKv> {
    async fn get(&self, key: &KvKey) -> StoreResult<Option<String>> {
        self.on.step();
        self.inner.get(key).await
    }

    async fn get_with_metadata(
        &self,
        key: &KvKey,
    ) -> StoreResult<Option<(String, Option<serde_json::Value>)>> {
        self.on.step();
        self.inner.get_with_metadata(key).await
    }

    async fn get_with_metadata_if(
        &self,
        key: &KvKey,
        want: impl FnOnce(Option<&serde_json::Value>) -> bool,
    ) -> StoreResult<Option<Found>> {
        self.on.step();
        self.inner.get_with_metadata_if(key, want).await
    }

    async fn get_bulk(&self, keys: &[KvKey]) -> StoreResult<Vec<Option<String>>> {
        self.on.step();
        self.inner.get_bulk(keys).await
    }

    async fn put(&self, key: &KvKey, value: &str, opts: PutOptions) -> StoreResult<()> {
        self.on.step();
        self.inner.put(key, value, opts).await
    }

    async fn delete(&self, key: &KvKey) -> StoreResult<()> {
        self.on.step();
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &KvKey) -> StoreResult<Vec<ListedKey>> {
        self.on.step();
        self.inner.list(prefix).await
    }
}

impl SessionDb for Hooked<'_, '_, MemSessions> {
    async fn insert(&self, s: &SessionRecord) -> StoreResult<()> {
        self.on.step();
        self.inner.insert(s).await
    }

    async fn find(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        self.on.step();
        self.inner.find(id_hash).await
    }

    async fn revoke(&self, id_hash: &str, now: Millis) -> StoreResult<bool> {
        self.on.step();
        self.inner.revoke(id_hash, now).await
    }

    async fn revoke_user(
        &self,
        user: &UserId,
        except: Option<&str>,
        now: Millis,
    ) -> StoreResult<Vec<String>> {
        self.on.step();
        self.inner.revoke_user(user, except, now).await
    }

    async fn list(
        &self,
        q: &ListQuery,
        now: Millis,
        limit: u32,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.on.step();
        self.inner.list(q, now, limit).await
    }

    async fn renew(
        &self,
        id_hash: &str,
        now: Millis,
        idle_expires_at: Millis,
        due_until: Millis,
    ) -> StoreResult<Option<SessionRecord>> {
        self.on.step();
        self.inner
            .renew(id_hash, now, idle_expires_at, due_until)
            .await
    }

    async fn revoke_handle(
        &self,
        handle: &SessionHandle,
        owner: Option<&UserId>,
        now: Millis,
    ) -> StoreResult<Option<String>> {
        self.on.step();
        self.inner.revoke_handle(handle, owner, now).await
    }

    async fn revocations(
        &self,
        cursor: Option<u64>,
        since: Millis,
        now: Millis,
        limit: u32,
    ) -> StoreResult<FeedPage> {
        self.on.step();
        self.inner.revocations(cursor, since, now, limit).await
    }

    async fn linger(&self, id_hash: &str, now: Millis) -> StoreResult<()> {
        self.on.step();
        self.inner.linger(id_hash, now).await
    }

    async fn linger_user(&self, user: &UserId, now: Millis) -> StoreResult<()> {
        self.on.step();
        self.inner.linger_user(user, now).await
    }

    async fn prune(
        &self,
        expired_before: Millis,
        revoked_before: Millis,
        now: Millis,
        limit: u32,
    ) -> StoreResult<()> {
        self.on.step();
        self.inner
            .prune(expired_before, revoked_before, now, limit)
            .await
    }
}

/// A failure switch and query counter shared by the fake databases.
#[derive(Default)]
pub struct FakeDb {
    /// Queries so far.
    pub queries: Cell<u32>,
    /// While true, every query fails.
    pub failing: Cell<bool>,
}

impl FakeDb {
    /// Counts one query; fails if told to.
    pub fn query(&self) -> StoreResult<()> {
        self.queries.set(self.queries.get() + 1);
        if self.failing.get() {
            Err(StorageError::new("fake D1 failure"))
        } else {
            Ok(())
        }
    }
}

/// The sessions table.
#[derive(Default)]
pub struct MemSessions {
    /// The rows.
    pub rows: RefCell<Vec<SessionRecord>>,
    /// The revocation feed, oldest first.
    pub feed: RefCell<Vec<Revocation>>,
    /// Query counter and failure switch.
    pub db: FakeDb,
    /// Renewals that changed a row.
    pub renewals: Cell<u32>,
}

impl MemSessions {
    /// Appends a revocation to the feed (what the D1 adapter does in the revoking
    /// transaction).
    pub fn append_feed(&self, id_hash: &str, at: Millis) {
        let mut feed = self.feed.borrow_mut();
        let seq = feed.last().map_or(1, |r| r.seq + 1);
        feed.push(Revocation {
            seq,
            id_hash: id_hash.to_string(),
            at,
            lingers_until: None,
        });
    }
}

impl SessionDb for MemSessions {
    async fn insert(&self, s: &SessionRecord) -> StoreResult<()> {
        self.db.query()?;
        self.rows.borrow_mut().push(s.clone());
        Ok(())
    }

    async fn find(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        self.db.query()?;
        let rows = self.rows.borrow();
        Ok(rows.iter().find(|r| r.id_hash == id_hash).cloned())
    }

    async fn revoke(&self, id_hash: &str, now: Millis) -> StoreResult<bool> {
        self.db.query()?;
        let mut rows = self.rows.borrow_mut();
        let row = rows
            .iter_mut()
            .find(|r| r.id_hash == id_hash && r.revoked_at.is_none());
        let revoked = row.map(|r| r.revoked_at = Some(now)).is_some();
        if revoked {
            self.append_feed(id_hash, now);
        }
        Ok(revoked)
    }

    async fn revoke_user(
        &self,
        user: &UserId,
        except: Option<&str>,
        now: Millis,
    ) -> StoreResult<Vec<String>> {
        self.db.query()?;
        let mut out = Vec::new();
        for r in self.rows.borrow_mut().iter_mut() {
            let spared = except == Some(r.id_hash.as_str());
            if r.user_id == user.as_str() && r.is_valid(now) && !spared {
                r.revoked_at = Some(now);
                out.push(r.id_hash.clone());
            }
        }
        for hash in &out {
            self.append_feed(hash, now);
        }
        Ok(out)
    }

    async fn list(
        &self,
        q: &ListQuery,
        now: Millis,
        limit: u32,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.db.query()?;
        // As the D1 query: the cursor's handle names the row whose hash orders the page.
        let hash_of = |handle: &str| {
            let rows = self.rows.borrow();
            let row = rows.iter().find(|r| r.handle.as_deref() == Some(handle));
            row.map(|r| r.id_hash.clone())
        };
        let cursor = q
            .cursor
            .as_ref()
            .map(|c| (c.created_at, hash_of(c.handle.as_str())));
        let after_cursor = |r: &SessionRecord| match &cursor {
            None => true,
            Some((at, hash)) => {
                r.created_at < *at
                    || (r.created_at == *at && hash.as_ref().is_some_and(|h| &r.id_hash < h))
            }
        };
        let mut rows: Vec<_> = self
            .rows
            .borrow()
            .iter()
            .filter(|r| r.is_valid(now))
            .filter(|r| q.user.as_ref().is_none_or(|u| u.as_str() == r.user_id))
            .filter(|r| after_cursor(r))
            .cloned()
            .collect();
        rows.sort_by(|a, b| (b.created_at, &b.id_hash).cmp(&(a.created_at, &a.id_hash)));
        rows.truncate(limit as usize);
        Ok(rows)
    }

    async fn renew(
        &self,
        id_hash: &str,
        now: Millis,
        idle_expires_at: Millis,
        due_until: Millis,
    ) -> StoreResult<Option<SessionRecord>> {
        self.db.query()?;
        let mut rows = self.rows.borrow_mut();
        let row = rows
            .iter_mut()
            .find(|r| r.id_hash == id_hash && r.is_valid(now) && r.idle_expires_at <= due_until);
        Ok(row.map(|r| {
            r.idle_expires_at = idle_expires_at;
            self.renewals.set(self.renewals.get() + 1);
            r.clone()
        }))
    }

    async fn revoke_handle(
        &self,
        handle: &SessionHandle,
        owner: Option<&UserId>,
        now: Millis,
    ) -> StoreResult<Option<String>> {
        self.db.query()?;
        let mut rows = self.rows.borrow_mut();
        let row = rows.iter_mut().find(|r| {
            r.handle.as_deref() == Some(handle.as_str())
                && owner.is_none_or(|o| o.as_str() == r.user_id)
        });
        let Some(r) = row else {
            return Ok(None);
        };
        if r.revoked_at.is_none() {
            r.revoked_at = Some(now);
            self.append_feed(&r.id_hash, now);
        }
        Ok(Some(r.id_hash.clone()))
    }

    async fn revocations(
        &self,
        cursor: Option<u64>,
        since: Millis,
        now: Millis,
        limit: u32,
    ) -> StoreResult<FeedPage> {
        self.db.query()?;
        let feed = self.feed.borrow();
        let head = feed.last().map_or(0, |r| r.seq);
        let wanted = |r: &&Revocation| match cursor {
            None => r.at >= since || r.lingers_until.is_some_and(|t| t > now),
            Some(cursor) => r.seq > cursor,
        };
        let rows: Vec<Revocation> = feed
            .iter()
            .filter(wanted)
            .take(limit as usize)
            .cloned()
            .collect();
        let last = rows.last().map_or(cursor.unwrap_or(0), |r| r.seq);
        let next = match rows.len() < limit as usize {
            true => last.max(if cursor.is_none() { head } else { last }),
            false => last,
        };
        Ok(FeedPage { rows, next })
    }

    async fn linger(&self, id_hash: &str, now: Millis) -> StoreResult<()> {
        self.db.query()?;
        let until = self
            .rows
            .borrow()
            .iter()
            .find(|r| r.id_hash == id_hash)
            .map_or(now, |r| r.idle_expires_at.max(now.plus_ms(60_000)));
        for r in self.feed.borrow_mut().iter_mut() {
            if r.id_hash == id_hash {
                r.lingers_until = Some(until);
            }
        }
        Ok(())
    }

    async fn linger_user(&self, user: &UserId, now: Millis) -> StoreResult<()> {
        self.db.query()?;
        let rows = self.rows.borrow();
        for r in rows
            .iter()
            .filter(|r| r.user_id == user.as_str() && now < r.expires_at)
        {
            let until = r.idle_expires_at.max(now.plus_ms(60_000));
            for f in self.feed.borrow_mut().iter_mut() {
                if f.id_hash == r.id_hash {
                    f.lingers_until = Some(until);
                }
            }
        }
        Ok(())
    }

    async fn prune(
        &self,
        expired_before: Millis,
        revoked_before: Millis,
        now: Millis,
        limit: u32,
    ) -> StoreResult<()> {
        self.db.query()?;
        let mut budget = limit as usize;
        self.rows.borrow_mut().retain(|r| {
            let drop = budget > 0 && r.idle_expires_at < expired_before;
            budget -= usize::from(drop);
            !drop
        });
        let mut budget = limit as usize;
        self.feed.borrow_mut().retain(|r| {
            let settled = r.lingers_until.is_none_or(|t| t < now);
            let drop = budget > 0 && r.at < revoked_before && settled;
            budget -= usize::from(drop);
            !drop
        });
        Ok(())
    }
}

/// The preferences table.
#[derive(Default)]
pub struct MemPrefs {
    /// The rows, by user.
    pub rows: RefCell<HashMap<String, PrefsRow>>,
    /// Query counter and failure switch.
    pub db: FakeDb,
}

impl PrefsDb for MemPrefs {
    async fn get(&self, user: &UserId) -> StoreResult<Option<PrefsRow>> {
        self.db.query()?;
        Ok(self.rows.borrow().get(user.as_str()).cloned())
    }

    async fn merge(&self, user: &UserId, p: &PrefsPatch, _now: Millis) -> StoreResult<PrefsRow> {
        self.db.query()?;
        let mut rows = self.rows.borrow_mut();
        let row = rows.entry(user.to_string()).or_default();
        row.theme = p.theme.clone().or(row.theme.take());
        row.language = p.language.clone().or(row.language.take());
        row.notifications = p.notifications.or(row.notifications);
        row.version += 1;
        Ok(row.clone())
    }
}

/// The users table.
#[derive(Default)]
pub struct MemUsers {
    /// The rows, by id.
    pub rows: RefCell<BTreeMap<String, User>>,
    /// Query counter and failure switch.
    pub db: FakeDb,
}

impl UserDb for MemUsers {
    async fn get(&self, id: &ProfileId) -> StoreResult<Option<User>> {
        self.db.query()?;
        Ok(self.rows.borrow().get(id.as_str()).cloned())
    }

    async fn get_many(&self, ids: &[ProfileId]) -> StoreResult<Vec<User>> {
        self.db.query()?;
        let rows = self.rows.borrow();
        Ok(ids
            .iter()
            .filter_map(|id| rows.get(id.as_str()).cloned())
            .collect())
    }

    async fn upsert(&self, id: &ProfileId, name: &str, now: Millis) -> StoreResult<User> {
        self.db.query()?;
        let u = User {
            id: id.to_string(),
            name: name.to_string(),
            updated_at: now,
        };
        self.rows.borrow_mut().insert(id.to_string(), u.clone());
        Ok(u)
    }
}

/// The strict rate-limit counters table.
#[derive(Default)]
pub struct MemCounters {
    /// Tokens handed out by (bucket, window start).
    pub rows: RefCell<HashMap<(String, Millis), u64>>,
    /// Query counter and failure switch.
    pub db: FakeDb,
}

impl CounterDb for MemCounters {
    async fn lease(
        &self,
        bucket: &str,
        window_start: Millis,
        wanted: u32,
        limit: u32,
    ) -> StoreResult<Lease> {
        self.db.query()?;
        let mut rows = self.rows.borrow_mut();
        let n = rows.entry((bucket.to_string(), window_start)).or_insert(0);
        let granted = u64::from(wanted).min(u64::from(limit).saturating_sub(*n));
        *n += granted;
        Ok(Lease {
            granted: granted as u32,
            handed_out: *n,
        })
    }

    async fn prune(&self, before: Millis) -> StoreResult<()> {
        self.db.query()?;
        self.rows
            .borrow_mut()
            .retain(|(_, start), _| *start >= before);
        Ok(())
    }
}

/// One row of the config history.
#[derive(Debug, Clone)]
pub struct ConfigRow {
    /// The version; `None` for a refused attempt.
    pub version: Option<u64>,
    /// When.
    pub at: Millis,
    /// Who wrote (`admin` for the admin token).
    pub actor: String,
    /// `put`, `patch` or `rollback`.
    pub action: String,
    /// The base version.
    pub base: u64,
    /// The request body.
    pub change: String,
    /// The whole document, where the row stores one.
    pub document: Option<String>,
}

/// The config history table. It can simulate another admin's commit landing just before
/// (or just after) the next append.
#[derive(Default)]
pub struct MemConfigDb {
    /// The rows, in order (position + 1 is the row's `seq`).
    pub rows: RefCell<Vec<ConfigRow>>,
    /// Query counter and failure switch.
    pub db: FakeDb,
    before_next_append: RefCell<Option<String>>,
    after_next_append: RefCell<Option<String>>,
}

impl MemConfigDb {
    /// Commits a version holding `document` right before the next append is checked.
    pub fn interleave_once(&self, document: &str) {
        *self.before_next_append.borrow_mut() = Some(document.to_string());
    }
    /// Commits a version holding `document` right after the next successful append.
    pub fn commit_after_next_append(&self, document: &str) {
        *self.after_next_append.borrow_mut() = Some(document.to_string());
    }
    fn head_or(&self, floor: u64) -> u64 {
        let rows = self.rows.borrow();
        rows.iter().filter_map(|r| r.version).max().unwrap_or(floor)
    }
    fn push(&self, version: Option<u64>, e: &HistoryRow<'_>, document: Option<&str>) {
        self.rows.borrow_mut().push(ConfigRow {
            version,
            at: e.at,
            actor: e.actor.to_string(),
            action: e.action.as_str().to_string(),
            base: e.base,
            change: e.change.to_string(),
            document: document.map(str::to_string),
        });
    }
    fn other_admin(&self, floor: u64, document: Option<String>, e: &HistoryRow<'_>) {
        if let Some(doc) = document {
            let other = HistoryRow {
                actor: "other",
                ..e.clone()
            };
            self.push(Some(self.head_or(floor) + 1), &other, Some(&doc));
        }
    }
    fn step(r: &ConfigRow) -> Option<Step> {
        Some(Step {
            version: r.version?,
            at: r.at,
            action: r.action.clone(),
            change: r.change.clone(),
            document: r.document.clone(),
        })
    }
}

impl ConfigDb for MemConfigDb {
    async fn chain(&self, upto: Option<u64>) -> StoreResult<Vec<Step>> {
        self.db.query()?;
        let rows = self.rows.borrow();
        let mut steps: Vec<Step> = rows.iter().filter_map(Self::step).collect();
        steps.retain(|s| upto.is_none_or(|u| s.version <= u));
        steps.sort_by_key(|s| s.version);
        let from = steps.iter().rposition(|s| s.whole().is_some()).unwrap_or(0);
        Ok(steps.split_off(from))
    }

    async fn append(
        &self,
        e: &HistoryRow<'_>,
        floor: u64,
        expect: Option<u64>,
    ) -> StoreResult<Option<u64>> {
        self.db.query()?;
        self.other_admin(floor, self.before_next_append.take(), e);
        let head = self.head_or(floor);
        if expect.is_some_and(|x| x != head) {
            return Ok(None);
        }
        self.push(Some(head + 1), e, e.document);
        self.other_admin(floor, self.after_next_append.take(), e);
        Ok(Some(head + 1))
    }

    async fn refuse(&self, e: &HistoryRow<'_>) -> StoreResult<()> {
        self.db.query()?;
        self.push(None, e, None);
        Ok(())
    }

    async fn history(&self, before: Option<u64>, limit: u32) -> StoreResult<Vec<HistoryEntry>> {
        self.db.query()?;
        let rows = self.rows.borrow();
        let entries = rows.iter().enumerate().rev().map(|(i, r)| HistoryEntry {
            seq: i as u64 + 1,
            version: r.version,
            outcome: if r.version.is_some() {
                "applied"
            } else {
                "refused"
            },
            at: r.at,
            actor: r.actor.clone(),
            action: r.action.clone(),
            base_version: r.base,
            change: serde_json::from_str(&r.change).unwrap_or_default(),
        });
        Ok(entries
            .filter(|e| before.is_none_or(|b| e.seq < b))
            .take(limit as usize)
            .collect())
    }
}

/// The sessions, preferences and users tables together, for account deletion. Its own
/// failure switch fails the deletion's queries only.
#[derive(Default)]
pub struct MemAccounts {
    /// The sessions table.
    pub sessions: MemSessions,
    /// The preferences table.
    pub prefs: MemPrefs,
    /// The users table.
    pub users: MemUsers,
    /// Query counter and failure switch of the deletion's own queries.
    pub db: FakeDb,
}

impl AccountDb for MemAccounts {
    async fn revoke_sessions(&self, user: &UserId, now: Millis) -> StoreResult<Vec<String>> {
        self.db.query()?;
        let mut out = Vec::new();
        for r in self.sessions.rows.borrow_mut().iter_mut() {
            if r.user_id == user.as_str() && now < r.expires_at {
                if r.revoked_at.is_none() {
                    self.sessions.append_feed(&r.id_hash, now);
                }
                r.revoked_at = r.revoked_at.or(Some(now));
                out.push(r.id_hash.clone());
            }
        }
        Ok(out)
    }

    async fn erase(&self, user: &UserId, profile: Option<&ProfileId>) -> StoreResult<()> {
        self.db.query()?;
        let id = user.as_str();
        self.sessions.rows.borrow_mut().retain(|r| r.user_id != id);
        self.prefs.rows.borrow_mut().remove(id);
        if let Some(p) = profile {
            self.users.rows.borrow_mut().remove(p.as_str());
        }
        Ok(())
    }

    async fn linger(&self, id_hash: &str, now: Millis) -> StoreResult<()> {
        self.db.query()?;
        SessionDb::linger(&self.sessions, id_hash, now).await
    }

    async fn linger_user(&self, user: &UserId, now: Millis) -> StoreResult<()> {
        self.db.query()?;
        SessionDb::linger_user(&self.sessions, user, now).await
    }
}

/// The admin token table in memory, counting its reads.
#[derive(Debug, Default)]
pub struct MemTokens {
    /// The tokens, newest first.
    pub rows: RefCell<Vec<TokenRecord>>,
    /// How many times the whole table was read.
    pub reads: Cell<u32>,
}

impl TokenDb for MemTokens {
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.reads.set(self.reads.get() + 1);
        Ok(self.rows.borrow().clone())
    }

    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<bool> {
        let mut rows = self.rows.borrow_mut();
        if rows.len() >= MAX_TOKENS || rows.iter().any(|t| t.name == token.name) {
            return Ok(false);
        }
        rows.insert(0, token.clone());
        Ok(true)
    }

    async fn delete_token(&self, name: &str) -> StoreResult<bool> {
        let mut rows = self.rows.borrow_mut();
        let before = rows.len();
        rows.retain(|t| t.name != name);
        Ok(rows.len() < before)
    }
}

/// A D1 schema as the self-check sees it: `None` fails the query.
#[derive(Debug, Default)]
pub struct MemSchema {
    /// What the query answers.
    pub schema: Option<Schema>,
    /// The schema version the code needs.
    pub expected: u32,
}

impl SchemaDb for MemSchema {
    fn expected_version(&self) -> u32 {
        self.expected
    }

    async fn schema(&self) -> StoreResult<Schema> {
        self.schema
            .clone()
            .ok_or_else(|| StorageError::new("fake D1 failure"))
    }
}

/// A clock that only moves when deferred work sleeps.
#[derive(Debug, Default)]
pub struct FakeTimer {
    now: Cell<Millis>,
    slept_ms: Cell<i64>,
}

impl FakeTimer {
    /// A timer reading `ms`.
    pub fn at(ms: i64) -> Self {
        FakeTimer {
            now: Cell::new(Millis(ms)),
            slept_ms: Cell::new(0),
        }
    }

    /// Sets the time it reads.
    pub fn set(&self, ms: i64) {
        self.now.set(Millis(ms));
    }

    /// Milliseconds slept so far.
    pub fn slept_ms(&self) -> i64 {
        self.slept_ms.get()
    }
}

impl Clock for FakeTimer {
    fn now(&self) -> Millis {
        self.now.get()
    }
}

impl Timer for FakeTimer {
    async fn sleep(&self, ms: i64) {
        let ms = ms.max(0);
        self.slept_ms.set(self.slept_ms.get() + ms);
        self.now.set(self.now.get().plus_ms(ms));
    }
}
