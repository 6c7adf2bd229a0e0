//! `GET /v1/stream/{name}`: catch-up, long-poll and SSE reads.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::util::{set, Query};
use crate::protocol::headers::names;
use crate::service::read::{CachePolicy, ReadOutcome, ReadParams};
use crate::service::StreamService;

/// `key`: the routing key of a `/pk/{key}` path, which wins over a `key=` parameter.
pub async fn handle(
    svc: &StreamService,
    name: &str,
    key: Option<String>,
    req: Request<Body>,
) -> Response {
    let q = match Query::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let one = |k: &str| q.single(k);
    let params = (|| {
        Ok::<_, crate::service::ServiceError>(ReadParams {
            offset: one("offset")?,
            live: one("live")?,
            cursor: one("cursor")?,
            key: match key {
                Some(k) => Some(k),
                None => one("key")?,
            },
            since: one("since")?,
            format: one("format")?,
            filter: one("filter")?,
        })
    })();
    let params = match params {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match svc.read(name, params).await {
        Err(e) => e.into_response(),
        Ok(ReadOutcome::Page(p)) => {
            let not_modified = match (&p.etag, &if_none_match) {
                (Some(tag), Some(inm)) => {
                    inm.split(',').any(|t| t.trim() == tag || t.trim() == "*")
                }
                _ => false,
            };
            let mut res = if not_modified {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                (StatusCode::OK, p.body).into_response()
            };
            set(&mut res, "content-type", &p.content_type);
            set(&mut res, names::STREAM_NEXT_OFFSET, p.next_offset.encode());
            if p.up_to_date {
                set(&mut res, names::STREAM_UP_TO_DATE, "true");
            }
            if p.closed {
                set(&mut res, names::STREAM_CLOSED, "true");
            }
            if let Some(tag) = &p.etag {
                set(&mut res, "etag", tag);
            }
            if let Some(c) = &p.cursor {
                set(&mut res, names::STREAM_CURSOR, c);
            }
            let cache = match p.cache {
                CachePolicy::Public => "public, max-age=60, stale-while-revalidate=300",
                CachePolicy::Revalidate => "no-cache",
                CachePolicy::NoStore => "no-store",
            };
            set(&mut res, "cache-control", cache);
            if let Some((limit, scanned)) = p.filter_limit {
                set(&mut res, "stream-filter-scan-limit-reached", "true");
                set(
                    &mut res,
                    "stream-filter-scan-limit-bytes",
                    limit.to_string(),
                );
                set(&mut res, "stream-filter-scanned-bytes", scanned.to_string());
            }
            res
        }
        Ok(ReadOutcome::NoContent {
            next_offset,
            closed,
            cursor,
        }) => {
            let mut res = StatusCode::NO_CONTENT.into_response();
            set(&mut res, names::STREAM_NEXT_OFFSET, next_offset.encode());
            set(&mut res, names::STREAM_UP_TO_DATE, "true");
            if closed {
                set(&mut res, names::STREAM_CLOSED, "true");
            }
            if let Some(c) = cursor {
                set(&mut res, names::STREAM_CURSOR, c);
            }
            set(&mut res, "cache-control", "no-store");
            res
        }
        Ok(ReadOutcome::Sse(session)) => {
            let base64 = session.base64();
            let stream = futures_util::stream::unfold(session, |mut s| async move {
                s.next_chunk()
                    .await
                    .map(|chunk| (Ok::<_, Infallible>(chunk), s))
            });
            let mut res = Body::from_stream(stream).into_response();
            set(&mut res, "content-type", "text/event-stream");
            set(&mut res, "cache-control", "no-cache");
            if base64 {
                set(&mut res, names::SSE_DATA_ENCODING, "base64");
            }
            res
        }
    }
}
