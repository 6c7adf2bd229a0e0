//! `GET`/`POST /v1/stream/{name}/_profile` and `/_schema`: JSON in, JSON out.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::util::read_config_body;
use crate::service::{ServiceError, ServiceResult, StreamService};

/// Which configuration resource a request addresses.
#[derive(Debug, Clone, Copy)]
pub enum Resource {
    Profile,
    Schema,
}

pub async fn handle(
    svc: &StreamService,
    name: &str,
    resource: Resource,
    req: Request<Body>,
) -> Response {
    let method = req.method().clone();
    let result: ServiceResult<serde_json::Value> = match method {
        Method::GET => match resource {
            Resource::Profile => svc.profile(name).await,
            Resource::Schema => svc.schema(name).await,
        },
        Method::POST => {
            let body: Bytes = match read_config_body(svc, req).await {
                Ok(b) => b,
                Err(res) => return res,
            };
            match resource {
                Resource::Profile => svc.set_profile(name, body).await,
                Resource::Schema => svc.update_schema(name, body).await,
            }
        }
        _ => Err(ServiceError::BadRequest("unsupported method".into())),
    };
    match result {
        Ok(v) => json_ok(&v),
        Err(e) => e.into_response(),
    }
}

/// A 200 JSON response that caches must not keep.
pub fn json_ok(v: &serde_json::Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        v.to_string(),
    )
        .into_response()
}
