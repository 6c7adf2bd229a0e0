//! `DELETE /v1/stream/{name}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::service::StreamService;

pub async fn handle(svc: &StreamService, name: &str) -> Response {
    match svc.delete(name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
