//! Maps every [`ServiceError`] to a response: status code, protocol headers and the JSON
//! body `{"error":{"code","message"}}`. The match is exhaustive on purpose.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::protocol::headers::names;
use crate::service::ServiceError;

/// A JSON error response.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    res
}

fn with(mut res: Response, pairs: &[(&'static str, String)]) -> Response {
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(v) {
            res.headers_mut().insert(HeaderName::from_static(k), v);
        }
    }
    res
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let msg = self.to_string();
        match self {
            ServiceError::BadRequest(_) => json_error(StatusCode::BAD_REQUEST, "bad_request", &msg),
            ServiceError::NotFound(_) => json_error(StatusCode::NOT_FOUND, "not_found", &msg),
            ServiceError::Gone => json_error(StatusCode::GONE, "gone", &msg),
            ServiceError::Trimmed => json_error(StatusCode::GONE, "retention", &msg),
            ServiceError::Conflict(_) => json_error(StatusCode::CONFLICT, "conflict", &msg),
            ServiceError::Closed { next_offset } => with(
                json_error(StatusCode::CONFLICT, "stream_closed", &msg),
                &[
                    (names::STREAM_CLOSED, "true".into()),
                    (names::STREAM_NEXT_OFFSET, next_offset.encode()),
                ],
            ),
            ServiceError::StaleEpoch { current } => with(
                json_error(StatusCode::FORBIDDEN, "stale_producer_epoch", &msg),
                &[(names::PRODUCER_EPOCH, current.to_string())],
            ),
            ServiceError::ProducerGap { expected, received } => with(
                json_error(StatusCode::CONFLICT, "producer_sequence_gap", &msg),
                &[
                    (names::PRODUCER_EXPECTED_SEQ, expected.to_string()),
                    (names::PRODUCER_RECEIVED_SEQ, received.to_string()),
                ],
            ),
            ServiceError::StreamSeq { last, received } => with(
                json_error(StatusCode::CONFLICT, "sequence_conflict", &msg),
                &[
                    ("stream-expected-seq", last),
                    ("stream-received-seq", received),
                ],
            ),
            ServiceError::Overloaded => with(
                json_error(StatusCode::TOO_MANY_REQUESTS, "overloaded", &msg),
                &[("retry-after", "1".into())],
            ),
            ServiceError::TooManyReaders => with(
                json_error(StatusCode::SERVICE_UNAVAILABLE, "too_many_readers", &msg),
                &[("retry-after", "1".into())],
            ),
            ServiceError::DiskFull => with(
                json_error(StatusCode::INSUFFICIENT_STORAGE, "disk_full", &msg),
                &[("retry-after", "5".into())],
            ),
            ServiceError::Unavailable(_) => with(
                json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &msg),
                &[("retry-after", "1".into())],
            ),
            ServiceError::ShuttingDown => {
                json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &msg)
            }
            ServiceError::Internal(_) => {
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::offset::Offset;

    async fn body_json(res: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn overload_is_429_with_retry_after_and_a_json_body() {
        let res = ServiceError::Overloaded.into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()["retry-after"], "1");
        let body = body_json(res).await;
        assert_eq!(body["error"]["code"], "overloaded");
    }

    #[tokio::test]
    async fn protocol_errors_carry_their_headers() {
        let res = ServiceError::Closed {
            next_offset: Offset::at(3),
        }
        .into_response();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert_eq!(res.headers()["stream-closed"], "true");
        assert_eq!(res.headers()["stream-next-offset"], Offset::at(3).encode());
        let res = ServiceError::StaleEpoch { current: 4 }.into_response();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.headers()["producer-epoch"], "4");
        let res = ServiceError::Internal("x".into()).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_json(res).await["error"]["code"], "internal");
    }
}
