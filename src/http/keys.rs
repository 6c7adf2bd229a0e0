//! `GET /v1/stream/{name}/_routing_keys?limit=&after=`: a page of the stream's routing keys.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};

use super::util::Query;
use crate::service::{ServiceError, StreamService};

pub async fn handle(svc: &StreamService, name: &str, req: Request<Body>) -> Response {
    let q = match Query::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let (limit, after) = match (q.single("limit"), q.single("after")) {
        (Ok(l), Ok(a)) => (l, a),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let limit = match limit.as_deref() {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n @ 1..=500) => n,
            _ => return ServiceError::BadRequest("invalid limit".into()).into_response(),
        },
    };
    match svc.routing_keys(name, limit, after).await {
        Ok(body) => super::stream_config::json_ok(&body),
        Err(e) => e.into_response(),
    }
}
