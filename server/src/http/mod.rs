//! Every HTTP route, and the one place an HTTP-side error becomes a response.

mod admin;
mod audit;
mod callbacks;
mod extract;
pub mod guard;
pub mod open311;
mod openapi;
mod points;
mod resident;
mod sessions;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use hongfan_shared::Role;
use hongfan_shared::error::Refusal;
use hongfan_shared::protocol::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::auth::{Accounts, AuthError, Authenticated};
use crate::hub::Hub;
use crate::office::OfficeError;
use crate::store::StoreError;
use crate::web;
use extract::{Session, Supervisor};
use guard::{ClientAddr, Edge};

/// The session cookie of a person (board, audit).
pub const SESSION_COOKIE: &str = "hongfan_session";
/// The session cookie of a paired kiosk. Kept apart from a person's, so that a staff PC can keep
/// a kiosk window paired while someone is logged in beside it.
pub const KIOSK_COOKIE: &str = "hongfan_kiosk";

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct App {
    pub hub: Hub,
    pub accounts: Arc<Accounts>,
    /// Who may talk to this server, and from where.
    pub edge: Arc<Edge>,
    /// Mark cookies `Secure` (when served over TLS behind a proxy).
    pub secure_cookies: bool,
    /// The operator's token for `hongfan backup` against a running server; it is written to
    /// the data folder, readable only by the account that runs the server.
    pub operator_token: Arc<String>,
    /// Whether `/metrics` is served beside the pages (no `--metrics-addr` given).
    pub metrics_public: bool,
    /// The outbound webhooks' sender: the configured hooks' (`--webhooks`) and the platforms'
    /// whose work orders are answered upstream.
    pub webhooks: crate::outbox::Deliverer,
}

/// `/metrics` alone, for its own listener (a private address: no credentials asked).
pub fn metrics_router(app: App) -> Router {
    Router::new().route("/metrics", get(metrics_text)).with_state(app)
}

async fn metrics_text(State(app): State<App>) -> Response {
    let body = app.hub.render_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// The Prometheus text format. Beside the pages only when no `--metrics-addr` is given, and then
/// for a supervisor's session or the operator's token only: it tells who is online.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security(("session" = []), ("operator_token" = [])),
    responses(
        (status = 200, description = "Counters, gauges and histograms, all named `hongfan_…`", body = String, content_type = "text/plain"),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`", body = ErrorJson),
    ))]
async fn metrics(_: extract::Admin, State(app): State<App>) -> Response {
    metrics_text(State(app)).await
}

/// Whether a request carries the operator's token.
fn operator(app: &App, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    !given.is_empty() && given == app.operator_token.as_str()
}

pub fn router(app: App) -> Router {
    let metrics_public = app.metrics_public;
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/ws", get(websocket))
        .route("/api/login", post(sessions::login))
        .route("/api/logout", post(sessions::logout))
        .route("/api/kiosk/pair", post(sessions::pair))
        .route("/api/me", get(sessions::me))
        .route("/api/me/password", post(sessions::change_password))
        .route("/api/admin/people", get(admin::people).post(admin::add_person))
        .route("/api/admin/people/{login}", put(admin::edit_person))
        .route("/api/admin/people/{login}/disable", post(admin::disable_person))
        .route("/api/admin/people/{login}/enable", post(admin::enable_person))
        .route("/api/admin/people/{login}/reset", post(admin::reset_password))
        .route("/api/admin/people/{login}/password", post(admin::set_password))
        .route("/api/admin/kiosks", get(admin::kiosks).post(admin::add_kiosk))
        .route("/api/admin/kiosks/{id}/pairing", post(admin::pairing))
        .route("/api/admin/kiosks/{id}/revoke", post(admin::revoke_kiosk))
        .route("/api/admin/rota/{compound}", get(admin::rota).put(admin::set_rota))
        .route("/api/admin/community", put(admin::set_community))
        .route("/api/admin/history", get(admin::history))
        .route("/api/admin/webhooks", get(admin::webhooks))
        .route("/api/admin/open311/keys", get(admin::keys).post(admin::issue_key))
        .route("/api/admin/open311/keys/{id}/revoke", post(admin::revoke_key))
        .route("/api/operator/backup", get(operator_backup))
        .route("/api/status", post(resident::status))
        .route("/api/status/rate", post(resident::rate))
        .route("/api/status/link", post(resident::link))
        .route("/api/attachments", post(resident::upload))
        .route("/api/incidents/{id}/attachments/{file}", get(resident::attachment))
        .route("/api/community", get(community))
        .route("/api/rules", get(rules))
        .route("/api/workers", get(workers))
        .route("/api/callbacks", get(callbacks::list))
        .route("/api/building-heads", get(building_heads))
        .route("/api/points", get(points::list).post(points::adjust))
        .route("/api/points/export", get(points::export))
        .route("/api/patrols", post(points::patrol))
        .route("/api/audit/summary", get(audit::summary))
        .route("/api/audit/incidents", get(audit::incidents))
        .route("/api/audit/incidents/{id}", get(audit::timeline))
        .route("/api/audit/export", get(audit::export))
        .route("/api/openapi.json", get(openapi::document))
        .nest("/open311", open311::routes())
        .merge(web::routes());
    let router = if metrics_public { router.route("/metrics", get(metrics)) } else { router };
    router.layer(axum::middleware::from_fn_with_state(app.clone(), guard::guard)).with_state(app)
}

/// Refusals at the HTTP edge, each with a status and a stable code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("this page is for other roles")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("requests from the pages of origin {0:?} are not allowed")]
    ForeignOrigin(String),
    #[error("bad query: {0}")]
    BadQuery(String),
    #[error("not a WebSocket handshake: {0}")]
    NotWebSocket(String),
    #[error("this server does not answer to that host name")]
    ForeignHost,
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body did not arrive in time")]
    SlowBody,
    #[error("too many connections {0}")]
    TooManyConnections(&'static str),
    #[error("the body is not what this route takes: {0}")]
    BadBody(String),
    #[error(transparent)]
    Office(#[from] crate::office::OfficeError),
    /// Refused by the incidents' rules, with the live feed's code.
    #[error("{1}")]
    Refused(ErrorCode, String),
    #[error("the attachment is not taken: {0}")]
    BadAttachment(String),
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> AppError {
        AppError::Auth(AuthError::Store(e))
    }
}

/// Which actions each role may take on each kind of incident: the board's buttons, derived from
/// the rule the server enforces.
#[utoipa::path(get, path = "/api/rules", tag = "community",
    responses((status = 200, description = "For each role, status, relation to the holder and kind of category, the client message types allowed", body = Vec<hongfan_shared::permissions::Permission>)))]
async fn rules() -> Json<Vec<hongfan_shared::permissions::Permission>> {
    static RULES: std::sync::LazyLock<Vec<hongfan_shared::permissions::Permission>> =
        std::sync::LazyLock::new(hongfan_shared::permissions::permissions);
    Json(RULES.clone())
}

/// The origin a page of ours was loaded from (checked by the guard), else the address it was
/// asked at: where a link for another device (a pairing code, a status page) points.
fn page_origin(headers: &HeaderMap) -> String {
    headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            Some(format!("http://{host}"))
        })
        .unwrap_or_default()
}

/// `link` as a QR code, in SVG.
fn qr_svg(link: &str) -> String {
    qrcode::QrCode::new(link.as_bytes())
        .map(|qr| {
            qr.render::<qrcode::render::svg::Color>()
                .min_dimensions(240, 240)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default()
}

/// Every refusal of the HTTP API: a stable `code`, English with the specifics, and what a
/// person reads.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorJson {
    /// One of the live feed's codes (`ErrorCode`) or the HTTP API's own (`Refusal`): the one
    /// table in `hongfan_shared::error` lists them all, with their statuses and Chinese.
    #[schema(schema_with = refusal_codes)]
    code: String,
    message: String,
    message_zh: &'static str,
}

/// Every code an `ErrorJson` may carry, from the table of refusals.
fn refusal_codes() -> utoipa::openapi::schema::Object {
    let mut codes: std::collections::BTreeSet<String> =
        Refusal::all().iter().map(|r| r.code().to_owned()).collect();
    for code in ErrorCode::all() {
        if let Ok(serde_json::Value::String(name)) = serde_json::to_value(code) {
            codes.insert(name);
        }
    }
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(codes))
        .build()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        // A refusal by the incidents' rules: the code and message the live feed would give.
        if let AppError::Refused(code, message) = &self {
            let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::CONFLICT);
            let message_zh = code.message_zh();
            let name = serde_json::to_value(code).ok();
            let code = name.as_ref().and_then(|n| n.as_str()).unwrap_or("refused").to_owned();
            let message = message.clone();
            return (status, Json(ErrorJson { code, message, message_zh })).into_response();
        }
        let refusal = match &self {
            AppError::Auth(AuthError::BadCredentials) => Refusal::BadCredentials,
            AppError::Auth(AuthError::Throttled(_)) => Refusal::Throttled,
            AppError::Auth(AuthError::NoSession) => Refusal::NoSession,
            AppError::Auth(AuthError::UnknownUser(_) | AuthError::UnknownKiosk(_)) => {
                Refusal::NoAccount
            }
            AppError::Auth(AuthError::Store(StoreError::Standby))
            | AppError::Office(OfficeError::Store(StoreError::Standby)) => Refusal::Standby,
            AppError::Auth(AuthError::Store(e)) | AppError::Office(OfficeError::Store(e)) => {
                tracing::error!(error = %e, "store error at the HTTP edge");
                Refusal::Unavailable
            }
            AppError::Auth(AuthError::NotYours) | AppError::Office(OfficeError::NotYours) => {
                Refusal::NotYours
            }
            AppError::Auth(AuthError::MustChangePassword) => Refusal::MustChangePassword,
            AppError::Auth(AuthError::PairingExpired) => Refusal::PairingExpired,
            AppError::Auth(AuthError::UserExists(_)) => Refusal::LoginTaken,
            AppError::Office(OfficeError::NotEverything) => Refusal::NotEverything,
            AppError::Office(OfficeError::UnknownCompound(_)) => Refusal::NoCompoundHere,
            AppError::Office(OfficeError::BadRota(_)) => Refusal::BadRota,
            AppError::Office(OfficeError::BadCommunity(_)) => Refusal::BadCommunity,
            AppError::Office(OfficeError::BadPoints(_)) => Refusal::BadPoints,
            AppError::Office(OfficeError::BadPatrol(_)) => Refusal::BadPatrol,
            AppError::Office(OfficeError::BadKeyName) => Refusal::BadKeyName,
            AppError::Office(OfficeError::BadWebhook) => Refusal::BadWebhook,
            AppError::Office(OfficeError::UnknownKey(_)) => Refusal::NoKey,
            AppError::Office(OfficeError::UnknownCommunity(_)) => Refusal::UnknownCommunity,
            AppError::BadBody(_) => Refusal::BadBody,
            AppError::BadAttachment(_) => Refusal::BadAttachment,
            AppError::Auth(AuthError::BadLogin) => Refusal::BadLogin,
            AppError::Auth(AuthError::WeakPassword) => Refusal::WeakPassword,
            AppError::Auth(AuthError::UnknownCompound(_)) => Refusal::UnknownCompound,
            AppError::Auth(AuthError::UnknownCommunity(_)) => Refusal::UnknownCommunity,
            AppError::Auth(AuthError::NotAStreetSupervisor) => Refusal::NotAStreetSupervisor,
            AppError::Auth(AuthError::CommunityNeeded) => Refusal::CommunityNeeded,
            AppError::Auth(AuthError::NoCompound) => Refusal::NoCompound,
            AppError::Auth(AuthError::NoBuilding) => Refusal::NoBuilding,
            AppError::Auth(AuthError::LongName) => Refusal::LongName,
            AppError::Auth(_) => Refusal::BadAccount,
            AppError::Forbidden => Refusal::Forbidden,
            AppError::NotFound => Refusal::NotFound,
            AppError::ForeignOrigin(_) => Refusal::ForeignOrigin,
            AppError::BadQuery(_) => Refusal::BadQuery,
            AppError::NotWebSocket(_) => Refusal::NotWebSocket,
            AppError::ForeignHost => Refusal::ForeignHost,
            AppError::TooLarge(_) => Refusal::TooLarge,
            AppError::SlowBody => Refusal::SlowBody,
            AppError::TooManyConnections(_) => Refusal::TooManyConnections,
            // Answered above, with the live feed's code.
            AppError::Refused(..) => Refusal::Forbidden,
        };
        let status = StatusCode::from_u16(refusal.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (code, zh) = (refusal.code(), refusal.message_zh());
        let message = match &self {
            AppError::Auth(AuthError::Store(StoreError::Standby))
            | AppError::Office(OfficeError::Store(StoreError::Standby)) => self.to_string(),
            AppError::Auth(AuthError::Store(_)) | AppError::Office(OfficeError::Store(_)) => {
                "the server cannot answer right now".to_owned()
            }
            other => other.to_string(),
        };
        let code = code.to_owned();
        let mut response =
            (status, Json(ErrorJson { code, message, message_zh: zh })).into_response();
        if let AppError::Auth(AuthError::Throttled(secs)) = self
            && let Ok(value) = secs.to_string().parse()
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// 200 while the store writes; 503 with the reason once it has stopped (the process is then
/// shutting down, for its supervisor to restart it).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    params(("role" = Option<String>, Query, description = "`primary`: answer 503 unless this server takes writes (for a proxy in front of a primary and standby pair)")),
    responses(
        (status = 200, description = "`ok seq=<last durable sequence number> role=<primary|standby>`", body = String, content_type = "text/plain"),
        (status = 503, description = "`store failed: <reason>`: the store stopped writing; or `standby seq=<n>` when `role=primary` was asked of a standby", body = String, content_type = "text/plain"),
    ))]
async fn healthz(
    State(app): State<App>,
    Query(asked): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let store = app.hub.store();
    if let Some(failure) = store.health().failure() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("store failed: {failure}\n"))
            .into_response();
    }
    let standby = store.is_standby();
    let role = if standby { "standby" } else { "primary" };
    match store.last_seq() {
        Ok(seq) if standby && asked.get("role").is_some_and(|r| r == "primary") => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("standby seq={seq}\n")).into_response()
        }
        Ok(seq) => (StatusCode::OK, format!("ok seq={seq} role={role}\n")).into_response(),
        Err(e) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {e}\n")).into_response()
        }
    }
}

/// A session cookie, kept by the browser as long as the session can live.
fn session_cookie(app: &App, name: &'static str, token: String) -> Cookie<'static> {
    let lifetime = app.accounts.session_policy().cookie_lifetime(name == KIOSK_COOKIE);
    let seconds = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    Cookie::build((name, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(app.secure_cookies)
        .path("/")
        .max_age(time::Duration::seconds(seconds))
        .build()
}

/// A person's session, fit for work: one whose password is a one-time code is refused until
/// it is changed.
async fn authenticated(app: &App, jar: &CookieJar) -> Result<Authenticated, AppError> {
    working(authenticated_by(app, jar, SESSION_COOKIE).await?)
}

fn working(auth: Authenticated) -> Result<Authenticated, AppError> {
    if auth.identity.must_change_password {
        return Err(AuthError::MustChangePassword.into());
    }
    Ok(auth)
}

/// Whoever the `cookie` session is, even one that must change its password first.
async fn authenticated_by(
    app: &App,
    jar: &CookieJar,
    cookie: &str,
) -> Result<Authenticated, AppError> {
    let token = jar.get(cookie).ok_or(AuthError::NoSession)?;
    Ok(app.accounts.authenticate(token.value()).await?)
}

/// Which session a request speaks for: `?as=kiosk` picks the kiosk's.
#[derive(Debug, Deserialize)]
struct As {
    #[serde(default, rename = "as")]
    who: Option<String>,
}

impl As {
    fn cookie(&self) -> &'static str {
        if self.who.as_deref() == Some("kiosk") { KIOSK_COOKIE } else { SESSION_COOKIE }
    }
}

/// A consistent backup of the running server, for `hongfan backup`. Authorised by the operator
/// token in the data folder: whoever can read that folder can copy it anyway.
#[utoipa::path(get, path = "/api/operator/backup", tag = "operations",
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "The backup, JSON lines: a header, the events, the account records, an end mark", body = String, content_type = "application/x-ndjson"),
        (status = 403, description = "`forbidden`: no or a wrong operator token", body = ErrorJson),
    ))]
async fn operator_backup(
    State(app): State<App>,
    _: extract::Operator,
) -> Result<Response, AppError> {
    let store = app.hub.store().clone();
    let path = store.dir().join(format!("backup-{}.tmp", rand::random::<u64>()));
    let written = path.clone();
    let carried = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&written)
            .map_err(|e| crate::store::StoreError::Write(e.to_string()))?;
        let mut out = std::io::BufWriter::new(file);
        store.backup(&mut out)
    })
    .await
    .map_err(|e| AuthError::Store(crate::store::StoreError::Write(e.to_string())))?
    .map_err(AuthError::from)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| AuthError::Store(crate::store::StoreError::Read(e.to_string())))?;
    // The open file stays readable once unlinked; nothing is left behind in the folder.
    let _ = tokio::fs::remove_file(&path).await;
    tracing::info!(seq = carried.seq, events = carried.events, "backup taken");
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct WhichCommunity {
    /// The community's id; without it, `default` (a deployment serving one community).
    id: Option<hongfan_shared::CommunityId>,
}

/// A community's compounds and categories: public, the kiosk shows them to anyone.
#[utoipa::path(get, path = "/api/community", tag = "community", params(WhichCommunity),
    responses(
        (status = 200, description = "The community", body = hongfan_shared::Community),
        (status = 404, description = "`not_found`: the deployment serves no community of that id", body = ErrorJson),
    ))]
async fn community(
    State(app): State<App>,
    Query(which): Query<WhichCommunity>,
) -> Result<Json<hongfan_shared::Community>, AppError> {
    let office = app.hub.store().office();
    let community = office.office.communities.get(&which.id.unwrap_or_default());
    Ok(Json(community.ok_or(AppError::NotFound)?.as_ref().clone()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerEntry {
    id: String,
    name: String,
    compounds: Vec<hongfan_shared::CompoundId>,
}

/// The grid workers, for the supervisors' filters.
#[utoipa::path(get, path = "/api/workers", tag = "community", security(("session" = [])),
    responses(
        (status = 200, description = "Every grid worker (of a compound leader's compounds)", body = Vec<WorkerEntry>),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: supervisors only", body = ErrorJson),
    ))]
async fn workers(
    State(app): State<App>,
    Supervisor(Authenticated { principal: who, .. }): Supervisor,
) -> Result<Json<Vec<WorkerEntry>>, AppError> {
    let workers = people_of(&app, &who, Role::Worker)?;
    Ok(Json(
        workers
            .into_iter()
            .map(|u| WorkerEntry { id: u.login, name: u.name, compounds: u.compounds })
            .collect(),
    ))
}

/// The people of `role` in any of `who`'s compounds.
fn people_of(
    app: &App,
    who: &hongfan_shared::Principal,
    role: Role,
) -> Result<Vec<hongfan_shared::office::Person>, AppError> {
    let users = app.accounts.users()?;
    Ok(users
        .into_iter()
        .filter(|u| u.role == role && u.compounds.iter().any(|c| who.may_act_in(c)))
        .collect())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeadEntry {
    id: String,
    name: String,
    compounds: Vec<hongfan_shared::CompoundId>,
    buildings: Vec<String>,
}

/// The active building heads of the caller's compounds, with their buildings: whom a dispute may
/// be handed to for mediation (调解).
#[utoipa::path(get, path = "/api/building-heads", tag = "community", security(("session" = [])),
    responses(
        (status = 200, description = "The active building heads of the caller's compounds", body = Vec<HeadEntry>),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: workers and supervisors only", body = ErrorJson),
    ))]
async fn building_heads(
    State(app): State<App>,
    Session(Authenticated { principal: who, .. }): Session,
) -> Result<Json<Vec<HeadEntry>>, AppError> {
    if !matches!(who.actor.role, Role::Worker | Role::Supervisor) {
        return Err(AppError::Forbidden);
    }
    let heads = people_of(&app, &who, Role::BuildingHead)?;
    Ok(Json(
        heads
            .into_iter()
            .filter(|u| !u.disabled)
            .map(|u| HeadEntry {
                id: u.login,
                name: u.name,
                compounds: u.compounds,
                buildings: u.buildings,
            })
            .collect(),
    ))
}

/// The live feed: protocol v2 over a WebSocket (`docs/protocol.md`). With `?as=kiosk` the
/// handshake uses the kiosk's cookie.
#[utoipa::path(get, path = "/ws", tag = "live",
    params(("as" = Option<String>, Query, description = "`kiosk` to speak as the paired kiosk")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "`not_websocket`: a plain request with a valid session", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`foreign_origin`", body = ErrorJson),
        (status = 429, description = "`too_many_connections`: the account's or the address's cap of live connections is reached", body = ErrorJson),
    ))]
async fn websocket(
    State(app): State<App>,
    headers: HeaderMap,
    jar: CookieJar,
    Query(who): Query<As>,
    Extension(ClientAddr(from)): Extension<ClientAddr>,
    slot: Option<Extension<crate::limits::ConnectionSlot>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    app.edge
        .origin_allowed(&headers)
        .inspect_err(|e| tracing::warn!(error = %e, "handshake refused"))?;
    let auth = working(authenticated_by(&app, &jar, who.cookie()).await?)?;
    let upgrade = upgrade.map_err(|e| AppError::NotWebSocket(e.body_text()))?;
    // Counted against the account's and the address's caps for the socket's whole life, and
    // so is the connection's slot under --max-connections.
    let admitted = app.hub.admit(&auth.subject, from).map_err(AppError::TooManyConnections)?;
    let held = (admitted, slot.map(|Extension(slot)| slot));
    let limits = app.hub.limits().clone();
    let hub = app.hub.clone();
    let tasks = hub.tasks().clone();
    Ok(upgrade
        .read_buffer_size(limits.read_buffer_bytes)
        // Frames written together go out in one write; the buffer keeps no more than that.
        .write_buffer_size(16 << 10)
        .max_frame_size(limits.max_frame_bytes)
        .max_message_size(limits.max_message_bytes)
        .on_upgrade(move |socket| tasks.track_future(crate::hub::serve(socket, hub, auth, held))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{MAX_NAME_CHARS, MIN_PASSWORD_CHARS};

    fn zh(error: AuthError) -> String {
        let response = AppError::Auth(error).into_response();
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 4096));
        let json: serde_json::Value = serde_json::from_slice(&body.unwrap()).unwrap();
        json["message_zh"].as_str().unwrap().to_owned()
    }

    /// The Chinese messages spell out the limits the English ones take from the constants.
    #[test]
    fn chinese_messages_name_the_real_limits() {
        assert!(zh(AuthError::WeakPassword).contains(&MIN_PASSWORD_CHARS.to_string()));
        assert!(zh(AuthError::LongName).contains(&MAX_NAME_CHARS.to_string()));
    }
}
