//! `GET` and `PATCH /prefs`: the caller's own preferences. Both answer with the header
//! `Prefs-Version` (the D1 version served); a `GET` that sends it back is served that
//! version or newer, in any isolate and location.

use crate::ctx::{Ctx, RuntimeTimer};
use crate::domain::ids::UserId;
use crate::domain::prefs::{self, MinVersion, PrefsAnswer};
use crate::error::ApiResult;
use crate::routes::input::Input;
use crate::routes::parse;
use crate::routes::reply::Reply;

fn caller(input: &Input) -> ApiResult<UserId> {
    Ok(UserId::parse("userId", &input.caller()?.session.user_id)?)
}

/// The header that carries a version: in answers, the one served; in a `GET`, the oldest
/// the reader accepts.
const VERSION_HEADER: &str = "Prefs-Version";

/// The header that carries a D1 bookmark: in a `PATCH`'s answer, the one of its write; in a
/// `GET`, where D1 must have caught up to before it is read (a replica that has not is
/// passed over for one that has, or the primary).
const BOOKMARK_HEADER: &str = "Prefs-Bookmark";

/// `GET /prefs`: from this isolate, KV, or D1 through a replica: any replica, or one that
/// has applied the reader's `Prefs-Bookmark`. A `Prefs-Version` the replica is behind is
/// read from the primary (docs/consistency.md).
pub(crate) async fn get(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let user = caller(&input)?;
    let min = input
        .header(VERSION_HEADER)
        .map(|v| MinVersion::parse(VERSION_HEADER, v.trim()))
        .transpose()?;
    let reader = match input.header(BOOKMARK_HEADER) {
        Some(b) => ctx.d1_after(parse::bookmark(BOOKMARK_HEADER, b.trim())?),
        None => ctx.d1_replica(),
    };
    let st = ctx.isolate.prefs_state();
    let answer = prefs::get(ctx.kv(), &reader, ctx.d1(), st, &user, ctx.now, min).await?;
    Ok(reply(ctx, user, answer, None))
}

/// `PATCH /prefs`: merged on the primary; the answer carries the write's bookmark.
pub(crate) async fn patch(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let user = caller(&input)?;
    let change = parse::prefs_patch(&input.json()?)?;
    let (st, primary) = (ctx.isolate.prefs_state(), ctx.d1_primary());
    let answer = prefs::patch(ctx.kv(), &primary, st, &user, &change, ctx.now).await?;
    Ok(reply(ctx, user, answer, primary.bookmark()))
}

/// Answers, and leaves the KV refresh (if one is due) to deferred work: one per user and
/// isolate at a time.
fn reply(ctx: &Ctx, user: UserId, answer: PrefsAnswer, bookmark: Option<String>) -> Reply {
    if let Some(version) = answer.revalidate {
        let flight = format!("prefs-sync:{user}");
        ctx.defer_once(&flight, move |d| async move {
            let (st, replica) = (d.isolate.prefs_state(), d.d1_replica());
            prefs::revalidate(&d.kv, &replica, st, &user, version, d.now()).await;
        });
    } else if let Some(wait) = answer.sync_after_ms {
        let flight = format!("prefs-sync:{user}");
        ctx.defer_once(&flight, move |d| async move {
            let st = d.isolate.prefs_state();
            prefs::sync_later(&d.kv, &d.d1, st, &RuntimeTimer, &user, wait).await;
        });
    }
    let reply = Reply::ok(&answer.prefs).with_header(VERSION_HEADER, answer.version.to_string());
    match bookmark {
        Some(b) => reply.with_header(BOOKMARK_HEADER, b),
        None => reply,
    }
}
