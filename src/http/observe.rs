//! The one middleware, in front of every route: a span per request (method, path,
//! request id), the authentication check, the common headers and `x-request-id` on every
//! response, the HTTP metrics, and an event with the status and duration. It also sends
//! the stream routes (`/v1/stream/…`) to their handler directly and the rest through the
//! router.
//!
//! It is a hand-written tower service rather than `axum::middleware::from_fn`, and it
//! wraps the router rather than being one of its layers. Its future is then a plain
//! struct that hyper keeps in its per-connection slot: no boxed middleware future, no
//! `Next` box and no clone of the inner service per request (about 0.5 µs of CPU per
//! request; docs/performance.md, "Fifth pass"). Everything `from_fn` did is done here
//! the same way, in the same order.
//!
//! The span and the event are at debug level, so at the default level they cost nothing
//! (formatting the span's fields took 1.5–2 µs per request). What the default level logs
//! about a request names the request's id itself (`service::error`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use axum::Router;
use futures_util::future::Either;
use tokio::task::futures::TaskLocalFuture;
use tower_service::Service;
use tracing::instrument::Instrumented;
use tracing::Instrument as _;

use super::{auth, AppState};
use crate::telemetry::metrics::{metrics, Route};
use crate::telemetry::request_id;

const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, HEAD, OPTIONS";
const ALLOW_HEADERS: &str = "Content-Type, Authorization, If-None-Match, Stream-Seq, Stream-TTL, \
     Stream-Expires-At, Stream-Closed, Stream-Forked-From, Stream-Fork-Offset, \
     Stream-Fork-Sub-Offset, Producer-Id, Producer-Epoch, Producer-Seq, Stream-Key";
const EXPOSE_HEADERS: &str =
    "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, Stream-Closed, \
     Stream-TTL, Stream-Expires-At, Producer-Epoch, Producer-Seq, Producer-Expected-Seq, \
     Producer-Received-Seq, Stream-SSE-Data-Encoding, ETag, Content-Type, Content-Encoding, \
     Location, Retry-After, Vary";

/// How many [`COMMON_HEADERS`] there are.
const COMMON_HEADER_COUNT: usize = 4;

/// Headers [`Observe`] adds to every response: the common ones and `x-request-id`
/// (handlers reserve room for them, see `util::response`).
pub(super) const MIDDLEWARE_HEADERS: usize = COMMON_HEADER_COUNT + 1;

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

/// The metrics' route of a request: its method, on a stream route.
fn route_of(stream_route: bool, method: &Method) -> Route {
    if !stream_route {
        return Route::Other;
    }
    match *method {
        Method::PUT => Route::Create,
        Method::POST => Route::Append,
        Method::GET => Route::Read,
        Method::HEAD => Route::Head,
        Method::DELETE => Route::Delete,
        _ => Route::Other,
    }
}

/// The application as hyper serves it: the stream routes and the router, observed.
#[derive(Clone)]
pub struct Observe {
    router: Router,
    st: Arc<AppState>,
}

impl Observe {
    pub(super) fn new(router: Router, st: Arc<AppState>) -> Observe {
        Observe { router, st }
    }
}

/// A request's answer in the making: a stream route's or a refusal, or the router's.
type Handling = Either<super::Answering, <Router as Service<Request>>::Future>;

impl<B> Service<axum::http::Request<B>> for Observe
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Observed;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Observed {
        let req = req.map(Body::new);
        let stream_route = req.uri().path().starts_with(super::STREAM_PREFIX);
        let route = route_of(stream_route, req.method());
        let preflight = req.method() == Method::OPTIONS;
        let id = self.st.request_ids.mint();
        let span = tracing::debug_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            id = %id,
        );
        let started = crate::clock::monotonic();
        let request_id = HeaderValue::from_str(&id).ok();
        let handling = match auth::refusal(&self.st, &req) {
            Some(refused) => Either::Left(Box::pin(std::future::ready(Ok(refused))) as _),
            None if stream_route => Either::Left(super::stream_routes(self.st.clone(), req)),
            None => Either::Right(self.router.call(req)),
        };
        Observed {
            handling: request_id::scope(id, handling.instrument(span.clone())),
            done: Some(Done {
                route,
                preflight,
                request_id,
                started,
                span,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being handled, with what its response gets when it is done.
    pub struct Observed {
        #[pin]
        handling: TaskLocalFuture<String, Instrumented<Handling>>,
        done: Option<Done>,
    }
}

/// What [`Observed`] adds to the response.
struct Done {
    route: Route,
    preflight: bool,
    request_id: Option<HeaderValue>,
    started: std::time::Instant,
    span: tracing::Span,
}

impl Future for Observed {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut res) = ready!(this.handling.poll(cx));
        if let Some(done) = this.done.take() {
            done.apply(&mut res);
        }
        Poll::Ready(Ok(res))
    }
}

impl Done {
    fn apply(self, res: &mut Response) {
        let h = res.headers_mut();
        let preflight_headers = if self.preflight {
            &PREFLIGHT_HEADERS[..]
        } else {
            &[]
        };
        // One growth of the map at most, instead of one per doubling.
        h.reserve(MIDDLEWARE_HEADERS + preflight_headers.len());
        for (name, value) in COMMON_HEADERS.iter().chain(preflight_headers).cloned() {
            h.insert(name, value);
        }
        if let Some(v) = self.request_id {
            h.insert(X_REQUEST_ID, v);
        }
        let status = res.status().as_u16();
        metrics().http(self.route, status, self.started);
        let duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.span
            .in_scope(|| tracing::debug!(status, duration_ms, "request done"));
    }
}
