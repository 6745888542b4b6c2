//! What a resident reaches without an account: the private status page's API (the ticket and
//! the slip's code open one report: its status, who has it, what was done, the rating), and the
//! photos and voice notes attached to reports (uploaded by a kiosk or a person, seen by those who
//! may see the report).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use hongfan_shared::audit::Rating;
use hongfan_shared::protocol::ErrorCode;
use hongfan_shared::view::{self, ResidentStatus};
use hongfan_shared::{
    Action, Attachment, AttachmentKind, CommunityId, Incident, IncidentId, Principal, Ticket,
};
use serde::{Deserialize, Serialize};

use super::extract::{AppJson, Device};
use super::guard::ClientAddr;
use super::{App, AppError, ErrorJson, page_origin, qr_svg};
use crate::store::attachments::{self, MAX_BYTES, UploadError};

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Slip {
    /// The ticket number, as printed (`0042`).
    ticket: String,
    /// The slip's private code (ten digits), as in the status link `/s#<ticket>-<key>`.
    key: String,
    /// Whose ticket: without it, `default` (a deployment serving one community). The status
    /// link carries it after the code, `/s#<ticket>-<key>-<community>`, for any other.
    #[serde(default)]
    community: CommunityId,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct SlipRating {
    ticket: String,
    key: String,
    #[serde(default)]
    community: CommunityId,
    /// 满意吗？
    rating: Rating,
    /// 解决了吗？ `false` starts a second handling (二次办理). Absent means solved.
    #[serde(default = "yes")]
    solved: bool,
}

fn yes() -> bool {
    true
}

/// The incident a slip opens, or `not_found` (for a wrong code as for a missing ticket). A
/// right code is never refused: the resident's own page may ask again and again. A wrong one
/// counts against the client address and the ticket (the ticket is sequential, the code is
/// not); once either has spent its allowance, a wrong code is answered only after a wait, so a
/// guesser learns nothing faster than the allowance allows, and no neighbour behind the same
/// address is locked out of their own ticket.
async fn opened(app: &App, from: std::net::IpAddr, slip: &Slip) -> Result<Incident, AppError> {
    let id =
        Ticket::parse(&slip.ticket).and_then(|n| app.hub.store().find_ticket(&slip.community, n));
    let keys = crate::limits::ProofKeys {
        who: crate::limits::address_key(from),
        ticket: crate::limits::ticket_key(id, &slip.community, &slip.ticket),
    };
    let check = app.hub.proofs().on_status_page(&keys);
    let found = match id {
        Some(id) => app.hub.store().incident(id).await?,
        None => None,
    };
    match found.filter(|i| hongfan_shared::lifecycle::holds_key(i, Some(&slip.key))) {
        Some(incident) => Ok(incident),
        None => {
            let wait = check.wrong();
            tokio::time::sleep(wait).await;
            Err(AppError::Refused(ErrorCode::NotFound, "no ticket with that code".into()))
        }
    }
}

/// The status of the report a slip belongs to (the status page asks again every few seconds).
#[utoipa::path(post, path = "/api/status", tag = "resident", request_body = Slip,
    responses(
        (status = 200, description = "Where the report is", body = ResidentStatus),
        (status = 400, description = "`bad_body`", body = ErrorJson),
        (status = 404, description = "`not_found`: no such ticket, or not that code", body = ErrorJson),
    ))]
pub(super) async fn status(
    State(app): State<App>,
    Extension(ClientAddr(from)): Extension<ClientAddr>,
    AppJson(form): AppJson<Slip>,
) -> Result<Json<ResidentStatus>, AppError> {
    let incident = opened(&app, from, &form).await?;
    Ok(Json(view::resident_status(&incident)))
}

/// The resident's answer to 解决了吗？满意吗？ once the report is resolved, once per handling.
/// Not solved opens it again as a second handling (二次办理).
#[utoipa::path(post, path = "/api/status/rate", tag = "resident", request_body = SlipRating,
    responses(
        (status = 200, description = "Answered; the status as it is now (open again when not solved)", body = ResidentStatus),
        (status = 400, description = "`bad_body`", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
        (status = 409, description = "`not_resolved`, `already_rated`, `cancelled`", body = ErrorJson),
    ))]
pub(super) async fn rate(
    State(app): State<App>,
    Extension(ClientAddr(from)): Extension<ClientAddr>,
    AppJson(form): AppJson<SlipRating>,
) -> Result<Json<ResidentStatus>, AppError> {
    let SlipRating { ticket, key, community, rating, solved } = form;
    let incident = opened(&app, from, &Slip { ticket, key: key.clone(), community }).await?;
    let action = Action::Rate { rating, key: Some(key), solved };
    let (_, rated) = app
        .hub
        .store()
        .act(&Principal::resident(), incident.id, action)
        .await
        .map_err(|e| refused(&e))?;
    tracing::info!(incident = rated.id.0, "rated on the status page");
    Ok(Json(view::resident_status(&rated)))
}

fn refused(e: &crate::store::StoreError) -> AppError {
    let body = crate::hub::wire_error(e);
    AppError::Refused(body.code, body.message)
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct StatusLink {
    /// The private status page of this report: `<origin>/s#<ticket>-<key>`. The code is in the
    /// fragment, which browsers never send to a server or put in a `Referer`.
    link: String,
    /// The link as a QR code (SVG), for the kiosk's screen and the printed slip.
    qr_svg: String,
}

/// The status link of a slip, and its QR code.
#[utoipa::path(post, path = "/api/status/link", tag = "resident", request_body = Slip,
    responses(
        (status = 200, description = "The link and its QR code", body = StatusLink),
        (status = 400, description = "`bad_body`", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub(super) async fn link(
    State(app): State<App>,
    Extension(ClientAddr(from)): Extension<ClientAddr>,
    headers: HeaderMap,
    AppJson(slip): AppJson<Slip>,
) -> Result<Json<StatusLink>, AppError> {
    let incident = opened(&app, from, &slip).await?;
    let mut link = format!("{}/s#{}-{}", page_origin(&headers), incident.ticket.0, slip.key);
    if slip.community != CommunityId::default() {
        link = format!("{link}-{}", slip.community);
    }
    Ok(Json(StatusLink { qr_svg: qr_svg(&link), link }))
}

/// Stores a photo (JPEG: its metadata, such as the location, is removed) or a voice note (WebM,
/// Ogg or MP4 audio), up to 1 MiB, and names it; a report then lists it in `attachments`. The
/// body is the file itself; its type is read from its bytes.
#[utoipa::path(post, path = "/api/attachments", tag = "resident",
    security(("session" = []), ("kiosk_session" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The photo or voice note"),
    responses(
        (status = 200, description = "Stored (durably); put it in the report's `attachments`", body = Attachment),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 413, description = "`too_large`: over 2 MiB", body = ErrorJson),
        (status = 415, description = "`bad_attachment`: not a JPEG or a voice note, or over 1 MiB", body = ErrorJson),
        (status = 429, description = "`rate_limited`: too many uploads from this account", body = ErrorJson),
    ))]
pub(super) async fn upload(
    State(app): State<App>,
    Device(by): Device,
    bytes: Bytes,
) -> Result<Json<Attachment>, AppError> {
    if !app.hub.action_limiter().admit(&by.actor.id) {
        let why = "too many uploads from this account; wait a minute";
        return Err(AppError::Refused(ErrorCode::RateLimited, why.into()));
    }
    if bytes.is_empty() || bytes.len() > MAX_BYTES {
        return Err(AppError::BadAttachment(UploadError::Size.to_string()));
    }
    let (kind, mime) =
        attachments::sniff(&bytes).ok_or(AppError::BadAttachment(UploadError::Kind.to_string()))?;
    let store = app.hub.store().clone();
    let stored = tokio::task::spawn_blocking(move || {
        let bytes = match kind {
            AttachmentKind::Photo => attachments::strip_photo(bytes.to_vec())?,
            AttachmentKind::Voice => bytes.to_vec(),
        };
        let id = store.attach(&bytes)?;
        Ok::<_, UploadError>(Attachment {
            id,
            kind,
            mime: mime.to_owned(),
            bytes: bytes.len() as u64,
        })
    })
    .await
    .map_err(|e| AppError::from(crate::store::StoreError::Write(e.to_string())))?;
    let attachment = stored.map_err(|e| match e {
        UploadError::Store(e) => AppError::from(e),
        other => AppError::BadAttachment(other.to_string()),
    })?;
    tracing::info!(by = %by.actor.id, kind = ?attachment.kind, bytes = attachment.bytes, "attachment stored");
    Ok(Json(attachment))
}

/// One attachment of one incident (the resident's photo or voice note, or the photo of the
/// result taken when it was resolved), for those who may see that incident's description (a
/// private category's only to its holder and the supervisors).
#[utoipa::path(get, path = "/api/incidents/{id}/attachments/{file}", tag = "resident",
    security(("session" = []), ("kiosk_session" = [])),
    params(
        ("id" = u64, Path, description = "The incident's id"),
        ("file" = String, Path, description = "The attachment's id (its SHA-256)"),
    ),
    responses(
        (status = 200, description = "The file, with the type read from its bytes", content(
            (Vec<u8> = "image/jpeg"), (Vec<u8> = "audio/webm"), (Vec<u8> = "audio/ogg"), (Vec<u8> = "audio/mp4"),
        )),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 404, description = "`not_found`: no such incident or attachment, or not yours to see", body = ErrorJson),
    ))]
pub(super) async fn attachment(
    State(app): State<App>,
    Device(by): Device,
    Path((id, file)): Path<(u64, String)>,
) -> Result<Response, AppError> {
    let store = app.hub.store().clone();
    let incident = store.incident(IncidentId(id)).await?.ok_or(AppError::NotFound)?;
    let office = store.office();
    let community = office.community_of(&incident.report.compound).ok_or(AppError::NotFound)?;
    let seen = view::incident(&by, &incident, community).ok_or(AppError::NotFound)?;
    let attached = seen.report.attachments.into_iter().chain(seen.proof).find(|a| a.id == file);
    let attached = attached.ok_or(AppError::NotFound)?;
    let bytes = tokio::task::spawn_blocking(move || store.attachments().get(&attached.id))
        .await
        .map_err(|e| AppError::from(crate::store::StoreError::Read(e.to_string())))??
        .ok_or(AppError::NotFound)?;
    let mime = attachments::sniff(&bytes).map_or("application/octet-stream", |(_, mime)| mime);
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
}
