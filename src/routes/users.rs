//! `GET /users/:id`, `POST /users/batch`, `PUT /admin/users/:id`, and
//! `DELETE /admin/users/:id`, which deletes the whole account (see `domain::accounts`).

use crate::ctx::Ctx;
use crate::domain::accounts;
use crate::domain::ids::{ProfileId, UserId};
use crate::domain::users::{self, BatchView};
use crate::error::{ApiError, ApiResult};
use crate::routes::input::Input;
use crate::routes::parse;
use crate::routes::reply::Reply;

pub(crate) async fn get(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let id = ProfileId::parse("id", input.param("id"))?;
    let ttl = u64::from(ctx.config().await.cache_ttl_seconds);
    let missing = &ctx.isolate.missing_users;
    let lookup = users::get(ctx.kv(), ctx.d1(), missing, &id, ttl, ctx.now).await?;
    let status = lookup.status.as_str();
    if lookup.refresh {
        let (key, now) = (users::kv_key(&id)?, ctx.now);
        ctx.defer_once(key.as_str(), move |d| async move {
            users::refresh(&d.kv, &d.d1, &id, ttl, now).await;
        });
    }
    let user = lookup.value.ok_or(ApiError::NotFound)?;
    Ok(Reply::ok(&user).with_header("X-Cache", status))
}

pub(crate) async fn batch(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let ids = parse::profile_ids(&input.json()?)?;
    let ttl = u64::from(ctx.config().await.cache_ttl_seconds);
    let missing = &ctx.isolate.missing_users;
    let out = users::batch(ctx.kv(), ctx.d1(), missing, &ids, ctx.now).await?;
    let reply = Reply::ok(&BatchView { users: &out.users });
    // Stale ids another request is already refreshing are left to it.
    let (mut stale, mut flights) = (Vec::new(), Vec::new());
    for id in out.stale {
        let flight = users::kv_key(&id)
            .ok()
            .and_then(|key| ctx.flight(key.as_str()));
        if let Some(flight) = flight {
            stale.push(id);
            flights.push(flight);
        }
    }
    if !out.fetched.is_empty() || !stale.is_empty() {
        let (fetched, now) = (out.fetched, ctx.now);
        ctx.defer(move |d| async move {
            users::store_batch(&d.kv, &d.d1, fetched, &stale, ttl, now).await;
            drop(flights);
        });
    }
    Ok(reply)
}

pub(crate) async fn put(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let id = ProfileId::parse("id", input.param("id"))?;
    let name = parse::profile_name(&input.json()?)?;
    Ok(Reply::ok(
        &users::put(
            ctx.kv(),
            ctx.d1(),
            &ctx.isolate.missing_users,
            &id,
            &name,
            ctx.now,
        )
        .await?,
    ))
}

pub(crate) async fn delete(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let user = UserId::parse("id", input.param("id"))?;
    let pending = &ctx.isolate.prefs;
    accounts::delete(ctx.kv(), ctx.d1(), pending, &user, ctx.now).await?;
    if let Some(profile) = accounts::profile_of(&user) {
        ctx.isolate.missing_users.forget(&profile);
    }
    Ok(Reply::no_content())
}
