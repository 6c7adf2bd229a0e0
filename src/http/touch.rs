//! `GET …/touch/meta`, `POST …/touch/wait`, `POST …/touch/templates/activate`: JSON in,
//! JSON out (`docs/live.md`). As in the original, the stream and its touch profile are
//! checked before the method and the body: a wrong method on a stream without touch is
//! 404 `touch not enabled`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use super::stream_config::json_ok;
use super::util::{read_config_body, Query};
use crate::protocol::touch::{MetaQuery, WaitRequest};
use crate::service::{ServiceError, ServiceResult, StreamService};

/// Which touch route a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Meta,
    Wait,
    Activate,
}

pub async fn handle(svc: &StreamService, name: &str, route: Route, req: Request<Body>) -> Response {
    if let Err(e) = svc.touch_enabled(name).await {
        return e.into_response();
    }
    let want = match route {
        Route::Meta => Method::GET,
        Route::Wait | Route::Activate => Method::POST,
    };
    if req.method() != want {
        return ServiceError::BadRequest("unsupported method".into()).into_response();
    }
    let result: ServiceResult<serde_json::Value> = match route {
        Route::Meta => {
            let query = req.uri().query().map(str::to_string);
            meta(svc, name, query.as_deref()).await
        }
        Route::Wait | Route::Activate => {
            let body = match read_config_body(svc, req).await {
                Ok(b) => b,
                Err(res) => return res,
            };
            if route == Route::Wait {
                match WaitRequest::parse(&body) {
                    Ok(w) => svc.touch_wait(name, w).await,
                    Err(m) => Err(ServiceError::BadRequest(m)),
                }
            } else {
                svc.touch_activate(name, &body).await
            }
        }
    };
    match result {
        Ok(v) => json_ok(&v),
        Err(e) => e.into_response(),
    }
}

async fn meta(
    svc: &StreamService,
    name: &str,
    query: Option<&str>,
) -> ServiceResult<serde_json::Value> {
    let q = Query::parse(query)?;
    let (settle, timeout) = (q.single("settle")?, q.single("timeoutMs")?);
    let q = MetaQuery::parse(settle.as_deref(), timeout.as_deref())
        .map_err(ServiceError::BadRequest)?;
    svc.touch_meta(name, q).await
}
