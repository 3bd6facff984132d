//! The session flows across simulated isolates: one KV, one D1 and a clock.

use super::listing::is_hash;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::{Email, SessionHandle, SessionId, UserId};
use crate::domain::json;
use crate::domain::kv::KV_WRITE_INTERVAL_MS;

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

    fn auth(&self, iso: &SessionChecks, at: Millis, id: &SessionId) -> DomainResult<SessionView> {
        block_on(authenticate(&self.st(iso), at, id, Check::Fast))
    }

    /// `auth` by a fresh isolate whose every KV and D1 call first takes a step of `on`.
    fn auth_hooked(
        &self,
        on: &Interleaving,
        at: Millis,
        id: &SessionId,
    ) -> DomainResult<SessionView> {
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
fn a_kv_hit_needs_no_d1_while_the_feed_is_fresh() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let id = w.mint(&iso, NOW, "u1");
    assert!(w.auth(&iso, at(1), &id).is_ok(), "reads the feed once");
    let queries = w.db.db.queries.get();
    w.db.db.failing.set(true);
    for ms in [2, 5_000, RECHECK_MS - 1] {
        assert!(w.auth(&iso, at(ms), &id).is_ok(), "{ms}");
    }
    assert_eq!(
        w.db.db.queries.get(),
        queries,
        "no D1 query within the bound"
    );
}

#[test]
fn session_checks_cost_one_feed_read_per_isolate_and_interval_whatever_the_sessions() {
    let (w, minter) = (World::default(), SessionChecks::default());
    let ids: Vec<SessionId> = (0..50)
        .map(|i| w.mint(&minter, NOW, &format!("u{i}")))
        .collect();
    let other = SessionChecks::default();
    let before = w.db.db.queries.get();
    // 50 sessions, each used 30 times over 25 s in another isolate: 1,500 checks, and the
    // feed read at 0 s, just past 10 s and just past 20 s.
    for i in 0..30 {
        for id in &ids {
            assert!(w.auth(&other, at(i * 860), id).is_ok());
        }
    }
    assert_eq!(w.db.db.queries.get() - before, 3);
    assert_eq!(w.kv.reads(), 1_500, "every session itself comes from KV");
}

#[test]
fn another_isolate_refuses_a_revoked_session_within_the_interval_whatever_kv_holds() {
    let (w, a, b) = (
        World::default(),
        SessionChecks::default(),
        SessionChecks::default(),
    );
    let id = w.mint(&a, NOW, "u1");
    assert!(
        w.auth(&b, at(1_000), &id).is_ok(),
        "b reads the feed at 1 s"
    );
    // Revoked through a at 2 s; KV in b's location keeps the copy (not yet propagated).
    let copy = w.kv.entry(&World::key(&id)).unwrap();
    block_on(revoke(&w.st(&a), at(2_000), &id)).unwrap();
    w.kv.insert(&World::key(&id), &copy.value);
    assert!(
        w.auth(&b, at(1_000 + RECHECK_MS - 1), &id).is_ok(),
        "within b's interval"
    );
    for ms in [1_000 + RECHECK_MS, 2_000 + RECHECK_MS, 60_000] {
        assert_eq!(
            w.auth(&b, at(ms), &id),
            Err(DomainError::Unauthorized),
            "{ms}"
        );
    }
    assert!(
        w.kv.entry(&World::key(&id)).is_some(),
        "refused with the copy still in KV"
    );
}

#[test]
fn a_new_isolate_refuses_recent_and_lingering_revocations_from_its_first_read() {
    let (w, a) = (World::default(), SessionChecks::default());
    let recent = w.mint(&a, NOW, "u1");
    let lingering = w.mint(&a, NOW, "u2");
    let copies = [&recent, &lingering].map(|id| w.kv.entry(&World::key(id)).unwrap());
    block_on(revoke(&w.st(&a), at(1_000), &recent)).unwrap();
    // KV refuses the second delete twice: the copy stays, and the feed says it lingers.
    w.kv.fail(true);
    assert!(block_on(revoke(&w.st(&a), at(2_000), &lingering)).is_err());
    w.kv.fail(false);
    for (id, copy) in [&recent, &lingering].iter().zip(&copies) {
        w.kv.insert(&World::key(id), &copy.value);
    }
    let fresh = || SessionChecks::default();
    assert_eq!(
        w.auth(&fresh(), at(60_000), &recent),
        Err(DomainError::Unauthorized)
    );
    assert_eq!(
        w.auth(&fresh(), at(3_600_000), &lingering),
        Err(DomainError::Unauthorized),
        "an hour later: its copy may still be in KV"
    );
}

#[test]
fn a_read_finished_by_a_later_request_counts_for_an_earlier_one() {
    // Concurrent requests: one that started at 1 s sees the feed read of one that started
    // at 2 s (its `now` is later): no second D1 query, no second renewal claim.
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
    // A clock that jumps back further than the bound does not keep a read alive.
    assert_eq!(b.feed_age(at(2_000 - RECHECK_MS - 1)), FeedAge::Stale);
    assert_eq!(b.feed_age(at(2_000 + FEED_REFRESH_MS)), FeedAge::Due);
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
        assert_eq!(w.auth(&b, at(10 + i), &id), Err(DomainError::Unauthorized));
    }
    assert_eq!(w.db.db.queries.get() - before, 1);
}

#[test]
fn d1_failing_on_a_feed_read_trusts_the_kv_copy_and_waits_a_second_to_retry() {
    let (w, a, b) = (
        World::default(),
        SessionChecks::default(),
        SessionChecks::default(),
    );
    let id = w.mint(&a, NOW, "u1");
    w.db.db.failing.set(true);
    let before = w.db.db.queries.get();
    assert_eq!(w.auth(&b, at(1), &id).unwrap().user_id, "u1");
    assert!(w.auth(&b, at(500), &id).is_ok());
    assert_eq!(
        w.db.db.queries.get() - before,
        1,
        "no retry within a second"
    );
    assert_eq!(b.feed_age(at(500)), FeedAge::Failing);
}

#[test]
fn expired_sessions_are_refused_even_from_kv() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let id = w.mint(&iso, NOW, "u1");
    let after = at(WEEK_MS);
    assert_eq!(w.auth(&iso, after, &id), Err(DomainError::Unauthorized));
    w.kv.entries.borrow_mut().clear();
    assert_eq!(
        w.auth(&SessionChecks::default(), after, &id),
        Err(DomainError::Unauthorized)
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
    assert_eq!(w.auth(&iso, at(2), &id), Err(DomainError::Unauthorized));
    assert_eq!(
        block_on(revoke(&w.st(&SessionChecks::default()), at(3), &id)),
        Err(DomainError::Unauthorized)
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
        Err(DomainError::Unavailable(_))
    ));
    w.kv.fail(false);
    assert_eq!(
        w.kv.entries.borrow().len(),
        1,
        "the KV copy survived the failed delete"
    );
    assert_eq!(
        block_on(revoke(&w.st(&iso), at(2), &id)),
        Err(DomainError::Unauthorized)
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
    assert_eq!(again, Err(DomainError::Unauthorized));
    assert!(w.kv.entries.borrow().is_empty());
}

#[test]
fn revoke_user_touches_only_that_user() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let a1 = w.mint(&iso, NOW, "a");
    let a2 = w.mint(&iso, NOW, "a");
    let b = w.mint(&iso, NOW, "b");
    assert_eq!(
        block_on(revoke_user(&w.st(&iso), at(1), &user("a"), None)).unwrap(),
        Revoked { revoked: 2 }
    );
    let other = SessionChecks::default();
    for id in [&a1, &a2] {
        assert!(w.auth(&iso, at(2), id).is_err());
        assert!(w.auth(&other, at(2), id).is_err());
    }
    assert!(w.auth(&iso, at(2), &b).is_ok());
    assert_eq!(
        block_on(revoke_user(&w.st(&iso), at(3), &user("a"), None)).unwrap(),
        Revoked { revoked: 0 }
    );
}

#[test]
fn a_user_ends_their_other_sessions_and_keeps_the_current_one() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let current = w.mint(&iso, NOW, "a");
    let phone = w.mint(&iso, NOW, "a");
    let laptop = w.mint(&iso, NOW, "a");
    let b = w.mint(&iso, NOW, "b");
    let spared = hash_id(&current);
    let ended = block_on(revoke_user(&w.st(&iso), at(1), &user("a"), Some(&spared)));
    assert_eq!(ended.unwrap(), Revoked { revoked: 2 });
    let other = SessionChecks::default();
    for id in [&phone, &laptop] {
        assert!(w.auth(&other, at(2), id).is_err());
        assert!(w.kv.entry(&World::key(id)).is_none());
    }
    assert!(w.auth(&other, at(2), &current).is_ok());
    assert!(w.auth(&other, at(2), &b).is_ok());
}

#[test]
fn d1_failure_on_kv_miss_is_unavailable() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let id = w.mint(&iso, NOW, "u1");
    w.kv.entries.borrow_mut().clear();
    w.db.db.failing.set(true);
    assert!(matches!(
        w.auth(&SessionChecks::default(), NOW, &id),
        Err(DomainError::Unavailable(_))
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
            Err(DomainError::Unauthorized),
            "step {step}"
        );
        if step <= 1 {
            assert_eq!(answer, Err(DomainError::Unauthorized), "step {step}");
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
    assert_eq!(
        w.auth_hooked(&on, at(5), &id),
        Err(DomainError::Unauthorized)
    );
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
    let p1 = block_on(list(db, at(10), &q, None)).unwrap();
    assert_eq!(p1.sessions.len(), 2);
    assert!(!p1.list_complete);
    assert_eq!(p1.sessions[0].view.created_at, at(4));
    let q2 = ListQuery {
        cursor: Some(Cursor::parse(p1.cursor.as_deref().unwrap()).unwrap()),
        ..q.clone()
    };
    let p2 = block_on(list(db, at(10), &q2, None)).unwrap();
    assert_eq!(p2.sessions[0].view.created_at, at(2));
    let q3 = ListQuery {
        user: Some(user("even")),
        cursor: None,
        limit: 100,
    };
    let p3 = block_on(list(db, at(10), &q3, None)).unwrap();
    assert_eq!(p3.sessions.len(), 3);
    assert!(p3.list_complete);
    assert_eq!(p3.cursor, None);
}

#[test]
fn cursors_name_a_row_by_its_handle_never_by_the_id_hash() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let ids: Vec<_> = (0..3).map(|_| w.mint(&iso, NOW, "same-ms")).collect();
    let q = ListQuery {
        user: None,
        cursor: None,
        limit: 1,
    };
    // Three sessions minted in the same millisecond: the handle still orders the pages.
    let (mut seen, mut query) = (Vec::new(), q);
    loop {
        let page = block_on(list(&w.db, at(1), &query, None)).unwrap();
        seen.extend(page.sessions.iter().map(|s| s.handle.clone().unwrap()));
        let Some(cursor) = page.cursor else { break };
        for id in &ids {
            assert!(!cursor.contains(&hash_id(id)), "{cursor}");
        }
        query.cursor = Some(Cursor::parse(&cursor).unwrap());
    }
    assert_eq!(seen.len(), 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "no session twice");
    let old = format!("{}.{}", NOW.0, hash_id(&ids[0]));
    assert!(
        Cursor::parse(&old).is_err(),
        "a cursor of the old form is refused"
    );
    for bad in ["", "1.", ".abc", "x.0123456789abcdef0123456789abcdef"] {
        assert!(Cursor::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_listing_shows_handles_that_are_neither_id_nor_hash() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let id = w.mint(&iso, NOW, "u1");
    let q = ListQuery {
        user: None,
        cursor: None,
        limit: DEFAULT_PAGE,
    };
    let page = block_on(list(&w.db, at(1), &q, None)).unwrap();
    let handle = page.sessions[0].handle.clone().unwrap();
    assert!(SessionHandle::parse("handle", &handle).is_ok());
    assert!(!id.as_str().contains(&handle) && !hash_id(&id).contains(&handle));
    let json = serde_json::to_value(&page.sessions[0]).unwrap();
    assert_eq!(json["handle"], handle.as_str());
    assert_eq!(json["userId"], "u1");
    assert!(
        json.get("current").is_none(),
        "the admin's listing marks none"
    );
}

#[test]
fn a_users_own_listing_marks_the_current_session() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let older = w.mint(&iso, NOW, "u1");
    let current = w.mint(&iso, at(1), "u1");
    w.mint(&iso, at(1), "u2");
    let q = ListQuery {
        user: Some(UserId::parse("userId", "u1").unwrap()),
        cursor: None,
        limit: DEFAULT_PAGE,
    };
    let page = block_on(list(&w.db, at(2), &q, Some(&hash_id(&current)))).unwrap();
    let marks: Vec<bool> = page.sessions.iter().map(|s| s.current).collect();
    assert_eq!(marks, [true, false], "newest first, the current one marked");
    let json = serde_json::to_value(&page).unwrap();
    assert_eq!(json["sessions"][0]["current"], true);
    assert!(json["sessions"][1].get("current").is_none());
    assert!(!json.to_string().contains(&hash_id(&older)));
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
    block_on(revoke_handle(&w.st(&iso), at(1), &h, None)).unwrap();
    assert_eq!(w.auth(&iso, at(2), &a), Err(DomainError::Unauthorized));
    let fresh = SessionChecks::default();
    assert_eq!(w.auth(&fresh, at(2), &a), Err(DomainError::Unauthorized));
    assert!(w.kv.entry(&World::key(&a)).is_none());
    assert!(w.auth(&iso, at(2), &b).is_ok());
    assert_eq!(
        block_on(revoke_handle(&w.st(&iso), at(3), &h, None)),
        Ok(())
    );
    let unknown = SessionHandle::from_random(&[7; 16]);
    assert_eq!(
        block_on(revoke_handle(&w.st(&iso), at(3), &unknown, None)),
        Err(DomainError::NotFound)
    );
}

#[test]
fn a_user_ends_only_their_own_sessions_by_handle() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let mine = w.mint(&iso, NOW, "u1");
    let theirs = w.mint(&iso, NOW, "u2");
    let handle_of = |id: &SessionId| {
        let rows = w.db.rows.borrow();
        let row = rows.iter().find(|r| r.id_hash == hash_id(id)).unwrap();
        SessionHandle::parse("handle", row.handle.as_deref().unwrap()).unwrap()
    };
    let u1 = UserId::parse("userId", "u1").unwrap();
    assert_eq!(
        block_on(revoke_handle(
            &w.st(&iso),
            at(1),
            &handle_of(&theirs),
            Some(&u1)
        )),
        Err(DomainError::NotFound),
        "another user's session is not found"
    );
    assert!(w.auth(&iso, at(2), &theirs).is_ok());
    block_on(revoke_handle(
        &w.st(&iso),
        at(1),
        &handle_of(&mine),
        Some(&u1),
    ))
    .unwrap();
    assert_eq!(w.auth(&iso, at(2), &mine), Err(DomainError::Unauthorized));
}

#[test]
fn a_failed_kv_delete_by_handle_is_503_and_a_retry_removes_the_copy() {
    let (w, iso) = (World::default(), SessionChecks::default());
    let id = w.mint(&iso, NOW, "u1");
    let handle = w.db.rows.borrow()[0].handle.clone().unwrap();
    let handle = SessionHandle::parse("handle", &handle).unwrap();
    w.kv.fail(true);
    assert!(matches!(
        block_on(revoke_handle(&w.st(&iso), at(1), &handle, None)),
        Err(DomainError::Unavailable(_))
    ));
    w.kv.fail(false);
    assert!(
        w.db.rows.borrow()[0].revoked_at.is_some(),
        "D1 refuses it already"
    );
    assert!(w.kv.entry(&World::key(&id)).is_some());
    block_on(revoke_handle(&w.st(&iso), at(3), &handle, None)).unwrap();
    assert!(
        w.kv.entries.borrow().is_empty(),
        "the retry removed the copy"
    );
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
    assert_eq!(w.auth(&iso, idle, &id), Err(DomainError::Unauthorized));
    assert_eq!(
        w.auth(&SessionChecks::default(), idle, &id),
        Err(DomainError::Unauthorized)
    );
    // While D1 cannot be asked, a copy past its idle deadline is refused.
    let mut view: SessionView = serde_json::from_str(&w.kv.get_raw(&key).unwrap()).unwrap();
    w.db.db.failing.set(true);
    view.idle_expires_at = at(3_600_000);
    w.kv.insert(&key, &serde_json::to_string(&view).unwrap());
    assert_eq!(
        w.auth(&SessionChecks::default(), idle, &id),
        Err(DomainError::Unauthorized)
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
    assert_eq!(
        w.auth(&iso, expires_at, &id),
        Err(DomainError::Unauthorized)
    );
    assert_eq!(
        w.auth(&SessionChecks::default(), expires_at, &id),
        Err(DomainError::Unauthorized)
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

#[test]
fn a_revocation_learned_while_a_request_read_kv_refuses_that_request() {
    // Another request of the isolate reads the feed while this one waits for its KV read:
    // this one must not accept the copy on the strength of the now-fresh feed.
    let (w, a, b) = (
        World::default(),
        SessionChecks::default(),
        SessionChecks::default(),
    );
    let id = w.mint(&a, NOW, "u1");
    assert!(
        w.auth(&b, at(1_000), &id).is_ok(),
        "b reads the feed at 1 s"
    );
    let copy = w.kv.entry(&World::key(&id)).unwrap();
    block_on(revoke(&w.st(&a), at(2_000), &id)).unwrap();
    w.kv.insert(&World::key(&id), &copy.value);
    // b's first call (KV) is where a concurrent request of b reads the feed.
    let other_request = Interleaving::at(0, || {
        block_on(read_feed(&w.db, &b, at(12_000))).unwrap();
    });
    let kv = Hooked {
        inner: &w.kv,
        on: &other_request,
    };
    let st = SessionStores {
        kv: &kv,
        db: &w.db,
        timer: &w.timer,
        checks: &b,
        lifetime: w.lifetime,
    };
    assert_eq!(
        block_on(authenticate(&st, at(12_000), &id, Check::Fast)),
        Err(DomainError::Unauthorized)
    );
}

#[test]
fn a_client_over_its_failure_allowance_is_served_from_kv_and_its_guesses_never_reach_d1() {
    let (w, a) = (World::default(), SessionChecks::default());
    let id = w.mint(&a, NOW, "u1");
    let copy_only = |at_ms: i64, id: &SessionId| {
        block_on(authenticate(&w.st(&a), at(at_ms), id, Check::CopyOnly))
    };
    assert_eq!(copy_only(1_000, &id).unwrap().user_id, "u1");
    let before = w.db.db.queries.get();
    let guess = new_id().unwrap();
    assert_eq!(copy_only(2_000, &guess), Err(DomainError::Unauthorized));
    w.kv.remove(&World::key(&id));
    assert_eq!(
        copy_only(3_000, &id),
        Err(DomainError::Unauthorized),
        "a session KV does not hold waits until the client is allowed D1 again"
    );
    assert_eq!(w.db.db.queries.get(), before, "no D1 query for either");
}

#[test]
fn a_feed_backlog_longer_than_one_read_leaves_each_session_to_d1_until_caught_up() {
    let (w, a, b) = (
        World::default(),
        SessionChecks::default(),
        SessionChecks::default(),
    );
    // More revocations than one read takes (20 pages of FEED_PAGE), the last one a session
    // whose KV copy b's location still holds.
    for i in 0..(20 * FEED_PAGE) {
        w.mint(&a, NOW, &format!("m{}", i % 7));
    }
    for i in 0..7 {
        block_on(revoke_user(
            &w.st(&a),
            at(1_000),
            &user(&format!("m{i}")),
            None,
        ))
        .unwrap();
    }
    let id = w.mint(&a, NOW, "u1");
    let copy = w.kv.entry(&World::key(&id)).unwrap();
    block_on(revoke(&w.st(&a), at(2_000), &id)).unwrap();
    w.kv.insert(&World::key(&id), &copy.value);
    assert_eq!(
        w.auth(&b, at(3_000), &id),
        Err(DomainError::Unauthorized),
        "D1 decides while the feed is behind"
    );
    let live = w.mint(&a, NOW, "u2");
    assert!(w.auth(&b, at(3_001), &live).is_ok());
    assert_eq!(
        b.feed_age(at(3_001)),
        FeedAge::Fresh,
        "the next read goes on from where the first stopped, and catches up"
    );
    assert_eq!(w.auth(&b, at(3_002), &id), Err(DomainError::Unauthorized));
}

#[test]
fn housekeeping_prunes_once_an_hour_per_isolate_and_keeps_what_checks_can_need() {
    let (w, a) = (World::with(WEEK_S, 3600, 600), SessionChecks::default());
    let expired = w.mint(&a, NOW, "old");
    let live = w.mint(&a, at(2 * 86_400_000), "new");
    let (revoked, lingering) = (w.mint(&a, NOW, "r"), w.mint(&a, NOW, "l"));
    block_on(revoke(&w.st(&a), at(1_000), &revoked)).unwrap();
    w.kv.fail(true);
    assert!(block_on(revoke(&w.st(&a), at(1_000), &lingering)).is_err());
    w.kv.fail(false);
    let later = at(3_600_000 + KEEP_EXPIRED_MS + 1);
    let prune = |ms: Millis| block_on(prune(&w.db, &a, ms)).unwrap();
    assert!(prune(later));
    assert!(!prune(later.plus_ms(PRUNE_EVERY_MS - 1)), "once an hour");
    let rows: Vec<String> =
        w.db.rows
            .borrow()
            .iter()
            .map(|r| r.user_id.clone())
            .collect();
    assert_eq!(rows, ["new"], "sessions a day past their deadline are gone");
    assert!(w.auth(&a, later, &live).is_ok());
    assert_eq!(w.auth(&a, later, &expired), Err(DomainError::Unauthorized));
    let feed = w.db.feed.borrow().clone();
    assert!(feed.is_empty(), "old settled rows go: {feed:?}");
    assert!(prune(later.plus_ms(PRUNE_EVERY_MS)));
    // A revocation whose KV copy could not be deleted stays while the copy may exist.
    let kept = w.mint(&a, later, "k");
    w.kv.fail(true);
    assert!(block_on(revoke(&w.st(&a), later, &kept)).is_err());
    w.kv.fail(false);
    let b = SessionChecks::default();
    assert!(block_on(super::prune(&w.db, &b, later.plus_ms(20 * 60_000))).unwrap());
    assert_eq!(w.db.feed.borrow().len(), 1, "still lingering");
    assert_eq!(
        w.auth(&SessionChecks::default(), later.plus_ms(30 * 60_000), &kept),
        Err(DomainError::Unauthorized)
    );
}

#[test]
fn revoking_more_sessions_than_one_request_may_delete_leaves_the_rest_lingering_and_refused() {
    let (w, a) = (World::default(), SessionChecks::default());
    let n = MAX_COPY_DELETES + 20;
    let ids: Vec<SessionId> = (0..n).map(|_| w.mint(&a, NOW, "many")).collect();
    let deletes_before = w.kv.deletes();
    let revoked = block_on(revoke_user(&w.st(&a), at(1_000), &user("many"), None)).unwrap();
    assert_eq!(revoked.revoked, n);
    assert_eq!(
        (w.kv.deletes() - deletes_before) as usize,
        MAX_COPY_DELETES,
        "bounded KV work"
    );
    // A copy that was not deleted is refused by an isolate started long after the
    // feed's horizon, since the feed says it lingers.
    let kept = ids
        .iter()
        .find(|id| w.kv.entry(&World::key(id)).is_some())
        .expect("some copies were left");
    let late = at(1_000 + 2 * FEED_HORIZON_MS);
    assert_eq!(
        w.auth(&SessionChecks::default(), late, kept),
        Err(DomainError::Unauthorized)
    );
    assert_eq!(
        w.auth(&a, at(1_001), kept),
        Err(DomainError::Unauthorized),
        "and this isolate at once"
    );
}
