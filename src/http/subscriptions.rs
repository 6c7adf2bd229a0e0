//! The reserved control routes under `/v1/stream/__ds/` (subscriptions, webhook
//! callbacks, pull-wake claims, the webhook signing keys), matched before stream names.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::service::subscriptions::SubError;
use crate::service::StreamService;
use crate::subscriptions::request::{self, Action, Route};

/// Handles `raw`, the still percent-encoded remainder after `/v1/stream/`.
pub async fn handle(svc: &StreamService, raw: &str, req: Request<Body>) -> Response {
    let m = svc.subscriptions();
    let method = req.method().clone();
    let route = request::parse_route(raw);
    let (id, action) = match route {
        Route::Jwks => {
            if method != Method::GET {
                return method_not_allowed();
            }
            return match m.jwks().await {
                Ok(v) => (
                    StatusCode::OK,
                    [
                        (header::CONTENT_TYPE, "application/jwk-set+json"),
                        (header::CACHE_CONTROL, "public, max-age=300"),
                    ],
                    v.to_string(),
                )
                    .into_response(),
                Err(e) => error(&e),
            };
        }
        Route::Unknown => {
            return json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"error": {"code": "SUBSCRIPTION_NOT_FOUND",
                    "message": "Durable Streams control route not found"}}),
            )
        }
        Route::Subscription { id, action } => (id, action),
    };
    let allowed = match &action {
        Action::Base => [Method::PUT, Method::GET, Method::DELETE].contains(&method),
        Action::Stream(_) => method == Method::DELETE,
        _ => method == Method::POST,
    };
    if !allowed {
        return method_not_allowed();
    }
    let base = base_url(&req);
    let token = bearer(&req);
    let needs_token = matches!(action, Action::Callback | Action::Ack | Action::Release);
    if needs_token && token.is_none() {
        return error(&SubError::TokenInvalid);
    }
    let body = if method == Method::PUT || method == Method::POST {
        match crate::http::util::read_config_body(svc, req).await {
            Ok(b) => match request::parse_json(&b) {
                Ok(v) => v,
                Err(msg) => return error(&SubError::InvalidRequest(msg)),
            },
            Err(res) => return res,
        }
    } else {
        Value::Null
    };
    let token = token.unwrap_or_default();
    let result: Result<Response, SubError> = async {
        Ok(match (action, method) {
            (Action::Base, Method::PUT) => {
                let input = request::parse_create(&body).map_err(SubError::InvalidRequest)?;
                let (v, created) = m.create(&id, input, &base).await?;
                let status = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                json(status, &v)
            }
            (Action::Base, Method::GET) => json(StatusCode::OK, &m.get(&id, &base).await?),
            (Action::Base, _) => {
                m.delete(&id).await?;
                StatusCode::NO_CONTENT.into_response()
            }
            (Action::Streams, _) => {
                let streams = request::parse_streams(&body).map_err(SubError::InvalidRequest)?;
                m.add_streams(&id, &streams).await?;
                StatusCode::NO_CONTENT.into_response()
            }
            (Action::Stream(path), _) => {
                m.remove_stream(&id, &path).await?;
                StatusCode::NO_CONTENT.into_response()
            }
            (Action::Callback, _) => {
                let r = request::parse_reply(&body);
                json(StatusCode::OK, &m.reply(&id, &token, &r, false).await?)
            }
            (Action::Ack, _) => {
                let r = request::parse_reply(&body);
                json(StatusCode::OK, &m.reply(&id, &token, &r, true).await?)
            }
            (Action::Release, _) => {
                let r = request::parse_reply(&body);
                m.release(&id, &token, &r).await?;
                StatusCode::NO_CONTENT.into_response()
            }
            (Action::Claim, _) => {
                let worker = body
                    .get("worker")
                    .and_then(Value::as_str)
                    .filter(|w| !w.is_empty())
                    .ok_or_else(|| {
                        SubError::InvalidRequest("worker must be a non-empty string".into())
                    })?;
                json(StatusCode::OK, &m.claim(&id, worker).await?)
            }
        })
    }
    .await;
    result.unwrap_or_else(|e| error(&e))
}

/// `http://<Host>`: the base of the absolute URLs the server hands out.
fn base_url(req: &Request<Body>) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn bearer(req: &Request<Body>) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

fn json(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// The reference server's status, code and body for each refusal; a storage failure
/// answers as every other route's does (`http/error.rs`: its own status, code and
/// `Retry-After`).
fn error(e: &SubError) -> Response {
    let (status, code) = match e {
        SubError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
        SubError::UrlRejected(_) => (StatusCode::BAD_REQUEST, "WEBHOOK_URL_REJECTED"),
        SubError::NotFound => (StatusCode::NOT_FOUND, "SUBSCRIPTION_NOT_FOUND"),
        SubError::AlreadyExists => (StatusCode::CONFLICT, "SUBSCRIPTION_ALREADY_EXISTS"),
        SubError::TokenInvalid => (StatusCode::UNAUTHORIZED, "TOKEN_INVALID"),
        SubError::TokenExpired => (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED"),
        SubError::Fenced => (StatusCode::CONFLICT, "FENCED"),
        SubError::AlreadyClaimed { holder, generation } => {
            let body = serde_json::json!({
                "error": {"code": "ALREADY_CLAIMED", "current_holder": holder, "generation": generation}
            });
            return json(StatusCode::CONFLICT, &body);
        }
        SubError::NoPendingWork => (StatusCode::CONFLICT, "NO_PENDING_WORK"),
        SubError::InvalidOffset(_) => (StatusCode::CONFLICT, "INVALID_OFFSET"),
        SubError::Engine(engine) => {
            return crate::service::ServiceError::from(engine.clone()).into_response();
        }
    };
    let body = serde_json::json!({"error": {"code": code, "message": e.to_string()}});
    json(status, &body)
}

fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "text/plain")],
        "Method not allowed",
    )
        .into_response()
}
