//! Sessions: KV is the fast read path, D1 the authority.
//!
//! * The id handed to the client is 32 bytes from the platform CSPRNG (256 bits), base64url.
//!   Only its SHA-256 is stored (KV key `session:<hex>`, D1 primary key), so a dump of KV or
//!   D1 yields no usable session.
//! * Create: D1 first, then KV with `expirationTtl` = remaining lifetime and metadata.
//! * Read (`GET /sessions/current`, and every session-authenticated route): KV first; on a
//!   miss D1, and a valid D1 hit is written back to KV. Expired sessions are refused even if
//!   KV still holds them.
//! * Revocation marks the D1 row and deletes the KV entry, so this location refuses the
//!   session at once. Revocation and admin routes always check D1.

use crate::app::App;
use crate::error::{ApiError, ApiResult, StoreResult};
use crate::http::{deny_unknown, object, read_json};
use crate::reply::Reply;
use crate::router::pick;
use crate::storage::{Kv, PutOptions};
use crate::types::{Email, KvKey, KvMetadata, SessionId, Ttl, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use worker::Request;

pub const LIFETIME_SECONDS: u64 = 7 * 24 * 60 * 60;
const LIFETIME_MS: i64 = LIFETIME_SECONDS as i64 * 1000;
const KV_PREFIX: &str = "session:";
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

/// A session as stored: never the id itself, only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: String,
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl SessionRecord {
    pub fn is_valid(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    pub fn view(&self) -> SessionView {
        SessionView {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// What the API shows of a session, and what the KV entry holds (value and metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub user_id: String,
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Keyset pagination position: the last row of the previous page.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub created_at: i64,
    pub id_hash: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id_hash)
    }

    pub fn parse(s: &str) -> ApiResult<Self> {
        let bad = || ApiError::invalid("cursor", "is not a cursor this API returned");
        let (at, hash) = s.split_once('.').ok_or_else(bad)?;
        let created_at = at
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0 && at.len() <= 16)
            .ok_or_else(bad)?;
        if !is_hash(hash) {
            return Err(bad());
        }
        Ok(Cursor {
            created_at,
            id_hash: hash.to_string(),
        })
    }
}

fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub user: Option<UserId>,
    pub cursor: Option<Cursor>,
    pub limit: u32,
}

impl ListQuery {
    /// Parses `userId`, `cursor` and `limit` query parameters.
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> ApiResult<Self> {
        let mut q = ListQuery {
            user: None,
            cursor: None,
            limit: DEFAULT_PAGE,
        };
        for (k, v) in pairs {
            // An empty value (`?userId=&cursor=&limit=`) means "not given".
            let (k, v) = (k.as_ref(), v.as_ref());
            match k {
                _ if v.is_empty() => {}
                "userId" => q.user = Some(UserId::parse("userId", v)?),
                "cursor" => q.cursor = Some(Cursor::parse(v)?),
                "limit" => {
                    q.limit = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid("limit", "must be an integer from 1 to 1000")
                        })?
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionPage {
    pub sessions: Vec<SessionView>,
    pub cursor: Option<String>,
    pub list_complete: bool,
}

/// The D1 side of sessions.
#[allow(async_fn_in_trait)]
pub trait SessionDb {
    async fn insert(&self, s: &SessionRecord) -> StoreResult<()>;
    async fn find(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Marks one session revoked; false if it was not active.
    async fn revoke(&self, id_hash: &str, now: i64) -> StoreResult<bool>;
    /// Revokes every active session of a user; returns their hashes.
    async fn revoke_user(&self, user: &UserId, now: i64) -> StoreResult<Vec<String>>;
    /// Active sessions, newest first, after the cursor; at most `limit` rows.
    async fn list(&self, q: &ListQuery, now: i64, limit: u32) -> StoreResult<Vec<SessionRecord>>;
}

pub fn hash_id(id: &SessionId) -> String {
    Sha256::digest(id.as_str().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh session id: 256 bits from the platform's cryptographic random source.
pub fn new_id() -> ApiResult<SessionId> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(SessionId::from_random(&bytes))
}

fn kv_key(id_hash: &str) -> ApiResult<KvKey> {
    KvKey::new(KV_PREFIX, id_hash)
}

/// Writes the KV copy of a session with the remaining lifetime as TTL. Best effort: D1 is
/// the authority, and a missing KV entry is found through D1 on the next read.
async fn cache<K: Kv>(kv: &K, rec: &SessionRecord, now: i64) {
    let result = async {
        let view = rec.view();
        let text = serde_json::to_string(&view).map_err(|e| ApiError::Internal(e.to_string()))?;
        let meta = KvMetadata::new(
            serde_json::to_value(&view).map_err(|e| ApiError::Internal(e.to_string()))?,
        )?;
        let remaining = u64::try_from((rec.expires_at - now).max(0) / 1000).unwrap_or(0);
        let opts = PutOptions {
            ttl: Some(Ttl::at_least_minimum(remaining)),
            metadata: Some(meta),
        };
        kv.put(&kv_key(&rec.id_hash)?, &text, opts)
            .await
            .map_err(ApiError::from)
    }
    .await;
    if let Err(e) = result {
        crate::log::warn(&format!("session KV write skipped: {e}"));
    }
}

pub async fn create<K: Kv, D: SessionDb>(
    kv: &K,
    db: &D,
    now: i64,
    user: UserId,
    email: Email,
) -> ApiResult<(SessionId, SessionView)> {
    let id = new_id()?;
    let rec = SessionRecord {
        id_hash: hash_id(&id),
        user_id: user.as_str().to_string(),
        email: email.as_str().to_string(),
        created_at: now,
        expires_at: now + LIFETIME_MS,
        revoked_at: None,
    };
    db.insert(&rec).await?;
    cache(kv, &rec, now).await;
    Ok((id, rec.view()))
}

/// How much to trust KV when resolving a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// KV first, D1 on a miss (reads).
    Fast,
    /// D1 only (revocation).
    Authoritative,
}

/// Resolves a presented session id to its session, or 401.
pub async fn authenticate<K: Kv, D: SessionDb>(
    kv: &K,
    db: &D,
    now: i64,
    id: &SessionId,
    check: Check,
) -> ApiResult<SessionView> {
    let hash = hash_id(id);
    let key = kv_key(&hash)?;
    if check == Check::Fast {
        match kv.get(&key).await {
            Ok(Some(text)) => {
                if let Ok(view) = serde_json::from_str::<SessionView>(&text) {
                    return if now < view.expires_at {
                        Ok(view)
                    } else {
                        Err(ApiError::Unauthorized)
                    };
                }
            }
            Ok(None) => {}
            Err(e) => crate::log::warn(&format!("session KV read failed, asking D1: {}", e.0)),
        }
    }
    let rec = db
        .find(&hash)
        .await?
        .filter(|r| r.is_valid(now))
        .ok_or(ApiError::Unauthorized)?;
    if check == Check::Fast {
        cache(kv, &rec, now).await;
    }
    Ok(rec.view())
}

/// Logout. Checks D1, not KV. A session D1 already holds as revoked or expired is refused,
/// and any KV copy left behind (a failed delete, say) is removed on the way.
pub async fn revoke<K: Kv, D: SessionDb>(
    kv: &K,
    db: &D,
    now: i64,
    id: &SessionId,
) -> ApiResult<()> {
    let hash = hash_id(id);
    let key = kv_key(&hash)?;
    let rec = db.find(&hash).await?.ok_or(ApiError::Unauthorized)?;
    if !rec.is_valid(now) || !db.revoke(&hash, now).await? {
        if let Err(e) = kv.delete(&key).await {
            crate::log::warn(&format!("stale session KV cleanup failed: {}", e.0));
        }
        return Err(ApiError::Unauthorized);
    }
    kv.delete(&key).await?;
    Ok(())
}

pub async fn revoke_user<K: Kv, D: SessionDb>(
    kv: &K,
    db: &D,
    now: i64,
    user: &UserId,
) -> ApiResult<usize> {
    let hashes = db.revoke_user(user, now).await?;
    for hash in &hashes {
        kv.delete(&kv_key(hash)?).await?;
    }
    Ok(hashes.len())
}

pub async fn list<D: SessionDb>(db: &D, now: i64, q: &ListQuery) -> ApiResult<SessionPage> {
    let mut rows = db.list(q, now, q.limit + 1).await?;
    let list_complete = rows.len() <= q.limit as usize;
    rows.truncate(q.limit as usize);
    let cursor = if list_complete {
        None
    } else {
        rows.last().map(|r| {
            Cursor {
                created_at: r.created_at,
                id_hash: r.id_hash.clone(),
            }
            .encode()
        })
    };
    Ok(SessionPage {
        sessions: rows.iter().map(SessionRecord::view).collect(),
        cursor,
        list_complete,
    })
}

/// Parses `{"userId", "email"}`.
pub fn parse_new_session(body: &serde_json::Value) -> ApiResult<(UserId, Email)> {
    let obj = object(body)?;
    deny_unknown(obj, &["userId", "email"], "")?;
    let text = |f: &str| {
        obj.get(f)
            .ok_or_else(|| ApiError::invalid(f, "is required"))?
            .as_str()
            .ok_or_else(|| ApiError::invalid(f, "must be a string"))
    };
    Ok((
        UserId::parse("userId", text("userId")?)?,
        Email::parse("email", text("email")?)?,
    ))
}

// ---------------------------------------------------------------------------------------
// Routes.

#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Create,
    Current,
    Logout,
    List,
    RevokeUser(String),
}

impl Endpoint {
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Endpoint::Create | Endpoint::List | Endpoint::RevokeUser(_)
        )
    }
}

pub fn resolve(method: &str, segs: &[&str]) -> Option<ApiResult<Endpoint>> {
    Some(match segs {
        ["sessions"] => pick(method, "POST", vec![("POST", Endpoint::Create)]),
        ["sessions", "current"] => pick(
            method,
            "GET, DELETE",
            vec![("GET", Endpoint::Current), ("DELETE", Endpoint::Logout)],
        ),
        ["admin", "sessions"] => pick(method, "GET", vec![("GET", Endpoint::List)]),
        ["admin", "users", user, "sessions"] => pick(
            method,
            "DELETE",
            vec![("DELETE", Endpoint::RevokeUser(user.to_string()))],
        ),
        _ => return None,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created<'a> {
    session_id: &'a str,
    #[serde(flatten)]
    view: &'a SessionView,
}

pub async fn serve(app: &App, ep: Endpoint, req: &mut Request) -> ApiResult<Reply> {
    let (kv, db, now) = (&app.kv, &app.d1, app.now);
    match ep {
        Endpoint::Create => {
            app.require_admin(req)?;
            let (user, email) = parse_new_session(&read_json(req).await?)?;
            let (id, view) = create(kv, db, now, user, email).await?;
            let body = Created {
                session_id: id.as_str(),
                view: &view,
            };
            Ok(Reply::json(201, &body).with_header(
                "Set-Cookie",
                crate::auth::session_cookie(&id, LIFETIME_SECONDS),
            ))
        }
        Endpoint::Current => Ok(Reply::ok(&app.session(req).await?)),
        Endpoint::Logout => {
            revoke(kv, db, now, &app.session_id(req)?).await?;
            Ok(Reply::no_content().with_header("Set-Cookie", crate::auth::clearing_cookie()))
        }
        Endpoint::List => {
            app.require_admin(req)?;
            let url = req.url().map_err(|e| ApiError::Internal(e.to_string()))?;
            let q = ListQuery::parse(url.query_pairs())?;
            Ok(Reply::ok(&list(db, now, &q).await?))
        }
        Endpoint::RevokeUser(user) => {
            app.require_admin(req)?;
            let user = UserId::parse("userId", &user)?;
            let revoked = revoke_user(kv, db, now, &user).await?;
            Ok(Reply::ok(&serde_json::json!({ "revoked": revoked })))
        }
    }
}

#[cfg(test)]
pub mod fake {
    use super::*;
    use crate::storage::fake::FakeDb;
    use std::cell::RefCell;

    #[derive(Default)]
    pub struct MemSessions {
        pub rows: RefCell<Vec<SessionRecord>>,
        pub db: FakeDb,
    }

    impl SessionDb for MemSessions {
        async fn insert(&self, s: &SessionRecord) -> StoreResult<()> {
            self.db.query()?;
            self.rows.borrow_mut().push(s.clone());
            Ok(())
        }
        async fn find(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
            self.db.query()?;
            Ok(self
                .rows
                .borrow()
                .iter()
                .find(|r| r.id_hash == id_hash)
                .cloned())
        }
        async fn revoke(&self, id_hash: &str, now: i64) -> StoreResult<bool> {
            self.db.query()?;
            let mut rows = self.rows.borrow_mut();
            let row = rows
                .iter_mut()
                .find(|r| r.id_hash == id_hash && r.revoked_at.is_none());
            Ok(row.map(|r| r.revoked_at = Some(now)).is_some())
        }
        async fn revoke_user(&self, user: &UserId, now: i64) -> StoreResult<Vec<String>> {
            self.db.query()?;
            let mut out = Vec::new();
            for r in self.rows.borrow_mut().iter_mut() {
                if r.user_id == user.as_str() && r.is_valid(now) {
                    r.revoked_at = Some(now);
                    out.push(r.id_hash.clone());
                }
            }
            Ok(out)
        }
        async fn list(
            &self,
            q: &ListQuery,
            now: i64,
            limit: u32,
        ) -> StoreResult<Vec<SessionRecord>> {
            self.db.query()?;
            let mut rows: Vec<_> = self
                .rows
                .borrow()
                .iter()
                .filter(|r| r.is_valid(now))
                .filter(|r| q.user.as_ref().is_none_or(|u| u.as_str() == r.user_id))
                .filter(|r| {
                    q.cursor
                        .as_ref()
                        .is_none_or(|c| (r.created_at, &r.id_hash) < (c.created_at, &c.id_hash))
                })
                .cloned()
                .collect();
            rows.sort_by(|a, b| (b.created_at, &b.id_hash).cmp(&(a.created_at, &a.id_hash)));
            rows.truncate(limit as usize);
            Ok(rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::MemSessions;
    use super::*;
    use crate::storage::fake::{block_on, MemKv};

    const NOW: i64 = 1_700_000_000_000;

    fn user(s: &str) -> UserId {
        UserId::parse("userId", s).unwrap()
    }
    fn email() -> Email {
        Email::parse("email", "a@example.com").unwrap()
    }

    #[test]
    fn ids_are_random_urlsafe_and_256_bits() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert!(SessionId::parse(a.as_str()).is_some());
    }

    #[test]
    fn hash_is_sha256_hex_and_not_the_id() {
        let id = SessionId::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let h = hash_id(&id);
        assert!(is_hash(&h));
        assert!(!h.contains(id.as_str()));
        assert_eq!(h, hash_id(&id));
    }

    #[test]
    fn create_stores_only_the_hash() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let (id, view) = block_on(create(&kv, &db, NOW, user("u1"), email())).unwrap();
        assert_eq!(view.expires_at - view.created_at, 7 * 24 * 3600 * 1000);
        let key = format!("session:{}", hash_id(&id));
        let entry = kv.entry(&key).expect("KV entry under the hash");
        assert_eq!(entry.ttl, Some(LIFETIME_SECONDS));
        assert_eq!(entry.metadata.unwrap()["userId"], "u1");
        let dump = format!("{:?}{:?}", kv.entries.borrow(), db.rows.borrow());
        assert!(
            !dump.contains(id.as_str()),
            "no stored form holds the usable id"
        );
    }

    #[test]
    fn kv_miss_falls_back_to_d1_and_writes_back() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let (id, _) = block_on(create(&kv, &db, NOW, user("u1"), email())).unwrap();
        let key = format!("session:{}", hash_id(&id));
        kv.remove(&key);
        let later = NOW + 3_600_000;
        let v = block_on(authenticate(&kv, &db, later, &id, Check::Fast)).unwrap();
        assert_eq!(v.user_id, "u1");
        let entry = kv.entry(&key).expect("written back");
        assert_eq!(entry.ttl, Some(LIFETIME_SECONDS - 3600));
    }

    #[test]
    fn kv_hit_needs_no_d1() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let (id, _) = block_on(create(&kv, &db, NOW, user("u1"), email())).unwrap();
        db.db.failing.set(true);
        assert!(block_on(authenticate(&kv, &db, NOW + 1, &id, Check::Fast)).is_ok());
    }

    #[test]
    fn expired_sessions_are_refused_even_from_kv() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let (id, _) = block_on(create(&kv, &db, NOW, user("u1"), email())).unwrap();
        let after = NOW + LIFETIME_MS;
        assert_eq!(
            block_on(authenticate(&kv, &db, after, &id, Check::Fast)),
            Err(ApiError::Unauthorized)
        );
        kv.entries.borrow_mut().clear();
        assert_eq!(
            block_on(authenticate(&kv, &db, after, &id, Check::Fast)),
            Err(ApiError::Unauthorized)
        );
        assert!(block_on(authenticate(&kv, &db, after - 1, &id, Check::Fast)).is_ok());
    }

    #[test]
    fn revoke_then_reuse_is_401_and_kv_is_cleared() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let (id, _) = block_on(create(&kv, &db, NOW, user("u1"), email())).unwrap();
        block_on(revoke(&kv, &db, NOW + 1, &id)).unwrap();
        assert_eq!(
            block_on(authenticate(&kv, &db, NOW + 2, &id, Check::Fast)),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            block_on(revoke(&kv, &db, NOW + 3, &id)),
            Err(ApiError::Unauthorized)
        );
        assert!(kv.entries.borrow().is_empty());
    }

    #[test]
    fn a_failed_kv_delete_is_reported_and_cleaned_up_on_retry() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let (id, _) = block_on(create(&kv, &db, NOW, user("u1"), email())).unwrap();
        kv.fail(true);
        assert!(matches!(
            block_on(revoke(&kv, &db, NOW + 1, &id)),
            Err(ApiError::Unavailable(_))
        ));
        kv.fail(false);
        assert_eq!(
            kv.entries.borrow().len(),
            1,
            "the KV copy survived the failed delete"
        );
        assert_eq!(
            block_on(revoke(&kv, &db, NOW + 2, &id)),
            Err(ApiError::Unauthorized)
        );
        assert!(kv.entries.borrow().is_empty(), "the retry removed it");
    }

    #[test]
    fn revoke_user_touches_only_that_user() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let (a1, _) = block_on(create(&kv, &db, NOW, user("a"), email())).unwrap();
        let (a2, _) = block_on(create(&kv, &db, NOW, user("a"), email())).unwrap();
        let (b, _) = block_on(create(&kv, &db, NOW, user("b"), email())).unwrap();
        assert_eq!(
            block_on(revoke_user(&kv, &db, NOW + 1, &user("a"))).unwrap(),
            2
        );
        for id in [&a1, &a2] {
            assert!(block_on(authenticate(&kv, &db, NOW + 2, id, Check::Fast)).is_err());
        }
        assert!(block_on(authenticate(&kv, &db, NOW + 2, &b, Check::Fast)).is_ok());
        assert_eq!(
            block_on(revoke_user(&kv, &db, NOW + 3, &user("a"))).unwrap(),
            0
        );
    }

    #[test]
    fn d1_failure_on_kv_miss_is_unavailable() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let (id, _) = block_on(create(&kv, &db, NOW, user("u1"), email())).unwrap();
        kv.entries.borrow_mut().clear();
        db.db.failing.set(true);
        assert!(matches!(
            block_on(authenticate(&kv, &db, NOW, &id, Check::Fast)),
            Err(ApiError::Unavailable(_))
        ));
    }

    #[test]
    fn listing_pages_with_cursor_and_filter() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        for i in 0..5 {
            block_on(create(
                &kv,
                &db,
                NOW + i,
                user(if i % 2 == 0 { "even" } else { "odd" }),
                email(),
            ))
            .unwrap();
        }
        let q = ListQuery {
            user: None,
            cursor: None,
            limit: 2,
        };
        let p1 = block_on(list(&db, NOW + 10, &q)).unwrap();
        assert_eq!(p1.sessions.len(), 2);
        assert!(!p1.list_complete);
        assert_eq!(p1.sessions[0].created_at, NOW + 4);
        let q2 = ListQuery {
            cursor: Some(Cursor::parse(p1.cursor.as_deref().unwrap()).unwrap()),
            ..q.clone()
        };
        let p2 = block_on(list(&db, NOW + 10, &q2)).unwrap();
        assert_eq!(p2.sessions[0].created_at, NOW + 2);
        let q3 = ListQuery {
            user: Some(user("even")),
            cursor: None,
            limit: 100,
        };
        let p3 = block_on(list(&db, NOW + 10, &q3)).unwrap();
        assert_eq!(p3.sessions.len(), 3);
        assert!(p3.list_complete);
        assert_eq!(p3.cursor, None);
    }

    #[test]
    fn list_query_validation() {
        let parse = |pairs: &[(&str, &str)]| ListQuery::parse(pairs.iter().copied());
        assert_eq!(parse(&[]).unwrap().limit, 100);
        assert_eq!(parse(&[("limit", "1000")]).unwrap().limit, 1000);
        let empty = parse(&[("userId", ""), ("cursor", ""), ("limit", "")]).unwrap();
        assert_eq!((empty.user, empty.cursor, empty.limit), (None, None, 100));
        for bad in ["0", "1001", "-1", "abc", "1.5", " 5"] {
            assert!(parse(&[("limit", bad)]).is_err(), "{bad}");
        }
        assert!(parse(&[("cursor", "garbage")]).is_err());
        assert!(parse(&[("userId", "bad id")]).is_err());
        let c = Cursor {
            created_at: 5,
            id_hash: "a".repeat(64),
        };
        assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
    }

    #[test]
    fn new_session_body_validation() {
        use serde_json::json;
        assert!(parse_new_session(&json!({"userId": "u", "email": "a@b.co"})).is_ok());
        for (body, field) in [
            (json!({"email": "a@b.co"}), "userId"),
            (json!({"userId": 1, "email": "a@b.co"}), "userId"),
            (json!({"userId": "u", "email": "nope"}), "email"),
            (
                json!({"userId": "u", "email": "a@b.co", "admin": true}),
                "admin",
            ),
            (
                json!({"userId": "x".repeat(129), "email": "a@b.co"}),
                "userId",
            ),
        ] {
            match parse_new_session(&body) {
                Err(ApiError::InvalidRequest(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
