//! Sessions: a person's login, logout and own password; a kiosk's pairing; who a session is.

use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use hongfan_shared::protocol::Identity;
use serde::Deserialize;

use super::extract::AppJson;
use super::guard::ClientAddr;
use super::{
    App, AppError, As, ErrorJson, KIOSK_COOKIE, SESSION_COOKIE, authenticated_by, session_cookie,
};

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct LoginForm {
    login: String,
    password: String,
}

/// Logs a person in: sets the `hongfan_session` cookie (HttpOnly, SameSite=Strict). When the
/// answer says `must_change_password`, the password was a one-time code: nothing but
/// `POST /api/me/password`, `GET /api/me` and logout is answered until it is changed.
#[utoipa::path(post, path = "/api/login", tag = "sessions", request_body = LoginForm,
    responses(
        (status = 200, description = "Logged in; the `hongfan_session` cookie is set", body = Identity),
        (status = 400, description = "`bad_body`: not the JSON this route takes", body = ErrorJson),
        (status = 401, description = "`bad_credentials`", body = ErrorJson),
        (status = 408, description = "`slow_body`: the body did not arrive within `--body-timeout`", body = ErrorJson),
        (status = 413, description = "`too_large`: over 4 KiB", body = ErrorJson),
        (status = 429, description = "`throttled`: too many failed attempts; `Retry-After` says when to try again", body = ErrorJson),
    ))]
pub(super) async fn login(
    State(app): State<App>,
    Extension(ClientAddr(from)): Extension<ClientAddr>,
    jar: CookieJar,
    AppJson(form): AppJson<LoginForm>,
) -> Result<(CookieJar, Json<Identity>), AppError> {
    let login = app.accounts.loggable(&form.login);
    let token = app.accounts.login(&form.login, &form.password, from).await;
    let token =
        token.inspect_err(|e| tracing::info!(%login, %from, error = %e, "login refused"))?;
    let identity = app.accounts.authenticate(&token).await?.identity;
    tracing::info!(%login, %from, "logged in");
    Ok((jar.add(session_cookie(&app, SESSION_COOKIE, token)), Json(identity)))
}

/// Ends the person's session and clears its cookie. Answers 204 with or without a session.
#[utoipa::path(post, path = "/api/logout", tag = "sessions",
    responses((status = 204, description = "Logged out")))]
pub(super) async fn logout(
    State(app): State<App>,
    jar: CookieJar,
) -> Result<(StatusCode, CookieJar), AppError> {
    if let Some(token) = jar.get(SESSION_COOKIE) {
        app.accounts.logout(token.value()).await?;
    }
    Ok((StatusCode::NO_CONTENT, jar.remove(Cookie::build(SESSION_COOKIE).path("/"))))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct PairForm {
    /// `<kiosk id>.<secret>`: a pairing code from the admin page (its QR code opens
    /// `/kiosk#pair=<code>`; used once, valid 30 minutes), or a kiosk's credential as the first
    /// start or `hongfan kiosk add` printed it.
    credential: String,
}

/// Pairs a kiosk: sets the `hongfan_kiosk` cookie, which `/ws?as=kiosk` and `/api/me?as=kiosk`
/// use (kept apart from a person's `hongfan_session`).
#[utoipa::path(post, path = "/api/kiosk/pair", tag = "sessions", request_body = PairForm,
    responses(
        (status = 200, description = "Paired; the `hongfan_kiosk` cookie is set", body = Identity),
        (status = 400, description = "`bad_body`", body = ErrorJson),
        (status = 401, description = "`bad_credentials`, or `pairing_expired`: the pairing code was used or is older than 30 minutes", body = ErrorJson),
        (status = 408, description = "`slow_body`", body = ErrorJson),
        (status = 413, description = "`too_large`: over 4 KiB", body = ErrorJson),
        (status = 429, description = "`throttled`", body = ErrorJson),
    ))]
pub(super) async fn pair(
    State(app): State<App>,
    Extension(ClientAddr(from)): Extension<ClientAddr>,
    jar: CookieJar,
    AppJson(form): AppJson<PairForm>,
) -> Result<(CookieJar, Json<Identity>), AppError> {
    let token = app.accounts.pair(&form.credential, from).await?;
    let identity = app.accounts.authenticate(&token).await?.identity;
    tracing::info!(kiosk = %identity.id, "kiosk paired");
    Ok((jar.add(session_cookie(&app, KIOSK_COOKIE, token)), Json(identity)))
}

/// Who the session cookie belongs to: the person's, or with `?as=kiosk` the kiosk's.
#[utoipa::path(get, path = "/api/me", tag = "sessions",
    params(("as" = Option<String>, Query, description = "`kiosk` to ask about the kiosk's session")),
    responses(
        (status = 200, description = "The session's identity", body = Identity),
        (status = 401, description = "`no_session`", body = ErrorJson),
    ))]
pub(super) async fn me(
    State(app): State<App>,
    jar: CookieJar,
    Query(who): Query<As>,
) -> Result<Json<Identity>, AppError> {
    Ok(Json(authenticated_by(&app, &jar, who.cookie()).await?.identity))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct PasswordForm {
    current: String,
    /// At least 8 characters, not the current one.
    new: String,
}

/// Changes the logged-in person's own password (and so ends a one-time code's
/// `must_change_password`). Every other session of theirs ends; this one stays.
#[utoipa::path(post, path = "/api/me/password", tag = "sessions", security(("session" = [])),
    request_body = PasswordForm,
    responses(
        (status = 200, description = "Changed", body = Identity),
        (status = 400, description = "`bad_body`, or `bad_request`: the new password is too short", body = ErrorJson),
        (status = 401, description = "`no_session`, or `bad_credentials`: the current password is wrong or the new one is the same", body = ErrorJson),
        (status = 429, description = "`throttled`", body = ErrorJson),
    ))]
pub(super) async fn change_password(
    State(app): State<App>,
    Extension(ClientAddr(from)): Extension<ClientAddr>,
    jar: CookieJar,
    AppJson(form): AppJson<PasswordForm>,
) -> Result<Json<Identity>, AppError> {
    let me = authenticated_by(&app, &jar, SESSION_COOKIE).await?;
    app.accounts.change_own_password(&me, &form.current, &form.new, from).await?;
    tracing::info!(login = %me.identity.id, "password changed");
    let token = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()).unwrap_or_default();
    Ok(Json(app.accounts.authenticate(&token).await?.identity))
}
