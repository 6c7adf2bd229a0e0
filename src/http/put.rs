//! `PUT /v1/stream/{name}`: create (idempotent), optionally with data, closed, or forked.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::util::{header as h, read_append_body, set};
use crate::protocol::headers::names;
use crate::service::{CreateParams, StreamService};

pub async fn handle(svc: &StreamService, name: &str, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let hs = &parts.headers;
    let params = CreateParams {
        content_type: h(hs, "content-type"),
        ttl: h(hs, names::STREAM_TTL),
        expires_at: h(hs, names::STREAM_EXPIRES_AT),
        closed: h(hs, names::STREAM_CLOSED),
        forked_from: h(hs, names::STREAM_FORKED_FROM),
        fork_offset: h(hs, names::STREAM_FORK_OFFSET),
        fork_sub_offset: h(hs, names::STREAM_FORK_SUB_OFFSET),
        stream_key: h(hs, "stream-key"),
    };
    let body = match read_append_body(svc, hs, body).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let created = match svc.create(name, params, body).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let status = if created.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut res = status.into_response();
    let info = &created.info;
    set(&mut res, "content-type", &info.content_type);
    set(
        &mut res,
        names::STREAM_NEXT_OFFSET,
        info.next_offset.encode(),
    );
    if info.closed {
        set(&mut res, names::STREAM_CLOSED, "true");
    }
    if let Some(at) = &info.expires_at {
        set(&mut res, names::STREAM_EXPIRES_AT, at);
    }
    if created.new {
        let host = hs
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        let scheme = hs
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .filter(|p| *p == "https")
            .unwrap_or("http");
        set(
            &mut res,
            "location",
            format!("{scheme}://{host}{}", parts.uri.path()),
        );
    }
    res
}
