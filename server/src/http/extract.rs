//! Who is asking, and what they sent, as axum extractors: a handler names what it needs
//! (`Session`, `Supervisor`, `BuildingHead`, `Admin`, `Operator`, `Device`, `AppJson<T>`) in its
//! arguments and keeps only its business lines; each refusal is the `AppError` the handler
//! would have given.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum_extra::extract::cookie::CookieJar;
use hongfan_shared::{Principal, Role};

use super::{
    App, AppError, KIOSK_COOKIE, SESSION_COOKIE, authenticated, authenticated_by, operator, working,
};
use crate::auth::Authenticated;

/// A person's session, fit for work (a one-time password changed).
#[derive(Debug)]
pub struct Session(pub Authenticated);

/// A supervisor's session (书记 or 网格长).
#[derive(Debug)]
pub struct Supervisor(pub Authenticated);

/// A building head's session (楼长).
#[derive(Debug)]
pub struct BuildingHead(pub Authenticated);

/// The operator (the token in the data folder, for the command line) or a supervisor.
#[derive(Debug)]
pub struct Admin(pub Principal);

/// The operator alone: the token in the data folder.
#[derive(Debug)]
pub struct Operator;

/// A person fit for work, or else the paired kiosk (its own cookie): whoever may attach a file
/// to a report or see one.
#[derive(Debug)]
pub struct Device(pub Principal);

/// A JSON body of the route's type, or `bad_body`.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl FromRequestParts<App> for Session {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        let jar = CookieJar::from_headers(&parts.headers);
        Ok(Session(authenticated(app, &jar).await?))
    }
}

impl FromRequestParts<App> for Supervisor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        let Session(auth) = Session::from_request_parts(parts, app).await?;
        match auth.principal.actor.role {
            Role::Supervisor => Ok(Supervisor(auth)),
            _ => Err(AppError::Forbidden),
        }
    }
}

impl FromRequestParts<App> for BuildingHead {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        let Session(auth) = Session::from_request_parts(parts, app).await?;
        match auth.principal.actor.role {
            Role::BuildingHead => Ok(BuildingHead(auth)),
            _ => Err(AppError::Forbidden),
        }
    }
}

impl FromRequestParts<App> for Operator {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        if operator(app, &parts.headers) { Ok(Operator) } else { Err(AppError::Forbidden) }
    }
}

impl FromRequestParts<App> for Device {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let session = match authenticated_by(app, &jar, SESSION_COOKIE).await {
            Ok(person) => working(person),
            Err(_) => authenticated_by(app, &jar, KIOSK_COOKIE).await,
        }?;
        Ok(Device(session.principal))
    }
}

impl FromRequestParts<App> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, AppError> {
        if operator(app, &parts.headers) {
            return Ok(Admin(Principal::operator()));
        }
        let Supervisor(auth) = Supervisor::from_request_parts(parts, app).await?;
        Ok(Admin(auth.principal))
    }
}

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(AppJson(value)),
            Err(e) => Err(AppError::BadBody(e.body_text())),
        }
    }
}
