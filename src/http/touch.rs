//! `GET …/touch/meta`, `POST …/touch/wait`, `POST …/touch/templates/activate`: JSON in,
//! JSON out (`docs/live.md`). As in the original, the stream and its touch profile are
//! checked before the method and the body (the service parses bodies and queries after
//! its check): a wrong method on a stream without touch is 404 `touch not enabled`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use super::stream_config::json_ok;
use super::util::{read_config_body, Query};
use crate::service::{ServiceError, ServiceResult, StreamService};

/// Which touch route a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Meta,
    Wait,
    Activate,
}

pub async fn handle(svc: &StreamService, name: &str, route: Route, req: Request<Body>) -> Response {
    let want = match route {
        Route::Meta => Method::GET,
        Route::Wait | Route::Activate => Method::POST,
    };
    let result: ServiceResult<serde_json::Value> = if req.method() != want {
        match svc.touch_enabled(name).await {
            Ok(()) => Err(ServiceError::BadRequest("unsupported method".into())),
            Err(e) => Err(e),
        }
    } else {
        match route {
            Route::Meta => match Query::parse(req.uri().query()) {
                Ok(q) => match (q.single("settle"), q.single("timeoutMs")) {
                    (Ok(settle), Ok(timeout)) => {
                        svc.touch_meta(name, settle.as_deref(), timeout.as_deref())
                            .await
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                },
                Err(e) => Err(e),
            },
            Route::Wait | Route::Activate => {
                let body = match read_config_body(svc, req).await {
                    Ok(b) => b,
                    Err(res) => return res,
                };
                match route {
                    Route::Wait => svc.touch_wait(name, &body).await,
                    _ => svc.touch_activate(name, &body).await,
                }
            }
        }
    };
    match result {
        Ok(v) => json_ok(&v),
        Err(e) => e.into_response(),
    }
}
