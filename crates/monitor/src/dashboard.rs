//! `/dashboard`: one static page (HTML, CSS and JS inline, charts drawn on
//! `<canvas>` by hand) that polls `varz` and `jsz?streams=1&consumers=1`
//! every second with relative URLs and shows message and byte rates,
//! connections, slow consumers and the streams with their consumers' lag.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Monitor;

/// The page, built into the binary.
pub const PAGE: &str = include_str!("dashboard.html");

pub async fn handle(State(m): State<Arc<Monitor>>) -> Response {
    m.count("/dashboard");
    let mut r = (StatusCode::OK, PAGE).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
