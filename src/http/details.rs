//! Introspection routes.
//!
//! - `GET /v1/stream/{name}/_details` and `/_index_status`: the stream's snapshot as JSON
//!   with a weak `ETag`; `If-None-Match` with the current ETag answers 304, and with
//!   `live=long-poll&timeout=` waits for a change first (see `service::details`). Other
//!   methods are 400 `unsupported method`, as on the other sub-resources.
//! - `GET /v1/server/_details`: the configuration summary (see
//!   `service::server_details`); other methods are 405, as on `/v1/streams`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::util::{set, Query};
use crate::protocol::introspection::DetailsWait;
use crate::service::details::{DetailsKind, DetailsOutcome};
use crate::service::server_details::ServerSummary;
use crate::service::{ServiceError, ServiceResult, StreamService};

fn wait_of(req: &Request<Body>) -> ServiceResult<DetailsWait> {
    let q = Query::parse(req.uri().query())?;
    let (live, timeout, timeout_ms) = (
        q.single("live")?,
        q.single("timeout")?,
        q.single("timeout_ms")?,
    );
    DetailsWait::parse(live.as_deref(), timeout.as_deref(), timeout_ms.as_deref())
        .map_err(|e| ServiceError::BadRequest(e.to_string()))
}

pub async fn handle(
    svc: &StreamService,
    name: &str,
    kind: DetailsKind,
    req: Request<Body>,
) -> Response {
    if req.method() != Method::GET {
        return ServiceError::BadRequest("unsupported method".into()).into_response();
    }
    let wait = match wait_of(&req) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let mut res = match svc.details(name, kind, wait, if_none_match).await {
        Err(e) => return e.into_response(),
        Ok(DetailsOutcome::Fresh(snap)) => {
            let mut res = (
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                snap.body,
            )
                .into_response();
            set(&mut res, "etag", &snap.etag);
            res
        }
        Ok(DetailsOutcome::NotModified { etag }) => {
            let mut res = StatusCode::NOT_MODIFIED.into_response();
            set(&mut res, "etag", &etag);
            res
        }
    };
    set(&mut res, "cache-control", "no-store");
    res
}

/// `GET /v1/server/_details`.
pub fn server(svc: &StreamService, summary: &ServerSummary, req: Request<Body>) -> Response {
    if req.method() != Method::GET {
        return super::error::json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
    }
    (
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svc.server_details(summary).to_string(),
    )
        .into_response()
}
