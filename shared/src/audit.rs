//! The supervisors' figures: how fast reports were first answered and solved, computed from
//! each incident's derived facts (which the log's events determine), for a period and filters.
//!
//! Pure functions over `AuditRow`s, so every figure can be checked against hand-computed values
//! and traced back to the incidents (and their events) it counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::community::{CategoryId, CompoundId, Urgency};
use crate::event::Actor;
use crate::incident::{Answer, AnswerSource, Incident, IncidentId, Status, Ticket};
use crate::time::Timestamp;

/// A resident's satisfaction with how a resolved incident was handled (满意率).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// 满意
    Satisfied,
    /// 基本满意
    BasicallySatisfied,
    /// 不满意
    Dissatisfied,
}

/// What the audit needs of one incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRow {
    pub id: IncidentId,
    pub ticket: Ticket,
    pub compound: CompoundId,
    /// The building as reported (empty for a place without one).
    #[serde(default)]
    pub building: String,
    pub category: CategoryId,
    pub urgency: Urgency,
    pub reported_at: Timestamp,
    pub respond_by: Timestamp,
    pub resolve_by: Timestamp,
    pub claimed_at: Option<Timestamp>,
    pub holder: Option<Actor>,
    pub resolved_at: Option<Timestamp>,
    pub status: Status,
    pub response_breached: bool,
    pub resolution_breached: bool,
    /// Escalated for any reason (nobody on duty, or left unclaimed).
    pub escalated: bool,
    /// 督办: how often a supervisor urged it.
    #[serde(default)]
    pub urges: u32,
    pub rating: Option<Rating>,
    /// Which handling it is in (0 the first; 1 or more: 二次办理).
    #[serde(default)]
    pub round: u32,
    /// Breaches of earlier handlings.
    #[serde(default)]
    pub earlier_breaches: u32,
    /// The resident's answers, one per finished handling, oldest first.
    #[serde(default)]
    pub answers: Vec<Answer>,
    /// 挂起: every pause asked for, decided or not, oldest first (the current one last).
    #[serde(default)]
    pub pauses: Vec<crate::incident::Pause>,
    /// Time the resolution clock stood still (ms), not counted in the resolution time.
    #[serde(default)]
    pub paused_ms: u64,
    /// 每月一题: flagged as recurring when reported.
    #[serde(default)]
    pub recurring: bool,
}

impl From<&Incident> for AuditRow {
    fn from(i: &Incident) -> AuditRow {
        AuditRow {
            id: i.id,
            ticket: i.ticket.clone(),
            compound: i.report.compound.clone(),
            building: i.report.building.clone(),
            category: i.report.category.clone(),
            urgency: i.report.urgency,
            reported_at: i.reported_at,
            // The first response is judged against the first handling's target.
            respond_by: i.first_respond_by.unwrap_or(i.respond_by),
            resolve_by: i.resolve_by,
            claimed_at: i.claimed_at,
            holder: i.holder.clone(),
            resolved_at: if i.status == Status::Resolved { i.resolved_at } else { None },
            status: i.status,
            response_breached: i.response_breached,
            resolution_breached: i.resolution_breached,
            escalated: i.escalated || i.escalated_unclaimed,
            urges: i.urges,
            rating: i.rating,
            round: i.round,
            earlier_breaches: i.earlier_breaches,
            answers: i.answers.clone(),
            pauses: i.pauses.iter().chain(&i.pause).cloned().collect(),
            paused_ms: i.paused_ms,
            recurring: !i.recurring.is_empty(),
        }
    }
}

/// Which incidents to count: reported in `[from, to)`, optionally of one compound, worker
/// (the holder) or category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditQuery {
    pub from: Timestamp,
    pub to: Timestamp,
    #[serde(default)]
    pub compound: Option<CompoundId>,
    #[serde(default)]
    pub worker: Option<String>,
    #[serde(default)]
    pub category: Option<CategoryId>,
    /// Only these compounds, whatever else is asked: a compound leader's (网格长) audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Vec<CompoundId>>,
}

impl AuditQuery {
    /// Every incident ever reported, of the compounds `scope` covers.
    pub fn everything(scope: &crate::lifecycle::Scope) -> AuditQuery {
        AuditQuery {
            from: Timestamp(0),
            to: Timestamp(i64::MAX),
            compound: None,
            worker: None,
            category: None,
            within: AuditQuery::within(scope),
        }
    }

    /// What `within` is for someone acting in `scope`: a compound leader's compounds only.
    pub fn within(scope: &crate::lifecycle::Scope) -> Option<Vec<CompoundId>> {
        match scope {
            crate::lifecycle::Scope::All => None,
            crate::lifecycle::Scope::Compounds(list) => Some(list.clone()),
        }
    }

    pub fn matches(&self, row: &AuditRow) -> bool {
        row.reported_at >= self.from
            && self.within.as_ref().is_none_or(|w| w.contains(&row.compound))
            && row.reported_at < self.to
            && self.compound.as_ref().is_none_or(|c| &row.compound == c)
            && self.category.as_ref().is_none_or(|c| &row.category == c)
            && self.worker.as_ref().is_none_or(|w| row.holder.as_ref().is_some_and(|h| &h.id == w))
    }
}

/// Median, 90th percentile and maximum of a set of durations (milliseconds), nearest rank.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Spread {
    pub median: Option<u64>,
    pub p90: Option<u64>,
    pub max: Option<u64>,
}

impl Spread {
    pub fn of(mut values: Vec<u64>) -> Spread {
        // Selection, not a full sort: a year of reports is grouped four ways per summary.
        let mut rank = |p: u64| -> Option<u64> {
            if values.is_empty() {
                return None;
            }
            let n = values.len() as u64;
            let r = usize::try_from((p * n).div_ceil(100).clamp(1, n) - 1).ok()?;
            Some(*values.select_nth_unstable(r).1)
        };
        let (median, p90) = (rank(50), rank(90));
        Spread { median, p90, max: values.iter().max().copied() }
    }
}

/// The figures for one set of incidents, as of one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Figures {
    /// Reports counted (cancelled ones are not: they were duplicates or mistakes).
    pub reports: u64,
    pub cancelled: u64,
    /// First answered (claimed) by the end of the period.
    pub responded: u64,
    pub responded_in_target: u64,
    pub resolved: u64,
    pub resolved_in_target: u64,
    /// Still open at the end of the period.
    pub open: u64,
    /// Response and resolution breaches recorded.
    pub breaches: u64,
    /// Incidents with at least one breach (an incident can breach both targets, and a second
    /// handling's targets again).
    #[serde(default)]
    pub breached: u64,
    pub escalated: u64,
    /// 督办: urges by supervisors, and how many incidents were urged at least once.
    #[serde(default)]
    pub urges: u64,
    #[serde(default)]
    pub urged: u64,
    /// Time from report to first response, of those answered (ms).
    pub response: Spread,
    /// Time from report to resolution, of those resolved, less approved pauses (ms).
    pub resolution: Spread,
    /// 响应率: answered within target, of all reports.
    pub response_rate: Option<f64>,
    /// 解决率: resolved, of all reports.
    pub resolution_rate: Option<f64>,
    /// Resolved within target, of all reports.
    pub resolved_in_target_rate: Option<f64>,
    pub rated: u64,
    pub satisfied: u64,
    pub basically_satisfied: u64,
    pub dissatisfied: u64,
    /// 满意率: satisfied or basically satisfied, of those rated (each incident by its latest
    /// answer).
    pub satisfaction_rate: Option<f64>,
    /// Incidents the resident answered (解决了吗？满意吗？) at least once.
    #[serde(default)]
    pub answered: u64,
    /// 评价率: answered, of the incidents resolved at least once.
    #[serde(default)]
    pub answer_rate: Option<f64>,
    /// Incidents the resident confirmed solved after the first handling.
    #[serde(default)]
    pub solved_first_time: u64,
    /// 一次解决率: confirmed solved after the first handling, of those answered.
    #[serde(default)]
    pub first_time_rate: Option<f64>,
    /// 二次办理: incidents the resident said were not solved, so handled again.
    #[serde(default)]
    pub second_handlings: u64,
    /// 满意率 by where the answer came from (kiosk, status page, 回访), in that order.
    #[serde(default)]
    pub by_source: Vec<SourceFigures>,
}

/// 满意率 of the answers from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceFigures {
    pub source: AnswerSource,
    pub rated: u64,
    /// Satisfied or basically satisfied.
    pub satisfied: u64,
    pub satisfaction_rate: Option<f64>,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Figures for `rows` (already filtered), as of `asof`: what happened after it is not counted.
pub fn figures<'a>(rows: impl IntoIterator<Item = &'a AuditRow>, asof: Timestamp) -> Figures {
    let mut f = Figures::default();
    let (mut response, mut resolution) = (Vec::new(), Vec::new());
    let mut by_source: BTreeMap<AnswerSource, (u64, u64)> = BTreeMap::new();
    let mut ever_resolved = 0;
    for row in rows {
        if row.status == Status::Cancelled {
            f.cancelled += 1;
            continue;
        }
        f.reports += 1;
        if let Some(claimed) = row.claimed_at.filter(|&c| c <= asof) {
            f.responded += 1;
            f.responded_in_target += u64::from(claimed <= row.respond_by);
            response.push(claimed.since(row.reported_at).0);
        }
        match row.resolved_at.filter(|&r| r <= asof) {
            Some(resolved) => {
                f.resolved += 1;
                f.resolved_in_target += u64::from(resolved <= row.resolve_by);
                resolution.push(resolved.since(row.reported_at).0.saturating_sub(row.paused_ms));
            }
            None => f.open += 1,
        }
        let breaches = u64::from(row.earlier_breaches)
            + u64::from(row.response_breached && row.respond_by <= asof)
            + u64::from(row.resolution_breached && row.resolve_by <= asof);
        f.breaches += breaches;
        f.breached += u64::from(breaches > 0);
        f.escalated += u64::from(row.escalated);
        f.urges += u64::from(row.urges);
        f.urged += u64::from(row.urges > 0);
        // The answers given by `asof`, walked where needed rather than collected for each row
        // (not cut as a prefix: a clock set back could put them out of order).
        let given = || row.answers.iter().filter(move |a| a.at <= asof);
        ever_resolved +=
            u64::from(given().next().is_some() || row.resolved_at.is_some_and(|r| r <= asof));
        if let Some(first) = given().next() {
            f.answered += 1;
            f.solved_first_time += u64::from(first.solved);
            f.second_handlings += u64::from(given().any(|a| !a.solved));
        }
        // Ratings from before answers were kept have no source.
        let latest = given().next_back().map(|a| (a.rating, Some(a.source)));
        if let Some((rating, source)) = latest.or(row.rating.map(|r| (r, None))) {
            match rating {
                Rating::Satisfied => f.satisfied += 1,
                Rating::BasicallySatisfied => f.basically_satisfied += 1,
                Rating::Dissatisfied => f.dissatisfied += 1,
            }
            if let Some(source) = source {
                let (rated, satisfied) = by_source.entry(source).or_default();
                *rated += 1;
                *satisfied += u64::from(rating != Rating::Dissatisfied);
            }
        }
    }
    f.rated = f.satisfied + f.basically_satisfied + f.dissatisfied;
    f.response = Spread::of(response);
    f.resolution = Spread::of(resolution);
    f.response_rate = share(f.responded_in_target, f.reports);
    f.resolution_rate = share(f.resolved, f.reports);
    f.resolved_in_target_rate = share(f.resolved_in_target, f.reports);
    f.satisfaction_rate = share(f.satisfied + f.basically_satisfied, f.rated);
    f.answer_rate = share(f.answered, ever_resolved);
    f.first_time_rate = share(f.solved_first_time, f.answered);
    f.by_source = AnswerSource::ALL
        .into_iter()
        .map(|source| {
            let (rated, satisfied) = by_source.get(&source).copied().unwrap_or_default();
            SourceFigures { source, rated, satisfied, satisfaction_rate: share(satisfied, rated) }
        })
        .collect();
    f
}

/// One row of a per-worker, per-compound or per-category table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Group {
    /// The worker's id, or the compound's or category's id.
    pub key: String,
    /// What people read: the worker's name, or the compound's or category's name.
    pub label: String,
    pub figures: Figures,
}

/// How many reports were first answered within each share of their target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bucket {
    /// Upper bound as a share of the target in percent (25 = within a quarter of it); `None`
    /// for the last bucket (more than twice the target) and for the unanswered.
    pub up_to_percent: Option<u32>,
    pub unanswered: bool,
    pub count: u64,
}

/// The upper bounds of the response-time buckets, in percent of the target.
pub const BUCKETS: [u32; 6] = [25, 50, 75, 100, 150, 200];

/// One calendar day in Asia/Shanghai.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Day {
    /// Midnight starting the day, Asia/Shanghai.
    pub start: Timestamp,
    pub reports: u64,
    pub responded_in_target: u64,
    pub resolved: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    pub query: AuditQuery,
    pub asof: Timestamp,
    pub figures: Figures,
    pub by_worker: Vec<Group>,
    pub by_compound: Vec<Group>,
    pub by_category: Vec<Group>,
    pub response_histogram: Vec<Bucket>,
    pub daily: Vec<Day>,
    /// 每月一题: the places and categories where a report of the period was flagged recurring,
    /// most reported first.
    #[serde(default)]
    pub recurring: Vec<Recurring>,
}

/// One recurring problem: a category at a building of a compound, with the period's reports of
/// it (cancelled ones not counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recurring {
    pub compound: CompoundId,
    pub building: String,
    pub category: CategoryId,
    /// The period's reports there, oldest first.
    pub incidents: Vec<IncidentId>,
    pub tickets: Vec<Ticket>,
}

const DAY_MS: i64 = 86_400_000;
/// Asia/Shanghai is UTC+8 all year (no daylight saving).
const SHANGHAI_MS: i64 = 8 * 3_600_000;

/// Midnight (Asia/Shanghai) starting the day `at` falls in.
pub fn day_start(at: Timestamp) -> Timestamp {
    Timestamp((at.0 + SHANGHAI_MS).div_euclid(DAY_MS) * DAY_MS - SHANGHAI_MS)
}

/// Everything the audit page shows for a query. `label` names workers, compounds and
/// categories; `now` caps the moment the figures are taken at.
pub fn summarize<'a>(
    rows: impl IntoIterator<Item = &'a AuditRow>,
    query: &AuditQuery,
    now: Timestamp,
    label: impl Fn(&str, &str) -> String,
) -> Summary {
    let asof = query.to.min(now);
    let chosen: Vec<&AuditRow> = rows.into_iter().filter(|r| query.matches(r)).collect();
    // Keys and names borrowed from the rows: grouping a year of reports allocates per group,
    // not per row.
    let group = |kind: &str, key: &dyn for<'r> Fn(&'r AuditRow) -> Option<(&'r str, &'r str)>| {
        let mut groups: BTreeMap<&str, (&str, Vec<&AuditRow>)> = BTreeMap::new();
        for row in &chosen {
            if let Some((k, name)) = key(row) {
                groups.entry(k).or_insert_with(|| (name, Vec::new())).1.push(row);
            }
        }
        groups
            .into_iter()
            .map(|(k, (name, rows))| Group {
                label: if name.is_empty() { label(kind, k) } else { name.to_owned() },
                key: k.to_owned(),
                figures: figures(rows, asof),
            })
            .collect::<Vec<_>>()
    };
    let by_worker =
        group("worker", &|r| r.holder.as_ref().map(|h| (h.id.as_str(), h.name.as_str())));
    let by_compound = group("compound", &|r| Some((r.compound.0.as_str(), "")));
    let by_category = group("category", &|r| Some((r.category.0.as_str(), "")));

    let mut histogram: Vec<Bucket> = BUCKETS
        .iter()
        .map(|&p| Bucket { up_to_percent: Some(p), unanswered: false, count: 0 })
        .chain([
            Bucket { up_to_percent: None, unanswered: false, count: 0 },
            Bucket { up_to_percent: None, unanswered: true, count: 0 },
        ])
        .collect();
    let mut days: BTreeMap<Timestamp, Day> = BTreeMap::new();
    for row in chosen.iter().filter(|r| r.status != Status::Cancelled) {
        let claimed = row.claimed_at.filter(|&c| c <= asof);
        let index = match claimed {
            None => BUCKETS.len() + 1,
            Some(c) => {
                let target = row.respond_by.since(row.reported_at).0.max(1);
                let percent = c.since(row.reported_at).0.saturating_mul(100) / target;
                BUCKETS.iter().position(|&b| percent < u64::from(b)).unwrap_or(BUCKETS.len())
            }
        };
        histogram[index].count += 1;
        let start = day_start(row.reported_at);
        let day = days.entry(start).or_insert(Day {
            start,
            reports: 0,
            responded_in_target: 0,
            resolved: 0,
        });
        day.reports += 1;
        day.responded_in_target += u64::from(claimed.is_some_and(|c| c <= row.respond_by));
        day.resolved += u64::from(row.resolved_at.is_some_and(|r| r <= asof));
    }
    // The places a report of the period was flagged at (few), then the period's reports there.
    let counted = |r: &&&AuditRow| r.status != Status::Cancelled && !r.building.is_empty();
    let mut places: BTreeMap<(&CompoundId, &str, &CategoryId), Vec<&AuditRow>> = chosen
        .iter()
        .filter(counted)
        .filter(|r| r.recurring)
        .map(|r| ((&r.compound, r.building.as_str(), &r.category), Vec::new()))
        .collect();
    if !places.is_empty() {
        for row in chosen.iter().filter(counted) {
            if let Some(rows) =
                places.get_mut(&(&row.compound, row.building.as_str(), &row.category))
            {
                rows.push(row);
            }
        }
    }
    let mut recurring: Vec<Recurring> = places
        .into_iter()
        .map(|((compound, building, category), rows)| Recurring {
            compound: compound.clone(),
            building: building.to_owned(),
            category: category.clone(),
            incidents: rows.iter().map(|r| r.id).collect(),
            tickets: rows.iter().map(|r| r.ticket.clone()).collect(),
        })
        .collect();
    recurring.sort_by_key(|r| std::cmp::Reverse(r.incidents.len()));
    Summary {
        recurring,
        query: query.clone(),
        asof,
        figures: figures(chosen.iter().copied(), asof),
        by_worker,
        by_compound,
        by_category,
        response_histogram: histogram,
        daily: days.into_values().collect(),
    }
}
