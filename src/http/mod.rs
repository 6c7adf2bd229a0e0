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
mod post;
mod put;
mod search;
mod stream_config;
mod subscriptions;
mod touch;
mod util;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::sync::Arc;

use crate::protocol::route::Sub;
use crate::service::details::DetailsKind;
use crate::service::{ServiceError, StreamService};
use crate::telemetry::metrics::{metrics, render_prometheus, Route, Sampled};
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

const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, HEAD, OPTIONS";
const ALLOW_HEADERS: &str = "Content-Type, Authorization, If-None-Match, Stream-Seq, Stream-TTL, \
     Stream-Expires-At, Stream-Closed, Stream-Forked-From, Stream-Fork-Offset, \
     Stream-Fork-Sub-Offset, Producer-Id, Producer-Epoch, Producer-Seq, Stream-Key";
const EXPOSE_HEADERS: &str =
    "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, Stream-Closed, \
     Stream-TTL, Stream-Expires-At, Producer-Epoch, Producer-Seq, Producer-Expected-Seq, \
     Producer-Received-Seq, Stream-SSE-Data-Encoding, ETag, Content-Type, Content-Encoding, \
     Location, Retry-After, Vary";

/// The application router. The state is shared behind one `Arc`, so a request clones a
/// pointer rather than the service and paths.
pub fn router(state: AppState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/health", any(health))
        .route("/metrics", any(metrics_text))
        .route("/v1/streams", any(list))
        .route("/v1/server/_details", any(server_details))
        .route("/v1/stream/{*rest}", any(stream))
        .fallback(not_found)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(state, observe))
}

/// How many [`COMMON_HEADERS`] there are.
const COMMON_HEADER_COUNT: usize = 4;

/// Headers `observe` adds to every response: the common ones and `x-request-id` (handlers
/// reserve room for them, see `util::response`).
const MIDDLEWARE_HEADERS: usize = COMMON_HEADER_COUNT + 1;

/// The CORS and security headers every response carries, errors included.
const COMMON_HEADERS: [(header::HeaderName, HeaderValue); COMMON_HEADER_COUNT] = [
    (
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    ),
    (
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    ),
];

/// What an answer to a CORS preflight (`OPTIONS`) adds. Browsers read these two only from
/// a preflight, so other responses do without them (about 330 bytes fewer each).
const PREFLIGHT_HEADERS: [(header::HeaderName, HeaderValue); 2] = [
    (
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    ),
    (
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    ),
];

const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

fn route_of(req: &Request) -> Route {
    if !req.uri().path().starts_with("/v1/stream/") {
        return Route::Other;
    }
    match *req.method() {
        Method::PUT => Route::Create,
        Method::POST => Route::Append,
        Method::GET => Route::Read,
        Method::HEAD => Route::Head,
        Method::DELETE => Route::Delete,
        _ => Route::Other,
    }
}

/// The one middleware (a layer per concern would cost a boxed future and a service clone
/// each, per request): a span per request (method, path, request id), the
/// authentication check, the common headers and `x-request-id` on every response, the
/// HTTP metrics, and an event with the status and duration.
///
/// The span and the event are at debug level, so at the default level they cost nothing
/// (formatting the span's fields took 1.5–2 µs per request). What the default level logs
/// about a request names the request's id itself (`service::error`).
async fn observe(
    State(st): State<Arc<AppState>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument as _;
    let route = route_of(&req);
    let preflight = req.method() == Method::OPTIONS;
    let id = st.request_ids.mint();
    let span =
        tracing::debug_span!("request", method = %req.method(), path = %req.uri().path(), id = %id);
    let started = crate::clock::monotonic();
    let handled = async {
        match auth::refusal(&st, &req) {
            Some(refused) => refused,
            None => next.run(req).await,
        }
    };
    let request_id = HeaderValue::from_str(&id).ok();
    let mut res = crate::telemetry::request_id::scope(id, handled.instrument(span.clone())).await;
    let h = res.headers_mut();
    let preflight_headers = if preflight {
        &PREFLIGHT_HEADERS[..]
    } else {
        &[]
    };
    // One growth of the map at most, instead of one per doubling.
    h.reserve(MIDDLEWARE_HEADERS + preflight_headers.len());
    for (name, value) in COMMON_HEADERS.iter().chain(preflight_headers).cloned() {
        h.insert(name, value);
    }
    if let Some(v) = request_id {
        h.insert(X_REQUEST_ID, v);
    }
    let status = res.status().as_u16();
    metrics().http(route, status, started);
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::debug!(status, duration_ms, "request done"));
    res
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

/// Everything under `/v1/stream/`: dispatch on the method.
async fn stream(State(st): State<Arc<AppState>>, req: Request<Body>) -> Response {
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
        .strip_prefix("/v1/stream/")
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
