//! Sessions: KV is the fast read path, D1 the authority.
//!
//! * The id handed to the client is 32 bytes from the platform CSPRNG (256 bits), base64url.
//!   Only its SHA-256 is stored (KV key `session:<hex>`, D1 primary key), so a dump of KV or
//!   D1 yields no usable session.
//! * Create: D1 first, then KV with `expirationTtl` = remaining lifetime and metadata.
//! * Read ([`Check::Fast`]): KV first; on a miss D1, and a valid D1 hit is written back to
//!   KV. Expired sessions are refused even if KV still holds them.
//! * Revocation marks the D1 row and deletes the KV entry, so this location refuses the
//!   session at once. Revocation checks D1 ([`Check::Authoritative`]).
//! * Each session also gets a random [`SessionHandle`] when minted: the admin listing shows
//!   it, and `DELETE /admin/sessions/:handle` revokes that one session with it. A handle
//!   is neither the id nor its hash, so the listing hands out nothing that authenticates.

use crate::domain::ids::{Email, SessionHandle, SessionId, UserId};
use crate::domain::json::{deny_unknown, object, required_str};
use crate::domain::kv::{Kv, KvKey, KvMetadata, PutOptions, Ttl};
use crate::domain::time::Millis;
use crate::error::{ApiError, ApiResult, StoreResult};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a session lives.
pub const LIFETIME_SECONDS: u64 = 7 * 24 * 60 * 60;
const KV_PREFIX: &str = "session:";
/// The admin listing's page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;
/// The largest page the admin listing serves.
pub const MAX_PAGE: u32 = 1000;

/// A session as stored: never the id itself, only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// SHA-256 (hex) of the session id.
    pub id_hash: String,
    /// The session's user.
    pub user_id: String,
    /// The user's e-mail address.
    pub email: String,
    /// When it was minted.
    pub created_at: Millis,
    /// When it stops being accepted.
    pub expires_at: Millis,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Millis>,
    /// The admin's handle of it (`None` only for rows no migration gave one).
    pub handle: Option<String>,
}

impl SessionRecord {
    /// Not revoked and not expired at `now`.
    pub fn is_valid(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// What the API shows of it.
    pub fn view(&self) -> SessionView {
        SessionView {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// What the API shows of a session, and what its KV copy holds (value and metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The session's user.
    pub user_id: String,
    /// The user's e-mail address.
    pub email: String,
    /// When it was minted.
    pub created_at: Millis,
    /// When it stops being accepted.
    pub expires_at: Millis,
}

/// Keyset pagination position: the last row of the previous page.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// `created_at` of the last row served.
    pub created_at: Millis,
    /// `id_hash` of the last row served.
    pub id_hash: String,
}

impl Cursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id_hash)
    }

    /// Parses a cursor this API returned.
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
            created_at: Millis(created_at),
            id_hash: hash.to_string(),
        })
    }
}

fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The admin listing's query: `userId`, `cursor`, `limit`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Only this user's sessions.
    pub user: Option<UserId>,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
    /// Page size, 1 to [`MAX_PAGE`].
    pub limit: u32,
}

impl ListQuery {
    /// Parses `userId`, `cursor` and `limit` query parameters; others are ignored, and an
    /// empty value (`?userId=&cursor=&limit=`) means "not given".
    pub fn parse<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> ApiResult<Self> {
        let mut q = ListQuery {
            user: None,
            cursor: None,
            limit: DEFAULT_PAGE,
        };
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            match k {
                _ if v.is_empty() => {}
                "userId" => q.user = Some(UserId::parse("userId", v)?),
                "cursor" => q.cursor = Some(Cursor::parse(v)?),
                "limit" => q.limit = parse_limit(v)?,
                _ => {}
            }
        }
        Ok(q)
    }
}

fn parse_limit(v: &str) -> ApiResult<u32> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| ApiError::invalid("limit", "must be an integer from 1 to 1000"))
}

/// A session as the admin listing shows it: its handle and its view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedSession {
    /// What `DELETE /admin/sessions/:handle` takes.
    pub handle: Option<String>,
    /// What the API shows of it.
    #[serde(flatten)]
    pub view: SessionView,
}

/// One page of the admin listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionPage {
    /// Active sessions, newest first.
    pub sessions: Vec<ListedSession>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
    /// Whether this is the last page.
    pub list_complete: bool,
}

/// The D1 side of sessions.
#[allow(async_fn_in_trait)]
pub trait SessionDb {
    /// Stores a new session.
    async fn insert(&self, s: &SessionRecord) -> StoreResult<()>;
    /// The session with this hash, valid or not.
    async fn find(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Marks one session revoked; false if it was not active.
    async fn revoke(&self, id_hash: &str, now: Millis) -> StoreResult<bool>;
    /// Revokes every active session of a user; returns their hashes.
    async fn revoke_user(&self, user: &UserId, now: Millis) -> StoreResult<Vec<String>>;
    /// Active sessions, newest first, after the cursor; at most `limit` rows.
    async fn list(&self, q: &ListQuery, now: Millis, limit: u32)
        -> StoreResult<Vec<SessionRecord>>;
    /// Marks the session with this handle revoked (if it is not already); returns its hash,
    /// or `None` if no session has that handle.
    async fn revoke_handle(
        &self,
        handle: &SessionHandle,
        now: Millis,
    ) -> StoreResult<Option<String>>;
}

/// The stored form of a session id: SHA-256, lowercase hex.
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

/// A fresh session handle: 128 bits from the same source, unrelated to the id.
pub fn new_handle() -> ApiResult<SessionHandle> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("getrandom: {e}")))?;
    Ok(SessionHandle::from_random(&bytes))
}

/// The KV key of a session's copy, by the hash of its id.
pub fn kv_key(id_hash: &str) -> ApiResult<KvKey> {
    KvKey::new(KV_PREFIX, id_hash)
}

/// Writes the KV copy of a session with the remaining lifetime as TTL. Best effort: D1 is
/// the authority, and a missing KV entry is found through D1 on the next read.
async fn cache<K: Kv>(kv: &K, rec: &SessionRecord, now: Millis) {
    let result = async {
        let view = rec.view();
        let text = serde_json::to_string(&view).map_err(|e| ApiError::Internal(e.to_string()))?;
        let meta = KvMetadata::new(
            serde_json::to_value(&view).map_err(|e| ApiError::Internal(e.to_string()))?,
        )?;
        let opts = PutOptions {
            ttl: Some(Ttl::at_least_minimum(now.seconds_until(rec.expires_at))),
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

/// A body of `POST /sessions`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    /// Whose session it is.
    pub user: UserId,
    /// Their e-mail address.
    pub email: Email,
}

impl NewSession {
    /// Parses `{"userId", "email"}`.
    pub fn parse(body: &serde_json::Value) -> ApiResult<Self> {
        let obj = object(body)?;
        deny_unknown(obj, &["userId", "email"], "")?;
        Ok(NewSession {
            user: UserId::parse("userId", required_str(obj, "userId")?)?,
            email: Email::parse("email", required_str(obj, "email")?)?,
        })
    }
}

/// A session just minted: the id (shown once, never stored) and its view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MintedSession {
    /// The usable id, handed to the client once.
    pub session_id: SessionId,
    /// What the API shows of it.
    #[serde(flatten)]
    pub view: SessionView,
}

/// Mints a session: D1 first (the authority), then the KV copy.
pub async fn create<K: Kv, D: SessionDb>(
    kv: &K,
    db: &D,
    now: Millis,
    new: NewSession,
) -> ApiResult<MintedSession> {
    let id = new_id()?;
    let rec = SessionRecord {
        id_hash: hash_id(&id),
        user_id: new.user.as_str().to_string(),
        email: new.email.as_str().to_string(),
        created_at: now,
        expires_at: now.plus_seconds(LIFETIME_SECONDS),
        revoked_at: None,
        handle: Some(new_handle()?.as_str().to_string()),
    };
    db.insert(&rec).await?;
    cache(kv, &rec, now).await;
    Ok(MintedSession {
        session_id: id,
        view: rec.view(),
    })
}

/// How much to trust KV when resolving a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// KV first, D1 on a miss (reads).
    Fast,
    /// D1 only (revocation). A KV copy of a session D1 refuses is removed on the way.
    Authoritative,
}

/// Resolves a presented session id to its session, or 401.
pub async fn authenticate<K: Kv, D: SessionDb>(
    kv: &K,
    db: &D,
    now: Millis,
    id: &SessionId,
    check: Check,
) -> ApiResult<SessionView> {
    let hash = hash_id(id);
    let key = kv_key(&hash)?;
    if check == Check::Fast {
        if let Some(view) = read_copy(kv, &key).await {
            return if now < view.expires_at {
                Ok(view)
            } else {
                Err(ApiError::Unauthorized)
            };
        }
    }
    let found = db.find(&hash).await?;
    let Some(rec) = found.filter(|r| r.is_valid(now)) else {
        if check == Check::Authoritative {
            remove_copy(kv, &key).await;
        }
        return Err(ApiError::Unauthorized);
    };
    if check == Check::Fast {
        cache(kv, &rec, now).await;
    }
    Ok(rec.view())
}

async fn read_copy<K: Kv>(kv: &K, key: &KvKey) -> Option<SessionView> {
    match kv.get(key).await {
        Ok(Some(text)) => serde_json::from_str::<SessionView>(&text).ok(),
        Ok(None) => None,
        Err(e) => {
            crate::log::warn(&format!("session KV read failed, asking D1: {}", e.0));
            None
        }
    }
}

/// Removes a KV copy D1 no longer backs (a failed delete, say). Best effort.
async fn remove_copy<K: Kv>(kv: &K, key: &KvKey) {
    if let Err(e) = kv.delete(key).await {
        crate::log::warn(&format!("stale session KV cleanup failed: {}", e.0));
    }
}

/// Logout of a session D1 has just vouched for. If it was revoked meanwhile: 401. If the
/// KV delete fails: 503 (D1 already refuses the session), and a retry removes the copy.
pub async fn revoke<K: Kv, D: SessionDb>(
    kv: &K,
    db: &D,
    now: Millis,
    id: &SessionId,
) -> ApiResult<()> {
    let hash = hash_id(id);
    let key = kv_key(&hash)?;
    if !db.revoke(&hash, now).await? {
        remove_copy(kv, &key).await;
        return Err(ApiError::Unauthorized);
    }
    kv.delete(&key).await?;
    Ok(())
}

/// What `DELETE /admin/users/:userId/sessions` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Revoked {
    /// How many active sessions were revoked.
    pub revoked: usize,
}

/// Revokes every active session of `user`, in D1 and then their KV copies.
pub async fn revoke_user<K: Kv, D: SessionDb>(
    kv: &K,
    db: &D,
    now: Millis,
    user: &UserId,
) -> ApiResult<Revoked> {
    let hashes = db.revoke_user(user, now).await?;
    for hash in &hashes {
        kv.delete(&kv_key(hash)?).await?;
    }
    Ok(Revoked {
        revoked: hashes.len(),
    })
}

/// `DELETE /admin/sessions/:handle`: revokes that one session in D1, then drops its KV
/// copy. Revoking a session that is already revoked or expired succeeds again (the KV delete
/// is repeated, so a retry after a failed delete removes the copy); an unknown handle is
/// `not_found`. If the KV delete fails the answer is 503 and D1 already refuses the session.
pub async fn revoke_handle<K: Kv, D: SessionDb>(
    kv: &K,
    db: &D,
    now: Millis,
    handle: &SessionHandle,
) -> ApiResult<()> {
    let hash = db
        .revoke_handle(handle, now)
        .await?
        .ok_or(ApiError::NotFound)?;
    kv.delete(&kv_key(&hash)?).await?;
    Ok(())
}

/// One page of active sessions, newest first.
pub async fn list<D: SessionDb>(db: &D, now: Millis, q: &ListQuery) -> ApiResult<SessionPage> {
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
    let listed = |r: &SessionRecord| ListedSession {
        handle: r.handle.clone(),
        view: r.view(),
    };
    Ok(SessionPage {
        sessions: rows.iter().map(listed).collect(),
        cursor,
        list_complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fake::{block_on, MemKv, MemSessions};

    const NOW: Millis = Millis(1_700_000_000_000);
    const LIFETIME_MS: i64 = LIFETIME_SECONDS as i64 * 1000;

    fn new(u: &str) -> NewSession {
        NewSession {
            user: user(u),
            email: email(),
        }
    }

    fn mint(kv: &MemKv, db: &MemSessions, at: Millis, u: &str) -> SessionId {
        block_on(create(kv, db, at, new(u))).unwrap().session_id
    }

    fn at(ms: i64) -> Millis {
        NOW.plus_ms(ms)
    }

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
        let minted = block_on(create(&kv, &db, NOW, new("u1"))).unwrap();
        let (id, view) = (minted.session_id, minted.view);
        assert_eq!(view.expires_at.ms_since(view.created_at), LIFETIME_MS);
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
        let id = mint(&kv, &db, NOW, "u1");
        let key = format!("session:{}", hash_id(&id));
        kv.remove(&key);
        let later = at(3_600_000);
        let v = block_on(authenticate(&kv, &db, later, &id, Check::Fast)).unwrap();
        assert_eq!(v.user_id, "u1");
        let entry = kv.entry(&key).expect("written back");
        assert_eq!(entry.ttl, Some(LIFETIME_SECONDS - 3600));
    }

    #[test]
    fn kv_hit_needs_no_d1() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let id = mint(&kv, &db, NOW, "u1");
        db.db.failing.set(true);
        assert!(block_on(authenticate(&kv, &db, at(1), &id, Check::Fast)).is_ok());
    }

    #[test]
    fn expired_sessions_are_refused_even_from_kv() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let id = mint(&kv, &db, NOW, "u1");
        let after = at(LIFETIME_MS);
        assert_eq!(
            block_on(authenticate(&kv, &db, after, &id, Check::Fast)),
            Err(ApiError::Unauthorized)
        );
        kv.entries.borrow_mut().clear();
        assert_eq!(
            block_on(authenticate(&kv, &db, after, &id, Check::Fast)),
            Err(ApiError::Unauthorized)
        );
        assert!(block_on(authenticate(
            &kv,
            &db,
            at(LIFETIME_MS - 1),
            &id,
            Check::Fast
        ))
        .is_ok());
    }

    #[test]
    fn revoke_then_reuse_is_401_and_kv_is_cleared() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let id = mint(&kv, &db, NOW, "u1");
        block_on(revoke(&kv, &db, at(1), &id)).unwrap();
        assert_eq!(
            block_on(authenticate(&kv, &db, at(2), &id, Check::Fast)),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(
            block_on(revoke(&kv, &db, at(3), &id)),
            Err(ApiError::Unauthorized)
        );
        assert!(kv.entries.borrow().is_empty());
    }

    #[test]
    fn a_failed_kv_delete_is_reported_and_cleaned_up_on_retry() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let id = mint(&kv, &db, NOW, "u1");
        kv.fail(true);
        assert!(matches!(
            block_on(revoke(&kv, &db, at(1), &id)),
            Err(ApiError::Unavailable(_))
        ));
        kv.fail(false);
        assert_eq!(
            kv.entries.borrow().len(),
            1,
            "the KV copy survived the failed delete"
        );
        assert_eq!(
            block_on(revoke(&kv, &db, at(2), &id)),
            Err(ApiError::Unauthorized)
        );
        assert!(kv.entries.borrow().is_empty(), "the retry removed it");
    }

    #[test]
    fn revoke_user_touches_only_that_user() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let a1 = mint(&kv, &db, NOW, "a");
        let a2 = mint(&kv, &db, NOW, "a");
        let b = mint(&kv, &db, NOW, "b");
        assert_eq!(
            block_on(revoke_user(&kv, &db, at(1), &user("a"))).unwrap(),
            Revoked { revoked: 2 }
        );
        for id in [&a1, &a2] {
            assert!(block_on(authenticate(&kv, &db, at(2), id, Check::Fast)).is_err());
        }
        assert!(block_on(authenticate(&kv, &db, at(2), &b, Check::Fast)).is_ok());
        assert_eq!(
            block_on(revoke_user(&kv, &db, at(3), &user("a"))).unwrap(),
            Revoked { revoked: 0 }
        );
    }

    #[test]
    fn d1_failure_on_kv_miss_is_unavailable() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let id = mint(&kv, &db, NOW, "u1");
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
            mint(&kv, &db, at(i), if i % 2 == 0 { "even" } else { "odd" });
        }
        let q = ListQuery {
            user: None,
            cursor: None,
            limit: 2,
        };
        let p1 = block_on(list(&db, at(10), &q)).unwrap();
        assert_eq!(p1.sessions.len(), 2);
        assert!(!p1.list_complete);
        assert_eq!(p1.sessions[0].view.created_at, at(4));
        let q2 = ListQuery {
            cursor: Some(Cursor::parse(p1.cursor.as_deref().unwrap()).unwrap()),
            ..q.clone()
        };
        let p2 = block_on(list(&db, at(10), &q2)).unwrap();
        assert_eq!(p2.sessions[0].view.created_at, at(2));
        let q3 = ListQuery {
            user: Some(user("even")),
            cursor: None,
            limit: 100,
        };
        let p3 = block_on(list(&db, at(10), &q3)).unwrap();
        assert_eq!(p3.sessions.len(), 3);
        assert!(p3.list_complete);
        assert_eq!(p3.cursor, None);
    }

    #[test]
    fn the_listing_shows_handles_that_are_neither_id_nor_hash() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let id = mint(&kv, &db, NOW, "u1");
        let q = ListQuery::parse(Vec::<(String, String)>::new()).unwrap();
        let page = block_on(list(&db, at(1), &q)).unwrap();
        let handle = page.sessions[0].handle.clone().unwrap();
        assert!(SessionHandle::parse("handle", &handle).is_ok());
        assert!(!id.as_str().contains(&handle) && !hash_id(&id).contains(&handle));
        let json = serde_json::to_value(&page.sessions[0]).unwrap();
        assert_eq!(json["handle"], handle.as_str());
        assert_eq!(json["userId"], "u1");
    }

    #[test]
    fn revoking_by_handle_revokes_only_that_session_and_repeats_alike() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let a = mint(&kv, &db, NOW, "u1");
        let b = mint(&kv, &db, NOW, "u1");
        let handle_of = |id: &SessionId| {
            let rows = db.rows.borrow();
            let row = rows.iter().find(|r| r.id_hash == hash_id(id)).unwrap();
            SessionHandle::parse("handle", row.handle.as_deref().unwrap()).unwrap()
        };
        let h = handle_of(&a);
        block_on(revoke_handle(&kv, &db, at(1), &h)).unwrap();
        assert_eq!(
            block_on(authenticate(&kv, &db, at(2), &a, Check::Fast)),
            Err(ApiError::Unauthorized)
        );
        assert!(kv.entry(&format!("session:{}", hash_id(&a))).is_none());
        assert!(block_on(authenticate(&kv, &db, at(2), &b, Check::Fast)).is_ok());
        assert_eq!(block_on(revoke_handle(&kv, &db, at(3), &h)), Ok(()));
        let unknown = SessionHandle::from_random(&[7; 16]);
        assert_eq!(
            block_on(revoke_handle(&kv, &db, at(3), &unknown)),
            Err(ApiError::NotFound)
        );
    }

    #[test]
    fn a_failed_kv_delete_by_handle_is_503_and_a_retry_removes_the_copy() {
        let (kv, db) = (MemKv::default(), MemSessions::default());
        let id = mint(&kv, &db, NOW, "u1");
        let handle = db.rows.borrow()[0].handle.clone().unwrap();
        let handle = SessionHandle::parse("handle", &handle).unwrap();
        kv.fail(true);
        assert!(matches!(
            block_on(revoke_handle(&kv, &db, at(1), &handle)),
            Err(ApiError::Unavailable(_))
        ));
        kv.fail(false);
        assert!(
            db.rows.borrow()[0].revoked_at.is_some(),
            "D1 refuses it already"
        );
        assert!(kv.entry(&format!("session:{}", hash_id(&id))).is_some());
        block_on(revoke_handle(&kv, &db, at(3), &handle)).unwrap();
        assert!(kv.entries.borrow().is_empty(), "the retry removed the copy");
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
            created_at: Millis(5),
            id_hash: "a".repeat(64),
        };
        assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
    }

    #[test]
    fn new_session_body_validation() {
        use serde_json::json;
        assert!(NewSession::parse(&json!({"userId": "u", "email": "a@b.co"})).is_ok());
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
            match NewSession::parse(&body) {
                Err(ApiError::InvalidRequest(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
