//! Small extraction helpers: header values, query parameters, bounded bodies.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use std::time::Duration;

use crate::protocol::name::percent_decode;
use crate::service::{ServiceError, ServiceResult};

/// A header as a string; values that are not visible ASCII are treated as absent.
pub fn header(h: &HeaderMap, name: &str) -> Option<String> {
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
                let bytes = percent_decode(&s.replace('+', " "))
                    .map_err(|_| ServiceError::BadRequest("malformed query string".into()))?;
                String::from_utf8(bytes)
                    .map_err(|_| ServiceError::BadRequest("query string is not UTF-8".into()))
            };
            out.push((dec(k)?, dec(v)?));
        }
        Ok(Query(out))
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
/// `DS_BODY_READ_TIMEOUT_MS`).
pub async fn read_append_body(
    svc: &crate::service::StreamService,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, Response<Body>> {
    let l = svc.limits();
    let idle = Duration::from_millis(l.body_read_timeout_ms);
    read_body(headers, body, l.append_max_body_bytes, idle).await
}

/// Reads a request body of at most `max` bytes; a larger one is answered with 413
/// without reading it all, and one that sends nothing for `idle` with 408.
pub async fn read_body(
    headers: &HeaderMap,
    mut body: Body,
    max: usize,
    idle: Duration,
) -> Result<Vec<u8>, Response<Body>> {
    // The rest of the body is never read, so the connection cannot be reused.
    let closing = |status, code, msg: &str| {
        let mut res = super::error::json_error(status, code, msg);
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        res
    };
    let too_large = || {
        closing(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("body too large (max {max} bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(closing(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    &format!(
                        "no request body data for {} ms; send the body promptly",
                        idle.as_millis()
                    ),
                ))
            }
            Ok(None) => return Ok(buf),
            Ok(Some(Err(e))) => {
                return Err(closing(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("could not read request body: {e}"),
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(too_large());
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
