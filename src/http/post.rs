//! `POST /v1/stream/{name}`: append, append-and-close, or close.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::util::{header_of, hn, put, put_string, read_append_body, response};
use crate::service::{AppendParams, StreamService};

pub async fn handle(svc: &StreamService, name: &str, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let hs = &parts.headers;
    let params = AppendParams {
        content_type: header_of(hs, &header::CONTENT_TYPE),
        closed: header_of(hs, &hn::STREAM_CLOSED),
        stream_seq: header_of(hs, &hn::STREAM_SEQ),
        producer_id: header_of(hs, &hn::PRODUCER_ID),
        producer_epoch: header_of(hs, &hn::PRODUCER_EPOCH),
        producer_seq: header_of(hs, &hn::PRODUCER_SEQ),
        stream_key: header_of(hs, &hn::STREAM_KEY),
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
    // The offset; a close or a producer's echo adds one or two (the map then grows once).
    let mut res = response(status, Body::empty(), 1);
    put_string(&mut res, hn::STREAM_NEXT_OFFSET, out.next_offset.encode());
    if out.closed {
        put(
            &mut res,
            hn::STREAM_CLOSED,
            HeaderValue::from_static("true"),
        );
    }
    if let Some((epoch, seq)) = out.producer {
        put_string(&mut res, hn::PRODUCER_EPOCH, epoch.to_string());
        put_string(&mut res, hn::PRODUCER_SEQ, seq.to_string());
    }
    res
}
