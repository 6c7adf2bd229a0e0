//! `GET /v1/streams?limit=&offset=`: a JSON array of live streams in name order (see
//! `service::listing` for the item shape). `limit` defaults to 100 and is clamped to
//! 1000; `offset` counts rows. Other methods are 405.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::json_error;
use super::util::Query;
use crate::service::{ServiceError, ServiceResult, StreamService};

fn number(q: &Query, key: &str, default: usize) -> ServiceResult<usize> {
    match q.single(key)? {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ServiceError::BadRequest(format!("{key} must be a non-negative integer"))),
    }
}

pub async fn handle(svc: &StreamService, req: Request) -> Response {
    if req.method() != Method::GET {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
    }
    let page = Query::parse(req.uri().query())
        .and_then(|q| Ok((number(&q, "offset", 0)?, number(&q, "limit", 100)?)));
    let (offset, limit) = match page {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match svc.list_streams(offset, limit).await {
        Ok(items) => match serde_json::to_string(&items) {
            Ok(body) => (
                [
                    (header::CONTENT_TYPE, "application/json; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response(),
            Err(_) => ServiceError::Internal.into_response(),
        },
        Err(e) => e.into_response(),
    }
}
