//! The pages in `client-web/`, compiled into the binary so that one `cargo run` serves all.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::App;

/// (path under `client-web/`, content type, contents)
const FILES: &[(&str, &str, &[u8])] =
    &[("index.html", "text/html; charset=utf-8", include_bytes!("../../client-web/index.html"))];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(path, _, _)| *path == name) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "没有这个页面 / not found").into_response(),
    }
}

pub fn routes() -> Router<App> {
    Router::new().route("/", get(|| async { file("index.html") }))
}
