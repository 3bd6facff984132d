//! Account deletion: everything stored under one user's id, in D1 and in KV.
//!
//! **One id.** Sessions and preferences are keyed by a session's `userId` (1-128 of
//! `[A-Za-z0-9_.:@-]`), profiles by their `id` (1-64 of `[A-Za-z0-9_-]`), a subset of the
//! same strings. An account is therefore a `userId`; its profile is the profile of the same
//! string when that string is also a valid profile id (an account such as
//! `alice@example.com` cannot have one). Keep the two equal in your application.
//!
//! **Order.** Each step leaves a state that a repeated deletion completes:
//! 1. D1: every unexpired session of the user is revoked, returning the hashes of those
//!    whose KV copies may still exist (one statement). From here D1 refuses them.
//! 2. KV: those copies are deleted (one delete each), so this location refuses the
//!    sessions at once.
//! 3. D1: the user's sessions, preferences and profile rows are deleted (one atomic batch).
//! 4. KV: the preference copy and the cached profile are deleted, and this isolate forgets
//!    any preference write it had not copied to KV yet.
//!
//! A failure at any step is unavailable; repeating the deletion finishes it, and a deletion
//! of an account that no longer exists does nothing and answers the same.
//!
//! **Other locations** refuse the sessions within the revocation bound (10 s: step 1 adds
//! them to the revocation feed; a copy KV would not delete is recorded there as lingering),
//! and may still see, for as long as their KV copies live (KV propagation and edge caching,
//! up to ~60 s), the cached profile and the preference copy. A preference write accepted there in that window recreates a
//! preferences row; a second deletion after the window removes it.

use crate::domain::error::{DomainResult, StoreResult};
use crate::domain::ids::{ProfileId, UserId};
use crate::domain::kv::Kv;
use crate::domain::prefs::{self, PendingPrefs};
use crate::domain::sessions;
use crate::domain::time::Millis;
use crate::domain::users;

/// The D1 side of account deletion.
#[allow(async_fn_in_trait)]
pub trait AccountDb {
    /// Revokes every unexpired session of `user` that is still active and returns the
    /// hashes of all its unexpired sessions (revoked before or now): those whose KV copies
    /// may exist.
    async fn revoke_sessions(&self, user: &UserId, now: Millis) -> StoreResult<Vec<String>>;
    /// Deletes the user's sessions and preferences, and `profile` if given, atomically.
    async fn erase(&self, user: &UserId, profile: Option<&ProfileId>) -> StoreResult<()>;
    /// Records in the revocation feed that the KV copy of a revoked session could not be
    /// deleted (as [`sessions::SessionDb::linger`]).
    async fn linger(&self, id_hash: &str, now: Millis) -> StoreResult<()>;
    /// [`AccountDb::linger`] for every unexpired session of `user`, in one statement.
    async fn linger_user(&self, user: &UserId, now: Millis) -> StoreResult<()>;
}

/// The profile that belongs to account `user`, if its id can name one.
pub fn profile_of(user: &UserId) -> Option<ProfileId> {
    ProfileId::parse("id", user.as_str()).ok()
}

/// Deletes account `user` everywhere (see the module documentation for the order and the
/// guarantees). Idempotent.
pub async fn delete<K: Kv, D: AccountDb>(
    kv: &K,
    db: &D,
    pending: &PendingPrefs,
    user: &UserId,
    now: Millis,
) -> DomainResult<()> {
    let hashes = db.revoke_sessions(user, now).await?;
    // Past the deletes one request may make, every copy lingers in the feed (refused
    // everywhere until it expires), and the rest of the deletion goes on.
    if hashes.len() > sessions::MAX_COPY_DELETES {
        db.linger_user(user, now).await?;
    }
    for hash in hashes.iter().take(sessions::MAX_COPY_DELETES) {
        if let Err(e) = kv.delete(&sessions::kv_key(hash)?).await {
            // Isolates started later learn from the feed that this copy still exists.
            if let Err(linger) = db.linger(hash, now).await {
                crate::log::warn_cause(
                    "deleted account's session copy lingers, unrecorded",
                    &linger.0,
                );
            }
            return Err(e.into());
        }
    }
    let profile = profile_of(user);
    db.erase(user, profile.as_ref()).await?;
    pending.forget(user);
    kv.delete(&prefs::kv_key(user)?).await?;
    if let Some(profile) = &profile {
        kv.delete(&users::kv_key(profile)?).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::DomainError;
    use crate::domain::ids::Email;
    use crate::domain::kv::WriteGate;
    use crate::domain::prefs::{PrefsPatch, PrefsState};
    use crate::domain::sessions::{Check, NewSession, SessionChecks, SessionStores};
    use crate::storage::fake::{block_on, FakeTimer, MemAccounts, MemKv, MemSessions};

    const NOW: Millis = Millis(1_700_000_000_000);

    fn user(s: &str) -> UserId {
        UserId::parse("userId", s).unwrap()
    }

    struct World {
        kv: MemKv,
        db: MemAccounts,
        pending: PendingPrefs,
        gate: WriteGate,
        timer: FakeTimer,
        checks: SessionChecks,
    }

    impl World {
        fn new() -> Self {
            World {
                kv: MemKv::default(),
                db: MemAccounts::default(),
                pending: PendingPrefs::default(),
                gate: WriteGate::default(),
                timer: FakeTimer::default(),
                checks: SessionChecks::default(),
            }
        }

        /// The session stores as a fresh isolate sees them (no D1 check remembered).
        fn sessions(&self) -> SessionStores<'_, MemKv, MemSessions, FakeTimer> {
            SessionStores {
                kv: &self.kv,
                db: &self.db.sessions,
                timer: &self.timer,
                checks: &self.checks,
                lifetime: Default::default(),
            }
        }

        fn check(&self, id: &crate::domain::ids::SessionId) -> DomainResult<()> {
            let fresh = SessionChecks::default();
            let st = SessionStores {
                checks: &fresh,
                ..self.sessions()
            };
            block_on(sessions::authenticate(&st, NOW, id, Check::Fast)).map(|_| ())
        }

        fn st(&self) -> PrefsState<'_> {
            PrefsState {
                pending: &self.pending,
                gate: &self.gate,
                clock: &self.timer,
            }
        }

        /// A session, preferences and (where the id allows) a cached profile for `u`.
        fn account(&self, u: &str) -> crate::domain::ids::SessionId {
            let new = NewSession {
                user: user(u),
                email: Email::parse("email", "a@example.com").unwrap(),
            };
            let minted = block_on(sessions::create(&self.sessions(), NOW, new));
            let patch = PrefsPatch {
                theme: Some("dark".into()),
                ..PrefsPatch::default()
            };
            block_on(prefs::patch(
                &self.kv,
                &self.db.prefs,
                self.st(),
                &user(u),
                &patch,
                NOW,
            ))
            .unwrap();
            if let Some(p) = profile_of(&user(u)) {
                let missing = users::MissingUsers::default();
                block_on(users::put(
                    &self.kv,
                    &self.db.users,
                    &missing,
                    &p,
                    "Ann",
                    NOW,
                ))
                .unwrap();
                block_on(users::get(&self.kv, &self.db.users, &missing, &p, 300, NOW)).unwrap();
            }
            minted.unwrap().session_id
        }

        fn delete(&self, u: &str, at_ms: i64) -> DomainResult<()> {
            let at = NOW.plus_ms(at_ms);
            block_on(delete(&self.kv, &self.db, &self.pending, &user(u), at))
        }

        fn keys(&self) -> Vec<String> {
            let mut keys: Vec<String> = self.kv.entries.borrow().keys().cloned().collect();
            keys.sort();
            keys
        }
    }

    #[test]
    fn deletion_removes_every_row_and_copy_of_that_account_only() {
        let w = World::new();
        let id = w.account("ann");
        let other = w.account("bob");
        w.delete("ann", 1).unwrap();
        assert!(w
            .db
            .sessions
            .rows
            .borrow()
            .iter()
            .all(|r| r.user_id == "bob"));
        assert!(!w.db.prefs.rows.borrow().contains_key("ann"));
        assert!(!w.db.users.rows.borrow().contains_key("ann"));
        assert!(
            w.keys().iter().all(|k| !k.contains("ann")),
            "{:?}",
            w.keys()
        );
        assert_eq!(w.check(&id), Err(DomainError::Unauthorized));
        assert!(w.check(&other).is_ok());
        assert!(w.db.prefs.rows.borrow().contains_key("bob"));
    }

    #[test]
    fn a_second_deletion_answers_the_same_and_changes_nothing() {
        let w = World::new();
        w.account("ann");
        w.delete("ann", 1).unwrap();
        let keys = w.keys();
        assert_eq!(w.delete("ann", 2), Ok(()));
        assert_eq!(w.delete("never-existed", 3), Ok(()));
        assert_eq!(w.keys(), keys);
    }

    #[test]
    fn an_id_that_cannot_name_a_profile_deletes_sessions_and_preferences() {
        let w = World::new();
        let id = w.account("ann@example.com");
        w.db.users.rows.borrow_mut().insert(
            "ann".into(),
            users::User {
                id: "ann".into(),
                name: "Ann".into(),
                updated_at: NOW,
            },
        );
        w.delete("ann@example.com", 1).unwrap();
        assert!(w.db.sessions.rows.borrow().is_empty());
        assert!(w.db.prefs.rows.borrow().is_empty());
        assert!(
            w.db.users.rows.borrow().contains_key("ann"),
            "another account's profile"
        );
        assert_eq!(w.check(&id), Err(DomainError::Unauthorized));
    }

    #[test]
    fn a_kv_failure_is_503_and_repeating_the_deletion_finishes_it() {
        let w = World::new();
        let id = w.account("ann");
        w.kv.fail(true);
        assert!(matches!(
            w.delete("ann", 1),
            Err(DomainError::Unavailable(_))
        ));
        w.kv.fail(false);
        let row = w.db.sessions.rows.borrow()[0].clone();
        assert!(row.revoked_at.is_some(), "D1 refuses the session already");
        assert!(w.keys().iter().any(|k| k.starts_with("session:")));
        let feed = w.db.sessions.feed.borrow().clone();
        assert!(
            feed.iter()
                .any(|r| r.id_hash == row.id_hash && r.lingers_until.is_some()),
            "the feed says the copy lingers, for isolates started later: {feed:?}"
        );
        w.delete("ann", 2).unwrap();
        assert!(w.keys().is_empty(), "{:?}", w.keys());
        assert_eq!(w.check(&id), Err(DomainError::Unauthorized));
    }

    #[test]
    fn an_account_with_more_sessions_than_one_request_may_delete_is_deleted_in_one_go() {
        let w = World::new();
        let first = w.account("ann");
        let new = || NewSession {
            user: user("ann"),
            email: Email::parse("email", "a@example.com").unwrap(),
        };
        for _ in 0..sessions::MAX_COPY_DELETES + 5 {
            block_on(sessions::create(&w.sessions(), NOW, new())).unwrap();
        }
        let deletes = w.kv.deletes();
        w.delete("ann", 1).unwrap();
        assert!(w.kv.deletes() - deletes <= sessions::MAX_COPY_DELETES as u32 + 2);
        assert!(w.db.sessions.rows.borrow().is_empty(), "the rows are gone");
        let lingering =
            w.db.sessions
                .feed
                .borrow()
                .iter()
                .filter(|r| r.lingers_until.is_some())
                .count();
        assert_eq!(
            lingering,
            sessions::MAX_COPY_DELETES + 6,
            "every copy is named lingering"
        );
        assert_eq!(w.check(&first), Err(DomainError::Unauthorized));
    }

    #[test]
    fn a_d1_failure_is_503_and_changes_nothing() {
        let w = World::new();
        w.account("ann");
        let keys = w.keys();
        w.db.db.failing.set(true);
        assert!(matches!(
            w.delete("ann", 1),
            Err(DomainError::Unavailable(_))
        ));
        assert_eq!(w.keys(), keys);
        assert!(w.db.sessions.rows.borrow()[0].revoked_at.is_none());
    }

    #[test]
    fn another_isolates_pending_write_is_dropped_once_it_finds_the_account_gone() {
        let w = World::new();
        w.account("ann");
        let elsewhere = World::new();
        let st = PrefsState {
            pending: &elsewhere.pending,
            gate: &elsewhere.gate,
            clock: &elsewhere.timer,
        };
        let patch = PrefsPatch {
            language: Some("nl".into()),
            ..PrefsPatch::default()
        };
        // The other isolate's write lands in D1; its KV copy waits for the key's window.
        elsewhere
            .gate
            .try_claim(&prefs::kv_key(&user("ann")).unwrap(), NOW);
        let answer = block_on(prefs::patch(
            &w.kv,
            &w.db.prefs,
            st,
            &user("ann"),
            &patch,
            NOW,
        ));
        assert!(answer.unwrap().sync_after_ms.is_some());
        w.delete("ann", 20).unwrap();
        block_on(prefs::flush(
            &w.kv,
            &w.db.prefs,
            st,
            &user("ann"),
            NOW.plus_ms(2_000),
        ));
        let copy = w.kv.get_raw("prefs:ann").unwrap_or_default();
        assert!(!copy.contains("nl") && !copy.contains("dark"), "{copy}");
    }

    #[test]
    fn a_pending_preference_write_is_not_copied_to_kv_after_the_deletion() {
        let w = World::new();
        w.account("ann");
        // A second PATCH within the second: acknowledged, its KV copy deferred.
        let patch = PrefsPatch {
            language: Some("nl".into()),
            ..PrefsPatch::default()
        };
        let later = NOW.plus_ms(10);
        let answer = block_on(prefs::patch(
            &w.kv,
            &w.db.prefs,
            w.st(),
            &user("ann"),
            &patch,
            later,
        ));
        assert!(answer.unwrap().sync_after_ms.is_some());
        w.delete("ann", 20).unwrap();
        let flushed = NOW.plus_ms(2_000);
        block_on(prefs::flush(
            &w.kv,
            &w.db.prefs,
            w.st(),
            &user("ann"),
            flushed,
        ));
        let copy = w.kv.get_raw("prefs:ann").unwrap_or_default();
        assert!(!copy.contains("nl") && !copy.contains("dark"), "{copy}");
    }
}
