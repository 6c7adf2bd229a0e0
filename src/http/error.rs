//! Maps every [`ServiceError`] to a response: status code, protocol headers and the JSON
//! body `{"error":{"code","message"}}`. The match is exhaustive on purpose.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::protocol::headers::names;
use crate::service::ServiceError;

/// A JSON error response. The body names the request id (see `telemetry::request_id`) so that a
/// client reporting an error can point at its log lines.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(id) = crate::telemetry::request_id::current() {
        error["request_id"] = id.into();
    }
    let body = serde_json::json!({ "error": error }).to_string();
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

/// Status code and machine code of each error. Codes are stable: clients may match on
/// them (docs/errors.md lists them).
fn status_and_code(e: &ServiceError) -> (StatusCode, &'static str) {
    use ServiceError as E;
    match e {
        E::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        E::ProducerSeqStart => (StatusCode::BAD_REQUEST, "producer_seq_invalid"),
        E::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        E::ForkSourceNotFound => (StatusCode::NOT_FOUND, "fork_source_not_found"),
        E::Gone => (StatusCode::GONE, "stream_deleted"),
        E::Trimmed => (StatusCode::GONE, "retention"),
        E::StreamExists => (StatusCode::CONFLICT, "stream_exists"),
        E::StreamSoftDeleted => (StatusCode::CONFLICT, "stream_soft_deleted"),
        E::ForkSourceDeleted => (StatusCode::CONFLICT, "fork_source_deleted"),
        E::ForkContentType => (StatusCode::CONFLICT, "fork_content_type_mismatch"),
        E::ContentTypeMismatch => (StatusCode::CONFLICT, "content_type_mismatch"),
        E::Closed { .. } => (StatusCode::CONFLICT, "stream_closed"),
        E::StaleEpoch { .. } => (StatusCode::FORBIDDEN, "producer_fenced"),
        E::ProducerGap { .. } => (StatusCode::CONFLICT, "producer_seq_gap"),
        E::StreamSeq { .. } => (StatusCode::CONFLICT, "seq_conflict"),
        E::Overloaded => (StatusCode::TOO_MANY_REQUESTS, "overloaded"),
        E::TooManyReaders => (StatusCode::SERVICE_UNAVAILABLE, "too_many_readers"),
        E::ReadBusy => (StatusCode::SERVICE_UNAVAILABLE, "read_busy"),
        E::DiskFull => (StatusCode::INSUFFICIENT_STORAGE, "disk_full"),
        E::DatabaseBusy => (StatusCode::SERVICE_UNAVAILABLE, "database_busy"),
        E::ObjectStoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "object_store_unavailable"),
        E::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        E::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        E::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
        E::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(&self);
        let res = json_error(status, code, &self.to_string());
        use ServiceError as E;
        match self {
            E::Closed { next_offset } => with(
                res,
                &[
                    (names::STREAM_CLOSED, "true".into()),
                    (names::STREAM_NEXT_OFFSET, next_offset.encode()),
                ],
            ),
            E::StaleEpoch { current } => with(res, &[(names::PRODUCER_EPOCH, current.to_string())]),
            E::ProducerGap { expected, received } => with(
                res,
                &[
                    (names::PRODUCER_EXPECTED_SEQ, expected.to_string()),
                    (names::PRODUCER_RECEIVED_SEQ, received.to_string()),
                ],
            ),
            E::StreamSeq { last, received } => with(
                res,
                &[
                    ("stream-expected-seq", last),
                    ("stream-received-seq", received),
                ],
            ),
            E::Overloaded
            | E::TooManyReaders
            | E::ReadBusy
            | E::DatabaseBusy
            | E::ObjectStoreUnavailable => with(res, &[("retry-after", "1".into())]),
            E::DiskFull => with(res, &[("retry-after", "5".into())]),
            E::BadRequest(_)
            | E::ProducerSeqStart
            | E::NotFound(_)
            | E::ForkSourceNotFound
            | E::Gone
            | E::Trimmed
            | E::StreamExists
            | E::StreamSoftDeleted
            | E::ForkSourceDeleted
            | E::ForkContentType
            | E::ContentTypeMismatch
            | E::ShuttingDown
            | E::Internal
            | E::NotImplemented(_)
            | E::Conflict(_) => res,
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
        let res = ServiceError::Internal.into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_json(res).await["error"]["code"], "internal");
    }
}
