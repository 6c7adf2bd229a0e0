//! Small extraction helpers: header values, query parameters, bounded bodies.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;

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

/// Reads a request body of at most `max` bytes; a larger one is answered with 413
/// without reading it all.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<Vec<u8>, Response<Body>> {
    let too_large = || {
        let mut res = super::error::json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("body too large (max {max} bytes)"),
        );
        // The rest of the body is never read, so this connection cannot be reused.
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        res
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > max as u64 {
            return Err(too_large());
        }
    }
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) => Err(super::error::json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("could not read request body: {e}"),
        )),
    }
}
