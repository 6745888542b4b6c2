//! Running the office while the server runs: people, kiosks, the duty rota, the community and
//! the history of every change to them. For supervisors (a compound leader within their
//! compounds) and for the operator's token, which `hongfan user …` and `hongfan kiosk …` use.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use hongfan_shared::office::{OfficeEvent, Person, PersonView, Rota};
use hongfan_shared::protocol::OnDuty;
use hongfan_shared::{Community, CompoundId, Principal, Role, Timestamp};
use serde::{Deserialize, Serialize};

use super::extract::{Admin, AppJson};
use super::{App, AppError, ErrorJson};
use crate::auth::{AuthError, Kiosk, Subject};
use crate::office::NewPerson;

/// Whether `by` sees `person`: whoever runs a community everyone in it, a compound leader the
/// people of their compounds.
fn sees(by: &Principal, person: &Person) -> bool {
    by.runs(&person.community) || person.compounds.iter().any(|c| by.may_act_in(c))
}

/// The people's accounts `by` manages, by login.
#[utoipa::path(get, path = "/api/admin/people", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    responses(
        (status = 200, description = "The accounts (without passwords)", body = Vec<PersonView>),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: supervisors only; `must_change_password`", body = ErrorJson),
    ))]
pub async fn people(
    State(app): State<App>,
    Admin(by): Admin,
) -> Result<Json<Vec<PersonView>>, AppError> {
    let people = app.accounts.users()?;
    Ok(Json(people.iter().filter(|p| sees(&by, p)).map(PersonView::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewPersonForm {
    /// 2 to 32 lower-case letters, digits, `.`, `_` or `-`.
    login: String,
    #[serde(default)]
    name: String,
    role: Role,
    /// Whose office: by default the community its compounds belong to, or (a 书记, no
    /// compounds) the one community the supervisor adding it runs. Needed otherwise
    /// (`community_needed`).
    #[serde(default)]
    community: Option<hongfan_shared::CommunityId>,
    /// A street office's supervisor (no compounds): the further communities they run. Only
    /// someone who runs all of them may give them.
    #[serde(default)]
    communities: Vec<hongfan_shared::CommunityId>,
    /// A worker's or building head's compounds; none for a community supervisor (书记), theirs
    /// for a compound leader (网格长).
    #[serde(default)]
    compounds: Vec<CompoundId>,
    /// A building head's buildings.
    #[serde(default)]
    buildings: Vec<String>,
    /// A password for the account. Without one, a one-time code is made and answered, to be
    /// changed at the first login.
    #[serde(default)]
    password: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Added {
    person: PersonView,
    /// The one-time code, when no password was given: shown once, to hand over.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
}

/// Adds an account: a grid worker, a building head (楼长) with their buildings, or a supervisor.
#[utoipa::path(post, path = "/api/admin/people", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    request_body = NewPersonForm,
    responses(
        (status = 200, description = "Added", body = Added),
        (status = 400, description = "`bad_body`, `bad_request` (a bad login, a short password, no compound, no building, an unknown compound or community), `community_needed` (no compounds, and the adder runs several communities: say which)", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`: a compound outside those the supervisor manages", body = ErrorJson),
        (status = 409, description = "`exists`: the login is taken", body = ErrorJson),
    ))]
pub async fn add_person(
    State(app): State<App>,
    Admin(by): Admin,
    AppJson(form): AppJson<NewPersonForm>,
) -> Result<Json<Added>, AppError> {
    let new = NewPerson {
        login: form.login.trim().to_owned(),
        name: form.name,
        role: form.role,
        community: form.community,
        compounds: form.compounds,
        communities: form.communities,
        buildings: form.buildings,
    };
    let (person, code) = match form.password {
        Some(password) => (app.accounts.add_user(&by, new, &password).await?, None),
        None => {
            let (person, code) = app.accounts.add_user_with_code(&by, new).await?;
            (person, Some(code))
        }
    };
    tracing::info!(login = %person.login, by = %by.actor.id, "account added");
    Ok(Json(Added { person: PersonView::from(&person), code }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PersonEdit {
    name: String,
    #[serde(default)]
    compounds: Vec<CompoundId>,
    #[serde(default)]
    buildings: Vec<String>,
}

/// Changes an account's name, compounds and buildings (not its role or login). Its open
/// connections reconnect as what it is now (close code 4010).
#[utoipa::path(put, path = "/api/admin/people/{login}", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("login" = String, Path, description = "The account's login")),
    request_body = PersonEdit,
    responses(
        (status = 200, description = "Changed", body = PersonView),
        (status = 400, description = "`bad_body`, `bad_request`", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub async fn edit_person(
    State(app): State<App>,
    Admin(by): Admin,
    Path(login): Path<String>,
    AppJson(form): AppJson<PersonEdit>,
) -> Result<Json<PersonView>, AppError> {
    let PersonEdit { name, compounds, buildings } = form;
    let person = app.accounts.update_person(&by, &login, name, compounds, buildings).await?;
    tracing::info!(%login, by = %by.actor.id, "account changed");
    Ok(Json(PersonView::from(&person)))
}

/// Disables an account: its sessions end and its open connections close with 4001.
#[utoipa::path(post, path = "/api/admin/people/{login}/disable", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "Disabled", body = PersonView),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours` (also: one's own account)", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub async fn disable_person(
    State(app): State<App>,
    Admin(by): Admin,
    Path(login): Path<String>,
) -> Result<Json<PersonView>, AppError> {
    let person = app.accounts.disable(&by, &login).await?;
    tracing::info!(%login, by = %by.actor.id, "account disabled");
    Ok(Json(PersonView::from(&person)))
}

/// Enables a disabled account (with the password it had).
#[utoipa::path(post, path = "/api/admin/people/{login}/enable", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "Enabled", body = PersonView),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub async fn enable_person(
    State(app): State<App>,
    Admin(by): Admin,
    Path(login): Path<String>,
) -> Result<Json<PersonView>, AppError> {
    let person = app.accounts.enable(&by, &login).await?;
    tracing::info!(%login, by = %by.actor.id, "account enabled");
    Ok(Json(PersonView::from(&person)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OneTimeCode {
    /// The account's password until it is changed at its next login: shown once.
    code: String,
}

/// Resets a forgotten password: the account gets a one-time code (answered once, to hand over)
/// that must be changed at the next login. Every session of the account ends.
#[utoipa::path(post, path = "/api/admin/people/{login}/reset", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("login" = String, Path, description = "The account's login")),
    responses(
        (status = 200, description = "Reset", body = OneTimeCode),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub async fn reset_password(
    State(app): State<App>,
    Admin(by): Admin,
    Path(login): Path<String>,
) -> Result<Json<OneTimeCode>, AppError> {
    let code = app.accounts.reset_password(&by, &login).await?;
    tracing::info!(%login, by = %by.actor.id, "password reset");
    Ok(Json(OneTimeCode { code }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordSet {
    /// At least 8 characters.
    password: String,
}

/// Sets an account's password (and enables it), as `hongfan user passwd` does. Every session
/// of the account ends.
#[utoipa::path(post, path = "/api/admin/people/{login}/password", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("login" = String, Path, description = "The account's login")),
    request_body = PasswordSet,
    responses(
        (status = 200, description = "Set", body = PersonView),
        (status = 400, description = "`bad_body`, `bad_request`: too short", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub async fn set_password(
    State(app): State<App>,
    Admin(by): Admin,
    Path(login): Path<String>,
    AppJson(form): AppJson<PasswordSet>,
) -> Result<Json<PersonView>, AppError> {
    let person = app.accounts.set_password(&by, &login, &form.password).await?;
    tracing::info!(%login, by = %by.actor.id, "password set");
    Ok(Json(PersonView::from(&person)))
}

/// A kiosk as the admin page shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KioskView {
    id: String,
    compound: CompoundId,
    name: String,
    revoked: bool,
    /// Until when a pairing code made for it may be used, while one is waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pairing_expires: Option<Timestamp>,
    /// Its live connections now (0: offline).
    online: usize,
    /// When it was last connected or used, as far as the server knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_contact: Option<Timestamp>,
}

fn kiosk_view(app: &App, kiosk: &Kiosk) -> KioskView {
    let subject = Subject::Kiosk(kiosk.id.clone());
    let (online, seen) = app.hub.presence(&subject);
    let used = app.accounts.last_used(&subject);
    KioskView {
        id: kiosk.id.clone(),
        compound: kiosk.compound.clone(),
        name: kiosk.name.clone(),
        revoked: kiosk.revoked,
        pairing_expires: kiosk.pairing.as_ref().map(|p| p.expires),
        online,
        last_contact: seen.max(used),
    }
}

/// The kiosks `by` manages, with whether each is online now and its last contact.
#[utoipa::path(get, path = "/api/admin/kiosks", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    responses(
        (status = 200, description = "The kiosks", body = Vec<KioskView>),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`", body = ErrorJson),
    ))]
pub async fn kiosks(
    State(app): State<App>,
    Admin(by): Admin,
) -> Result<Json<Vec<KioskView>>, AppError> {
    let kiosks = app.accounts.kiosks()?;
    Ok(Json(
        kiosks.iter().filter(|k| by.may_act_in(&k.compound)).map(|k| kiosk_view(&app, k)).collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewKioskForm {
    compound: CompoundId,
    /// Shown on the admin page; the station's name when empty.
    #[serde(default)]
    name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KioskAdded {
    kiosk: KioskView,
    /// `<kiosk id>.<secret>`: pairs a device until the kiosk is revoked (shown once). The admin
    /// page pairs with a one-time code instead.
    credential: String,
}

/// Adds a kiosk for a compound's station.
#[utoipa::path(post, path = "/api/admin/kiosks", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    request_body = NewKioskForm,
    responses(
        (status = 200, description = "Added", body = KioskAdded),
        (status = 400, description = "`bad_body`, `bad_request`: unknown compound, long name", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
    ))]
pub async fn add_kiosk(
    State(app): State<App>,
    Admin(by): Admin,
    AppJson(form): AppJson<NewKioskForm>,
) -> Result<Json<KioskAdded>, AppError> {
    let (kiosk, credential) = app.accounts.add_kiosk(&by, &form.compound, &form.name).await?;
    tracing::info!(kiosk = %kiosk.id, by = %by.actor.id, "kiosk added");
    Ok(Json(KioskAdded { kiosk: kiosk_view(&app, &kiosk), credential }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PairingCode {
    /// `<kiosk id>.<code>`: used once, within 30 minutes.
    code: String,
    /// The page that pairs with it: `<origin>/kiosk#pair=<code>`.
    link: String,
    expires: Timestamp,
    /// The link as a QR code (SVG), to scan with the kiosk's camera or a phone.
    qr_svg: String,
}

/// A one-time pairing code for a kiosk (replacing any earlier one), with its link as a QR
/// code. Opening the link on the device pairs it; the code is then used up.
#[utoipa::path(post, path = "/api/admin/kiosks/{id}/pairing", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("id" = String, Path, description = "The kiosk's id, for example `kiosk-1`")),
    responses(
        (status = 200, description = "A new pairing code", body = PairingCode),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub async fn pairing(
    State(app): State<App>,
    Admin(by): Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PairingCode>, AppError> {
    let (code, expires) = app.accounts.pairing_code(&by, &id).await?;
    let link = format!("{}/kiosk#pair={code}", super::page_origin(&headers));
    let qr_svg = super::qr_svg(&link);
    tracing::info!(kiosk = %id, by = %by.actor.id, "pairing code made");
    Ok(Json(PairingCode { code, link, expires, qr_svg }))
}

/// Revokes a kiosk: its sessions end and its open connections close with 4001. A new pairing
/// code brings it back.
#[utoipa::path(post, path = "/api/admin/kiosks/{id}/revoke", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("id" = String, Path, description = "The kiosk's id, for example `kiosk-1`")),
    responses(
        (status = 200, description = "Revoked", body = KioskView),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub async fn revoke_kiosk(
    State(app): State<App>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> Result<Json<KioskView>, AppError> {
    let kiosk = app.accounts.revoke(&by, &id).await?;
    tracing::info!(kiosk = %id, by = %by.actor.id, "kiosk revoked");
    Ok(Json(kiosk_view(&app, &kiosk)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Worker {
    login: String,
    name: String,
}

/// A compound's rota with what the page needs beside it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotaView {
    compound: CompoundId,
    rota: Rota,
    /// The compound's active grid workers, who may be put on the rota.
    workers: Vec<Worker>,
    /// Who is on duty now, by the rota and the workers' own switches.
    on_duty: Vec<OnDuty>,
}

fn rota_view(app: &App, compound: CompoundId) -> RotaView {
    let office = app.hub.store().office();
    let workers = office
        .office
        .workers_of(&compound)
        .into_iter()
        .filter_map(|login| office.office.people.get(&login))
        .map(|p| Worker { login: p.login.clone(), name: p.name.clone() })
        .collect();
    let on_duty =
        app.hub.on_duty().into_iter().filter(|d| d.compounds.contains(&compound)).collect();
    let rota = office.office.rotas.get(&compound).cloned().unwrap_or_default();
    RotaView { compound, rota, workers, on_duty }
}

/// A compound's weekly duty rota (排班): each weekday's shifts (Monday first; minutes after
/// midnight, Asia/Shanghai), who is on duty when no shift covers the time (nights, weekends),
/// and dates whose shifts replace the weekday's (holidays, swaps).
#[utoipa::path(get, path = "/api/admin/rota/{compound}", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("compound" = String, Path, description = "The compound's id")),
    responses(
        (status = 200, description = "The rota", body = RotaView),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
        (status = 404, description = "`not_found`: no such compound", body = ErrorJson),
    ))]
pub async fn rota(
    State(app): State<App>,
    Admin(by): Admin,
    Path(compound): Path<String>,
) -> Result<Json<RotaView>, AppError> {
    let compound = CompoundId(compound);
    if app.hub.store().office().community_of(&compound).is_none() {
        return Err(AppError::NotFound);
    }
    if !by.may_act_in(&compound) {
        return Err(crate::office::OfficeError::NotYours.into());
    }
    Ok(Json(rota_view(&app, compound)))
}

/// Replaces a compound's rota. It decides who is alerted from the moment it is stored; the
/// workers' duty switches stay as overrides.
#[utoipa::path(put, path = "/api/admin/rota/{compound}", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("compound" = String, Path, description = "The compound's id")),
    request_body = Rota,
    responses(
        (status = 200, description = "Stored", body = RotaView),
        (status = 400, description = "`bad_body`, `bad_rota`: a shift that ends before it starts, a worker who is not the compound's, a date that is not YYYY-MM-DD", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
        (status = 404, description = "`not_found`: no such compound", body = ErrorJson),
    ))]
pub async fn set_rota(
    State(app): State<App>,
    Admin(by): Admin,
    Path(compound): Path<String>,
    AppJson(rota): AppJson<Rota>,
) -> Result<Json<RotaView>, AppError> {
    let compound = CompoundId(compound);
    crate::office::set_rota(app.hub.store(), &by, compound.clone(), rota).await?;
    tracing::info!(compound = %compound.0, by = %by.actor.id, "rota changed");
    Ok(Json(rota_view(&app, compound)))
}

/// Replaces the community: compounds with their buildings and units, categories with their
/// targets and phrases. New reports use it at once; an incident keeps the targets it was
/// reported with. Compounds and categories cannot be removed (incidents refer to them): a
/// category is retired instead. Community supervisors only.
#[utoipa::path(put, path = "/api/admin/community", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    request_body = Community,
    responses(
        (status = 200, description = "Stored; every connection is told with a `community` message", body = Community),
        (status = 400, description = "`bad_body`, `bad_community`: what rule it breaks", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: community supervisors only", body = ErrorJson),
    ))]
pub async fn set_community(
    State(app): State<App>,
    Admin(by): Admin,
    AppJson(community): AppJson<Community>,
) -> Result<Json<Community>, AppError> {
    let id = community.id.clone();
    crate::office::set_community(app.hub.store(), &by, community).await?;
    tracing::info!(by = %by.actor.id, community = %id, "community changed");
    let office = app.hub.store().office();
    Ok(Json(office.office.communities.get(&id).ok_or(AppError::NotFound)?.as_ref().clone()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only changes before this sequence number (the next page).
    #[serde(default)]
    before: Option<u64>,
    /// At most this many (default 100, at most 500).
    #[serde(default)]
    limit: Option<usize>,
    /// Also the building heads' points and patrol rounds (`award`, `patrol`), which the audit
    /// page's 楼长积分 lists: without it, only the office's own changes (people, kiosks, rotas,
    /// the community).
    #[serde(default)]
    points: bool,
}

/// Every change to the office, newest first: who, when, the record before and after (never a
/// password or secret). A compound leader reads what concerns their compounds. The building
/// heads' points and patrols only with `points=true`.
#[utoipa::path(get, path = "/api/admin/history", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "The changes", body = Vec<OfficeEvent>),
        (status = 400, description = "`bad_query`", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`", body = ErrorJson),
    ))]
pub async fn history(
    State(app): State<App>,
    Admin(by): Admin,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<OfficeEvent>>, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadQuery(e.body_text()))?;
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let store = app.hub.store().clone();
    let events = tokio::task::spawn_blocking(move || {
        crate::office::history(&store, &by, query.before, limit, query.points)
    })
    .await
    .map_err(|e| crate::store::StoreError::Read(e.to_string()))??;
    Ok(Json(events))
}

/// The outbound webhooks (`--webhooks`) and how their deliveries stand: waiting, delivered,
/// failed attempts, the last error. Empty when none are configured.
#[utoipa::path(get, path = "/api/admin/webhooks", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    responses(
        (status = 200, description = "Each hook with its delivery state (never its secret)", body = Vec<crate::outbox::HookState>),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`", body = ErrorJson),
    ))]
pub async fn webhooks(
    State(app): State<App>,
    Admin(by): Admin,
) -> Result<Json<Vec<crate::outbox::HookState>>, AppError> {
    let states = app.webhooks.states();
    // A hook for a whole community is seen by whoever runs it; the others by whoever manages
    // all of its compounds.
    let mine = |s: &crate::outbox::HookState| {
        by.runs(&s.community)
            || (!s.compounds.is_empty() && s.compounds.iter().all(|c| by.may_act_in(c)))
    };
    Ok(Json(states.into_iter().filter(mine).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewKeyForm {
    /// Who holds it, as the timeline names the reporter: 街道办, 12345 热线…
    name: String,
    /// Its community; without it, the one this server serves (`community_needed` when several).
    #[serde(default)]
    community: Option<hongfan_shared::CommunityId>,
    /// 上级派单: a platform's key, whose work orders are answered at its webhook.
    #[serde(default)]
    upstream: Option<UpstreamForm>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpstreamForm {
    source: hongfan_shared::Source,
    /// Where each change of its orders is POSTed as signed JSON (http or https).
    webhook: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyIssued {
    key: hongfan_shared::office::ApiKey,
    /// `<key id>.<secret>`: what the other system sends as `api_key` (shown once).
    api_key: String,
    /// A platform's: the HMAC-SHA256 key its deliveries are signed with (shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<String>,
}

/// 接口密钥: the API keys of the communities one runs (never their secrets).
#[utoipa::path(get, path = "/api/admin/open311/keys", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    responses(
        (status = 200, description = "Every key, revoked ones too", body = Vec<hongfan_shared::office::ApiKey>),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`", body = ErrorJson),
    ))]
pub async fn keys(
    State(app): State<App>,
    Admin(by): Admin,
) -> Json<Vec<hongfan_shared::office::ApiKey>> {
    Json(crate::office::keys::keys(app.hub.store(), &by))
}

/// Issues an API key for Open311's `POST requests` (docs/open311.md).
#[utoipa::path(post, path = "/api/admin/open311/keys", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    request_body = NewKeyForm,
    responses(
        (status = 200, description = "Issued: the key is in this answer only", body = KeyIssued),
        (status = 400, description = "`bad_body`, `bad_key_name`, `bad_webhook`, `community_needed`, `bad_request`: unknown community", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`: a community one does not run", body = ErrorJson),
    ))]
pub async fn issue_key(
    State(app): State<App>,
    Admin(by): Admin,
    AppJson(form): AppJson<NewKeyForm>,
) -> Result<Json<KeyIssued>, AppError> {
    let store = app.hub.store();
    let community = match form.community {
        Some(community) => community,
        None => {
            let office = store.office();
            let mut ids = office.office.communities.keys();
            match (ids.next(), ids.next()) {
                (Some(only), None) => only.clone(),
                _ => return Err(AuthError::CommunityNeeded.into()),
            }
        }
    };
    let upstream = form.upstream.map(|u| (u.source, u.webhook));
    let issued = crate::office::keys::issue(store, &by, &community, &form.name, upstream).await?;
    tracing::info!(key = %issued.key.id, by = %by.actor.id, "API key issued");
    let crate::office::keys::Issued { key, api_key, webhook_secret } = issued;
    Ok(Json(KeyIssued { key, api_key, webhook_secret }))
}

/// Revokes an API key: from now on Open311 refuses it (403).
#[utoipa::path(post, path = "/api/admin/open311/keys/{id}/revoke", tag = "admin",
    security(("session" = []), ("operator_token" = [])),
    params(("id" = String, Path, description = "The key's id, for example `key-1`")),
    responses(
        (status = 200, description = "Revoked", body = hongfan_shared::office::ApiKey),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub async fn revoke_key(
    State(app): State<App>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> Result<Json<hongfan_shared::office::ApiKey>, AppError> {
    let key = crate::office::keys::revoke(app.hub.store(), &by, &id).await?;
    tracing::info!(key = %id, by = %by.actor.id, "API key revoked");
    Ok(Json(key))
}
