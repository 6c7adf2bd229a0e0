//! `GET|POST /v1/stream/{name}/_search` and `POST /v1/stream/{name}/_aggregate`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::util::{read_config_body, set, Query};
use crate::service::search::SearchInput;
use crate::service::{ServiceError, StreamService};

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        v.to_string(),
    )
        .into_response()
}

/// `_search`: 200, or 408 with the hits found when the time budget ran out.
pub async fn search(svc: &StreamService, name: &str, req: Request<Body>) -> Response {
    let input = match *req.method() {
        Method::GET => match Query::parse(req.uri().query()) {
            Ok(q) => SearchInput::Query(q.into_pairs()),
            Err(e) => return e.into_response(),
        },
        Method::POST => match read_config_body(svc, req).await {
            Ok(b) => SearchInput::Body(b),
            Err(res) => return res,
        },
        _ => return ServiceError::BadRequest("unsupported method".into()).into_response(),
    };
    match svc.search(name, input).await {
        Ok(out) => {
            let status = if out.timed_out {
                StatusCode::REQUEST_TIMEOUT
            } else {
                StatusCode::OK
            };
            let mut res = json(status, &out.body);
            for (k, v) in out.headers {
                set(&mut res, k, v);
            }
            res
        }
        Err(e) => e.into_response(),
    }
}

/// `_aggregate` (POST only).
pub async fn aggregate(svc: &StreamService, name: &str, req: Request<Body>) -> Response {
    if req.method() != Method::POST {
        return ServiceError::BadRequest("unsupported method".into()).into_response();
    }
    let body = match read_config_body(svc, req).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    match svc.aggregate(name, body).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}
