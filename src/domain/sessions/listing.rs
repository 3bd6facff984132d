//! The session listings, the admin's and a user's own: pages of active sessions, newest
//! first, with a keyset cursor.

use super::{SessionDb, SessionRecord, SessionView};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::{SessionHandle, UserId};
use crate::domain::time::Millis;
use serde::Serialize;

/// The admin listing's page size when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 100;

/// The largest page the admin listing serves.
pub const MAX_PAGE: u32 = 1000;

/// Keyset pagination position: the last row of the previous page, named by its creation time
/// and its handle (what the listing shows anyway), never by the session id's hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// `created_at` of the last row served.
    pub created_at: Millis,
    /// The handle of the last row served.
    pub handle: SessionHandle,
}

impl Cursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.handle.as_str())
    }

    /// Parses a cursor this API returned.
    pub fn parse(s: &str) -> DomainResult<Self> {
        let bad = || DomainError::invalid("cursor", "is not a cursor this API returned");
        let (at, handle) = s.split_once('.').ok_or_else(bad)?;
        let created_at = crate::domain::json::decimal(at)
            .filter(|_| at.len() <= 16)
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(bad)?;
        Ok(Cursor {
            created_at: Millis(created_at),
            handle: SessionHandle::parse("cursor", handle).map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
pub(super) fn is_hash(s: &str) -> bool {
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

/// A session as a listing shows it: its handle and its view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedSession {
    /// What `DELETE /admin/sessions/:handle` (and the owner's `DELETE /sessions/:handle`) takes.
    pub handle: Option<String>,
    /// The session the request listing it was made with (only ever in a user's own listing).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub current: bool,
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

/// One page of active sessions, newest first; the one whose hash is `current` is marked.
pub async fn list<D: SessionDb>(
    db: &D,
    now: Millis,
    q: &ListQuery,
    current: Option<&str>,
) -> DomainResult<SessionPage> {
    let mut rows = db.list(q, now, q.limit + 1).await?;
    let list_complete = rows.len() <= q.limit as usize;
    rows.truncate(q.limit as usize);
    let cursor = if list_complete {
        None
    } else {
        // Every session has a handle (migration 0002 gave the older ones theirs).
        rows.last().and_then(|r| {
            let handle = SessionHandle::parse("handle", r.handle.as_deref()?).ok()?;
            let created_at = r.created_at;
            Some(Cursor { created_at, handle }.encode())
        })
    };
    let listed = |r: &SessionRecord| ListedSession {
        handle: r.handle.clone(),
        current: current == Some(r.id_hash.as_str()),
        view: r.view(),
    };
    Ok(SessionPage {
        sessions: rows.iter().map(listed).collect(),
        cursor,
        list_complete,
    })
}
