//! `POST /sessions`, `GET` and `DELETE /sessions/current`, a user's own `GET /sessions` and
//! `DELETE /sessions/:handle`, `GET /admin/sessions`, `DELETE /admin/users/:userId/sessions`,
//! `DELETE /admin/sessions/:handle`.

use crate::ctx::Ctx;
use crate::domain::ids::{SessionHandle, UserId};
use crate::domain::sessions;
use crate::error::ApiResult;
use crate::routes::auth::{clearing_cookie, session_cookie};
use crate::routes::input::Input;
use crate::routes::parse;
use crate::routes::reply::Reply;

pub(crate) async fn create(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let new = parse::new_session(&input.json()?)?;
    let minted = sessions::create(&ctx.sessions().await, ctx.now, new).await?;
    // The cookie never outlives the session's absolute deadline.
    let max_age = ctx.now.seconds_until(minted.view.expires_at);
    let cookie = session_cookie(&minted.session_id, max_age);
    Ok(Reply::json(201, &minted).with_header("Set-Cookie", cookie))
}

pub(crate) async fn current(_: &Ctx, input: Input) -> ApiResult<Reply> {
    Ok(Reply::ok(&input.caller()?.session))
}

pub(crate) async fn logout(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let id = &input.caller()?.session_id;
    sessions::revoke(&ctx.sessions().await, ctx.now, id).await?;
    Ok(Reply::no_content().with_header("Set-Cookie", clearing_cookie()))
}

/// `GET /admin/sessions`, and a user's own `GET /sessions` (on a session route: any
/// `userId` in the query is replaced by the caller's, and their current session is marked).
pub(crate) async fn list(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let mut query = parse::session_list_query(input.query_pairs())?;
    let mut current = None;
    if let Some(caller) = &input.caller {
        query.user = Some(UserId::parse("userId", &caller.session.user_id)?);
        current = Some(sessions::hash_id(&caller.session_id));
    }
    let page = sessions::list(ctx.d1(), ctx.now, &query, current.as_deref()).await?;
    Ok(Reply::ok(&page))
}

/// `DELETE /admin/users/:userId/sessions`, and a user's own `DELETE /sessions` (on a session
/// route: every other session of the caller's, the current one spared).
pub(crate) async fn revoke_user(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let (user, current) = match &input.caller {
        Some(c) => (&*c.session.user_id, Some(sessions::hash_id(&c.session_id))),
        None => (input.param("userId"), None),
    };
    let user = UserId::parse("userId", user)?;
    let st = ctx.sessions().await;
    let revoked = sessions::revoke_user(&st, ctx.now, &user, current.as_deref()).await?;
    Ok(Reply::ok(&revoked))
}

/// `DELETE /admin/sessions/:handle`, and a user's own `DELETE /sessions/:handle` (on a
/// session route only the caller's sessions are found: another user's handle is 404).
pub(crate) async fn revoke_handle(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let handle = SessionHandle::parse("handle", input.param("handle"))?;
    let owner = match &input.caller {
        Some(caller) => Some(UserId::parse("userId", &caller.session.user_id)?),
        None => None,
    };
    let st = ctx.sessions().await;
    sessions::revoke_handle(&st, ctx.now, &handle, owner.as_ref()).await?;
    Ok(Reply::no_content())
}
