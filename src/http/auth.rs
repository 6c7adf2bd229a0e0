//! Optional bearer-token authentication (`DS_AUTH_TOKEN` / `DS_AUTH_TOKEN_FILE`). Every
//! route but `/health`, CORS preflights and the subscription routes that carry their own
//! token (see [`own_credentials`]) needs `Authorization: Bearer <token>`.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;

use super::AppState;

/// `None` when the request may go on (no token is configured, the route needs none, or
/// the right one is presented), else the 401 to answer with.
pub fn refusal(st: &AppState, req: &Request) -> Option<Response> {
    let token = st.auth.as_ref()?;
    if req.uri().path() == "/health"
        || req.method() == Method::OPTIONS
        || own_credentials(req.uri().path())
    {
        return None;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()));
    match presented {
        Some(p) if constant_time_eq(p, token.as_bytes()) => None,
        Some(_) => Some(unauthorized("invalid bearer token")),
        None => Some(unauthorized("missing Authorization: Bearer <token> header")),
    }
}

/// Subscription routes that carry their own credentials (a webhook receiver or worker
/// presents its callback token as the bearer) and the public webhook signing keys.
fn own_credentials(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/v1/stream/__ds/") else {
        return false;
    };
    rest == "jwks.json"
        || (rest.starts_with("subscriptions/")
            && ["/callback", "/ack", "/release"]
                .iter()
                .any(|a| rest.ends_with(a)))
}

fn unauthorized(message: &str) -> Response {
    let mut res = super::error::json_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"prisma-streams\""),
    );
    res
}

/// The credentials of a `Bearer` authorization value (scheme matched case-insensitively).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let start = rest.iter().position(|b| *b != b' ')?;
    let cred = &rest[start..];
    let end = cred.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
    Some(&cred[..end])
}

/// Compares in time that depends only on the lengths, never on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values_are_parsed_strictly() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc  "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"BEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(constant_time_eq(b"same-token", b"same-token"));
        assert!(!constant_time_eq(b"same-token", b"same-tokex"));
        assert!(!constant_time_eq(b"xame-token", b"same-token"));
        assert!(!constant_time_eq(b"short", b"shorter"));
    }
}
