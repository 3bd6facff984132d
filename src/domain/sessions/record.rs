//! Sessions as stored (D1 rows, never the id itself) and as shown (the API's view, which
//! is also what a KV copy holds), and what minting takes and gives.

use crate::domain::ids::{Email, SessionId, UserId};
use crate::domain::json;
use crate::domain::time::Millis;
use serde::{Deserialize, Serialize};

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

/// A body of `POST /sessions`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    /// Whose session it is.
    pub user: UserId,
    /// Their e-mail address.
    pub email: Email,
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
