//! The HTTP API in this process, without a port: each request goes through the router as the
//! server serves it (`tower::ServiceExt::oneshot`), the edge's guard included. For the HTTP
//! rules; what needs a socket or the binary (connection caps, slow bodies, kill -9, the command
//! line) keeps `TestServer`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request};
use hongfan::ManualClock;
use hongfan::server::{Server, Settings};
use serde_json::Value;
use tower::ServiceExt;

use crate::server::{PASSWORD, seed_accounts};

/// A server opened in this process on a temporary folder, asked through its router.
#[derive(Debug)]
pub struct Api {
    server: Server,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// What the router answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header's value, or "" when it is absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The session cookie it set, as a `cookie` header sends it back.
    pub fn cookie(&self) -> String {
        self.header("set-cookie").split(';').next().unwrap_or_default().to_owned()
    }
}

impl Api {
    /// With the tests' accounts and kiosks (`seed_accounts`), the clock at `T0`, and the
    /// settings changed by `configure`.
    pub async fn open(configure: impl FnOnce(&mut Settings)) -> Api {
        Self::open_with(true, configure).await
    }

    /// A folder as a first start leaves it: the built-in community, no tests' accounts.
    pub async fn bare(configure: impl FnOnce(&mut Settings)) -> Api {
        Self::open_with(false, configure).await
    }

    async fn open_with(accounts: bool, configure: impl FnOnce(&mut Settings)) -> Api {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        if accounts {
            seed_accounts(&data).await;
        }
        let mut settings = Settings::for_tests(data);
        configure(&mut settings);
        let clock = ManualClock::new(crate::T0);
        let server = Server::open(settings, clock.clone()).await.expect("open server");
        Api { server, clock, _dir: dir }
    }

    pub fn app(&self) -> &hongfan::http::App {
        self.server.app()
    }

    /// Sends `request` through the router, as from 127.0.0.1 (to `Host: 127.0.0.1:8080`
    /// unless it names another).
    pub async fn send(&self, mut request: Request<Body>) -> Answer {
        let host = axum::http::HeaderValue::from_static("127.0.0.1:8080");
        request.headers_mut().entry(axum::http::header::HOST).or_insert(host);
        let router = hongfan::http::router(self.app().clone());
        let response = router.oneshot(request).await.expect("the router answers");
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 1 << 26).await.expect("the body");
        Answer { status: parts.status.as_u16(), headers: parts.headers, body }
    }

    /// `GET path`, with `headers` (`cookie`, `host`…).
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).expect("request")).await
    }

    /// `POST path` with a JSON body, with `headers`.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
        let mut request = Request::post(path).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body.to_string())).expect("request")).await
    }

    /// `POST /api/login` with `password` from `headers`' address; the status.
    pub async fn login_as(&self, login: &str, password: &str, headers: &[(&str, &str)]) -> u16 {
        let body = serde_json::json!({ "login": login, "password": password });
        self.post("/api/login", headers, &body).await.status
    }

    /// Logs `login` in with the tests' password; the session cookie.
    pub async fn login(&self, login: &str) -> String {
        let body = serde_json::json!({ "login": login, "password": PASSWORD });
        let answer = self.post("/api/login", &[], &body).await;
        assert_eq!(answer.status, 200, "login {login}: {answer:?}");
        answer.cookie()
    }
}
