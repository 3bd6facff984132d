//! `GET`, `POST /admin/tokens` and `DELETE /admin/tokens/:name`: scoped admin tokens.

use crate::ctx::Ctx;
use crate::domain::ids::FlagName;
use crate::domain::json::{deny_unknown, object, required_str};
use crate::domain::tokens::{self, Scope};
use crate::error::{ApiError, ApiResult};
use crate::routes::input::Input;
use crate::routes::reply::Reply;

pub(crate) async fn list(ctx: &Ctx, _: Input) -> ApiResult<Reply> {
    Ok(Reply::ok(&tokens::list(ctx.d1()).await?))
}

/// `{"name", "scope"}`; the creator is the caller (`admin`, or a Cloudflare Access identity).
pub(crate) async fn create(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let body = input.json()?;
    let obj = object(&body)?;
    deny_unknown(obj, &["name", "scope"], "")?;
    let name = FlagName::parse("name", required_str(obj, "name")?)?;
    // `.` and `..` are path segments a browser or client resolves away: unrevocable by name.
    if name.as_str().bytes().all(|b| b == b'.') {
        return Err(ApiError::InvalidRequest(
            "name: must not be only dots".into(),
        ));
    }
    let scope = Scope::parse("scope", required_str(obj, "scope")?)?;
    let creator = input.admin.as_deref().unwrap_or("admin");
    let cache = &ctx.isolate.tokens;
    let minted = tokens::create(ctx.d1(), cache, (name, scope), creator, ctx.now).await?;
    Ok(Reply::json(201, &minted))
}

pub(crate) async fn revoke(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let name = FlagName::parse("name", input.param("name"))?;
    tokens::revoke(ctx.d1(), &ctx.isolate.tokens, &name).await?;
    Ok(Reply::no_content())
}
