//! `HEAD /v1/stream/{name}`: metadata only; does not renew a TTL.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::util::set;
use crate::protocol::headers::names;
use crate::service::StreamService;

pub async fn handle(svc: &StreamService, name: &str) -> Response {
    let info = match svc.head(name).await {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let mut res = StatusCode::OK.into_response();
    set(&mut res, "content-type", &info.content_type);
    set(
        &mut res,
        names::STREAM_NEXT_OFFSET,
        info.next_offset.encode(),
    );
    set(&mut res, "cache-control", "no-store");
    if info.closed {
        set(&mut res, names::STREAM_CLOSED, "true");
    }
    if let Some(ttl) = info.ttl_seconds {
        set(&mut res, names::STREAM_TTL, ttl.to_string());
    }
    if let Some(at) = &info.expires_at {
        set(&mut res, names::STREAM_EXPIRES_AT, at);
    }
    res
}
