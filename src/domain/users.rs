//! User profiles in D1, read through the stale-while-revalidate cache ([`swr`]) in KV under
//! `user:<id>`: one profile, a batch of up to 100, and the admin write that invalidates the
//! cached copy.

use crate::domain::error::{DomainResult, StoreResult};
use crate::domain::ids::ProfileId;
use crate::domain::json;
use crate::domain::keymap::KeyMap;
use crate::domain::kv::{Kv, KvKey};
use crate::domain::swr::{self, CachedCopy, Freshness, Lookup};
use crate::domain::time::Millis;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

const KV_PREFIX: &str = "user:";
/// The most ids one batch may ask for.
pub const MAX_BATCH: usize = 100;
/// The most characters a profile name may have.
pub const MAX_NAME_CHARS: usize = 100;

/// A profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Its id.
    pub id: String,
    /// Display name, 1-100 characters.
    pub name: String,
    /// When it was last written.
    pub updated_at: Millis,
}

impl User {
    /// Reads a profile from its JSON form, as [`crate::domain::json`] explains.
    pub fn from_json(v: &serde_json::Value) -> Option<User> {
        Some(User {
            id: json::text_of(v, "id")?,
            name: json::text_of(v, "name")?,
            updated_at: json::millis_of(v, "updatedAt")?,
        })
    }
}

/// A profile's copy as [`swr::store`] writes it, for [`json::exact`].
const COPY_LAYOUT: &str = r#"{"data":{"id":"$","name":"$","updatedAt":#},"cachedAt":#,"ttl":#}"#;

/// A stored copy of a profile: read by [`json::exact`] when laid out as [`swr::store`] writes
/// it, otherwise (a name with an escaped character, a copy written by hand) through a parsed
/// [`serde_json::Value`].
pub fn decode_copy(text: &str) -> Option<CachedCopy<User>> {
    let exact = || {
        let [id, name, updated_at, cached_at, ttl] = json::exact(COPY_LAYOUT, text)?;
        Some(CachedCopy {
            data: User {
                id: id.to_owned(),
                name: name.to_owned(),
                updated_at: Millis(i64::try_from(json::decimal(updated_at)?).ok()?),
            },
            cached_at: Millis(i64::try_from(json::decimal(cached_at)?).ok()?),
            ttl: json::decimal(ttl)?,
        })
    };
    exact().or_else(|| swr::decode_with(Some(text), User::from_json))
}

/// The D1 side of profiles.
#[allow(async_fn_in_trait)]
pub trait UserDb {
    /// One profile, if it exists.
    async fn get(&self, id: &ProfileId) -> StoreResult<Option<User>>;
    /// One query for all of `ids`.
    async fn get_many(&self, ids: &[ProfileId]) -> StoreResult<Vec<User>>;
    /// Creates or renames a profile.
    async fn upsert(&self, id: &ProfileId, name: &str, now: Millis) -> StoreResult<User>;
}

/// How long an isolate answers a profile D1 did not have as missing (not found) without asking
/// D1 again: enumeration of unknown ids costs one D1 query per id and isolate per interval.
pub const MISSING_TTL_MS: i64 = 30_000;
/// Missing ids remembered at most; past that, expired ones are dropped, then all.
const MAX_MISSING: usize = 10_000;

/// Profiles D1 did not have, by id, until when to believe it. Isolate state (see
/// `isolate.rs`): a write of the profile through this isolate forgets it at once; other
/// isolates see a new profile through KV first (a `PUT` leaves the next read a miss, which
/// asks D1 unless the id was missing there within the last [`MISSING_TTL_MS`]).
#[derive(Debug, Default)]
pub struct MissingUsers {
    by_id: RefCell<KeyMap<Millis>>,
}

impl MissingUsers {
    /// Whether D1 did not have `id` within the last [`MISSING_TTL_MS`].
    pub fn is_missing(&self, id: &ProfileId, now: Millis) -> bool {
        self.by_id
            .borrow()
            .get(id.as_str())
            .is_some_and(|until| now < *until)
    }

    /// Remembers that D1 does not have `id`.
    pub fn note(&self, id: &ProfileId, now: Millis) {
        let mut by_id = self.by_id.borrow_mut();
        if by_id.len() >= MAX_MISSING {
            by_id.retain(|until| now < *until);
            if by_id.len() >= MAX_MISSING {
                by_id.clear();
            }
        }
        by_id.insert(id.as_str(), now.plus_ms(MISSING_TTL_MS));
    }

    /// Forgets `id` (it was just written or deleted here).
    pub fn forget(&self, id: &ProfileId) {
        self.by_id.borrow_mut().remove(id.as_str());
    }
}

/// The KV key of a profile's cached copy.
pub fn kv_key(id: &ProfileId) -> DomainResult<KvKey> {
    KvKey::new(KV_PREFIX, id.as_str())
}

/// `GET /users/:id`: one KV read, plus D1 only on a miss of an id not known to be missing.
/// A stale answer asks the caller to run [`refresh`] in the background.
pub async fn get<K: Kv, D: UserDb>(
    kv: &K,
    db: &D,
    missing: &MissingUsers,
    id: &ProfileId,
    ttl_seconds: u64,
    now: Millis,
) -> DomainResult<Lookup<User>> {
    let key = kv_key(id)?;
    let fetch = || async {
        if missing.is_missing(id, now) {
            return Ok(None);
        }
        let found = db.get(id).await;
        if matches!(found, Ok(None)) {
            missing.note(id, now);
        }
        found
    };
    swr::get_with(kv, &key, ttl_seconds, now, decode_copy, fetch).await
}

/// The background half of a stale `GET /users/:id`.
pub async fn refresh<K: Kv, D: UserDb>(
    kv: &K,
    db: &D,
    id: &ProfileId,
    ttl_seconds: u64,
    now: Millis,
) {
    match kv_key(id) {
        Ok(key) => swr::refresh(kv, &key, ttl_seconds, now, || db.get(id)).await,
        Err(e) => crate::log::warn(&format!("user refresh skipped: {e}")),
    }
}

/// `PUT /admin/users/:id`: writes D1 (the authority), then drops the cached copy so the
/// next read in this location is a miss. If only the invalidation fails the write still
/// stands (logged): the old copy ages out within twice the cache TTL.
pub async fn put<K: Kv, D: UserDb>(
    kv: &K,
    db: &D,
    missing: &MissingUsers,
    id: &ProfileId,
    name: &str,
    now: Millis,
) -> DomainResult<User> {
    let user = db.upsert(id, name, now).await?;
    missing.forget(id);
    if let Err(e) = kv.delete(&kv_key(id)?).await {
        crate::log::error_cause("user cache invalidation failed", &e.0);
    }
    Ok(user)
}

/// The answer of a batch read, plus what to store or refresh afterwards.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    /// Every asked id → its profile, or `None` if it does not exist; sorted by id, each id
    /// once. (A sorted list rather than a `BTreeMap`: every map type is its own code in the
    /// Wasm, and the ids come deduplicated.)
    pub users: Vec<(String, Option<User>)>,
    /// Fetched from D1 on a miss: to be stored in KV ([`store_batch`]).
    pub fetched: Vec<User>,
    /// Served stale: to be refreshed from D1 ([`store_batch`]).
    pub stale: Vec<ProfileId>,
}

impl Batch {
    /// Records the answer for `id` (asked once), keeping `users` sorted: at most 100 ids, so
    /// an insertion costs less than a sort's code.
    fn answer(&mut self, id: &str, user: Option<User>) {
        let at = self.users.partition_point(|(k, _)| k.as_str() < id);
        self.users.insert(at, (id.to_string(), user));
    }

    /// The answer for `id`: `None` if it was not asked, `Some(None)` if it does not exist.
    pub fn user(&self, id: &str) -> Option<&Option<User>> {
        self.users.iter().find(|(k, _)| k == id).map(|(_, u)| u)
    }
}

/// What `POST /users/batch` answers: `{"users": {id: profile or null, ...}}`.
#[derive(Debug, Serialize)]
pub struct BatchView<'a> {
    /// Every asked id → its profile, or `null`, sorted by id.
    #[serde(serialize_with = "as_object")]
    pub users: &'a [(String, Option<User>)],
}

/// The pairs as one JSON object.
fn as_object<S: serde::Serializer>(
    pairs: &&[(String, Option<User>)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(id, user)| (id, user)))
}

/// One KV bulk read for every id, then one D1 query for those KV could not serve (and not
/// known to be missing).
pub async fn batch<K: Kv, D: UserDb>(
    kv: &K,
    db: &D,
    missing: &MissingUsers,
    ids: &[ProfileId],
    now: Millis,
) -> DomainResult<Batch> {
    let mut keys = Vec::with_capacity(ids.len());
    for id in ids {
        keys.push(kv_key(id)?);
    }
    let cached = match kv.get_bulk(&keys).await {
        Ok(values) => values,
        Err(e) => {
            crate::log::warn_cause("batch KV read failed, asking D1", &e.0);
            Vec::new()
        }
    };
    let mut out = Batch::default();
    let mut expired: Vec<(String, Option<User>)> = Vec::new();
    let mut misses = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let copy = cached.get(i).and_then(|v| decode_copy(v.as_deref()?));
        match copy.map(|c| (swr::classify(c.cached_at, c.ttl, now), c.data)) {
            Some((Freshness::Fresh, u)) => {
                out.answer(id.as_str(), Some(u));
            }
            Some((Freshness::Stale, u)) => {
                out.answer(id.as_str(), Some(u));
                out.stale.push(id.clone());
            }
            Some((Freshness::Expired, u)) => {
                expired.push((id.as_str().to_string(), Some(u)));
                misses.push(id.clone());
            }
            None if missing.is_missing(id, now) => out.answer(id.as_str(), None),
            None => misses.push(id.clone()),
        }
    }
    if !misses.is_empty() {
        fill_misses(db, &misses, expired, &mut out).await?;
        for id in &misses {
            if out.user(id.as_str()) == Some(&None) {
                missing.note(id, now);
            }
        }
    }
    Ok(out)
}

/// One D1 query for the misses; if D1 fails and every miss has an expired copy, those are
/// served (stale-if-error).
async fn fill_misses<D: UserDb>(
    db: &D,
    misses: &[ProfileId],
    expired: Vec<(String, Option<User>)>,
    out: &mut Batch,
) -> DomainResult<()> {
    match db.get_many(misses).await {
        Ok(found) => {
            for id in misses {
                let user = found.iter().find(|u| u.id == id.as_str()).cloned();
                out.answer(id.as_str(), user);
            }
            out.fetched = found;
            Ok(())
        }
        Err(e)
            if misses
                .iter()
                .all(|id| expired.iter().any(|(k, _)| k == id.as_str())) =>
        {
            crate::log::warn_cause("batch D1 read failed, serving stale copies", &e.0);
            for (id, user) in expired {
                out.answer(&id, user);
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The background half of a batch: stores what D1 returned and refreshes the stale ids with
/// one more query. Failures are logged; the next read tries again.
pub async fn store_batch<K: Kv, D: UserDb>(
    kv: &K,
    db: &D,
    fetched: Vec<User>,
    stale: &[ProfileId],
    ttl_seconds: u64,
    now: Millis,
) {
    let mut refreshed = if stale.is_empty() {
        Vec::new()
    } else {
        db.get_many(stale).await.unwrap_or_else(|e| {
            crate::log::warn_cause("batch refresh failed", &e.0);
            Vec::new()
        })
    };
    let mut users = fetched;
    users.append(&mut refreshed);
    for user in users {
        let key = ProfileId::parse("id", &user.id).and_then(|id| kv_key(&id));
        if let Ok(key) = key {
            if let Err(e) = swr::store(kv, &key, user, ttl_seconds, now).await {
                crate::log::warn_cause("batch store skipped", &e.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::DomainError;
    use crate::domain::swr::CacheStatus;
    use crate::storage::fake::{block_on, MemKv, MemUsers};
    use serde_json::json;

    #[test]
    fn batch_answers_are_sorted_and_serialise_as_the_map_did() {
        let mut b = Batch::default();
        let u = |id: &str| User {
            id: id.into(),
            name: id.to_uppercase(),
            updated_at: Millis(1),
        };
        for id in ["m", "a", "z", "b"] {
            b.answer(id, (id != "z").then(|| u(id)));
        }
        let map: std::collections::BTreeMap<_, _> = b.users.iter().cloned().collect();
        assert_eq!(
            serde_json::to_string(&BatchView { users: &b.users }).unwrap(),
            serde_json::to_string(&json!({ "users": map })).unwrap()
        );
        assert_eq!(b.user("z"), Some(&None));
        assert_eq!(b.user("q"), None);
    }

    /// Values for `the_fast_reader_reads_every_token_as_the_parsed_one`.
    const TOKENS: [&str; 20] = [
        "0",
        "-0",
        "7",
        "-7",
        "01",
        "-01",
        "1.5",
        "1e3",
        "-",
        "999999999999999999",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "\"5\"",
        "null",
        "true",
        "{}",
        "[]",
        "\"\\u00e9\"",
    ];

    /// A copy as `swr::store` writes it.
    fn stored(name: &str) -> String {
        let user = User {
            id: "u-1".into(),
            name: name.into(),
            updated_at: Millis(1_700_000_000_123),
        };
        let copy = CachedCopy {
            data: user,
            cached_at: Millis(1_700_000_000_456),
            ttl: 300,
        };
        serde_json::to_string(&copy).unwrap()
    }

    #[test]
    fn stored_copies_take_the_fast_reader_and_read_as_serde_reads_them() {
        let text = stored("Ada Lovelace ✓");
        assert!(json::exact::<5>(COPY_LAYOUT, &text).is_some(), "{text}");
        let fast = decode_copy(&text).unwrap();
        let by_serde: CachedCopy<User> = serde_json::from_str(&text).unwrap();
        assert_eq!(fast, by_serde);
        assert_eq!(decode_copy(&text), Some(by_serde));
        // An escaped character leaves the subset: the parsed reader decides.
        let text = stored("Ada \"the Countess\"\n");
        assert_eq!(json::exact::<5>(COPY_LAYOUT, &text), None);
        assert_eq!(decode_copy(&text), serde_json::from_str(&text).ok());
        // Unknown fields and any order, as serde allows (through the parsed reader).
        let text =
            r#"{"ttl":60,"x":null,"data":{"updatedAt":5,"name":"n","id":"i","v":2},"cachedAt":7}"#;
        assert_eq!(
            decode_copy(text).map(|c| (c.ttl, c.cached_at, c.data.name)),
            Some((60, Millis(7), "n".into()))
        );
        assert_eq!(
            decode_copy(r#"{"data":{"id":"i","name":"n"},"cachedAt":7,"ttl":60}"#),
            None
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 2000,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0xc0_b1e5),
            failure_persistence: None,
            ..Default::default()
        })]

        /// Whatever the fast reader accepts, the parsed reader reads the same: stored copies
        /// cut, spliced and sprinkled with JSON's own characters.
        #[test]
        fn the_fast_reader_never_disagrees_with_the_parsed_one(
            name in "\\PC{0,12}",
            edits in proptest::collection::vec((0usize..200, 0usize..4, "[-{}\\[\\]\":,0-9.eE \\\\tnrufl]{1,3}"), 0..4),
        ) {
            let mut text = stored(&name);
            for (at, kind, piece) in edits {
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match kind {
                    0 => text.insert_str(at, &piece),
                    1 => text.truncate(at),
                    2 => {
                        let end = (at + piece.len()).min(text.len());
                        if text.is_char_boundary(end) {
                            text.replace_range(at..end, "");
                        }
                    }
                    _ => text.replace_range(at..at, &piece.repeat(2)),
                }
            }
            let slow = swr::decode_with(Some(&text), User::from_json);
            proptest::prop_assert_eq!(decode_copy(&text), slow, "{}", text);
        }

        /// The same for copies built from number-like and other tokens in every field: `-0`,
        /// leading zeros, fractions, numbers past `i64` and `u64` and past `f64`'s range,
        /// escaped strings and other values.
        #[test]
        fn the_fast_reader_reads_every_token_as_the_parsed_one(
            fields in proptest::collection::vec(0usize..TOKENS.len(), 5),
        ) {
            let t = |i: usize| TOKENS[fields[i]];
            // Half the ids and names are plain strings, so that the numbers get read.
            let text = format!(
                r#"{{"data":{{"id":{},"name":{},"updatedAt":{}}},"cachedAt":{},"ttl":{}}}"#,
                if fields[0] % 2 == 0 { "\"i\"" } else { t(0) },
                if fields[1] % 2 == 0 { "\"n\"" } else { t(1) },
                t(2),
                t(3),
                t(4),
            );
            let slow = swr::decode_with(Some(&text), User::from_json);
            proptest::prop_assert_eq!(decode_copy(&text), slow, "{}", text);
        }

        /// Every name survives the round trip through a stored copy.
        #[test]
        fn any_name_reads_back(name in "\\PC{0,40}") {
            let copy = decode_copy(&stored(&name)).map(|c| c.data.name);
            proptest::prop_assert_eq!(copy, Some(name));
        }
    }

    #[test]
    fn profiles_decode_by_hand_as_serde_does() {
        let text = r#"{"id":"u1","name":"Ada","updatedAt":7,"extra":1}"#;
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let by_serde: User = serde_json::from_str(text).unwrap();
        assert_eq!(User::from_json(&v), Some(by_serde));
        for bad in [
            json!({"id": "u1", "name": "Ada"}),
            json!({"id": 1, "name": "A", "updatedAt": 7}),
            json!({"id": "u1", "name": "A", "updatedAt": 1.5}),
            json!([]),
        ] {
            assert_eq!(User::from_json(&bad), None, "{bad}");
            assert!(serde_json::from_value::<User>(bad).is_err());
        }
    }

    fn pid(s: &str) -> ProfileId {
        ProfileId::parse("id", s).unwrap()
    }

    /// Profile `a` ("A") cached at 0 with a 10 s TTL: fresh until 10 s, stale until 20 s.
    fn store_a(kv: &MemKv) {
        let u = User {
            id: "a".into(),
            name: "A".into(),
            updated_at: Millis(1),
        };
        block_on(swr::store(
            kv,
            &kv_key(&pid("a")).unwrap(),
            u,
            10,
            Millis(0),
        ))
        .unwrap();
    }

    #[test]
    fn batch_reads_kv_once_and_d1_once_for_misses() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        for id in ["a", "b", "c"] {
            block_on(db.upsert(&pid(id), &id.to_uppercase(), Millis(1))).unwrap();
        }
        block_on(swr::store(
            &kv,
            &kv_key(&pid("a")).unwrap(),
            db.rows.borrow()["a"].clone(),
            300,
            Millis(1_000),
        ))
        .unwrap();
        db.db.queries.set(0);
        let out = block_on(batch(
            &kv,
            &db,
            &MissingUsers::default(),
            &[pid("a"), pid("b"), pid("zz")],
            Millis(2_000),
        ))
        .unwrap();
        assert_eq!(kv.reads(), 1);
        assert_eq!(db.db.queries.get(), 1);
        assert_eq!(out.user("a").unwrap().as_ref().unwrap().name, "A");
        assert_eq!(out.user("b").unwrap().as_ref().unwrap().name, "B");
        assert_eq!(out.user("zz"), Some(&None));
        assert_eq!(out.fetched.len(), 1);
    }

    #[test]
    fn batch_all_hits_needs_no_d1_and_flags_stale() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        store_a(&kv);
        let out = block_on(batch(
            &kv,
            &db,
            &MissingUsers::default(),
            &[pid("a")],
            Millis(15_000),
        ))
        .unwrap();
        assert_eq!(db.db.queries.get(), 0);
        assert_eq!(out.stale, vec![pid("a")]);
    }

    #[test]
    fn batch_d1_failure_serves_expired_copies_or_fails() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        store_a(&kv);
        db.db.failing.set(true);
        let out = block_on(batch(
            &kv,
            &db,
            &MissingUsers::default(),
            &[pid("a")],
            Millis(60_000),
        ))
        .unwrap();
        assert_eq!(out.user("a").unwrap().as_ref().unwrap().name, "A");
        assert!(matches!(
            block_on(batch(
                &kv,
                &db,
                &MissingUsers::default(),
                &[pid("a"), pid("b")],
                Millis(60_000)
            )),
            Err(DomainError::Unavailable(_))
        ));
    }

    #[test]
    fn get_through_cache_reports_status() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        block_on(db.upsert(&pid("a"), "A", Millis(1))).unwrap();
        let id = pid("a");
        let l = block_on(get(
            &kv,
            &db,
            &MissingUsers::default(),
            &id,
            300,
            Millis(1_000),
        ))
        .unwrap();
        assert_eq!(l.status, CacheStatus::Miss);
        let l = block_on(get(
            &kv,
            &db,
            &MissingUsers::default(),
            &id,
            300,
            Millis(2_000),
        ))
        .unwrap();
        assert_eq!(l.status, CacheStatus::Hit);
        assert_eq!(db.db.queries.get(), 2, "one upsert, one read");
    }

    #[test]
    fn put_writes_d1_then_invalidates_and_survives_a_failed_invalidation() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        let id = pid("a");
        block_on(put(&kv, &db, &MissingUsers::default(), &id, "A", Millis(1))).unwrap();
        block_on(get(&kv, &db, &MissingUsers::default(), &id, 300, Millis(2))).unwrap();
        assert!(kv.get_raw("user:a").is_some());
        block_on(put(&kv, &db, &MissingUsers::default(), &id, "B", Millis(3))).unwrap();
        assert!(kv.get_raw("user:a").is_none(), "the cached copy is gone");
        block_on(get(&kv, &db, &MissingUsers::default(), &id, 300, Millis(4))).unwrap();
        kv.fail(true);
        let user = block_on(put(&kv, &db, &MissingUsers::default(), &id, "C", Millis(5))).unwrap();
        assert_eq!(user.name, "C", "D1 has the write even though KV failed");
    }

    #[test]
    fn a_missing_profile_is_asked_once_per_interval_and_forgotten_when_written() {
        let (kv, db, missing) = (
            MemKv::default(),
            MemUsers::default(),
            MissingUsers::default(),
        );
        let id = pid("ghost");
        for ms in [0, 1_000, MISSING_TTL_MS - 1] {
            let l = block_on(get(&kv, &db, &missing, &id, 300, Millis(ms))).unwrap();
            assert_eq!(l.value, None, "{ms}");
        }
        assert_eq!(
            db.db.queries.get(),
            1,
            "30 s of reads of one missing id: one query"
        );
        block_on(get(&kv, &db, &missing, &id, 300, Millis(MISSING_TTL_MS))).unwrap();
        assert_eq!(db.db.queries.get(), 2, "asked again after the interval");
        let batch_out = block_on(batch(
            &kv,
            &db,
            &missing,
            &[id.clone(), pid("x")],
            Millis(MISSING_TTL_MS + 1),
        ));
        assert_eq!(batch_out.unwrap().user("ghost"), Some(&None));
        assert_eq!(db.db.queries.get(), 3, "the batch asks only for x");
        block_on(put(
            &kv,
            &db,
            &missing,
            &id,
            "Now here",
            Millis(MISSING_TTL_MS + 2),
        ))
        .unwrap();
        let l = block_on(get(
            &kv,
            &db,
            &missing,
            &id,
            300,
            Millis(MISSING_TTL_MS + 3),
        ))
        .unwrap();
        assert_eq!(l.value.map(|u| u.name).as_deref(), Some("Now here"));
    }

    #[test]
    fn store_batch_stores_fetched_and_refreshes_stale_ids() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        block_on(db.upsert(&pid("s"), "S2", Millis(1))).unwrap();
        let fetched = vec![User {
            id: "f".into(),
            name: "F".into(),
            updated_at: Millis(1),
        }];
        block_on(store_batch(&kv, &db, fetched, &[pid("s")], 300, Millis(9)));
        assert!(kv.get_raw("user:f").unwrap().contains("\"F\""));
        assert!(kv.get_raw("user:s").unwrap().contains("\"S2\""));
    }
}
