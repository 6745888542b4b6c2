//! The supervisors' audit API: the summary, the incidents behind any figure, each incident's
//! timeline, and exports (CSV with a BOM, which Excel opens; JSON). Read only: no route edits or
//! deletes an event.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hongfan_shared::audit::{AuditQuery, AuditRow, Figures, Group, Rating, Summary};
use hongfan_shared::office::Office;
use hongfan_shared::view;
use hongfan_shared::{
    CategoryId, CompoundId, Event, Incident, IncidentId, Origin, Principal, Status, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::extract::Supervisor;
use super::{App, AppError, ErrorJson};
use crate::auth::AuthError;
use crate::auth::Authenticated;

/// Query parameters shared by every audit route. Times are milliseconds since the epoch; the
/// incidents counted are those reported in `[from, to)`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Params {
    from: i64,
    to: i64,
    #[serde(default)]
    compound: Option<String>,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    category: Option<String>,
    /// For the incident list: which incidents behind the figures.
    #[serde(default)]
    only: Option<Only>,
    /// For exports.
    #[serde(default)]
    format: Option<Format>,
    #[serde(default)]
    what: Option<What>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Only {
    All,
    Open,
    Unanswered,
    LateResponse,
    Breached,
    Resolved,
    Dissatisfied,
    /// 二次办理: the resident said it was not solved at least once.
    SecondHandling,
    /// Open now and past the target that runs now (whatever the period asked: it is about now).
    LateNow,
    /// 挂起: a pause was asked for (approved, refused or waiting).
    Paused,
    /// 退单: work orders from above sent back to their platform.
    SentBack,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum What {
    Incidents,
    Figures,
}

/// The origin a group's key names.
fn origin(key: &str) -> Option<Origin> {
    Origin::ALL.into_iter().find(|o| o.name() == key)
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl Params {
    /// The query as `who` may ask it: a compound leader's only ever counts their compounds, a
    /// 书记's her community's; whoever runs every community of `office` is not limited.
    fn query(&self, who: &Principal, office: &Office) -> AuditQuery {
        let everywhere = office.communities.keys().all(|c| who.runs(c));
        AuditQuery {
            within: if everywhere { None } else { AuditQuery::within(&who.scope) },
            from: Timestamp(self.from),
            to: Timestamp(self.to),
            compound: non_empty(&self.compound).map(CompoundId),
            worker: non_empty(&self.worker),
            category: non_empty(&self.category).map(CategoryId),
        }
    }
}

/// Names ids for people: the compound's or category's Chinese name.
/// The names of compounds and categories in the communities `who` acts in, and their order:
/// the communities' own (as the kiosk shows them), community by community. A category id
/// several of them use is named and placed as the first has it.
struct Names<'a> {
    compounds: HashMap<&'a str, (usize, &'a str)>,
    categories: HashMap<&'a str, (usize, &'a str)>,
    /// Each compound's community, by name: told only to whoever sees several.
    communities: Option<HashMap<&'a str, &'a str>>,
}

impl<'a> Names<'a> {
    fn of(office: &'a Office, who: &Principal) -> Names<'a> {
        let communities = office.communities.values().filter(|c| {
            who.runs(&c.id) || c.compounds.iter().any(|compound| who.may_act_in(&compound.id))
        });
        let mut names = Names {
            compounds: HashMap::new(),
            categories: HashMap::new(),
            communities: (communities.clone().count() > 1).then(HashMap::new),
        };
        if let Some(of) = &mut names.communities {
            for community in communities.clone() {
                of.extend(
                    community.compounds.iter().map(|c| (c.id.0.as_str(), community.name.as_str())),
                );
            }
        }
        for c in communities.clone().flat_map(|c| &c.compounds) {
            let at = names.compounds.len();
            names.compounds.entry(&c.id.0).or_insert((at, &c.name));
        }
        for c in communities.flat_map(|c| &c.categories) {
            let at = names.categories.len();
            names.categories.entry(&c.id.0).or_insert((at, &c.name));
        }
        names
    }

    fn map(&self, kind: &str) -> Option<&HashMap<&'a str, (usize, &'a str)>> {
        match kind {
            "compound" => Some(&self.compounds),
            "category" => Some(&self.categories),
            _ => None,
        }
    }

    /// The name of a compound's or category's id (the id itself when no longer configured),
    /// or of an origin.
    fn label(&self, kind: &str, key: &str) -> String {
        if kind == "origin" {
            return origin(key).map_or_else(|| key.to_owned(), |o| o.label_zh().to_owned());
        }
        self.map(kind).and_then(|m| m.get(key)).map_or(key, |(_, name)| name).to_owned()
    }

    /// Where a group goes: what is no longer configured goes last; origins in their order.
    fn order(&self, kind: &str, group: &Group) -> usize {
        if kind == "origin" {
            return Origin::ALL.iter().position(|o| o.name() == group.key).unwrap_or(usize::MAX);
        }
        self.map(kind).and_then(|m| m.get(group.key.as_str())).map_or(usize::MAX, |(at, _)| *at)
    }
}

fn summary_of(app: &App, who: &Principal, params: &Params) -> Result<Summary, AppError> {
    let office = app.hub.store().office();
    let names = Names::of(&office.office, who);
    let query = params.query(who, &office.office);
    let mut summary = app
        .hub
        .store()
        .audit(&query, |kind, key| names.label(kind, key))
        .map_err(AuthError::from)?;
    summary.by_compound.sort_by_key(|g| names.order("compound", g));
    summary.by_category.sort_by_key(|g| names.order("category", g));
    summary.by_origin.sort_by_key(|g| names.order("origin", g));
    Ok(summary)
}

/// The query, read only after the caller is known to be a supervisor: an anonymous caller is
/// told to log in, not what is wrong with its query.
fn params(query: Result<Query<Params>, QueryRejection>) -> Result<Params, AppError> {
    query.map(|Query(p)| p).map_err(|e| AppError::BadQuery(e.body_text()))
}

/// The figures for a period and filters, per worker, compound and category, with the response
/// histogram and the daily trend.
#[utoipa::path(get, path = "/api/audit/summary", tag = "audit", security(("session" = [])),
    params(Params),
    responses(
        (status = 200, description = "The summary", body = Summary),
        (status = 400, description = "`bad_query`", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: supervisors only", body = ErrorJson),
    ))]
pub async fn summary(
    State(app): State<App>,
    Supervisor(auth): Supervisor,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Summary>, AppError> {
    Ok(Json(summary_of(&app, &auth.principal, &params(query)?)?))
}

fn rows_of(app: &App, who: &Principal, params: &Params) -> Result<Vec<AuditRow>, AppError> {
    let query = params.query(who, &app.hub.store().office().office);
    let asof = query.to.min(app.hub.store().now());
    let rows = app.hub.store().audit_rows(&query).map_err(AuthError::from)?;
    let only = params.only.unwrap_or(Only::All);
    Ok(rows
        .into_iter()
        .filter(|r| match only {
            Only::All => true,
            Only::Open => !r.status.is_withdrawn() && r.resolved_at.is_none_or(|t| t > asof),
            Only::Unanswered => !r.status.is_withdrawn() && r.claimed_at.is_none_or(|t| t > asof),
            Only::SentBack => r.status == Status::SentBack,
            Only::LateResponse => {
                r.claimed_at.is_none_or(|t| t > r.respond_by) && r.respond_by <= asof
            }
            Only::Breached => {
                r.response_breached || r.resolution_breached || r.earlier_breaches > 0
            }
            Only::Resolved => r.resolved_at.is_some_and(|t| t <= asof),
            Only::Dissatisfied => {
                let latest = r.answers.iter().rfind(|a| a.at <= asof).map(|a| a.rating);
                latest.or(r.rating) == Some(Rating::Dissatisfied)
            }
            Only::SecondHandling => r.answers.iter().any(|a| !a.solved && a.at <= asof),
            Only::Paused => !r.pauses.is_empty(),
            // The breaches the timers logged: a paused clock, or a second handling's new one,
            // is late only when its own target passed.
            Only::LateNow => {
                let paused = r.pauses.last().is_some_and(|p| p.approved && p.to.is_none());
                (r.status == Status::Reported && r.response_breached)
                    || (r.status.is_open() && r.resolution_breached && !paused)
            }
        })
        .collect())
}

/// The incidents behind a figure (`only`), oldest first.
#[utoipa::path(get, path = "/api/audit/incidents", tag = "audit", security(("session" = [])),
    params(Params),
    responses(
        (status = 200, description = "The incidents' audit facts", body = Vec<AuditRow>),
        (status = 400, description = "`bad_query`", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: supervisors only", body = ErrorJson),
    ))]
pub async fn incidents(
    State(app): State<App>,
    Supervisor(auth): Supervisor,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Vec<AuditRow>>, AppError> {
    Ok(Json(rows_of(&app, &auth.principal, &params(query)?)?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    event: Event,
    /// Time since the report (ms).
    elapsed: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Timeline {
    incident: Incident,
    events: Vec<TimelineEntry>,
}

/// One incident and every event of it, read from the log, with the time since the report.
#[utoipa::path(get, path = "/api/audit/incidents/{id}", tag = "audit", security(("session" = [])),
    params(("id" = u64, Path, description = "The incident's id (in a deployment serving one community, its ticket number)")),
    responses(
        (status = 200, description = "The incident and its timeline", body = Timeline),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: supervisors only", body = ErrorJson),
        (status = 404, description = "`not_found`", body = ErrorJson),
    ))]
pub async fn timeline(
    State(app): State<App>,
    Supervisor(auth): Supervisor,
    Path(id): Path<u64>,
) -> Result<Json<Timeline>, AppError> {
    let found = app.hub.store().timeline(IncidentId(id)).await.map_err(AuthError::from)?;
    let (incident, events) = found.ok_or(AppError::NotFound)?;
    // As every other answer: through the one rule of what a viewer may see.
    let office = app.hub.store().office();
    let community = office.community_of(&incident.report.compound).ok_or(AppError::NotFound)?;
    let who = &auth.principal;
    let events = events
        .iter()
        .filter_map(|event| view::event(who, event, &incident, community))
        .map(|event| TimelineEntry { elapsed: event.at.since(incident.reported_at).0, event })
        .collect();
    let incident = view::incident(who, &incident, community).ok_or(AppError::NotFound)?;
    Ok(Json(Timeline { incident, events }))
}

/// `2026-11-02 09:00` in Asia/Shanghai.
fn local(at: Timestamp) -> String {
    let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000)
        .map(|t| t.to_offset(offset).format(&format).unwrap_or_default())
        .unwrap_or_default()
}

fn minutes(ms: Option<u64>) -> String {
    ms.map(|m| format!("{:.1}", m as f64 / 60_000.0)).unwrap_or_default()
}

fn percent(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_default()
}

fn incidents_csv(
    office: &Office,
    who: &Principal,
    rows: &[AuditRow],
) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    let names = Names::of(office, who);
    // Tickets repeat from one community to the next: whoever sees several is told whose.
    let community = |r: &AuditRow| {
        let of = names.communities.as_ref()?;
        Some(of.get(r.compound.0.as_str()).copied().unwrap_or_default().to_owned())
    };
    let header = [
        "受理号",
        "小区",
        "类别",
        "紧急",
        "上报时间",
        "接单时间",
        "首次响应(分钟)",
        "时限内响应",
        "办结时间",
        "办结用时(分钟)",
        "时限内办结",
        "状态",
        "接单人",
        "响应超时",
        "办结超时",
        "满意度",
        "二次办理",
        "来源",
        "工单号",
    ];
    let several = names.communities.is_some();
    out.write_record(header.iter().take(1).chain(several.then_some(&"社区")).chain(&header[1..]))?;
    let name = |kind, key: &str| names.label(kind, key);
    for r in rows {
        let yes = |b: bool| if b { "是" } else { "否" };
        let [ticket, rest @ ..] = [
            r.ticket.as_str().to_owned(),
            name("compound", &r.compound.0),
            name("category", &r.category.0),
            yes(r.urgency == hongfan_shared::Urgency::Urgent).into(),
            local(r.reported_at),
            r.claimed_at.map(local).unwrap_or_default(),
            minutes(r.claimed_at.map(|c| c.since(r.reported_at).0)),
            yes(r.claimed_at.is_some_and(|c| c <= r.respond_by)).into(),
            r.resolved_at.map(local).unwrap_or_default(),
            minutes(r.resolved_at.map(|c| c.since(r.reported_at).0)),
            yes(r.resolved_at.is_some_and(|c| c <= r.resolve_by)).into(),
            match r.status {
                Status::Reported => "已上报",
                Status::Claimed => "已接单",
                Status::HandedOver => "代办中",
                Status::Resolved => "已办结",
                Status::Cancelled => "已撤销",
                Status::SentBack => "已退单",
            }
            .into(),
            r.holder.as_ref().map(|h| h.name.clone()).unwrap_or_default(),
            yes(r.response_breached).into(),
            yes(r.resolution_breached).into(),
            match r.answers.last().map(|a| a.rating).or(r.rating) {
                Some(Rating::Satisfied) => "满意",
                Some(Rating::BasicallySatisfied) => "基本满意",
                Some(Rating::Dissatisfied) => "不满意",
                None => "",
            }
            .into(),
            yes(r.round > 0).into(),
            r.origin.label_zh().into(),
            r.external_id.clone().unwrap_or_default(),
        ];
        out.write_record(std::iter::once(ticket).chain(community(r)).chain(rest))?;
    }
    out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

fn figures_csv(summary: &Summary) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    out.write_record([
        "分组",
        "名称",
        "上报数",
        "已撤销",
        "已退单",
        "已响应",
        "时限内响应",
        "响应率",
        "响应中位(分钟)",
        "九成响应用时以内(分钟)",
        "响应最长(分钟)",
        "已办结",
        "解决率",
        "时限内办结",
        "未办结",
        "超时次数",
        "超时事项",
        "评价数",
        "满意率",
        "评价率",
        "一次解决率",
        "二次办理",
    ])?;
    let total =
        Group { key: "all".into(), label: "合计".into(), figures: summary.figures.clone() };
    let groups = std::iter::once(("合计", &total))
        .chain(summary.by_compound.iter().map(|g| ("小区", g)))
        .chain(summary.by_worker.iter().map(|g| ("网格员", g)))
        .chain(summary.by_category.iter().map(|g| ("类别", g)))
        .chain(summary.by_origin.iter().map(|g| ("来源", g)));
    for (kind, g) in groups {
        let f: &Figures = &g.figures;
        out.write_record([
            kind.to_owned(),
            g.label.clone(),
            f.reports.to_string(),
            f.cancelled.to_string(),
            f.sent_back.to_string(),
            f.responded.to_string(),
            f.responded_in_target.to_string(),
            percent(f.response_rate),
            minutes(f.response.median),
            minutes(f.response.p90),
            minutes(f.response.max),
            f.resolved.to_string(),
            percent(f.resolution_rate),
            f.resolved_in_target.to_string(),
            f.open.to_string(),
            f.breaches.to_string(),
            f.breached.to_string(),
            f.rated.to_string(),
            percent(f.satisfaction_rate),
            percent(f.answer_rate),
            percent(f.first_time_rate),
            f.second_handlings.to_string(),
        ])?;
    }
    out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The incidents or the figures as a file: CSV with a byte-order mark (Excel opens it) or JSON.
#[utoipa::path(get, path = "/api/audit/export", tag = "audit", security(("session" = [])),
    params(Params),
    responses(
        (status = 200, description = "A file to download (`Content-Disposition: attachment`): CSV (`format=csv`, the default) or JSON; `what=incidents` (default; in CSV, a 社区 column after the ticket for whoever sees several communities) or `figures`", content(
            (String = "text/csv"),
            (Vec<AuditRow> = "application/json"),
        )),
        (status = 400, description = "`bad_query`", body = ErrorJson),
        (status = 401, description = "`no_session`", body = ErrorJson),
        (status = 403, description = "`forbidden`: supervisors only", body = ErrorJson),
    ))]
pub async fn export(
    State(app): State<App>,
    Supervisor(Authenticated { principal: who, .. }): Supervisor,
    query: Result<Query<Params>, QueryRejection>,
) -> Result<Response, AppError> {
    let params = params(query)?;
    let office = app.hub.store().office();
    let what = params.what.unwrap_or(What::Incidents);
    let stem = match what {
        What::Incidents => "hongfan-incidents",
        What::Figures => "hongfan-figures",
    };
    let (body, content_type, extension) = match (params.format.unwrap_or(Format::Csv), what) {
        (Format::Csv, What::Incidents) => (
            incidents_csv(&office.office, &who, &rows_of(&app, &who, &params)?),
            "text/csv; charset=utf-8",
            "csv",
        ),
        (Format::Csv, What::Figures) => {
            (figures_csv(&summary_of(&app, &who, &params)?), "text/csv; charset=utf-8", "csv")
        }
        (Format::Json, What::Incidents) => (
            Ok(serde_json::to_vec_pretty(&rows_of(&app, &who, &params)?).unwrap_or_default()),
            "application/json",
            "json",
        ),
        (Format::Json, What::Figures) => (
            Ok(serde_json::to_vec_pretty(&summary_of(&app, &who, &params)?).unwrap_or_default()),
            "application/json",
            "json",
        ),
    };
    let body = body.map_err(|e| AuthError::Store(crate::store::StoreError::Read(e.to_string())))?;
    let disposition = format!(
        "attachment; filename=\"{stem}-{}.{extension}\"",
        local(Timestamp(params.from)).get(..10).unwrap_or("period")
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
