//! `POST /sessions`, `GET` and `DELETE /sessions/current`, `GET /admin/sessions`,
//! `DELETE /admin/users/:userId/sessions`, `DELETE /admin/sessions/:handle`.

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

pub(crate) async fn list(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let query = parse::session_list_query(input.query_pairs())?;
    Ok(Reply::ok(&sessions::list(ctx.d1(), ctx.now, &query).await?))
}

pub(crate) async fn revoke_user(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let user = UserId::parse("userId", input.param("userId"))?;
    let revoked = sessions::revoke_user(&ctx.sessions().await, ctx.now, &user).await?;
    Ok(Reply::ok(&revoked))
}

pub(crate) async fn revoke_handle(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let handle = SessionHandle::parse("handle", input.param("handle"))?;
    sessions::revoke_handle(&ctx.sessions().await, ctx.now, &handle).await?;
    Ok(Reply::no_content())
}
