//! The pages in `client-web/`, compiled into the binary so that one `cargo run` serves all.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

macro_rules! files {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!("../../client-web/", $path)) as &[u8])),*]
    };
}

/// Every file under `client-web/`, by its path there.
const FILES: &[(&str, &[u8])] = files![
    "index.html",
    "login.html",
    "kiosk.html",
    "board.html",
    "audit.html",
    "admin.html",
    "status.html",
    "icon.svg",
    "manifest.webmanifest",
    "sw.js",
    "css/hongfan.css",
    "js/admin.js",
    "js/answer.js",
    "js/admin-community.js",
    "js/admin-history.js",
    "js/admin-keys.js",
    "js/admin-kiosks.js",
    "js/admin-kit.js",
    "js/admin-people.js",
    "js/admin-rota.js",
    "js/audit.js",
    "js/board.js",
    "js/connection.js",
    "js/format.js",
    "js/i18n.js",
    "js/kiosk.js",
    "js/pickers.js",
    "js/slip.js",
    "js/login.js",
    "js/status.js",
];

/// What the pages may load: everything from this server, nothing inline, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

fn file(path: &str) -> Response {
    match FILES.iter().find(|(name, _)| *name == path) {
        Some((name, body)) => (
            [
                (header::CONTENT_TYPE, content_type(name)),
                // Pages change with the binary; a kiosk must never run yesterday's script.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                // Only our own scripts and styles, in no one else's frame; no address (a
                // ticket's private link, say) leaks to another site.
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            *body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "没有这个页面 / not found",
        )
            .into_response(),
    }
}

/// The pages' routes, for any state: they serve only what is embedded.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route("/login", get(|| async { file("login.html") }))
        .route("/kiosk", get(|| async { file("kiosk.html") }))
        .route("/board", get(|| async { file("board.html") }))
        .route("/audit", get(|| async { file("audit.html") }))
        .route("/admin", get(|| async { file("admin.html") }))
        // A resident's private status page: `/s#<ticket>-<key>` (the code never reaches a log).
        .route("/s", get(|| async { file("status.html") }))
        // The board as an app on a phone: its manifest, icon and service worker (at the root,
        // so that its scope is the whole site).
        .route("/manifest.webmanifest", get(|| async { file("manifest.webmanifest") }))
        .route("/icon.svg", get(|| async { file("icon.svg") }))
        .route("/sw.js", get(|| async { file("sw.js") }))
        .route(
            "/css/{name}",
            get(|Path(name): Path<String>| async move { file(&format!("css/{name}")) }),
        )
        .route(
            "/js/{name}",
            get(|Path(name): Path<String>| async move { file(&format!("js/{name}")) }),
        )
}

#[cfg(test)]
mod tests {
    use super::FILES;

    #[test]
    fn every_file_in_client_web_is_served() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../client-web");
        let mut on_disk = Vec::new();
        for dir in ["", "css", "js"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("client-web").flatten() {
                if entry.path().is_file() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    on_disk.push(if dir.is_empty() { name } else { format!("{dir}/{name}") });
                }
            }
        }
        on_disk.sort();
        let mut served: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        served.sort();
        assert_eq!(served, on_disk);
    }
}
