//! Sessions: KV is the fast read path, D1 the authority.
//!
//! * The id handed to the client is 32 bytes from the platform CSPRNG (256 bits), base64url.
//!   Only its SHA-256 is stored (KV key `session:<hex>`, D1 primary key), so a dump of KV or
//!   D1 yields no usable session.
//! * Lifetime ([`Lifetime`], from the config): a session is refused once its absolute deadline
//!   (`expiresAt`, `sessionAbsoluteSeconds` after it was minted) or its idle deadline
//!   (`idleExpiresAt`, `sessionIdleSeconds` after its last renewal) has passed. Use renews it
//!   (moves the idle deadline, never past the absolute one) at most once per
//!   `renewAfterSeconds`: one conditional D1 update, so at most one D1 write per session and
//!   interval however many isolates serve it, and one attempt per isolate.
//! * Create: D1 first, then KV with metadata and `expirationTtl` = time to the idle deadline;
//!   no KV copy ever outlives the absolute deadline (one with less than KV's 60 s minimum TTL
//!   left is not written).
//! * Read ([`Check::Fast`]): KV first; on a miss D1, and a valid D1 hit is written back to
//!   KV. Expired sessions are refused even if KV still holds them; a copy whose idle deadline
//!   has passed is checked in D1 (another location may have renewed it).
//! * Revocation everywhere within [`RECHECK_MS`] (10 s): an isolate accepts a session only
//!   if it has asked D1 about it within the last 10 s ([`SessionChecks`], isolate state); a
//!   KV hit older than that is checked against D1 (one query per session, isolate and 10 s),
//!   so a stale KV copy in another location (KV takes up to ~60 s to drop it) cannot outlive
//!   a revocation by more than 10 s. Refusals are remembered, so a revoked id costs no D1
//!   query after the first. If D1 cannot be asked, a KV copy is trusted (logged): during a
//!   D1 outage the bound is KV's.
//! * Revocation marks the D1 row and deletes the KV entry, so this location refuses the
//!   session at once; a delete KV refuses (one write per second per key) is retried once
//!   after a second. Revocation checks D1 ([`Check::Authoritative`]).
//! * Read-repair cannot resurrect: after writing a D1 hit back to KV, D1 is asked again; if
//!   the session was revoked in between (the revoker's KV delete may have landed before this
//!   write), the copy is removed again and the request refused.
//! * Each session also gets a random [`SessionHandle`] when minted: the admin listing shows
//!   it, and `DELETE /admin/sessions/:handle` revokes that one session with it. A handle
//!   is neither the id nor its hash, so the listing hands out nothing that authenticates.

use crate::domain::config::AppConfig;
use crate::domain::ids::{Email, SessionHandle, SessionId, UserId};
use crate::domain::json::{self, deny_unknown, object, required_str};
use crate::domain::kv::KV_WRITE_INTERVAL_MS;
use crate::domain::kv::{Kv, KvKey, KvMetadata, PutOptions, Ttl, KV_MIN_TTL_SECONDS};
use crate::domain::time::{Millis, Timer};
use crate::error::{ApiError, ApiResult, StoreResult};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;

const KV_PREFIX: &str = "session:";
/// The admin listing's page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;
/// The largest page the admin listing serves.
pub const MAX_PAGE: u32 = 1000;
/// How long an isolate trusts its last D1 check of a session: the bound on how long a
/// revoked session is still accepted anywhere.
pub const RECHECK_MS: i64 = 10_000;
/// Beyond this many remembered checks, the ones that no longer count are dropped.
const MAX_CHECKS: usize = 10_000;

/// What this isolate last learned from D1 about each session, by id hash. Isolate state
/// (see `isolate.rs`).
#[derive(Debug, Default)]
pub struct SessionChecks {
    by_hash: RefCell<HashMap<String, Checked>>,
    /// When this isolate last tried to renew each session.
    renewals: RefCell<HashMap<String, Millis>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Checked {
    /// D1 accepted it at this time.
    Valid(Millis),
    /// D1 refused it (unknown, revoked or expired): refused for good.
    Refused,
}

/// Whether something done at `at` still counts at `now` for `window_ms`. Concurrent requests
/// see each other's results, so `at` can be a little after `now`: that counts too (a clock
/// that jumps back by more than the window does not).
fn within(now: Millis, at: Millis, window_ms: i64) -> bool {
    (-window_ms..window_ms).contains(&now.ms_since(at))
}

impl SessionChecks {
    /// Whether D1 accepted the session within the last [`RECHECK_MS`].
    fn fresh(&self, hash: &str, now: Millis) -> bool {
        matches!(self.by_hash.borrow().get(hash),
            Some(Checked::Valid(at)) if within(now, *at, RECHECK_MS))
    }

    /// Whether D1 refused the session before.
    fn refused(&self, hash: &str) -> bool {
        self.by_hash.borrow().get(hash) == Some(&Checked::Refused)
    }

    /// Claims the renewal of a session: true at most once per `every_ms` per isolate.
    fn claim_renewal(&self, hash: &str, now: Millis, every_ms: i64) -> bool {
        let mut renewals = self.renewals.borrow_mut();
        if renewals
            .get(hash)
            .is_some_and(|at| within(now, *at, every_ms))
        {
            return false;
        }
        if renewals.len() >= MAX_CHECKS {
            renewals.retain(|_, at| within(now, *at, every_ms));
        }
        renewals.insert(hash.to_string(), now);
        true
    }

    /// Gives a failed renewal back, so the next request tries again.
    fn release_renewal(&self, hash: &str) {
        self.renewals.borrow_mut().remove(hash);
    }

    /// Remembers what D1 said; of two acceptances, the later one counts.
    fn note(&self, hash: &str, checked: Checked, now: Millis) {
        let mut by_hash = self.by_hash.borrow_mut();
        if by_hash.len() >= MAX_CHECKS {
            by_hash.retain(|_, c| matches!(c, Checked::Valid(at) if within(now, *at, RECHECK_MS)));
        }
        let entry = by_hash.entry(hash.to_string()).or_insert(checked);
        *entry = match (*entry, checked) {
            (Checked::Valid(old), Checked::Valid(new)) => Checked::Valid(old.max(new)),
            _ => checked,
        };
    }
}

/// How long sessions live: the config's `sessionIdleSeconds`, `sessionAbsoluteSeconds` and
/// `renewAfterSeconds` (validated there: timeouts of at least 60 s, renewal more often than
/// the idle timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Unused this long: refused.
    pub idle_seconds: u64,
    /// This long after minting: refused.
    pub absolute_seconds: u64,
    /// Renewed at most this often.
    pub renew_after_seconds: u64,
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime::of(&AppConfig::default())
    }
}

impl Lifetime {
    /// The lifetime the config sets.
    pub fn of(cfg: &AppConfig) -> Self {
        Lifetime {
            idle_seconds: cfg.session_idle_seconds.into(),
            absolute_seconds: cfg.session_absolute_seconds.into(),
            renew_after_seconds: cfg.renew_after_seconds.into(),
        }
    }

    /// The idle deadline of a session used at `now`: never past its absolute deadline.
    pub fn idle_deadline(&self, now: Millis, expires_at: Millis) -> Millis {
        now.plus_seconds(self.idle_seconds).min(expires_at)
    }

    /// The latest idle deadline that is due for renewal at `now`: one set at least
    /// `renewAfterSeconds` ago.
    pub fn renewal_due_until(&self, now: Millis) -> Millis {
        now.plus_seconds(self.idle_seconds.saturating_sub(self.renew_after_seconds))
    }

    /// Whether a session in use at `now` should have its idle deadline moved.
    pub fn renewal_due(&self, view: &SessionView, now: Millis) -> bool {
        view.idle_expires_at < view.expires_at
            && view.idle_expires_at <= self.renewal_due_until(now)
    }
}

/// What session code works with: KV, D1, a clock to wait out KV's write rule, this
/// isolate's record of D1 checks, and the config's lifetime.
pub struct SessionStores<'a, K, D, T> {
    /// KV, the read path.
    pub kv: &'a K,
    /// D1, the authority.
    pub db: &'a D,
    /// Waits before retrying a KV write.
    pub timer: &'a T,
    /// This isolate's D1 checks.
    pub checks: &'a SessionChecks,
    /// How long sessions live.
    pub lifetime: Lifetime,
}

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
    /// Its absolute deadline: refused from then on, used or not.
    pub expires_at: Millis,
    /// Its idle deadline: refused from then on unless renewed before.
    pub idle_expires_at: Millis,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Millis>,
    /// The admin's handle of it (`None` only for rows no migration gave one).
    pub handle: Option<String>,
}

impl SessionRecord {
    /// Not revoked and neither deadline passed at `now`.
    pub fn is_valid(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && now < self.idle_expires_at
    }

    /// What the API shows of it.
    pub fn view(&self) -> SessionView {
        SessionView {
            user_id: self.user_id.clone(),
            email: self.email.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            idle_expires_at: self.idle_expires_at,
        }
    }
}

/// What the API shows of a session, and what its KV copy holds (value and metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "StoredView")]
pub struct SessionView {
    /// The session's user.
    pub user_id: String,
    /// The user's e-mail address.
    pub email: String,
    /// When it was minted.
    pub created_at: Millis,
    /// Its absolute deadline.
    pub expires_at: Millis,
    /// Its idle deadline (as of its last renewal).
    pub idle_expires_at: Millis,
}

/// A view as KV may hold it: copies written before idle deadlines existed have none (their
/// idle deadline is their absolute one).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredView {
    user_id: String,
    email: String,
    created_at: Millis,
    expires_at: Millis,
    idle_expires_at: Option<Millis>,
}

impl From<StoredView> for SessionView {
    fn from(v: StoredView) -> Self {
        SessionView {
            idle_expires_at: v.idle_expires_at.unwrap_or(v.expires_at),
            user_id: v.user_id,
            email: v.email,
            created_at: v.created_at,
            expires_at: v.expires_at,
        }
    }
}

impl SessionView {
    /// Reads a view (a KV copy) from its JSON form, as [`crate::domain::json`] explains; a
    /// copy written before idle deadlines existed gets its absolute deadline as its idle one.
    pub fn from_json(v: &serde_json::Value) -> Option<SessionView> {
        let expires_at = json::millis_of(v, "expiresAt")?;
        let idle_expires_at = match v.get("idleExpiresAt") {
            None | Some(serde_json::Value::Null) => expires_at,
            Some(at) => Millis(at.as_i64()?),
        };
        Some(SessionView {
            user_id: json::text_of(v, "userId")?,
            email: json::text_of(v, "email")?,
            created_at: json::millis_of(v, "createdAt")?,
            expires_at,
            idle_expires_at,
        })
    }
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
    /// Moves the idle deadline of a valid session to `idle_expires_at`, if its current one
    /// is at most `due_until` (renewed long enough ago), in one statement. The renewed
    /// session, or `None` if nothing changed.
    async fn renew(
        &self,
        id_hash: &str,
        now: Millis,
        idle_expires_at: Millis,
        due_until: Millis,
    ) -> StoreResult<Option<SessionRecord>>;
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
    crate::domain::ids::hex(&Sha256::digest(id.as_str().as_bytes()))
}

/// The platform's random source failed (its error's text would link `getrandom`'s messages).
fn random_failed() -> ApiError {
    ApiError::Internal("the platform's random source (getrandom) failed".into())
}

/// A fresh session id: 256 bits from the platform's cryptographic random source.
pub fn new_id() -> ApiResult<SessionId> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| random_failed())?;
    Ok(SessionId::from_random(&bytes))
}

/// A fresh session handle: 128 bits from the same source, unrelated to the id.
pub fn new_handle() -> ApiResult<SessionHandle> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| random_failed())?;
    Ok(SessionHandle::from_random(&bytes))
}

/// The KV key of a session's copy, by the hash of its id.
pub fn kv_key(id_hash: &str) -> ApiResult<KvKey> {
    KvKey::new(KV_PREFIX, id_hash)
}

/// Writes the KV copy of a session, expiring at its idle deadline; true if written. KV's
/// minimum TTL is 60 s: a copy whose idle deadline is nearer lives 60 s (its view still
/// carries the deadline), and a session with less than 60 s to its absolute deadline gets
/// no copy, so no copy outlives the session. Best effort: D1 is the authority, and a
/// missing KV entry is found through D1 on the next read.
async fn cache<K: Kv>(kv: &K, rec: &SessionRecord, now: Millis) -> bool {
    if now.seconds_until(rec.expires_at) < KV_MIN_TTL_SECONDS {
        return false;
    }
    let result = async {
        let view = rec.view();
        let text = serde_json::to_string(&view).map_err(|e| ApiError::Internal(e.to_string()))?;
        // The metadata is the same document: read back from the text rather than serialised
        // a second time through `serde_json`'s Value serializer (more Wasm for one call).
        let meta =
            KvMetadata::new(json::read(&text).map_err(|e| ApiError::Internal(e.to_string()))?)?;
        let opts = PutOptions {
            ttl: Some(Ttl::at_least_minimum(
                now.seconds_until(rec.idle_expires_at),
            )),
            metadata: Some(meta),
        };
        kv.put(&kv_key(&rec.id_hash)?, &text, opts)
            .await
            .map_err(ApiError::from)
    }
    .await;
    if let Err(e) = &result {
        crate::log::warn(&format!("session KV write skipped: {e}"));
    }
    result.is_ok()
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
pub async fn create<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    new: NewSession,
) -> ApiResult<MintedSession> {
    let id = new_id()?;
    let expires_at = now.plus_seconds(st.lifetime.absolute_seconds);
    let rec = SessionRecord {
        id_hash: hash_id(&id),
        user_id: new.user.as_str().to_string(),
        email: new.email.as_str().to_string(),
        created_at: now,
        expires_at,
        idle_expires_at: st.lifetime.idle_deadline(now, expires_at),
        revoked_at: None,
        handle: Some(new_handle()?.as_str().to_string()),
    };
    st.db.insert(&rec).await?;
    st.checks.note(&rec.id_hash, Checked::Valid(now), now);
    cache(st.kv, &rec, now).await;
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
pub async fn authenticate<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    id: &SessionId,
    check: Check,
) -> ApiResult<SessionView> {
    let hash = hash_id(id);
    let key = kv_key(&hash)?;
    if check == Check::Authoritative {
        return authoritative(st, now, &hash, &key).await;
    }
    if st.checks.refused(&hash) {
        return Err(ApiError::Unauthorized);
    }
    let view = match read_copy(st.kv, &key).await {
        Some(view) => recheck(st, now, &hash, view).await?,
        None => {
            let rec = find_valid(st, now, &hash)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            write_back(st, now, &rec).await?;
            rec.view()
        }
    };
    if st.lifetime.renewal_due(&view, now) {
        return renew(st, now, &hash, view).await;
    }
    Ok(view)
}

/// D1 only (logout): a KV copy of a session D1 refuses is removed on the way.
async fn authoritative<K: Kv, D: SessionDb, T>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    hash: &str,
    key: &KvKey,
) -> ApiResult<SessionView> {
    match find_valid(st, now, hash).await? {
        Some(rec) => Ok(rec.view()),
        None => {
            remove_copy(st.kv, key).await;
            Err(ApiError::Unauthorized)
        }
    }
}

/// Moves the idle deadline of a session in use: one attempt per isolate and
/// `renewAfterSeconds`, and one conditional D1 update, so one D1 write per interval however
/// many isolates try. The KV copy follows the new deadline (written as read-repair is, so
/// it cannot bring back a session revoked meanwhile). A failed attempt is retried by the
/// next request.
async fn renew<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    hash: &str,
    view: SessionView,
) -> ApiResult<SessionView> {
    let every_ms = i64::try_from(st.lifetime.renew_after_seconds * 1000).unwrap_or(i64::MAX);
    if !st.checks.claim_renewal(hash, now, every_ms) {
        return Ok(view);
    }
    let idle = st.lifetime.idle_deadline(now, view.expires_at);
    let due_until = st.lifetime.renewal_due_until(now);
    match st.db.renew(hash, now, idle, due_until).await {
        Ok(Some(rec)) => {
            write_back(st, now, &rec).await?;
            Ok(rec.view())
        }
        Ok(None) => Ok(view),
        Err(e) => {
            crate::log::warn(&format!(
                "session renewal failed, retried on next use: {}",
                e.0
            ));
            st.checks.release_renewal(hash);
            Ok(view)
        }
    }
}

/// The session in D1 if D1 accepts it at `now`; remembers the answer in the isolate.
async fn find_valid<K, D: SessionDb, T>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    hash: &str,
) -> ApiResult<Option<SessionRecord>> {
    let rec = st.db.find(hash).await?.filter(|r| r.is_valid(now));
    let checked = rec
        .as_ref()
        .map_or(Checked::Refused, |_| Checked::Valid(now));
    st.checks.note(hash, checked, now);
    Ok(rec)
}

/// A KV hit: accepted as it is if this isolate checked the session against D1 within
/// [`RECHECK_MS`] and its idle deadline has not passed, else after asking D1 (a copy past
/// its idle deadline may predate a renewal elsewhere). D1 failing: the copy is trusted
/// (logged), deadlines included.
async fn recheck<K, D: SessionDb, T>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    hash: &str,
    view: SessionView,
) -> ApiResult<SessionView> {
    if now >= view.expires_at {
        return Err(ApiError::Unauthorized);
    }
    let idled_out = now >= view.idle_expires_at;
    if st.checks.fresh(hash, now) && !idled_out {
        return Ok(view);
    }
    match find_valid(st, now, hash).await {
        Ok(Some(rec)) => Ok(rec.view()),
        Ok(None) => Err(ApiError::Unauthorized),
        Err(_) if idled_out => Err(ApiError::Unauthorized),
        Err(e) => {
            crate::log::warn(&format!("session re-check failed, trusting KV: {e}"));
            Ok(view)
        }
    }
}

/// Read-repair that cannot resurrect: writes the copy, then asks D1 again. A session revoked
/// meanwhile (its revoker's KV delete may have come before this write) loses the copy
/// again, and the request is refused. If D1 cannot be asked again, the copy stays: every
/// isolate still re-checks it against D1 within [`RECHECK_MS`].
async fn write_back<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    rec: &SessionRecord,
) -> ApiResult<()> {
    if !cache(st.kv, rec, now).await {
        return Ok(());
    }
    match find_valid(st, now, &rec.id_hash).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            delete_copy(st, &kv_key(&rec.id_hash)?).await?;
            Err(ApiError::Unauthorized)
        }
        Err(e) => {
            crate::log::warn(&format!("session re-check after write-back failed: {e}"));
            Ok(())
        }
    }
}

async fn read_copy<K: Kv>(kv: &K, key: &KvKey) -> Option<SessionView> {
    match kv.get(key).await {
        Ok(Some(text)) => json::read(&text)
            .ok()
            .and_then(|v| SessionView::from_json(&v)),
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

/// Deletes a KV copy; a delete KV refuses (a write to the key less than a second ago) is
/// retried once a second later.
async fn delete_copy<K: Kv, D, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    key: &KvKey,
) -> StoreResult<()> {
    if st.kv.delete(key).await.is_ok() {
        return Ok(());
    }
    st.timer.sleep(KV_WRITE_INTERVAL_MS).await;
    st.kv.delete(key).await
}

/// Logout of a session D1 has just vouched for. If it was revoked meanwhile: 401. If the
/// KV delete fails twice: 503 (D1 already refuses the session), and a retry removes the copy.
pub async fn revoke<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    id: &SessionId,
) -> ApiResult<()> {
    let hash = hash_id(id);
    let key = kv_key(&hash)?;
    let revoked = st.db.revoke(&hash, now).await?;
    st.checks.note(&hash, Checked::Refused, now);
    if !revoked {
        remove_copy(st.kv, &key).await;
        return Err(ApiError::Unauthorized);
    }
    delete_copy(st, &key).await?;
    Ok(())
}

/// What `DELETE /admin/users/:userId/sessions` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Revoked {
    /// How many active sessions were revoked.
    pub revoked: usize,
}

/// Revokes every active session of `user`, in D1 and then their KV copies (every copy is
/// tried; if any delete fails twice, 503: D1 already refuses them all).
pub async fn revoke_user<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    user: &UserId,
) -> ApiResult<Revoked> {
    let hashes = st.db.revoke_user(user, now).await?;
    let mut failed = None;
    for hash in &hashes {
        st.checks.note(hash, Checked::Refused, now);
        if let Err(e) = delete_copy(st, &kv_key(hash)?).await {
            failed = Some(e);
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(Revoked {
            revoked: hashes.len(),
        }),
    }
}

/// `DELETE /admin/sessions/:handle`: revokes that one session in D1, then drops its KV
/// copy. Revoking a session that is already revoked or expired succeeds again (the KV delete
/// is repeated, so a retry after a failed delete removes the copy); an unknown handle is
/// `not_found`. If the KV delete fails the answer is 503 and D1 already refuses the session.
pub async fn revoke_handle<K: Kv, D: SessionDb, T: Timer>(
    st: &SessionStores<'_, K, D, T>,
    now: Millis,
    handle: &SessionHandle,
) -> ApiResult<()> {
    let hash = st
        .db
        .revoke_handle(handle, now)
        .await?
        .ok_or(ApiError::NotFound)?;
    st.checks.note(&hash, Checked::Refused, now);
    delete_copy(st, &kv_key(&hash)?).await?;
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

    #[test]
    fn copy_metadata_read_back_equals_the_view_serialised() {
        let view = SessionView {
            user_id: "u".into(),
            email: "a@b.co".into(),
            created_at: Millis(1),
            expires_at: Millis(9),
            idle_expires_at: Millis(5),
        };
        let text = serde_json::to_string(&view).unwrap();
        assert_eq!(
            json::read(&text).unwrap(),
            serde_json::to_value(&view).unwrap()
        );
    }

    #[test]
    fn views_decode_by_hand_as_serde_does() {
        let (u, e) = ("\"userId\":\"u\",\"email\":\"a@b.co\"", "\"expiresAt\":9");
        for good in [
            format!("{{{u},\"createdAt\":1,{e},\"idleExpiresAt\":5}}"),
            format!("{{{u},\"createdAt\":1,{e}}}"),
            format!("{{{u},\"createdAt\":1,{e},\"idleExpiresAt\":null}}"),
        ] {
            let v: serde_json::Value = serde_json::from_str(&good).unwrap();
            let by_serde: SessionView = serde_json::from_str(&good).unwrap();
            assert_eq!(SessionView::from_json(&v), Some(by_serde), "{good}");
        }
        for bad in [
            format!("{{{u},{e}}}"),
            format!("{{{u},\"createdAt\":1,{e},\"idleExpiresAt\":\"5\"}}"),
            format!("{{\"userId\":1,\"email\":\"a@b.co\",\"createdAt\":1,{e}}}"),
        ] {
            let v: serde_json::Value = serde_json::from_str(&bad).unwrap();
            assert_eq!(SessionView::from_json(&v), None, "{bad}");
            assert!(serde_json::from_str::<SessionView>(&bad).is_err());
        }
    }
    use crate::storage::fake::{block_on, FakeTimer, Hooked, Interleaving, MemKv, MemSessions};

    const NOW: Millis = Millis(1_700_000_000_000);
    const WEEK_S: u64 = 7 * 24 * 3600;
    const WEEK_MS: i64 = WEEK_S as i64 * 1000;

    /// One KV, one D1 and a clock, shared by the simulated isolates, and the config's
    /// session lifetime (by default a week, with no idle timeout before that).
    struct World {
        kv: MemKv,
        db: MemSessions,
        timer: FakeTimer,
        lifetime: Lifetime,
    }

    impl Default for World {
        fn default() -> Self {
            World::with(WEEK_S, WEEK_S, 3600)
        }
    }

    impl World {
        fn with(idle_seconds: u64, absolute_seconds: u64, renew_after_seconds: u64) -> Self {
            World {
                kv: MemKv::default(),
                db: MemSessions::default(),
                timer: FakeTimer::default(),
                lifetime: Lifetime {
                    idle_seconds,
                    absolute_seconds,
                    renew_after_seconds,
                },
            }
        }

        /// The stores as the isolate whose D1 checks are `checks` sees them.
        fn st<'a>(
            &'a self,
            checks: &'a SessionChecks,
        ) -> SessionStores<'a, MemKv, MemSessions, FakeTimer> {
            SessionStores {
                kv: &self.kv,
                db: &self.db,
                timer: &self.timer,
                checks,
                lifetime: self.lifetime,
            }
        }

        fn mint(&self, iso: &SessionChecks, at: Millis, u: &str) -> SessionId {
            block_on(create(&self.st(iso), at, new(u)))
                .unwrap()
                .session_id
        }

        fn auth(&self, iso: &SessionChecks, at: Millis, id: &SessionId) -> ApiResult<SessionView> {
            block_on(authenticate(&self.st(iso), at, id, Check::Fast))
        }

        /// `auth` by a fresh isolate whose every KV and D1 call first takes a step of `on`.
        fn auth_hooked(
            &self,
            on: &Interleaving,
            at: Millis,
            id: &SessionId,
        ) -> ApiResult<SessionView> {
            let kv = Hooked {
                inner: &self.kv,
                on,
            };
            let db = Hooked {
                inner: &self.db,
                on,
            };
            let reader = SessionChecks::default();
            let st = SessionStores {
                kv: &kv,
                db: &db,
                timer: &self.timer,
                checks: &reader,
                lifetime: self.lifetime,
            };
            block_on(authenticate(&st, at, id, Check::Fast))
        }

        fn key(id: &SessionId) -> String {
            format!("session:{}", hash_id(id))
        }
    }

    fn new(u: &str) -> NewSession {
        NewSession {
            user: user(u),
            email: email(),
        }
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
        let (w, iso) = (World::default(), SessionChecks::default());
        let minted = block_on(create(&w.st(&iso), NOW, new("u1"))).unwrap();
        let (id, view) = (minted.session_id, minted.view);
        assert_eq!(view.expires_at.ms_since(view.created_at), WEEK_MS);
        let entry =
            w.kv.entry(&World::key(&id))
                .expect("KV entry under the hash");
        assert_eq!(entry.ttl, Some(WEEK_S));
        assert_eq!(entry.metadata.unwrap()["userId"], "u1");
        let dump = format!("{:?}{:?}", w.kv.entries.borrow(), w.db.rows.borrow());
        assert!(
            !dump.contains(id.as_str()),
            "no stored form holds the usable id"
        );
    }

    #[test]
    fn kv_miss_falls_back_to_d1_and_writes_back() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        w.kv.remove(&World::key(&id));
        let later = at(3_600_000);
        let v = w.auth(&SessionChecks::default(), later, &id).unwrap();
        assert_eq!(v.user_id, "u1");
        let entry = w.kv.entry(&World::key(&id)).expect("written back");
        assert_eq!(entry.ttl, Some(WEEK_S - 3600));
        assert_eq!(
            w.db.db.queries.get(),
            3,
            "insert, read, and the read after the write-back"
        );
    }

    #[test]
    fn a_kv_hit_checked_within_the_interval_needs_no_d1() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        w.db.db.failing.set(true);
        for ms in [1, 5_000, RECHECK_MS - 1] {
            assert!(w.auth(&iso, at(ms), &id).is_ok(), "{ms}");
        }
        assert_eq!(w.db.db.queries.get(), 1, "only the insert");
    }

    #[test]
    fn a_kv_hit_is_checked_against_d1_once_per_interval_per_isolate() {
        let (w, minter) = (World::default(), SessionChecks::default());
        let id = w.mint(&minter, NOW, "u1");
        let other = SessionChecks::default();
        let before = w.db.db.queries.get();
        // 30 requests over 25 s in another isolate: D1 at 0 s, 10 s and 20 s.
        for i in 0..30 {
            assert!(w.auth(&other, at(i * 860), &id).is_ok());
        }
        assert_eq!(w.db.db.queries.get() - before, 3);
        assert_eq!(w.kv.reads(), 30, "the session itself still comes from KV");
    }

    #[test]
    fn another_isolate_refuses_a_revoked_session_within_the_interval_whatever_kv_holds() {
        let (w, a, b) = (
            World::default(),
            SessionChecks::default(),
            SessionChecks::default(),
        );
        let id = w.mint(&a, NOW, "u1");
        assert!(w.auth(&b, at(1_000), &id).is_ok(), "b checks D1 at 1 s");
        // Revoked through a at 2 s; KV in b's location keeps the copy (not yet propagated).
        let copy = w.kv.entry(&World::key(&id)).unwrap();
        block_on(revoke(&w.st(&a), at(2_000), &id)).unwrap();
        w.kv.insert(&World::key(&id), &copy.value);
        assert!(
            w.auth(&b, at(1_000 + RECHECK_MS - 1), &id).is_ok(),
            "within b's interval"
        );
        for ms in [1_000 + RECHECK_MS, 2_000 + RECHECK_MS, 60_000] {
            assert_eq!(w.auth(&b, at(ms), &id), Err(ApiError::Unauthorized), "{ms}");
        }
        assert!(
            w.kv.entry(&World::key(&id)).is_some(),
            "refused with the copy still in KV"
        );
    }

    #[test]
    fn a_check_finished_by_a_later_request_counts_for_an_earlier_one() {
        // Concurrent requests: one that started at 1 s sees the check of one that started at
        // 2 s (its `now` is later): no second D1 query, no second renewal claim.
        let (w, a, b) = (
            World::default(),
            SessionChecks::default(),
            SessionChecks::default(),
        );
        let id = w.mint(&a, NOW, "u1");
        assert!(w.auth(&b, at(2_000), &id).is_ok());
        let queries = w.db.db.queries.get();
        assert!(w.auth(&b, at(1_000), &id).is_ok());
        assert_eq!(w.db.db.queries.get(), queries);
        let hash = hash_id(&id);
        assert!(b.claim_renewal(&hash, at(2_000), 600_000));
        assert!(!b.claim_renewal(&hash, at(1_000), 600_000));
        // A clock that jumps back further than the window does not keep a check alive.
        assert!(!b.fresh(&hash, at(2_000 - RECHECK_MS - 1)));
    }

    #[test]
    fn a_refused_session_costs_one_d1_query_per_isolate() {
        let (w, a, b) = (
            World::default(),
            SessionChecks::default(),
            SessionChecks::default(),
        );
        let id = w.mint(&a, NOW, "u1");
        let copy = w.kv.entry(&World::key(&id)).unwrap();
        block_on(revoke(&w.st(&a), at(1), &id)).unwrap();
        w.kv.insert(&World::key(&id), &copy.value);
        let before = w.db.db.queries.get();
        for i in 0..20 {
            assert_eq!(w.auth(&b, at(10 + i), &id), Err(ApiError::Unauthorized));
        }
        assert_eq!(w.db.db.queries.get() - before, 1);
    }

    #[test]
    fn d1_failing_on_a_recheck_trusts_the_kv_copy() {
        let (w, a, b) = (
            World::default(),
            SessionChecks::default(),
            SessionChecks::default(),
        );
        let id = w.mint(&a, NOW, "u1");
        w.db.db.failing.set(true);
        assert_eq!(w.auth(&b, at(1), &id).unwrap().user_id, "u1");
    }

    #[test]
    fn expired_sessions_are_refused_even_from_kv() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        let after = at(WEEK_MS);
        assert_eq!(w.auth(&iso, after, &id), Err(ApiError::Unauthorized));
        w.kv.entries.borrow_mut().clear();
        assert_eq!(
            w.auth(&SessionChecks::default(), after, &id),
            Err(ApiError::Unauthorized)
        );
        assert!(w
            .auth(&SessionChecks::default(), at(WEEK_MS - 1), &id)
            .is_ok());
    }

    #[test]
    fn no_kv_copy_outlives_the_session() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        w.kv.remove(&World::key(&id));
        // 59 s left: under KV's 60 s minimum TTL, so no copy is written back.
        let late = at(WEEK_MS - 59_000);
        assert!(w.auth(&SessionChecks::default(), late, &id).is_ok());
        assert!(w.kv.entry(&World::key(&id)).is_none());
    }

    #[test]
    fn revoke_then_reuse_is_401_and_kv_is_cleared() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        block_on(revoke(&w.st(&iso), at(1), &id)).unwrap();
        assert_eq!(w.auth(&iso, at(2), &id), Err(ApiError::Unauthorized));
        assert_eq!(
            block_on(revoke(&w.st(&SessionChecks::default()), at(3), &id)),
            Err(ApiError::Unauthorized)
        );
        assert!(w.kv.entries.borrow().is_empty());
    }

    #[test]
    fn a_delete_kv_refuses_once_is_retried_after_a_second() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        w.kv.fail_next_writes(1);
        block_on(revoke(&w.st(&iso), at(1), &id)).unwrap();
        assert_eq!(w.timer.slept_ms(), KV_WRITE_INTERVAL_MS);
        assert!(w.kv.entries.borrow().is_empty());
    }

    #[test]
    fn a_failed_kv_delete_is_reported_and_cleaned_up_on_retry() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        w.kv.fail(true);
        assert!(matches!(
            block_on(revoke(&w.st(&iso), at(1), &id)),
            Err(ApiError::Unavailable(_))
        ));
        w.kv.fail(false);
        assert_eq!(
            w.kv.entries.borrow().len(),
            1,
            "the KV copy survived the failed delete"
        );
        assert_eq!(
            block_on(revoke(&w.st(&iso), at(2), &id)),
            Err(ApiError::Unauthorized)
        );
        assert!(w.kv.entries.borrow().is_empty(), "the retry removed it");
    }

    #[test]
    fn logging_out_again_after_a_failed_kv_delete_removes_the_copy() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        w.kv.fail(true);
        assert!(block_on(revoke(&w.st(&iso), at(1), &id)).is_err());
        w.kv.fail(false);
        // The retry goes through the route's authoritative check first: D1, never memory.
        let again = block_on(authenticate(&w.st(&iso), at(2), &id, Check::Authoritative));
        assert_eq!(again, Err(ApiError::Unauthorized));
        assert!(w.kv.entries.borrow().is_empty());
    }

    #[test]
    fn revoke_user_touches_only_that_user() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let a1 = w.mint(&iso, NOW, "a");
        let a2 = w.mint(&iso, NOW, "a");
        let b = w.mint(&iso, NOW, "b");
        assert_eq!(
            block_on(revoke_user(&w.st(&iso), at(1), &user("a"))).unwrap(),
            Revoked { revoked: 2 }
        );
        let other = SessionChecks::default();
        for id in [&a1, &a2] {
            assert!(w.auth(&iso, at(2), id).is_err());
            assert!(w.auth(&other, at(2), id).is_err());
        }
        assert!(w.auth(&iso, at(2), &b).is_ok());
        assert_eq!(
            block_on(revoke_user(&w.st(&iso), at(3), &user("a"))).unwrap(),
            Revoked { revoked: 0 }
        );
    }

    #[test]
    fn d1_failure_on_kv_miss_is_unavailable() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        w.kv.entries.borrow_mut().clear();
        w.db.db.failing.set(true);
        assert!(matches!(
            w.auth(&SessionChecks::default(), NOW, &id),
            Err(ApiError::Unavailable(_))
        ));
    }

    #[test]
    fn read_repair_never_resurrects_a_session_revoked_at_any_point() {
        // The read's calls: KV get (miss), D1 find, KV put, D1 find (and, when the revocation
        // came before that last find, a KV delete). The revocation lands before each of
        // them, or after the read.
        for step in 0..=4 {
            let w = World::default();
            let id = w.mint(&SessionChecks::default(), NOW, "u1");
            w.kv.remove(&World::key(&id));
            let revoker = SessionChecks::default();
            let on = Interleaving::at(step, || {
                block_on(revoke(&w.st(&revoker), at(5), &id)).unwrap();
            });
            let answer = w.auth_hooked(&on, at(5), &id);
            on.finish();
            assert!(
                w.kv.entry(&World::key(&id)).is_none(),
                "step {step}: no copy left in KV"
            );
            assert_eq!(
                w.auth(&SessionChecks::default(), at(6), &id),
                Err(ApiError::Unauthorized),
                "step {step}"
            );
            if step <= 1 {
                assert_eq!(answer, Err(ApiError::Unauthorized), "step {step}");
            }
        }
    }

    #[test]
    fn read_repair_waits_out_kv_write_rule_to_remove_its_own_write() {
        let w = World::default();
        let id = w.mint(&SessionChecks::default(), NOW, "u1");
        w.kv.remove(&World::key(&id));
        let revoker = SessionChecks::default();
        // Revoked between the write-back (call 2) and the read after it (call 3).
        let on = Interleaving::at(3, || {
            block_on(revoke(&w.st(&revoker), at(5), &id)).unwrap();
            w.kv.fail_next_writes(1);
        });
        assert_eq!(w.auth_hooked(&on, at(5), &id), Err(ApiError::Unauthorized));
        assert_eq!(w.timer.slept_ms(), KV_WRITE_INTERVAL_MS);
        assert!(w.kv.entry(&World::key(&id)).is_none());
    }

    #[test]
    fn listing_pages_with_cursor_and_filter() {
        let (w, iso) = (World::default(), SessionChecks::default());
        for i in 0..5 {
            w.mint(&iso, at(i), if i % 2 == 0 { "even" } else { "odd" });
        }
        let db = &w.db;
        let q = ListQuery {
            user: None,
            cursor: None,
            limit: 2,
        };
        let p1 = block_on(list(db, at(10), &q)).unwrap();
        assert_eq!(p1.sessions.len(), 2);
        assert!(!p1.list_complete);
        assert_eq!(p1.sessions[0].view.created_at, at(4));
        let q2 = ListQuery {
            cursor: Some(Cursor::parse(p1.cursor.as_deref().unwrap()).unwrap()),
            ..q.clone()
        };
        let p2 = block_on(list(db, at(10), &q2)).unwrap();
        assert_eq!(p2.sessions[0].view.created_at, at(2));
        let q3 = ListQuery {
            user: Some(user("even")),
            cursor: None,
            limit: 100,
        };
        let p3 = block_on(list(db, at(10), &q3)).unwrap();
        assert_eq!(p3.sessions.len(), 3);
        assert!(p3.list_complete);
        assert_eq!(p3.cursor, None);
    }

    #[test]
    fn the_listing_shows_handles_that_are_neither_id_nor_hash() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        let q = ListQuery::parse(Vec::<(String, String)>::new()).unwrap();
        let page = block_on(list(&w.db, at(1), &q)).unwrap();
        let handle = page.sessions[0].handle.clone().unwrap();
        assert!(SessionHandle::parse("handle", &handle).is_ok());
        assert!(!id.as_str().contains(&handle) && !hash_id(&id).contains(&handle));
        let json = serde_json::to_value(&page.sessions[0]).unwrap();
        assert_eq!(json["handle"], handle.as_str());
        assert_eq!(json["userId"], "u1");
    }

    #[test]
    fn revoking_by_handle_revokes_only_that_session_and_repeats_alike() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let a = w.mint(&iso, NOW, "u1");
        let b = w.mint(&iso, NOW, "u1");
        let handle_of = |id: &SessionId| {
            let rows = w.db.rows.borrow();
            let row = rows.iter().find(|r| r.id_hash == hash_id(id)).unwrap();
            SessionHandle::parse("handle", row.handle.as_deref().unwrap()).unwrap()
        };
        let h = handle_of(&a);
        block_on(revoke_handle(&w.st(&iso), at(1), &h)).unwrap();
        assert_eq!(w.auth(&iso, at(2), &a), Err(ApiError::Unauthorized));
        let fresh = SessionChecks::default();
        assert_eq!(w.auth(&fresh, at(2), &a), Err(ApiError::Unauthorized));
        assert!(w.kv.entry(&World::key(&a)).is_none());
        assert!(w.auth(&iso, at(2), &b).is_ok());
        assert_eq!(block_on(revoke_handle(&w.st(&iso), at(3), &h)), Ok(()));
        let unknown = SessionHandle::from_random(&[7; 16]);
        assert_eq!(
            block_on(revoke_handle(&w.st(&iso), at(3), &unknown)),
            Err(ApiError::NotFound)
        );
    }

    #[test]
    fn a_failed_kv_delete_by_handle_is_503_and_a_retry_removes_the_copy() {
        let (w, iso) = (World::default(), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        let handle = w.db.rows.borrow()[0].handle.clone().unwrap();
        let handle = SessionHandle::parse("handle", &handle).unwrap();
        w.kv.fail(true);
        assert!(matches!(
            block_on(revoke_handle(&w.st(&iso), at(1), &handle)),
            Err(ApiError::Unavailable(_))
        ));
        w.kv.fail(false);
        assert!(
            w.db.rows.borrow()[0].revoked_at.is_some(),
            "D1 refuses it already"
        );
        assert!(w.kv.entry(&World::key(&id)).is_some());
        block_on(revoke_handle(&w.st(&iso), at(3), &handle)).unwrap();
        assert!(
            w.kv.entries.borrow().is_empty(),
            "the retry removed the copy"
        );
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

    #[test]
    fn create_sets_both_deadlines_and_the_kv_copy_expires_at_the_idle_one() {
        let (w, iso) = (World::with(1_800, 7_200, 600), SessionChecks::default());
        let minted = block_on(create(&w.st(&iso), NOW, new("u1"))).unwrap();
        let v = minted.view;
        assert_eq!(v.expires_at, NOW.plus_seconds(7_200));
        assert_eq!(v.idle_expires_at, NOW.plus_seconds(1_800));
        let entry = w.kv.entry(&World::key(&minted.session_id)).unwrap();
        assert_eq!(entry.ttl, Some(1_800));
        assert_eq!(
            entry.metadata.unwrap()["idleExpiresAt"],
            v.idle_expires_at.0
        );
    }

    #[test]
    fn a_session_left_unused_past_its_idle_timeout_is_refused_even_with_a_kv_copy() {
        let (w, iso) = (World::with(3_600, WEEK_S, 600), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        let key = World::key(&id);
        assert!(w.kv.entry(&key).is_some(), "the copy is still in KV");
        let idle = at(3_600_000);
        assert_eq!(w.auth(&iso, idle, &id), Err(ApiError::Unauthorized));
        assert_eq!(
            w.auth(&SessionChecks::default(), idle, &id),
            Err(ApiError::Unauthorized)
        );
        // Even a copy that claims a later idle deadline: D1 decides.
        let mut view: SessionView = serde_json::from_str(&w.kv.get_raw(&key).unwrap()).unwrap();
        view.idle_expires_at = at(WEEK_MS - 1);
        w.kv.insert(&key, &serde_json::to_string(&view).unwrap());
        assert_eq!(
            w.auth(&SessionChecks::default(), idle, &id),
            Err(ApiError::Unauthorized)
        );
        // And while D1 cannot be asked, a copy past its idle deadline is refused.
        w.db.db.failing.set(true);
        view.idle_expires_at = at(3_600_000);
        w.kv.insert(&key, &serde_json::to_string(&view).unwrap());
        assert_eq!(
            w.auth(&SessionChecks::default(), idle, &id),
            Err(ApiError::Unauthorized)
        );
    }

    #[test]
    fn a_session_in_use_is_renewed_once_per_interval_and_never_idles_out() {
        let (w, iso) = (World::with(3_600, WEEK_S, 600), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        let others = [SessionChecks::default(), SessionChecks::default()];
        // Two hours of use, a request every 10 s, spread over three isolates.
        for i in 1..=720 {
            let checks = [&iso, &others[0], &others[1]][i % 3];
            let v = w.auth(checks, at(i as i64 * 10_000), &id).unwrap();
            assert!(v.idle_expires_at > at(i as i64 * 10_000), "request {i}");
        }
        assert_eq!(
            w.db.renewals.get(),
            12,
            "one renewal per 600 s over 7,200 s"
        );
        let entry = w.kv.entry(&World::key(&id)).unwrap();
        assert!(entry.ttl.unwrap() <= 3_600 && entry.ttl.unwrap() >= 3_000);
    }

    #[test]
    fn a_burst_of_50_renews_with_one_d1_write() {
        let w = World::with(3_600, WEEK_S, 600);
        let id = w.mint(&SessionChecks::default(), NOW, "u1");
        let later = at(601_000);
        let isolates: Vec<SessionChecks> = (0..3).map(|_| SessionChecks::default()).collect();
        for i in 0..50 {
            assert!(w.auth(&isolates[i % 3], later, &id).is_ok());
        }
        assert_eq!(w.db.renewals.get(), 1, "one row change");
        let v = w.auth(&isolates[0], later.plus_ms(1), &id).unwrap();
        assert_eq!(v.idle_expires_at, later.plus_seconds(3_600));
    }

    #[test]
    fn nothing_outlives_the_absolute_deadline() {
        let (w, iso) = (World::with(3_600, 7_200, 600), SessionChecks::default());
        let id = w.mint(&iso, NOW, "u1");
        let expires_at = at(7_200_000);
        let mut t = 0;
        while t < 7_200_000 {
            let now = at(t);
            let before = w.kv.writes();
            let v = w.auth(&iso, now, &id).unwrap();
            assert!(v.idle_expires_at <= expires_at && v.expires_at == expires_at);
            if w.kv.writes() > before {
                let ttl = w.kv.entry(&World::key(&id)).unwrap().ttl.unwrap();
                assert!(
                    now.plus_seconds(ttl) <= expires_at,
                    "a copy written at {t} outlives it"
                );
            }
            t += 30_000;
        }
        assert_eq!(w.auth(&iso, expires_at, &id), Err(ApiError::Unauthorized));
        assert_eq!(
            w.auth(&SessionChecks::default(), expires_at, &id),
            Err(ApiError::Unauthorized)
        );
    }

    #[test]
    fn a_copy_past_its_idle_deadline_is_checked_in_d1_where_a_renewal_may_be() {
        // Location a renews the session; location b still holds the copy from before.
        let w = World::with(3_600, WEEK_S, 900);
        let (a, b) = (SessionChecks::default(), SessionChecks::default());
        let id = w.mint(&a, NOW, "u1");
        let old_copy = w.kv.get_raw(&World::key(&id)).unwrap();
        assert!(w.auth(&a, at(3_000_000), &id).is_ok(), "renewed at 50 min");
        w.kv.insert(&World::key(&id), &old_copy);
        let v = w.auth(&b, at(3_700_000), &id).unwrap();
        assert_eq!(v.idle_expires_at, at(3_000_000).plus_seconds(3_600));
    }

    #[test]
    fn lifetime_renewal_arithmetic() {
        let l = Lifetime {
            idle_seconds: 3_600,
            absolute_seconds: 7_200,
            renew_after_seconds: 600,
        };
        let view = |idle_ms: i64| SessionView {
            user_id: "u".into(),
            email: "e@x.co".into(),
            created_at: NOW,
            expires_at: at(7_200_000),
            idle_expires_at: at(idle_ms),
        };
        // Renewed at 0: due from 600 s on.
        assert!(!l.renewal_due(&view(3_600_000), at(599_999)));
        assert!(l.renewal_due(&view(3_600_000), at(600_000)));
        // Capped at the absolute deadline: never due again.
        assert!(!l.renewal_due(&view(7_200_000), at(7_000_000)));
        assert_eq!(l.idle_deadline(at(5_000_000), at(7_200_000)), at(7_200_000));
        assert_eq!(
            Lifetime::default(),
            Lifetime {
                idle_seconds: 86_400,
                absolute_seconds: WEEK_S,
                renew_after_seconds: 3_600
            }
        );
    }

    #[test]
    fn kv_copies_written_before_idle_deadlines_read_as_the_absolute_one() {
        let old = r#"{"userId":"u","email":"e@x.co","createdAt":5,"expiresAt":9}"#;
        let v: SessionView = serde_json::from_str(old).unwrap();
        assert_eq!((v.expires_at, v.idle_expires_at), (Millis(9), Millis(9)));
    }
}
