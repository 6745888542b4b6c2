//! The 回访 list: resolved incidents whose resident has not answered 解决了吗？满意吗？ some time
//! after 办结 (`escalation.callback_after`), for the supervisors and building heads who call or
//! visit them and record the answer (`rate`, as a 回访).

use axum::Json;
use axum::extract::State;
use hongfan_shared::audit::AuditQuery;
use hongfan_shared::{Incident, Role, Status, view};

use super::extract::Session;
use super::{App, AppError, ErrorJson};
use crate::auth::Authenticated;

/// The longest list one answer carries: the ones waiting longest.
pub const MAX_CALLBACKS: usize = 200;
/// Resolutions older than this are past calling back about (a new deployment's history is not
/// a 回访 list).
pub const CALLBACK_WITHIN_DAYS: i64 = 30;

/// The resolved, unanswered incidents due a 回访 (resolved within the last 30 days), longest
/// waiting first, as the caller may see
/// them: a supervisor's compounds, or a building head's own buildings.
#[utoipa::path(get, path = "/api/callbacks", tag = "board", security(("session" = [])),
    responses(
        (status = 200, description = "Incidents due a 回访 (at most 200), longest waiting first", body = Vec<Incident>),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: supervisors and building heads only", body = ErrorJson),
    ))]
pub(super) async fn list(
    State(app): State<App>,
    Session(Authenticated { principal: who, .. }): Session,
) -> Result<Json<Vec<Incident>>, AppError> {
    let buildings = match who.actor.role {
        Role::Supervisor => None,
        Role::BuildingHead => app
            .accounts
            .user(&who.actor.id)?
            .map(|person| person.buildings)
            .filter(|b| !b.is_empty()),
        _ => return Err(AppError::Forbidden),
    };
    let store = app.hub.store();
    let office = store.office();
    // Each incident waits as long as its community says.
    let now = store.now().0;
    let due = |compound: &hongfan_shared::CompoundId| {
        let after = office.community_of(compound).map_or(0, |c| c.escalation.callback_after.0);
        now - after as i64
    };
    let query = AuditQuery::everything(&who.scope);
    let mut waiting: Vec<_> = store
        .audit_rows(&query)
        .map_err(crate::auth::AuthError::from)?
        .into_iter()
        .filter(|r| r.status == Status::Resolved && r.rating.is_none())
        .filter_map(|r| {
            let due = due(&r.compound);
            let oldest = due - CALLBACK_WITHIN_DAYS * 86_400_000;
            r.resolved_at.filter(|at| (oldest..=due).contains(&at.0)).map(|at| (at, r.id))
        })
        .collect();
    waiting.sort();
    let mut list = Vec::new();
    for (_, id) in waiting {
        let Some(incident) = store.incident(id).await? else { continue };
        let theirs = buildings.as_ref().is_none_or(|b| b.contains(&incident.report.building));
        let Some(community) = office.community_of(&incident.report.compound) else { continue };
        if let Some(seen) = view::incident(&who, &incident, community).filter(|_| theirs) {
            list.push(seen);
            if list.len() == MAX_CALLBACKS {
                break;
            }
        }
    }
    Ok(Json(list))
}
