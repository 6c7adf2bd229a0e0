//! `GET /v1/stream/{name}`: catch-up, long-poll and SSE reads.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::util::{hn, put, put_string, response, set, Query};
use crate::protocol::headers::names;

const TRUE: HeaderValue = HeaderValue::from_static("true");
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
    // The head's path and header values are slices of hyper's read buffer: let go of them
    // before the read, which may wait, so that hyper's read-ahead meanwhile finds the
    // buffer unshared and reuses it instead of allocating another 8 KB (fan-out: about
    // 0.8 µs of CPU per delivery).
    drop(req);
    match svc.read(name, params).await {
        Err(e) => e.into_response(),
        Ok(ReadOutcome::Page(p)) => {
            let not_modified = match (&p.etag, &if_none_match) {
                (Some(tag), Some(inm)) => {
                    inm.split(',').any(|t| t.trim() == tag || t.trim() == "*")
                }
                _ => false,
            };
            // Content type, offset, up-to-date, closed, ETag, cursor, cache policy.
            let mut res = if not_modified {
                response(StatusCode::NOT_MODIFIED, Body::empty(), 7)
            } else {
                response(StatusCode::OK, Body::from(p.body), 7)
            };
            put_string(&mut res, header::CONTENT_TYPE, p.content_type);
            put_string(&mut res, hn::STREAM_NEXT_OFFSET, p.next_offset.encode());
            if p.up_to_date {
                put(&mut res, hn::STREAM_UP_TO_DATE, TRUE);
            }
            if p.closed {
                put(&mut res, hn::STREAM_CLOSED, TRUE);
            }
            if let Some(tag) = p.etag {
                put_string(&mut res, header::ETAG, tag);
            }
            if let Some(c) = p.cursor {
                put_string(&mut res, hn::STREAM_CURSOR, c);
            }
            let cache = match p.cache {
                CachePolicy::Public => "public, max-age=60, stale-while-revalidate=300",
                CachePolicy::Revalidate => "no-cache",
                CachePolicy::NoStore => "no-store",
            };
            put(
                &mut res,
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache),
            );
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
            // Offset, up-to-date, closed, cursor, cache policy.
            let mut res = response(StatusCode::NO_CONTENT, Body::empty(), 5);
            put_string(&mut res, hn::STREAM_NEXT_OFFSET, next_offset.encode());
            put(&mut res, hn::STREAM_UP_TO_DATE, TRUE);
            if closed {
                put(&mut res, hn::STREAM_CLOSED, TRUE);
            }
            if let Some(c) = cursor {
                put_string(&mut res, hn::STREAM_CURSOR, c);
            }
            put(
                &mut res,
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
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
