//! HTTP with axum: extract the request, call the service, encode the response. No
//! protocol rules live here beyond framing. One file per verb.

mod auth;
mod delete;
mod details;
pub mod error;
mod get;
mod head;
mod keys;
mod list;
mod observe;
mod post;
mod put;
mod search;
mod stream_config;
mod subscriptions;
mod touch;
mod util;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::sync::Arc;

pub use observe::Observe;

use crate::protocol::route::Sub;
use crate::service::details::DetailsKind;
use crate::service::{ServiceError, StreamService};
use crate::telemetry::metrics::{render_prometheus, Sampled};
use crate::telemetry::process;

/// Shared state of the HTTP handlers.
pub struct AppState {
    pub service: StreamService,
    /// The SQLite file (its `-wal` size is reported in `/metrics`).
    pub db_path: std::path::PathBuf,
    pub started: std::time::Instant,
    /// The bearer token requests must carry, if authentication is on.
    pub auth: Option<crate::config::AuthToken>,
    pub request_ids: crate::telemetry::request_id::RequestIds,
    /// Failures of the server's threads and tasks, reported by `/health`.
    pub health: std::sync::Arc<crate::health::Health>,
    /// The configuration `/v1/server/_details` describes.
    pub server: crate::service::server_details::ServerSummary,
}

/// The application: [`Observe`], the one middleware, around the stream routes
/// ([`stream_routes`]) and the router for the others. The state is shared behind one
/// `Arc`, so a request clones a pointer rather than the service and paths.
pub fn app(state: AppState) -> Observe {
    let state = Arc::new(state);
    let router = Router::new()
        .route("/health", any(health))
        .route("/metrics", any(metrics_text))
        .route("/v1/streams", any(list))
        .route("/v1/server/_details", any(server_details))
        .fallback(not_found)
        .with_state(state.clone());
    Observe::new(router, state)
}

/// Prometheus text exposition.
async fn metrics_text(State(st): State<Arc<AppState>>) -> Response {
    let mut wal = st.db_path.clone().into_os_string();
    wal.push("-wal");
    let sampled = Sampled {
        rss_bytes: process::rss_bytes(),
        cpu_seconds: process::cpu_seconds(),
        wal_bytes: std::fs::metadata(&wal).ok().map(|m| m.len()),
        streams: st.service.count_streams().await.ok(),
        ingest_budget_bytes: st.service.ingest_budget().in_use() as u64,
        uptime_seconds: st.started.elapsed().as_secs_f64(),
    };
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render_prometheus(&sampled),
    )
        .into_response()
}

/// `{"ok":true}`, or 503 naming each failed component and when it failed (the cause is
/// in the log).
async fn health(State(st): State<Arc<AppState>>) -> Response {
    let failures = st.health.failures();
    let (status, body) = if failures.is_empty() {
        (StatusCode::OK, serde_json::json!({ "ok": true }))
    } else {
        let failed: Vec<_> = failures
            .iter()
            .map(|f| {
                serde_json::json!({
                    "component": f.component,
                    "since": crate::protocol::headers::format_rfc3339_ms(f.at_ms),
                    "fatal": f.fatal,
                })
            })
            .collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "ok": false, "failed": failed }),
        )
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error::json_error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn list(State(st): State<Arc<AppState>>, req: Request) -> Response {
    list::handle(&st.service, req).await
}

async fn server_details(State(st): State<Arc<AppState>>, req: Request) -> Response {
    details::server(&st.service, &st.server, req)
}

/// The stream routes: every path under it is a stream name, a sub-resource or a control
/// route, told apart by [`stream`] itself.
const STREAM_PREFIX: &str = "/v1/stream/";

/// An answer in the making that does not go through the router.
type Answering = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
>;

/// The stream routes, called by [`Observe`] directly rather than through the router: the
/// router's matching, boxed service clone and handler wrapping cost about 0.8 µs of CPU
/// per request there, and it had nothing to tell apart below the prefix.
fn stream_routes(st: Arc<AppState>, req: Request<Body>) -> Answering {
    Box::pin(async move { Ok(stream(st, req).await) })
}

/// Everything under `/v1/stream/`: dispatch on the sub-resource and the method.
async fn stream(st: Arc<AppState>, req: Request<Body>) -> Response {
    if req.method() == Method::OPTIONS {
        return (
            StatusCode::NO_CONTENT,
            [(header::ACCESS_CONTROL_MAX_AGE, "86400")],
        )
            .into_response();
    }
    // The raw (still percent-encoded) remainder, so `%2F` and `/` are decoded alike.
    let raw = req
        .uri()
        .path()
        .strip_prefix(STREAM_PREFIX)
        .unwrap_or_default()
        .to_string();
    // The reserved control routes come before stream names.
    if crate::subscriptions::request::is_reserved(&raw) {
        return subscriptions::handle(&st.service, &raw, req).await;
    }
    let (name, sub) = match StreamService::parse_path(&raw) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let svc = &st.service;
    let method = req.method().clone();
    match (sub, method) {
        (Sub::Stream, Method::PUT) => put::handle(svc, &name, req).await,
        (Sub::Stream, Method::POST) => post::handle(svc, &name, req).await,
        (Sub::Stream, Method::GET) => get::handle(svc, &name, None, req).await,
        (Sub::Stream, Method::HEAD) => head::handle(svc, &name).await,
        (Sub::Stream, Method::DELETE) => delete::handle(svc, &name).await,
        (Sub::Key(key), Method::GET) => get::handle(svc, &name, Some(key), req).await,
        (Sub::RoutingKeys, Method::GET) => keys::handle(svc, &name, req).await,
        (Sub::Profile, _) => {
            stream_config::handle(svc, &name, stream_config::Resource::Profile, req).await
        }
        (Sub::Schema, _) => {
            stream_config::handle(svc, &name, stream_config::Resource::Schema, req).await
        }
        (Sub::Details, _) => details::handle(svc, &name, DetailsKind::Details, req).await,
        (Sub::IndexStatus, _) => details::handle(svc, &name, DetailsKind::IndexStatus, req).await,
        (Sub::Search, _) => search::search(svc, &name, req).await,
        (Sub::Aggregate, _) => search::aggregate(svc, &name, req).await,
        (Sub::TouchMeta, _) => touch::handle(svc, &name, touch::Route::Meta, req).await,
        (Sub::TouchWait, _) => touch::handle(svc, &name, touch::Route::Wait, req).await,
        (Sub::TouchActivate, _) => touch::handle(svc, &name, touch::Route::Activate, req).await,
        (Sub::Stream, _) => error::json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "unsupported method",
        ),
        // The original answers a wrong method on a sub-resource with 400.
        _ => ServiceError::BadRequest("unsupported method".into()).into_response(),
    }
}
