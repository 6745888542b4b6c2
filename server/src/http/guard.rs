//! The edge every HTTP request passes before its handler: whether its `Host` is one of ours (a
//! page from another name cannot reach this server through DNS rebinding), whether a request that
//! changes something comes from our own pages (`Origin`), who the client is (the peer, or behind
//! the trusted proxy the address the proxy forwarded), the whole body read within a deadline and
//! a size limit, and the headers every API answer carries.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::{App, AppError};

/// Routes anyone may call without a session take a body this big at most: a login or a
/// pairing code, not a document.
pub const OPEN_BODY_LIMIT: usize = 4 << 10;
/// Every other body.
pub const BODY_LIMIT: usize = 2 << 20;
/// An Open311 POST: a 500-character Chinese description url-encoded is about 4.5 KB.
pub const OPEN311_BODY_LIMIT: usize = 16 << 10;
/// How much of a body beyond its limit is read (and thrown away) before the refusal: the
/// client that sent it then reads the 413, which a connection closed on unread bytes would
/// reset before it arrives.
const DRAIN: usize = 64 << 10;
/// The routes that need no session (and so get the small body limit).
const OPEN_ROUTES: &[&str] = &[
    "/api/login",
    "/api/kiosk/pair",
    "/api/logout",
    "/api/status",
    "/api/status/rate",
    "/api/status/link",
];

/// Who may talk to this server, and from where.
#[derive(Debug, Clone, Default)]
pub struct Edge {
    /// Origins allowed besides the server's own (`--allow-origin`).
    pub allowed_origins: Vec<String>,
    /// Host names allowed besides IP literals and `localhost` (`--allow-host`, and the hosts
    /// of the allowed origins).
    pub allowed_hosts: Vec<String>,
    /// The reverse proxy whose `X-Forwarded-For` is believed (`--trusted-proxy`).
    pub trusted_proxy: Option<IpAddr>,
    /// How long a client may take to send a request's whole body.
    pub body_timeout: Duration,
    /// Behind the trusted proxy, the cap per client address on requests being served (the
    /// accept loop caps each peer's connections, and every connection is the proxy's).
    pub proxied: Option<crate::limits::Slots>,
}

/// The client's address, as the edge established it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl Edge {
    /// The address a request comes from: the peer's, unless the peer is the trusted proxy, in
    /// which case the last address the proxy appended to `X-Forwarded-For`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.trusted_proxy != Some(peer) {
            return peer;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .next_back()
            .unwrap_or(peer)
    }

    /// Whether a `Host` header names this server: an IP literal, `localhost`, or a configured
    /// name. A name an attacker controls resolving to us is refused.
    pub fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return true;
        };
        let name = match host.strip_prefix('[') {
            Some(v6) => return v6.split(']').next().is_some_and(|a| a.parse::<IpAddr>().is_ok()),
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        name.parse::<IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Browsers send cross-site requests with the victim's cookies, so the server checks the
    /// Origin: its own (the Host header), or one on the allow-list. Clients that are not
    /// browsers send no Origin and are judged by their credentials alone.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> Result<(), AppError> {
        let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
        let origin = origin.to_str().unwrap_or_default();
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        if (!host.is_empty() && authority == Some(host))
            || self.allowed_origins.iter().any(|a| a == origin)
        {
            Ok(())
        } else {
            Err(AppError::ForeignOrigin(origin.chars().take(100).collect()))
        }
    }
}

/// The middleware: refuses what is not for us, reads the body within its deadline, and marks
/// every API answer as not to be cached or sniffed.
pub async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    // Open311's clients read every refusal in the spec's shape, the edge's too.
    let open311 = (path == "/open311" || path.starts_with("/open311/"))
        .then(|| super::open311::Format::of_path(path));
    let refuse = |refused: AppError| match open311 {
        Some(format) => super::open311::edge_refusal(format, &refused),
        None => refused.into_response(),
    };
    let edge = &app.edge;
    // The accept loop records the peer; a router driven in process (tests) has none.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |ConnectInfo(peer)| *peer);
    if !edge.host_allowed(request.headers()) {
        return refuse(AppError::ForeignHost);
    }
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes && let Err(refused) = edge.origin_allowed(request.headers()) {
        return refuse(refused);
    }
    let client = ClientAddr(edge.client(peer.ip(), request.headers()));
    let _slot = match &edge.proxied {
        Some(slots) if edge.trusted_proxy == Some(peer.ip()) => match slots.take(Some(client.0)) {
            Ok(slot) => Some(slot),
            Err(_) => {
                return refuse(AppError::TooManyConnections(
                    "too many requests from this address at once",
                ));
            }
        },
        _ => None,
    };
    let api = open311.is_some() || request.uri().path().starts_with("/api/");
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(client);
    let request = if changes {
        let limit = match parts.uri.path() {
            _ if open311.is_some() => OPEN311_BODY_LIMIT,
            path if OPEN_ROUTES.contains(&path) => OPEN_BODY_LIMIT,
            _ => BODY_LIMIT,
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        // A body promised far beyond the limit is refused from its length alone.
        if declared.is_some_and(|n| n > limit + DRAIN) {
            return refuse(AppError::TooLarge(limit));
        }
        // The whole body within one deadline: a client trickling a byte a second cannot hold a
        // connection (and a slot under the cap) for long.
        match tokio::time::timeout(edge.body_timeout, read_body(body, limit)).await {
            Ok(Ok(Some(bytes))) => Request::from_parts(parts, Body::from(bytes)),
            Ok(Ok(None)) => return refuse(AppError::TooLarge(limit)),
            Ok(Err(_)) => return refuse(AppError::BadBody("the body was cut off".into())),
            Err(_) => return refuse(AppError::SlowBody),
        }
    } else {
        Request::from_parts(parts, body)
    };
    let mut response = next.run(request).await;
    if api {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    // What Open311 publishes is public: a dashboard on another site may read it (no cookie
    // or key is sent or asked for).
    if open311.is_some() && !changes {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    response
}

/// The body, if it is within `limit`; `None` once it is over, having read at most `DRAIN` more
/// of it.
async fn read_body(mut body: Body, limit: usize) -> Result<Option<bytes::Bytes>, axum::Error> {
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        seen += data.len();
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > limit + DRAIN {
            break;
        }
    }
    Ok((seen <= limit).then(|| kept.freeze()))
}
