//! Scoped admin tokens: credentials for automation beside the admin token, each with a name
//! (what the config history shows as the writer) and a scope (which admin operations it may perform).
//!
//! A token is `est_` and 43 base64url characters (256 random bits), shown once when it is
//! created; D1 keeps only its SHA-256 (as for session ids). Each isolate keeps a copy of the
//! whole table ([`TokenCache`]): admins create few tokens, so one query loads them all, and a
//! check costs no storage work while the copy is younger than [`CACHE_MS`]. A token the copy
//! does not know makes the isolate read the table again, at most once per [`RELOAD_MS`], so
//! guessing costs D1 nothing more. A revocation through an isolate takes effect there at once
//! and in every other isolate within `CACHE_MS`.

use crate::domain::error::{DomainError, DomainResult, StoreResult};
use crate::domain::ids::{FlagName, SessionId};
use crate::domain::sessions::{hash_id, new_id};
use crate::domain::time::Millis;
use serde::Serialize;
use std::cell::{Cell, RefCell};

/// What every token starts with (so a leaked one is easy to recognise and to scan for).
pub const PREFIX: &str = "est_";
/// How long an isolate trusts its copy of the token table.
pub const CACHE_MS: i64 = 10_000;
/// How soon after a read an unknown token may make the isolate read the table again.
pub const RELOAD_MS: i64 = 2_000;
/// At most this many tokens exist at once.
pub const MAX_TOKENS: usize = 100;

/// What a credential may do as an admin. Each admin operation needs a scope; a token's
/// scope allows the operations of that scope and every `Read` one. `Admin` (token management,
/// profile writes) is only for the admin token and Cloudflare Access identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every admin read: the config, its history, the session listing, deep health.
    Read,
    /// Reads, and config writes (replace, patch, rollback).
    Flags,
    /// Reads, and minting and revoking sessions.
    Sessions,
    /// Everything.
    Admin,
}

impl Scope {
    /// A token's scope as written (`read`, `flags`, `sessions`); an error names `field`.
    pub fn parse(field: &str, s: &str) -> DomainResult<Self> {
        match s {
            "read" => Ok(Scope::Read),
            "flags" => Ok(Scope::Flags),
            "sessions" => Ok(Scope::Sessions),
            _ => Err(DomainError::invalid(
                field,
                "must be \"read\", \"flags\" or \"sessions\"",
            )),
        }
    }

    /// The scope as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Flags => "flags",
            Scope::Sessions => "sessions",
            Scope::Admin => "admin",
        }
    }

    /// Whether a credential of this scope may perform an operation that needs `needed`.
    #[inline(never)]
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || needed == Scope::Read || self == needed
    }
}

/// Written as its name (`"flags"`).
impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A token as D1 keeps it, and as the API shows it (with the credential itself only in the
/// answer that created it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    /// SHA-256 (hex) of the token's random part; never shown.
    #[serde(skip)]
    pub hash: String,
    /// The credential, presented as a bearer token: only when it was just created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Its name, unique.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// When it was created.
    pub created_at: Millis,
    /// Who created it (as the history names writers).
    pub created_by: String,
}

/// Every token, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenList {
    /// The tokens (never their secret or hash).
    pub tokens: Vec<TokenRecord>,
}

/// D1's token table (a port).
#[allow(async_fn_in_trait)]
pub trait TokenDb {
    /// Every token, newest first.
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// Adds a token; false if its name is taken or [`MAX_TOKENS`] exist.
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<bool>;
    /// Deletes the token of this name; false if there is none.
    async fn delete_token(&self, name: &str) -> StoreResult<bool>;
}

/// The isolate's copy of the token table (see the module documentation).
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: RefCell<Vec<TokenRecord>>,
    read_at: Cell<Option<Millis>>,
}

impl TokenCache {
    fn find(&self, hash: &str) -> Option<(String, Scope)> {
        let tokens = self.tokens.borrow();
        let token = tokens.iter().find(|t| t.hash == hash)?;
        Some((token.name.clone(), token.scope))
    }

    fn age(&self, now: Millis) -> i64 {
        self.read_at.get().map_or(i64::MAX, |at| now.0 - at.0)
    }
}

/// The name and scope of the token `given` (a bearer token), or unauthorized. Anything not
/// shaped like a token is refused before any storage is touched.
pub async fn identify<D: TokenDb>(
    db: &D,
    cache: &TokenCache,
    given: &str,
    now: Millis,
) -> DomainResult<(String, Scope)> {
    let id = given.strip_prefix(PREFIX).and_then(SessionId::parse);
    let hash = hash_id(&id.ok_or(DomainError::Unauthorized)?);
    let age = cache.age(now);
    if age < CACHE_MS {
        if let Some(found) = cache.find(&hash) {
            return Ok(found);
        }
    }
    if age < RELOAD_MS {
        return Err(DomainError::Unauthorized);
    }
    *cache.tokens.borrow_mut() = db.tokens().await?;
    cache.read_at.set(Some(now));
    cache.find(&hash).ok_or(DomainError::Unauthorized)
}

/// Creates a token named `name` with `scope`, by `creator`: invalid when the name is taken or
/// the table is full.
pub async fn create<D: TokenDb>(
    db: &D,
    cache: &TokenCache,
    (name, scope): (FlagName, Scope),
    creator: &str,
    now: Millis,
) -> DomainResult<TokenRecord> {
    let id = new_id()?;
    let mut record = TokenRecord {
        hash: hash_id(&id),
        token: None,
        name: name.as_str().to_string(),
        scope,
        created_at: now,
        created_by: creator.to_string(),
    };
    if !db.insert_token(&record).await? {
        let why = "is already in use, or 100 tokens exist";
        return Err(DomainError::invalid("name", why));
    }
    cache.read_at.set(None);
    record.token = Some(String::from(PREFIX) + id.as_str());
    Ok(record)
}

/// Every token, newest first.
pub async fn list<D: TokenDb>(db: &D) -> DomainResult<TokenList> {
    Ok(TokenList {
        tokens: db.tokens().await?,
    })
}

/// Revokes the token named `name` (not found if there is none): refused at once by this
/// isolate, by the others within [`CACHE_MS`].
pub async fn revoke<D: TokenDb>(db: &D, cache: &TokenCache, name: &FlagName) -> DomainResult<()> {
    if !db.delete_token(name.as_str()).await? {
        return Err(DomainError::NotFound);
    }
    cache.read_at.set(None);
    cache
        .tokens
        .borrow_mut()
        .retain(|t| t.name != name.as_str());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fake::{block_on, MemTokens};

    const NOW: Millis = Millis(1_700_000_000_000);

    fn at(ms: i64) -> Millis {
        Millis(NOW.0 + ms)
    }

    fn name(n: &str) -> FlagName {
        FlagName::parse("name", n).unwrap()
    }

    #[test]
    fn scopes_allow_their_operations_and_every_read() {
        use Scope::*;
        for (have, needed, allowed) in [
            (Read, Read, true),
            (Read, Flags, false),
            (Read, Admin, false),
            (Flags, Read, true),
            (Flags, Flags, true),
            (Flags, Sessions, false),
            (Sessions, Sessions, true),
            (Sessions, Flags, false),
            (Sessions, Admin, false),
            (Admin, Flags, true),
            (Admin, Admin, true),
        ] {
            assert_eq!(have.allows(needed), allowed, "{have:?} for {needed:?}");
        }
        assert_eq!(Scope::parse("scope", "flags"), Ok(Flags));
        for bad in ["admin", "Read", "", "write"] {
            assert!(Scope::parse("scope", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_created_token_is_known_by_its_secret_only_and_names_its_holder() {
        let (db, cache) = (MemTokens::default(), TokenCache::default());
        let minted = block_on(create(
            &db,
            &cache,
            (name("ci"), Scope::Flags),
            "admin",
            NOW,
        ))
        .unwrap();
        let token = minted.token.clone().unwrap();
        assert!(token.starts_with("est_") && token.len() == 47);
        assert_eq!(
            block_on(identify(&db, &cache, &token, at(1))),
            Ok(("ci".into(), Scope::Flags))
        );
        let stored = db.rows.borrow()[0].clone();
        assert!(!stored.hash.contains(&token[4..]) && stored.hash.len() == 64);
        assert_eq!(stored.token, None, "the credential is not stored");
        let listed = serde_json::to_value(block_on(list(&db)).unwrap()).unwrap();
        assert_eq!(listed["tokens"][0]["scope"], "flags");
        assert!(!listed.to_string().contains(&stored.hash));
        let again = block_on(create(&db, &cache, (name("ci"), Scope::Read), "admin", NOW));
        assert!(
            matches!(again, Err(DomainError::Invalid(_))),
            "a name is unique"
        );
    }

    #[test]
    fn guesses_cost_no_storage_and_at_most_one_read_per_reload_interval() {
        let (db, cache) = (MemTokens::default(), TokenCache::default());
        let minted = block_on(create(
            &db,
            &cache,
            (name("ops"), Scope::Read),
            "admin",
            NOW,
        ))
        .unwrap();
        let token = minted.token.clone().unwrap();
        for malformed in ["", "est_", "est_short", &token[4..], "Bearer x"] {
            let refused = block_on(identify(&db, &cache, malformed, at(1)));
            assert_eq!(refused, Err(DomainError::Unauthorized));
        }
        assert_eq!(db.reads.get(), 0, "malformed tokens read nothing");
        assert!(block_on(identify(&db, &cache, &token, at(1))).is_ok());
        assert_eq!(db.reads.get(), 1);
        let guess = format!("est_{}", "A".repeat(43));
        for ms in [2, 100, 1_999] {
            let refused = block_on(identify(&db, &cache, &guess, at(ms)));
            assert_eq!(refused, Err(DomainError::Unauthorized));
        }
        assert_eq!(db.reads.get(), 1, "within the reload interval: no read");
        let _ = block_on(identify(&db, &cache, &guess, at(2_001)));
        assert_eq!(db.reads.get(), 2);
        assert!(block_on(identify(&db, &cache, &token, at(2_002))).is_ok());
        assert_eq!(db.reads.get(), 2, "a known token is answered from the copy");
    }

    #[test]
    fn a_revoked_token_is_refused_here_at_once_and_elsewhere_after_the_cache() {
        let db = MemTokens::default();
        let (here, elsewhere) = (TokenCache::default(), TokenCache::default());
        let minted =
            block_on(create(&db, &here, (name("old"), Scope::Sessions), "a", NOW)).unwrap();
        let token = minted.token.clone().unwrap();
        assert!(block_on(identify(&db, &elsewhere, &token, at(1))).is_ok());
        block_on(revoke(&db, &here, &name("old"))).unwrap();
        let refused = block_on(identify(&db, &here, &token, at(2)));
        assert_eq!(refused, Err(DomainError::Unauthorized));
        assert!(block_on(identify(&db, &elsewhere, &token, at(CACHE_MS))).is_ok());
        let later = block_on(identify(&db, &elsewhere, &token, at(CACHE_MS + 1)));
        assert_eq!(later, Err(DomainError::Unauthorized));
        assert_eq!(
            block_on(revoke(&db, &here, &name("old"))),
            Err(DomainError::NotFound)
        );
    }
}
