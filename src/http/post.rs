//! `POST /v1/stream/{name}`: append, append-and-close, or close.

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::util::{header as h, read_append_body, set};
use crate::protocol::headers::names;
use crate::service::{AppendParams, StreamService};

pub async fn handle(svc: &StreamService, name: &str, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let hs = &parts.headers;
    let params = AppendParams {
        content_type: h(hs, "content-type"),
        closed: h(hs, names::STREAM_CLOSED),
        stream_seq: h(hs, names::STREAM_SEQ),
        producer_id: h(hs, names::PRODUCER_ID),
        producer_epoch: h(hs, names::PRODUCER_EPOCH),
        producer_seq: h(hs, names::PRODUCER_SEQ),
        stream_key: h(hs, "stream-key"),
    };
    let body = match read_append_body(svc, hs, body).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let out = match svc.append(name, params, body).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let status = if out.producer_wrote {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    let mut res = status.into_response();
    set(
        &mut res,
        names::STREAM_NEXT_OFFSET,
        out.next_offset.encode(),
    );
    if out.closed {
        set(&mut res, names::STREAM_CLOSED, "true");
    }
    if let Some((epoch, seq)) = out.producer {
        set(&mut res, names::PRODUCER_EPOCH, epoch.to_string());
        set(&mut res, names::PRODUCER_SEQ, seq.to_string());
    }
    res
}
