//! User profiles in D1, read through the stale-while-revalidate cache (`swr`) in KV under
//! `user:<id>`. Routes: `GET /users/:id`, `POST /users/batch`, `PUT /admin/users/:id`.

use crate::app::App;
use crate::error::{ApiError, ApiResult, StoreResult};
use crate::http::{deny_unknown, object, read_json};
use crate::isolate::begin_flight;
use crate::reply::Reply;
use crate::router::pick;
use crate::storage::Kv;
use crate::swr::{self, Freshness};
use crate::types::{KvKey, ProfileId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use worker::Request;

const KV_PREFIX: &str = "user:";
pub const MAX_BATCH: usize = 100;
const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: String,
    pub updated_at: i64,
}

/// The D1 side of profiles.
#[allow(async_fn_in_trait)]
pub trait UserDb {
    async fn get(&self, id: &ProfileId) -> StoreResult<Option<User>>;
    /// One query for all of `ids`.
    async fn get_many(&self, ids: &[ProfileId]) -> StoreResult<Vec<User>>;
    async fn upsert(&self, id: &ProfileId, name: &str, now: i64) -> StoreResult<User>;
}

pub fn kv_key(id: &ProfileId) -> ApiResult<KvKey> {
    KvKey::new(KV_PREFIX, id.as_str())
}

/// `{"name"}`: 1-100 characters, no control characters.
pub fn parse_profile(body: &serde_json::Value) -> ApiResult<String> {
    let obj = object(body)?;
    deny_unknown(obj, &["name"], "")?;
    let name = obj
        .get("name")
        .ok_or_else(|| ApiError::invalid("name", "is required"))?
        .as_str()
        .ok_or_else(|| ApiError::invalid("name", "must be a string"))?;
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "must be 1-100 printable characters",
        ));
    }
    Ok(name.to_string())
}

/// `{"ids": [...]}`: 1 to 100 distinct valid ids.
pub fn parse_batch(body: &serde_json::Value) -> ApiResult<Vec<ProfileId>> {
    let obj = object(body)?;
    deny_unknown(obj, &["ids"], "")?;
    let ids = obj
        .get("ids")
        .ok_or_else(|| ApiError::invalid("ids", "is required"))?
        .as_array()
        .ok_or_else(|| ApiError::invalid("ids", "must be an array"))?;
    if ids.is_empty() || ids.len() > MAX_BATCH {
        return Err(ApiError::invalid("ids", "must hold 1 to 100 ids"));
    }
    let mut seen = HashSet::new();
    ids.iter()
        .enumerate()
        .map(|(i, v)| {
            let field = format!("ids[{i}]");
            let s = v
                .as_str()
                .ok_or_else(|| ApiError::invalid(&field, "must be a string"))?;
            let id = ProfileId::parse(&field, s)?;
            if !seen.insert(id.clone()) {
                return Err(ApiError::invalid(&field, "is a duplicate"));
            }
            Ok(id)
        })
        .collect()
}

/// The outcome of a batch read: the answer, plus which ids to store or refresh afterwards.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    pub users: BTreeMap<String, Option<User>>,
    /// Fetched from D1 on a miss: to be stored in KV.
    pub fetched: Vec<User>,
    /// Served stale: to be refreshed from D1.
    pub stale: Vec<ProfileId>,
}

/// One KV bulk read for every id, then one D1 query for those KV could not serve.
pub async fn batch<K: Kv, D: UserDb>(
    kv: &K,
    db: &D,
    ids: &[ProfileId],
    now: i64,
) -> ApiResult<Batch> {
    let keys = ids.iter().map(kv_key).collect::<ApiResult<Vec<_>>>()?;
    let cached = match kv.get_bulk(&keys).await {
        Ok(map) => map,
        Err(e) => {
            crate::log::warn(&format!("batch KV read failed, asking D1: {}", e.0));
            Default::default()
        }
    };
    let mut out = Batch::default();
    let mut expired: BTreeMap<String, User> = BTreeMap::new();
    let mut misses = Vec::new();
    for (id, key) in ids.iter().zip(&keys) {
        let env = swr::decode::<User>(cached.get(key.as_str()).and_then(|v| v.as_deref()));
        match env.map(|e| (swr::classify(e.cached_at, e.ttl, now), e.data)) {
            Some((Freshness::Fresh, u)) => {
                out.users.insert(id.to_string(), Some(u));
            }
            Some((Freshness::Stale, u)) => {
                out.users.insert(id.to_string(), Some(u));
                out.stale.push(id.clone());
            }
            Some((Freshness::Expired, u)) => {
                expired.insert(id.to_string(), u);
                misses.push(id.clone());
            }
            None => misses.push(id.clone()),
        }
    }
    if misses.is_empty() {
        return Ok(out);
    }
    match db.get_many(&misses).await {
        Ok(found) => {
            for id in &misses {
                out.users.insert(
                    id.to_string(),
                    found.iter().find(|u| u.id == id.as_str()).cloned(),
                );
            }
            out.fetched = found;
        }
        Err(e) if misses.iter().all(|id| expired.contains_key(id.as_str())) => {
            crate::log::warn(&format!(
                "batch D1 read failed, serving stale copies: {}",
                e.0
            ));
            out.users
                .extend(expired.into_iter().map(|(k, u)| (k, Some(u))));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Routes.

#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Get(String),
    Batch,
    Put(String),
}

impl Endpoint {
    pub fn is_admin(&self) -> bool {
        matches!(self, Endpoint::Put(_))
    }
}

pub fn resolve(method: &str, segs: &[&str]) -> Option<ApiResult<Endpoint>> {
    Some(match segs {
        ["users", "batch"] => pick(method, "POST", vec![("POST", Endpoint::Batch)]),
        ["users", id] => pick(method, "GET", vec![("GET", Endpoint::Get(id.to_string()))]),
        ["admin", "users", id] => pick(method, "PUT", vec![("PUT", Endpoint::Put(id.to_string()))]),
        _ => return None,
    })
}

pub async fn serve(app: &App, ep: Endpoint, req: &mut Request) -> ApiResult<Reply> {
    let ttl = u64::from(app.config.cache_ttl_seconds);
    match ep {
        Endpoint::Get(id) => {
            let id = ProfileId::parse("id", &id)?;
            let key = kv_key(&id)?;
            let lookup = swr::get(&app.kv, &key, ttl, app.now, || app.d1.get(&id)).await?;
            if lookup.refresh {
                if let Some(flight) = begin_flight(key.as_str()) {
                    let (kv, db, now) = (app.kv.detached(), app.d1.detached(), app.now);
                    app.spawn(async move {
                        swr::refresh(&kv, &key, ttl, now, || db.get(&id)).await;
                        drop(flight);
                    });
                }
            }
            let user = lookup.value.ok_or(ApiError::NotFound)?;
            Ok(Reply::ok(&user).with_header("X-Cache", lookup.status.header()))
        }
        Endpoint::Batch => {
            let ids = parse_batch(&read_json(req).await?)?;
            let out = batch(&app.kv, &app.d1, &ids, app.now).await?;
            background_store(app, out.fetched, out.stale, ttl);
            Ok(Reply::ok(&serde_json::json!({ "users": out.users })))
        }
        Endpoint::Put(id) => {
            app.require_admin(req)?;
            let id = ProfileId::parse("id", &id)?;
            let name = parse_profile(&read_json(req).await?)?;
            let user = app.d1.upsert(&id, &name, app.now).await?;
            // D1 has the write; if the invalidation fails the copy still ages out (2 × ttl).
            if let Err(e) = app.kv.delete(&kv_key(&id)?).await {
                crate::log::error(&format!("user cache invalidation failed: {}", e.0));
            }
            Ok(Reply::ok(&user))
        }
    }
}

/// After a batch: store what D1 returned, and refresh stale entries with one more query.
fn background_store(app: &App, fetched: Vec<User>, stale: Vec<ProfileId>, ttl: u64) {
    let flights: Vec<_> = stale
        .into_iter()
        .filter_map(|id| {
            kv_key(&id)
                .ok()
                .and_then(|k| begin_flight(k.as_str()))
                .map(|f| (id, f))
        })
        .collect();
    if fetched.is_empty() && flights.is_empty() {
        return;
    }
    let (kv, db, now) = (app.kv.detached(), app.d1.detached(), app.now);
    app.spawn(async move {
        let ids: Vec<ProfileId> = flights.iter().map(|(id, _)| id.clone()).collect();
        let refreshed = if ids.is_empty() {
            Ok(Vec::new())
        } else {
            db.get_many(&ids).await
        };
        let refreshed = refreshed.unwrap_or_else(|e| {
            crate::log::warn(&format!("batch refresh failed: {}", e.0));
            Vec::new()
        });
        for user in fetched.into_iter().chain(refreshed) {
            if let Ok(id) = ProfileId::parse("id", &user.id) {
                if let Ok(key) = kv_key(&id) {
                    let _ = swr::store(&kv, &key, user, ttl, now).await;
                }
            }
        }
        drop(flights);
    });
}

#[cfg(test)]
pub mod fake {
    use super::*;
    use crate::storage::fake::FakeDb;
    use std::cell::RefCell;

    #[derive(Default)]
    pub struct MemUsers {
        pub rows: RefCell<BTreeMap<String, User>>,
        pub db: FakeDb,
    }

    impl UserDb for MemUsers {
        async fn get(&self, id: &ProfileId) -> StoreResult<Option<User>> {
            self.db.query()?;
            Ok(self.rows.borrow().get(id.as_str()).cloned())
        }
        async fn get_many(&self, ids: &[ProfileId]) -> StoreResult<Vec<User>> {
            self.db.query()?;
            Ok(ids
                .iter()
                .filter_map(|id| self.rows.borrow().get(id.as_str()).cloned())
                .collect())
        }
        async fn upsert(&self, id: &ProfileId, name: &str, now: i64) -> StoreResult<User> {
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
}

#[cfg(test)]
mod tests {
    use super::fake::MemUsers;
    use super::*;
    use crate::storage::fake::{block_on, MemKv};
    use crate::swr::CacheStatus;
    use serde_json::json;

    fn pid(s: &str) -> ProfileId {
        ProfileId::parse("id", s).unwrap()
    }

    #[test]
    fn batch_validation() {
        assert_eq!(parse_batch(&json!({"ids": ["a", "b"]})).unwrap().len(), 2);
        let hundred: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        assert!(parse_batch(&json!({ "ids": hundred })).is_ok());
        let too_many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
        for body in [
            json!({ "ids": too_many }),
            json!({"ids": []}),
            json!({"ids": ["a", "a"]}),
            json!({"ids": ["a", 1]}),
            json!({"ids": ["bad id"]}),
            json!({"ids": "a"}),
            json!({}),
            json!({"ids": ["a"], "more": 1}),
        ] {
            assert!(
                matches!(parse_batch(&body), Err(ApiError::InvalidRequest(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn profile_validation() {
        assert_eq!(parse_profile(&json!({"name": "Ada"})).unwrap(), "Ada");
        assert!(parse_profile(&json!({"name": "é".repeat(100)})).is_ok());
        for body in [
            json!({"name": ""}),
            json!({"name": "x".repeat(101)}),
            json!({"name": 5}),
            json!({}),
            json!({"name": "a\u{0}"}),
            json!({"name": "a", "x": 1}),
        ] {
            assert!(parse_profile(&body).is_err(), "{body}");
        }
    }

    #[test]
    fn batch_reads_kv_once_and_d1_once_for_misses() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        for id in ["a", "b", "c"] {
            block_on(db.upsert(&pid(id), &id.to_uppercase(), 1)).unwrap();
        }
        block_on(swr::store(
            &kv,
            &kv_key(&pid("a")).unwrap(),
            db.rows.borrow()["a"].clone(),
            300,
            1_000,
        ))
        .unwrap();
        db.db.queries.set(0);
        let out = block_on(batch(&kv, &db, &[pid("a"), pid("b"), pid("zz")], 2_000)).unwrap();
        assert_eq!(kv.reads(), 1);
        assert_eq!(db.db.queries.get(), 1);
        assert_eq!(out.users["a"].as_ref().unwrap().name, "A");
        assert_eq!(out.users["b"].as_ref().unwrap().name, "B");
        assert_eq!(out.users["zz"], None);
        assert_eq!(out.fetched.len(), 1);
    }

    #[test]
    fn batch_all_hits_needs_no_d1_and_flags_stale() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        let u = User {
            id: "a".into(),
            name: "A".into(),
            updated_at: 1,
        };
        block_on(swr::store(&kv, &kv_key(&pid("a")).unwrap(), u, 10, 0)).unwrap();
        let out = block_on(batch(&kv, &db, &[pid("a")], 15_000)).unwrap();
        assert_eq!(db.db.queries.get(), 0);
        assert_eq!(out.stale, vec![pid("a")]);
    }

    #[test]
    fn batch_d1_failure_serves_expired_copies_or_fails() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        let u = User {
            id: "a".into(),
            name: "A".into(),
            updated_at: 1,
        };
        block_on(swr::store(&kv, &kv_key(&pid("a")).unwrap(), u, 10, 0)).unwrap();
        db.db.failing.set(true);
        let out = block_on(batch(&kv, &db, &[pid("a")], 60_000)).unwrap();
        assert_eq!(out.users["a"].as_ref().unwrap().name, "A");
        assert!(matches!(
            block_on(batch(&kv, &db, &[pid("a"), pid("b")], 60_000)),
            Err(ApiError::Unavailable(_))
        ));
    }

    #[test]
    fn get_through_cache_reports_status() {
        let (kv, db) = (MemKv::default(), MemUsers::default());
        block_on(db.upsert(&pid("a"), "A", 1)).unwrap();
        let (id, key) = (pid("a"), kv_key(&pid("a")).unwrap());
        let l = block_on(swr::get(&kv, &key, 300, 1_000, || db.get(&id))).unwrap();
        assert_eq!(l.status, CacheStatus::Miss);
        let l = block_on(swr::get(&kv, &key, 300, 2_000, || db.get(&id))).unwrap();
        assert_eq!(l.status, CacheStatus::Hit);
        assert_eq!(db.db.queries.get(), 2, "one upsert, one read");
    }
}
