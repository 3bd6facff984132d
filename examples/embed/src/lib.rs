//! A second Worker that uses edgestate as a library, beside routes of its own:
//!
//! * `GET /me`: verifies an edgestate session in this Worker's own handler;
//! * `GET /feature`: reads edgestate's config and one of its flags;
//! * `GET /quote?symbol=X`: rate-limits with edgestate's limiter (group `quotes`) and
//!   caches its own (made-up) source through edgestate's stale-while-revalidate cache;
//! * every path edgestate serves (`/health`, `/sessions`, `/admin/...`): mounted as is.
//!
//! It binds the same `CACHE` (KV) and `DB` (D1) as edgestate; see `wrangler.toml`.

use edgestate::error::{ApiError, StoreResult};
use edgestate::Edgestate;
use serde::{Deserialize, Serialize};
use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    let path = req.path();
    if edgestate::routes::serves(&path) {
        return edgestate::handle(req, env, ctx).await;
    }
    let edge = Edgestate::from_env(&env);
    let answer = match path.as_str() {
        "/me" => me(&edge, &req).await,
        "/feature" => feature(&edge).await,
        "/quote" => quote(&edge, &req, &ctx).await,
        _ => Err(ApiError::NotFound),
    };
    let mut response = match &answer {
        Ok(body) => Response::from_json(body)?,
        Err(e) => Response::from_json(&e.json())?.with_status(e.status()),
    };
    if let Err(e) = &answer {
        for (name, value) in e.headers() {
            response.headers_mut().set(name, &value)?;
        }
    }
    response
        .headers_mut()
        .set("Server-Timing", &edge.server_timing())?;
    Ok(response)
}

/// (a) A session verified in this Worker's handler.
async fn me(edge: &Edgestate, req: &Request) -> std::result::Result<serde_json::Value, ApiError> {
    let session = edge.session(req).await?;
    Ok(serde_json::json!({ "hello": session.user_id, "expiresAt": session.expires_at }))
}

/// (b) The config and a flag.
async fn feature(edge: &Edgestate) -> std::result::Result<serde_json::Value, ApiError> {
    let config = edge.config().await;
    let new_checkout = edge.flag("newCheckout").await?;
    Ok(serde_json::json!({
        "newCheckout": new_checkout,
        "maintenanceMode": config.maintenance_mode,
    }))
}

#[derive(Clone, Serialize, Deserialize)]
struct Quote {
    symbol: String,
    price: u32,
}

/// This Worker's own source of truth (a stand-in for a slow upstream).
async fn load_quote(symbol: String) -> StoreResult<Option<Quote>> {
    let price = symbol.bytes().map(u32::from).sum::<u32>() * 7 % 1000;
    Ok(Some(Quote { symbol, price }))
}

/// (c) The rate limiter and the SWR cache with this Worker's own fetcher.
async fn quote(
    edge: &Edgestate,
    req: &Request,
    ctx: &Context,
) -> std::result::Result<serde_json::Value, ApiError> {
    let client = req.headers().get("cf-connecting-ip").ok().flatten();
    edge.rate_limit("quotes", client.as_deref().unwrap_or("anonymous"))
        .await?;
    let url = req.url().map_err(|e| ApiError::Internal(e.to_string()))?;
    let symbol = url
        .query_pairs()
        .find(|(k, _)| k == "symbol")
        .map(|(_, v)| v.to_string())
        .filter(|s| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_alphabetic()))
        .ok_or_else(|| ApiError::invalid("symbol", "must be 1-12 letters"))?;
    let key = format!("quote:{symbol}");
    let lookup = edge.cached(&key, 60, || load_quote(symbol.clone())).await?;
    if lookup.refresh {
        let (later, symbol) = (edge.detached(), symbol.clone());
        ctx.wait_until(async move {
            later.refresh(&key, 60, || load_quote(symbol)).await;
        });
    }
    let quote = lookup.value.ok_or(ApiError::NotFound)?;
    Ok(serde_json::json!({ "quote": quote, "cache": lookup.status.as_str() }))
}
