//! Small extraction helpers: header values, query parameters, bounded bodies.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use std::time::Duration;

use axum::response::IntoResponse as _;
use bytes::Bytes;

use super::observe::MIDDLEWARE_HEADERS;
use crate::engine::IngestBudget;
use crate::protocol::name::percent_decode;
use crate::service::{ServiceError, ServiceResult};

/// A header as a string; values that are not visible ASCII are treated as absent.
pub fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Header names of the hot paths, built once instead of parsed per response.
pub mod hn {
    use crate::protocol::headers::names;
    use axum::http::HeaderName;

    pub const STREAM_NEXT_OFFSET: HeaderName = HeaderName::from_static(names::STREAM_NEXT_OFFSET);
    pub const STREAM_UP_TO_DATE: HeaderName = HeaderName::from_static(names::STREAM_UP_TO_DATE);
    pub const STREAM_CLOSED: HeaderName = HeaderName::from_static(names::STREAM_CLOSED);
    pub const STREAM_CURSOR: HeaderName = HeaderName::from_static(names::STREAM_CURSOR);
    pub const STREAM_SEQ: HeaderName = HeaderName::from_static(names::STREAM_SEQ);
    pub const PRODUCER_ID: HeaderName = HeaderName::from_static(names::PRODUCER_ID);
    pub const PRODUCER_EPOCH: HeaderName = HeaderName::from_static(names::PRODUCER_EPOCH);
    pub const PRODUCER_SEQ: HeaderName = HeaderName::from_static(names::PRODUCER_SEQ);
    pub const STREAM_KEY: HeaderName = HeaderName::from_static("stream-key");
}

/// An empty-bodied or full response with `status`, its header map allocated once with
/// room for `own` headers and the middleware's. Sized to the headers the answer usually
/// has, not more: one sized for 16 took the allocator's slow path on every response.
/// (Hyper writes `content-length` itself; the router, which stream routes skip, would add
/// it to the map after the handler.)
pub fn response(status: StatusCode, body: Body, own: usize) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().reserve(own + MIDDLEWARE_HEADERS);
    res
}

/// Inserts a header whose value is known to be valid header text.
pub fn put(res: &mut Response<Body>, name: HeaderName, value: HeaderValue) {
    res.headers_mut().insert(name, value);
}

/// Inserts a header from an owned string without copying it, skipping values that are
/// not valid header text.
pub fn put_string(res: &mut Response<Body>, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        res.headers_mut().insert(name, v);
    }
}

/// A header as a string, by a prebuilt name.
pub fn header_of(h: &HeaderMap, name: &HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Inserts a header, skipping values that are not valid header text.
pub fn set(res: &mut Response<Body>, name: &'static str, value: impl AsRef<str>) {
    if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
        res.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// Decoded query parameters, in order, duplicates kept.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> ServiceResult<Query> {
        let mut out = Vec::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| -> ServiceResult<String> {
                if !s.contains(['%', '+']) {
                    return Ok(s.to_string());
                }
                let bytes = percent_decode(&s.replace('+', " "))
                    .map_err(|_| ServiceError::BadRequest("malformed query string".into()))?;
                String::from_utf8(bytes)
                    .map_err(|_| ServiceError::BadRequest("query string is not UTF-8".into()))
            };
            out.push((dec(k)?, dec(v)?));
        }
        Ok(Query(out))
    }

    /// Every parameter, in order.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// The value of a parameter that may appear at most once.
    pub fn single(&self, key: &str) -> ServiceResult<Option<String>> {
        let mut it = self.0.iter().filter(|(k, _)| k == key);
        let first = it.next().map(|(_, v)| v.clone());
        if it.next().is_some() {
            return Err(ServiceError::BadRequest(format!(
                "{key} given more than once"
            )));
        }
        Ok(first)
    }
}

/// Reads a PUT/POST body within the service's limits (`DS_APPEND_MAX_BODY_BYTES`,
/// `DS_BODY_READ_TIMEOUT_MS`), reserving its bytes in the ingest budget as they arrive.
pub async fn read_append_body(
    svc: &crate::service::StreamService,
    headers: &HeaderMap,
    body: Body,
) -> Result<crate::service::Body, Response<Body>> {
    let l = svc.limits();
    let idle = Duration::from_millis(l.body_read_timeout_ms);
    read_body(
        headers,
        body,
        l.append_max_body_bytes,
        idle,
        svc.ingest_budget(),
    )
    .await
}

/// Reads a configuration body (`_profile`, `_schema`) within the same limits as appends;
/// the budget is released once the body is read (the writer only keeps the parsed form).
pub async fn read_config_body(
    svc: &crate::service::StreamService,
    req: axum::extract::Request<Body>,
) -> Result<bytes::Bytes, Response<Body>> {
    let (parts, body) = req.into_parts();
    read_append_body(svc, &parts.headers, body)
        .await
        .map(|b| b.bytes)
}

/// Reads a request body of at most `max` bytes; a larger one is answered with 413
/// without reading it all, and one that sends nothing for `idle` with 408. Every byte of
/// buffer is reserved in `budget` before it is allocated; when the budget is spent the
/// request gets 429 (the server holds as many body bytes as it can commit soon, no more).
pub async fn read_body(
    headers: &HeaderMap,
    mut body: Body,
    max: usize,
    idle: Duration,
    budget: &IngestBudget,
) -> Result<crate::service::Body, Response<Body>> {
    // The rest of the body is never read, so the connection cannot be reused.
    let closing = |res: Response<Body>| {
        let mut res = res;
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        res
    };
    let too_large = || {
        closing(super::error::json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("body too large (max {max} bytes)"),
        ))
    };
    let overloaded = || closing(ServiceError::Overloaded.into_response());
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let mut hold = budget.reservation();
    let declared = declared.unwrap_or(0) as usize;
    if budget.grow(&mut hold, declared).is_err() {
        return Err(overloaded());
    }
    let mut buf = Vec::with_capacity(declared);
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(closing(super::error::json_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    &format!(
                        "no request body data for {} ms; send the body promptly",
                        idle.as_millis()
                    ),
                )))
            }
            Ok(None) => {
                return Ok(crate::service::Body {
                    bytes: Bytes::from(buf),
                    hold,
                })
            }
            Ok(Some(Err(e))) => {
                return Err(closing(super::error::json_error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("could not read request body: {e}"),
                )))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            let need = buf.len() + data.len();
            if need > max {
                return Err(too_large());
            }
            if need > buf.capacity() {
                // Grow geometrically (within `max`), reserving the new capacity first.
                let cap = need.max(buf.capacity() * 2).min(max);
                let more = cap - hold.bytes().min(cap);
                if budget.grow(&mut hold, more).is_err() {
                    return Err(overloaded());
                }
                buf.reserve_exact(cap - buf.len());
            }
            buf.extend_from_slice(&data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn queries_decode_percent_and_plus_and_reject_bad_input() {
        let q = Query::parse(Some("offset=a%2Fb&live=long-poll&x=1+2")).unwrap();
        assert_eq!(q.single("offset").unwrap().as_deref(), Some("a/b"));
        assert_eq!(q.single("x").unwrap().as_deref(), Some("1 2"));
        assert!(Query::parse(Some("a=%FF")).is_err());
        assert!(Query::parse(Some("a=%G1")).is_err());
        let q = Query::parse(Some("a=1&a=2")).unwrap();
        assert!(q.single("a").is_err());
    }

    proptest! {
        /// Any query text: a parse or an error, never a panic.
        #[test]
        fn arbitrary_queries_never_panic(s in "\\PC{0,60}", key in "[a-z]{1,3}") {
            if let Ok(q) = Query::parse(Some(&s)) {
                let _ = q.single(&key);
            }
        }
    }
}
