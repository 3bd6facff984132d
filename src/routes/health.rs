//! `GET /health`: touches no storage, never gated, never limited.

use crate::ctx::Ctx;
use crate::error::ApiResult;
use crate::routes::input::Input;
use crate::routes::reply::Reply;

pub(crate) async fn get(_: &Ctx, _: Input) -> ApiResult<Reply> {
    Ok(Reply {
        status: 200,
        body: Some(r#"{"status":"ok"}"#.into()),
        headers: Vec::new(),
    })
}
