//! The HTTP API described as OpenAPI 3.1, served at `/api/openapi.json`. The description is
//! derived from the handlers' own annotations and types, and `tests/tests/openapi.rs` calls every
//! route it lists and checks each answer against it.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, audit, callbacks, open311, points, resident, sessions};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hongfan (红帆)",
        description = "The HTTP side of hongfan: sessions, kiosk pairing, the community, the resident's status page and attachments, the supervisors' audit, running the office (people, kiosks, the duty rota, the community, their history, Open311's API keys), operations; and Open311 GeoReport v2 at /open311 (docs/open311.md), whose answers are JSON or XML as the path's extension says and whose refusals are in Open311's shape. The live feed is the WebSocket at /ws, described in docs/protocol.md. Every refusal is JSON: {code, message, message_zh}.",
    ),
    paths(
        super::healthz,
        super::metrics,
        super::websocket,
        sessions::login,
        sessions::logout,
        sessions::pair,
        sessions::me,
        sessions::change_password,
        super::community,
        super::rules,
        super::workers,
        super::building_heads,
        callbacks::list,
        points::list,
        points::export,
        points::adjust,
        points::patrol,
        admin::people,
        admin::add_person,
        admin::edit_person,
        admin::disable_person,
        admin::enable_person,
        admin::reset_password,
        admin::set_password,
        admin::kiosks,
        admin::add_kiosk,
        admin::pairing,
        admin::revoke_kiosk,
        admin::rota,
        admin::set_rota,
        admin::set_community,
        admin::history,
        admin::webhooks,
        admin::keys,
        admin::issue_key,
        admin::revoke_key,
        super::operator_backup,
        resident::status,
        resident::rate,
        resident::link,
        resident::upload,
        resident::attachment,
        audit::summary,
        audit::incidents,
        audit::timeline,
        audit::export,
        open311::discovery,
        open311::services,
        open311::definition,
        open311::requests,
        open311::post_request,
        open311::one_request,
        document,
    ),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// How callers prove who they are: the session cookies, and the operator's bearer token.
struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::SESSION_COOKIE,
                "Set by POST /api/login",
            ))),
        );
        components.add_security_scheme(
            "kiosk_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::KIOSK_COOKIE,
                "Set by POST /api/kiosk/pair",
            ))),
        );
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token in the data folder's operator.token"))
                    .build(),
            ),
        );
    }
}

/// This description.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description of the HTTP API", body = Object)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
