//! 楼长积分 and 巡防 over HTTP: the standings of a year with every award behind them (and as a
//! CSV Excel opens, for the 5·20 楼长节), a supervisor's adjustment with its reason, and a
//! building head's patrol round.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hongfan_shared::office::OfficeEvent;
use hongfan_shared::points::{Entry, Patrol, Standing, standings, year_month};
use hongfan_shared::{IncidentId, Principal};
use serde::{Deserialize, Serialize};

use super::extract::{AppJson, BuildingHead, Supervisor};
use super::{App, AppError, ErrorJson};
use crate::auth::Authenticated;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Year {
    /// The calendar year (Asia/Shanghai); this year when absent.
    #[serde(default)]
    year: Option<i32>,
}

/// The standings of a year and the awards behind them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PointsBoard {
    year: i32,
    /// Most points first.
    standings: Vec<Standing>,
    /// Every award of the year, oldest first.
    ledger: Vec<Entry>,
}

/// The year's ledger as `who` may read it: a compound leader's building heads only.
fn board(app: &App, who: &Principal, year: Option<i32>) -> PointsBoard {
    let store = app.hub.store();
    let year = year.unwrap_or_else(|| year_month(store.now()).0);
    let office = store.office();
    let ours = |login: &str| {
        office
            .office
            .people
            .get(login)
            .is_some_and(|p| p.compounds.iter().any(|c| who.may_act_in(c)))
    };
    let ledger: Vec<Entry> = office
        .office
        .ledger
        .iter()
        .filter(|e| year_month(e.at).0 == year && ours(&e.award.head.id))
        .cloned()
        .collect();
    PointsBoard { year, standings: standings(&ledger, year), ledger }
}

fn year(query: Result<Query<Year>, QueryRejection>) -> Result<Option<i32>, AppError> {
    query.map(|Query(y)| y.year).map_err(|e| AppError::BadQuery(e.body_text()))
}

/// 楼长积分: the standings of a year, by month, with every award behind them.
#[utoipa::path(get, path = "/api/points", tag = "points", security(("session" = [])),
    params(Year),
    responses(
        (status = 200, description = "The year's standings and ledger", body = PointsBoard),
        (status = 400, description = "`bad_query`", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: supervisors only", body = ErrorJson),
    ))]
pub(super) async fn list(
    State(app): State<App>,
    Supervisor(Authenticated { principal: who, .. }): Supervisor,
    query: Result<Query<Year>, QueryRejection>,
) -> Result<Json<PointsBoard>, AppError> {
    Ok(Json(board(&app, &who, year(query)?)))
}

/// The standings of a year as CSV with a byte-order mark (Excel opens it): one line per building
/// head, a column per month, the year's total.
#[utoipa::path(get, path = "/api/points/export", tag = "points", security(("session" = [])),
    params(Year),
    responses(
        (status = 200, description = "A CSV file to download", body = String, content_type = "text/csv"),
        (status = 400, description = "`bad_query`", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: supervisors only", body = ErrorJson),
    ))]
pub(super) async fn export(
    State(app): State<App>,
    Supervisor(Authenticated { principal: who, .. }): Supervisor,
    query: Result<Query<Year>, QueryRejection>,
) -> Result<Response, AppError> {
    let board = board(&app, &who, year(query)?);
    let mut out = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    let months = (1..=12).map(|m| format!("{m}月"));
    let head =
        ["名次".to_owned(), "楼长".to_owned()].into_iter().chain(months).chain(["全年".into()]);
    let written = out.write_record(head).and_then(|()| {
        for (rank, s) in board.standings.iter().enumerate() {
            let cells = [(rank + 1).to_string(), s.head.name.clone()]
                .into_iter()
                .chain(s.months.iter().map(i32::to_string))
                .chain([s.year.to_string()]);
            out.write_record(cells)?;
        }
        Ok(())
    });
    let bytes = written
        .and_then(|()| out.into_inner().map_err(|e| csv::Error::from(e.into_error())))
        .map_err(|e| AppError::BadQuery(e.to_string()))?;
    let disposition = format!("attachment; filename=\"points-{}.csv\"", board.year);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Adjustment {
    /// The building head's login.
    head: String,
    /// Points to add (negative to take away), not 0, at most 100 either way.
    points: i32,
    reason: String,
    /// The incident it concerns, if any.
    #[serde(default)]
    incident: Option<IncidentId>,
}

/// A supervisor adds or corrects a building head's points, with a reason; the ledger keeps both.
#[utoipa::path(post, path = "/api/points", tag = "points", security(("session" = [])),
    request_body = Adjustment,
    responses(
        (status = 200, description = "Recorded", body = OfficeEvent),
        (status = 400, description = "`bad_body`, `bad_points`", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`, `not_yours`", body = ErrorJson),
    ))]
pub(super) async fn adjust(
    State(app): State<App>,
    Supervisor(Authenticated { principal: who, .. }): Supervisor,
    AppJson(form): AppJson<Adjustment>,
) -> Result<Json<OfficeEvent>, AppError> {
    let Adjustment { head, points, reason, incident } = form;
    let event =
        crate::office::adjust_points(app.hub.store(), &who, head, points, reason, incident).await?;
    Ok(Json(event))
}

/// 巡防: a building head records a patrol round of their buildings (what was checked, anything
/// found); it earns the community's patrol points. Something found is reported separately
/// (`report`, the board offers it in one tap).
#[utoipa::path(post, path = "/api/patrols", tag = "points", security(("session" = [])),
    request_body = Patrol,
    responses(
        (status = 200, description = "Recorded", body = OfficeEvent),
        (status = 400, description = "`bad_body`, `bad_patrol`", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: building heads only", body = ErrorJson),
    ))]
pub(super) async fn patrol(
    State(app): State<App>,
    BuildingHead(Authenticated { principal: who, .. }): BuildingHead,
    AppJson(patrol): AppJson<Patrol>,
) -> Result<Json<OfficeEvent>, AppError> {
    Ok(Json(crate::office::record_patrol(app.hub.store(), &who, patrol).await?))
}
