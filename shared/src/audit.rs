//! The supervisors' figures: how fast reports were first answered and solved, computed from
//! each incident's derived facts (which the log's events determine), for a period and filters.
//!
//! Pure functions over `AuditRow`s, so every figure can be checked against hand-computed values
//! and traced back to the incidents (and their events) it counts.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};

use crate::community::{CategoryId, CompoundId, Urgency};
use crate::event::Actor;
use crate::incident::{Answer, AnswerSource, Incident, IncidentId, Origin, Status, Ticket};
use crate::time::Timestamp;

pub use crate::incident::Rating;

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
    /// 每月一题: the earlier reports that made it recurring (same place and category within the
    /// community's `recurring.within`), 0 when it is not.
    #[serde(default)]
    pub recurring_earlier: u32,
    /// Where the report came from: a work order from above counts as its platform's.
    pub origin: Origin,
    /// A work order's number on its platform (12345 or the street office's system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
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
            recurring_earlier: u32::try_from(i.recurring.len()).unwrap_or(u32::MAX),
            origin: Origin::of(i),
            external_id: i.report.order.as_ref().map(|o| o.external_id.clone()),
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
    pub within: Option<std::collections::BTreeSet<CompoundId>>,
}

impl AuditQuery {
    /// Every incident ever reported, of the compounds `scope` covers.
    pub fn everything(scope: &crate::principal::Scope) -> AuditQuery {
        AuditQuery {
            from: Timestamp(0),
            to: Timestamp(i64::MAX),
            compound: None,
            worker: None,
            category: None,
            within: AuditQuery::within(scope),
        }
    }

    /// What `within` is for someone acting in `scope`: the compounds of their communities, or
    /// a compound leader's.
    pub fn within(
        scope: &crate::principal::Scope,
    ) -> Option<std::collections::BTreeSet<CompoundId>> {
        match scope {
            crate::principal::Scope::All => None,
            crate::principal::Scope::Communities { compounds, .. } => Some(compounds.clone()),
            crate::principal::Scope::Compounds(list) => Some(list.iter().cloned().collect()),
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
    /// Reports counted (cancelled ones are not: they were duplicates or mistakes; nor are work
    /// orders sent back to their platform).
    pub reports: u64,
    pub cancelled: u64,
    /// 退单: work orders from above sent back to their platform.
    #[serde(default)]
    pub sent_back: u64,
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

/// What one incident adds to the figures as of one moment. A row is read once into its tally,
/// which is then added to the whole and to each group the row is in: a summary groups a year of
/// reports three ways, and walking the rows themselves each time made it memory-bound.
#[derive(Debug, Clone, Copy)]
struct Tally {
    /// Time to first response (ms) if answered by then, and whether within target.
    response: Option<(u64, bool)>,
    /// Time to resolution less approved pauses (ms) if resolved by then, and whether within
    /// target.
    resolution: Option<(u64, bool)>,
    breaches: u64,
    escalated: bool,
    urges: u64,
    /// Resolved at least once by then (answered, or resolved now).
    ever_resolved: bool,
    /// If answered by then: whether the first answer said solved, and whether any said not.
    answered: Option<(bool, bool)>,
    /// The latest rating, with where it came from (ratings from before answers were kept have
    /// no source).
    rating: Option<(Rating, Option<AnswerSource>)>,
}

impl Tally {
    /// Its status for an incident cancelled or sent back: it is counted as that, nothing else.
    fn of(row: &AuditRow, asof: Timestamp) -> Result<Tally, Status> {
        if row.status.is_withdrawn() {
            return Err(row.status);
        }
        // The answers given by `asof`, walked where needed rather than collected (not cut as a
        // prefix: a clock set back could put them out of order).
        let given = || row.answers.iter().filter(move |a| a.at <= asof);
        let resolution = row.resolved_at.filter(|&r| r <= asof).map(|resolved| {
            let time = resolved.since(row.reported_at).0.saturating_sub(row.paused_ms);
            (time, resolved <= row.resolve_by)
        });
        let answered = given().next().map(|first| (first.solved, given().any(|a| !a.solved)));
        Ok(Tally {
            response: row
                .claimed_at
                .filter(|&c| c <= asof)
                .map(|claimed| (claimed.since(row.reported_at).0, claimed <= row.respond_by)),
            resolution,
            breaches: u64::from(row.earlier_breaches)
                + u64::from(row.response_breached && row.respond_by <= asof)
                + u64::from(row.resolution_breached && row.resolve_by <= asof),
            escalated: row.escalated,
            urges: u64::from(row.urges),
            ever_resolved: answered.is_some() || resolution.is_some(),
            answered,
            rating: given()
                .next_back()
                .map(|a| (a.rating, Some(a.source)))
                .or(row.rating.map(|r| (r, None))),
        })
    }
}

/// Tallies added up, until the figures are taken from them.
#[derive(Debug, Default)]
struct Totals {
    figures: Figures,
    response: Vec<u64>,
    resolution: Vec<u64>,
    /// Rated and satisfied, by source in the order of `AnswerSource::ALL`.
    by_source: [(u64, u64); AnswerSource::ALL.len()],
    ever_resolved: u64,
}

impl Totals {
    fn add(&mut self, tally: Counted) {
        let f = &mut self.figures;
        let t = match tally {
            Ok(t) => t,
            Err(Status::SentBack) => return f.sent_back += 1,
            Err(_) => return f.cancelled += 1,
        };
        f.reports += 1;
        if let Some((time, in_target)) = t.response {
            f.responded += 1;
            f.responded_in_target += u64::from(in_target);
            self.response.push(time);
        }
        match t.resolution {
            Some((time, in_target)) => {
                f.resolved += 1;
                f.resolved_in_target += u64::from(in_target);
                self.resolution.push(time);
            }
            None => f.open += 1,
        }
        f.breaches += t.breaches;
        f.breached += u64::from(t.breaches > 0);
        f.escalated += u64::from(t.escalated);
        f.urges += t.urges;
        f.urged += u64::from(t.urges > 0);
        self.ever_resolved += u64::from(t.ever_resolved);
        if let Some((first_solved, any_unsolved)) = t.answered {
            f.answered += 1;
            f.solved_first_time += u64::from(first_solved);
            f.second_handlings += u64::from(any_unsolved);
        }
        if let Some((rating, source)) = t.rating {
            match rating {
                Rating::Satisfied => f.satisfied += 1,
                Rating::BasicallySatisfied => f.basically_satisfied += 1,
                Rating::Dissatisfied => f.dissatisfied += 1,
            }
            if let Some(i) = source.and_then(|s| AnswerSource::ALL.iter().position(|&a| a == s)) {
                self.by_source[i].0 += 1;
                self.by_source[i].1 += u64::from(rating != Rating::Dissatisfied);
            }
        }
    }

    fn figures(self) -> Figures {
        let mut f = self.figures;
        f.rated = f.satisfied + f.basically_satisfied + f.dissatisfied;
        f.response = Spread::of(self.response);
        f.resolution = Spread::of(self.resolution);
        f.response_rate = share(f.responded_in_target, f.reports);
        f.resolution_rate = share(f.resolved, f.reports);
        f.resolved_in_target_rate = share(f.resolved_in_target, f.reports);
        f.satisfaction_rate = share(f.satisfied + f.basically_satisfied, f.rated);
        f.answer_rate = share(f.answered, self.ever_resolved);
        f.first_time_rate = share(f.solved_first_time, f.answered);
        f.by_source = AnswerSource::ALL
            .into_iter()
            .zip(self.by_source)
            .map(|(source, (rated, satisfied))| SourceFigures {
                source,
                rated,
                satisfied,
                satisfaction_rate: share(satisfied, rated),
            })
            .collect();
        f
    }
}

/// A row's tally, or the status it was withdrawn with (cancelled, sent back).
type Counted<'t> = Result<&'t Tally, Status>;

/// Figures for `rows` (already filtered), as of `asof`: what happened after it is not counted.
pub fn figures<'a>(rows: impl IntoIterator<Item = &'a AuditRow>, asof: Timestamp) -> Figures {
    let mut totals = Totals::default();
    for row in rows {
        totals.add(Tally::of(row, asof).as_ref().map_err(|&s| s));
    }
    totals.figures()
}

/// Totals by one key (a worker, compound or category), each with the name people read.
#[derive(Debug, Default)]
struct Grouped<'a> {
    index: FxHashMap<&'a str, usize>,
    groups: Vec<(&'a str, &'a str, Totals)>,
}

impl<'a> Grouped<'a> {
    fn add(&mut self, key: &'a str, name: &'a str, tally: Counted) {
        let groups = &mut self.groups;
        let i = *self.index.entry(key).or_insert_with(|| {
            groups.push((key, name, Totals::default()));
            groups.len() - 1
        });
        groups[i].2.add(tally);
    }

    /// The groups in the order of their keys; `label` names those the rows carry no name for.
    fn into_groups(self, label: impl Fn(&str) -> String) -> Vec<Group> {
        let mut groups = self.groups;
        groups.sort_unstable_by_key(|&(key, _, _)| key);
        groups
            .into_iter()
            .map(|(key, name, totals)| Group {
                label: if name.is_empty() { label(key) } else { name.to_owned() },
                key: key.to_owned(),
                figures: totals.figures(),
            })
            .collect()
    }
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
    /// By where the reports came from (`Origin`: kiosk, 代报, office, Open311, 12345, 街道),
    /// keyed by its wire name.
    #[serde(default)]
    pub by_origin: Vec<Group>,
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
    /// How often it was reported there lately: the most any report of the period counted with
    /// the earlier ones that made it recurring (which may be before the period).
    #[serde(default)]
    pub lately: u32,
}

/// The most reports at one place any report of the period counted with its earlier ones.
fn lately(rows: &[&AuditRow]) -> u32 {
    rows.iter().map(|r| r.recurring_earlier.saturating_add(1)).max().unwrap_or(0)
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
    // One walk over the rows: each is read into its tally once, which goes to the whole, its
    // worker, compound and category, the histogram and its day.
    let mut whole = Totals::default();
    let (mut by_worker, mut by_compound, mut by_category, mut by_origin) =
        (Grouped::default(), Grouped::default(), Grouped::default(), Grouped::default());
    let mut histogram: Vec<Bucket> = BUCKETS
        .iter()
        .map(|&p| Bucket { up_to_percent: Some(p), unanswered: false, count: 0 })
        .chain([
            Bucket { up_to_percent: None, unanswered: false, count: 0 },
            Bucket { up_to_percent: None, unanswered: true, count: 0 },
        ])
        .collect();
    let mut days: FxHashMap<Timestamp, Day> = FxHashMap::default();
    // 每月一题: the period's reports by place, and whether one of them was flagged recurring.
    // (Hashed with the standard, keyed hash: a building is what the reporter typed.)
    type Place<'r> = (&'r CompoundId, &'r str, &'r CategoryId);
    let mut places: HashMap<Place, (bool, Vec<&AuditRow>)> = HashMap::new();
    for row in rows.into_iter().filter(|r| query.matches(r)) {
        let tally = Tally::of(row, asof);
        let tally = tally.as_ref().map_err(|&s| s);
        whole.add(tally);
        if let Some(holder) = &row.holder {
            by_worker.add(&holder.id, &holder.name, tally);
        }
        by_compound.add(&row.compound.0, "", tally);
        by_category.add(&row.category.0, "", tally);
        by_origin.add(row.origin.name(), "", tally);
        let Ok(t) = tally else { continue };
        let index = match t.response {
            None => BUCKETS.len() + 1,
            Some((time, _)) => {
                let target = row.respond_by.since(row.reported_at).0.max(1);
                let percent = time.saturating_mul(100) / target;
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
        day.responded_in_target += u64::from(t.response.is_some_and(|(_, in_target)| in_target));
        day.resolved += u64::from(t.resolution.is_some());
        if !row.building.is_empty() {
            let (flagged, rows) =
                places.entry((&row.compound, &row.building, &row.category)).or_default();
            *flagged |= row.recurring;
            rows.push(row);
        }
    }
    let mut daily: Vec<Day> = days.into_values().collect();
    daily.sort_unstable_by_key(|d| d.start);
    let mut places: Vec<_> = places
        .into_iter()
        .filter_map(|(place, (flagged, rows))| flagged.then_some((place, rows)))
        .collect();
    places.sort_unstable_by(|(a, a_rows), (b, b_rows)| {
        b_rows.len().cmp(&a_rows.len()).then_with(|| a.cmp(b))
    });
    let recurring = places
        .into_iter()
        .map(|((compound, building, category), rows)| Recurring {
            compound: compound.clone(),
            building: building.to_owned(),
            category: category.clone(),
            incidents: rows.iter().map(|r| r.id).collect(),
            tickets: rows.iter().map(|r| r.ticket.clone()).collect(),
            lately: lately(&rows),
        })
        .collect();
    Summary {
        recurring,
        query: query.clone(),
        asof,
        figures: whole.figures(),
        by_worker: by_worker.into_groups(|k| label("worker", k)),
        by_compound: by_compound.into_groups(|k| label("compound", k)),
        by_category: by_category.into_groups(|k| label("category", k)),
        by_origin: by_origin.into_groups(|k| label("origin", k)),
        response_histogram: histogram,
        daily,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Role;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn at(minutes: i64) -> Timestamp {
        Timestamp(1_790_000_000_000 + minutes * MIN)
    }

    fn answer() -> impl Strategy<Value = Answer> {
        (0..2_000i64, 0..3usize, any::<bool>(), 0..3usize).prop_map(|(t, s, solved, r)| Answer {
            at: at(t),
            by: Actor { id: "k".into(), name: String::new(), role: Role::Kiosk },
            source: AnswerSource::ALL[s],
            solved,
            rating: [Rating::Satisfied, Rating::BasicallySatisfied, Rating::Dissatisfied][r],
            round: 0,
        })
    }

    fn row() -> impl Strategy<Value = AuditRow> {
        let place = (0..3usize, 0..3usize, 0..2usize, any::<bool>());
        let times = (0..1_000i64, proptest::option::of(0..200i64), proptest::option::of(0..900i64));
        // A worker's name as each row has it: rows may disagree, or carry none.
        let holder = proptest::option::of((0..4usize, 0..3usize));
        let status = (0..6usize, 0..Origin::ALL.len());
        let facts = (any::<[bool; 3]>(), 0..3u32, 0..2u32, proptest::option::of(0..3usize));
        let answers = proptest::collection::vec(answer(), 0..3);
        (place, times, holder, status, facts, answers, 0..30u64).prop_map(
            |(place, times, holder, status, facts, answers, paused)| {
                let (compound, building, category, recurring) = place;
                let (reported, claimed, resolved) = times;
                let (status, origin) = status;
                let [response_breached, resolution_breached, escalated] = facts.0;
                let status = [
                    Status::Reported,
                    Status::Claimed,
                    Status::HandedOver,
                    Status::Resolved,
                    Status::Cancelled,
                    Status::SentBack,
                ][status];
                AuditRow {
                    id: IncidentId(0),
                    ticket: Ticket::new(0),
                    compound: CompoundId(["c1", "c2", "c3"][compound].into()),
                    building: ["", "1号楼", "2号楼"][building].into(),
                    category: CategoryId(["repair", "noise"][category].into()),
                    urgency: Urgency::Normal,
                    reported_at: at(reported),
                    respond_by: at(reported + 30),
                    resolve_by: at(reported + 600),
                    claimed_at: claimed.map(|c| at(reported + c)),
                    holder: holder.map(|(w, name)| Actor {
                        id: format!("w{w}"),
                        name: ["", "网格员", "张三"][name].into(),
                        role: Role::Worker,
                    }),
                    resolved_at: resolved
                        .filter(|_| status == Status::Resolved)
                        .map(|r| at(reported + r)),
                    status,
                    response_breached,
                    resolution_breached,
                    escalated,
                    urges: facts.1,
                    rating: facts.3.map(|r| {
                        [Rating::Satisfied, Rating::BasicallySatisfied, Rating::Dissatisfied][r]
                    }),
                    round: 0,
                    earlier_breaches: facts.2,
                    answers,
                    pauses: Vec::new(),
                    paused_ms: paused * MIN as u64,
                    recurring,
                    recurring_earlier: u32::from(recurring) * 2,
                    origin: Origin::ALL[origin],
                    external_id: None,
                }
            },
        )
    }

    /// The summary as it was computed before it was read in one walk (commit 6ae484d): four
    /// walks, a list per group, the places sorted. Kept as the oracle the one walk must equal.
    mod reference {
        use std::collections::BTreeMap;

        use super::super::*;

        pub(super) fn figures<'a>(
            rows: impl IntoIterator<Item = &'a AuditRow>,
            asof: Timestamp,
        ) -> Figures {
            let mut f = Figures::default();
            let (mut response, mut resolution) = (Vec::new(), Vec::new());
            let mut by_source: BTreeMap<AnswerSource, (u64, u64)> = BTreeMap::new();
            let mut ever_resolved = 0;
            for row in rows {
                match row.status {
                    Status::Cancelled => f.cancelled += 1,
                    Status::SentBack => f.sent_back += 1,
                    _ => {}
                }
                if row.status.is_withdrawn() {
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
                        resolution
                            .push(resolved.since(row.reported_at).0.saturating_sub(row.paused_ms));
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
                ever_resolved += u64::from(
                    given().next().is_some() || row.resolved_at.is_some_and(|r| r <= asof),
                );
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
                    SourceFigures {
                        source,
                        rated,
                        satisfied,
                        satisfaction_rate: share(satisfied, rated),
                    }
                })
                .collect();
            f
        }

        pub(super) fn summarize<'a>(
            rows: impl IntoIterator<Item = &'a AuditRow>,
            query: &AuditQuery,
            now: Timestamp,
            label: impl Fn(&str, &str) -> String,
        ) -> Summary {
            let asof = query.to.min(now);
            let chosen: Vec<&AuditRow> = rows.into_iter().filter(|r| query.matches(r)).collect();
            // Keys and names borrowed from the rows: grouping a year of reports allocates per group,
            // not per row.
            let group =
                |kind: &str, key: &dyn for<'r> Fn(&'r AuditRow) -> Option<(&'r str, &'r str)>| {
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
            let by_origin = group("origin", &|r| Some((r.origin.name(), "")));

            let mut histogram: Vec<Bucket> = BUCKETS
                .iter()
                .map(|&p| Bucket { up_to_percent: Some(p), unanswered: false, count: 0 })
                .chain([
                    Bucket { up_to_percent: None, unanswered: false, count: 0 },
                    Bucket { up_to_percent: None, unanswered: true, count: 0 },
                ])
                .collect();
            let mut days: BTreeMap<Timestamp, Day> = BTreeMap::new();
            for row in chosen.iter().filter(|r| !r.status.is_withdrawn()) {
                let claimed = row.claimed_at.filter(|&c| c <= asof);
                let index = match claimed {
                    None => BUCKETS.len() + 1,
                    Some(c) => {
                        let target = row.respond_by.since(row.reported_at).0.max(1);
                        let percent = c.since(row.reported_at).0.saturating_mul(100) / target;
                        BUCKETS
                            .iter()
                            .position(|&b| percent < u64::from(b))
                            .unwrap_or(BUCKETS.len())
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
            let counted = |r: &&&AuditRow| !r.status.is_withdrawn() && !r.building.is_empty();
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
                    lately: rows
                        .iter()
                        .map(|r| r.recurring_earlier.saturating_add(1))
                        .max()
                        .unwrap_or(0),
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
                by_origin,
                response_histogram: histogram,
                daily: days.into_values().collect(),
            }
        }
    }

    fn label(kind: &str, key: &str) -> String {
        format!("{kind}:{key}")
    }

    /// The figures the summary reports for a group, computed the plain way: the group's rows
    /// picked out, then counted.
    type Key = fn(&AuditRow) -> Option<&str>;

    fn plainly(rows: &[AuditRow], key: Key, asof: Timestamp) -> Vec<(String, Figures)> {
        let mut keys: Vec<&str> = rows.iter().filter_map(key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .map(|k| (k.to_owned(), figures(rows.iter().filter(|r| key(r) == Some(k)), asof)))
            .collect()
    }

    fn numbered(rows: &mut [AuditRow]) {
        for (n, row) in rows.iter_mut().enumerate() {
            row.id = IncidentId(n as u64 + 1);
            row.ticket = Ticket::new(row.id.0);
        }
    }

    proptest! {
        #[test]
        fn one_walk_gives_what_four_walks_gave(
            mut rows in proptest::collection::vec(row(), 0..60),
            from in 0..1_000i64,
            length in 1..3_000i64,
            now in 0..2_500i64,
            compound in proptest::option::of(0..3usize),
        ) {
            numbered(&mut rows);
            let query = AuditQuery {
                from: at(from),
                to: at(from + length),
                compound: compound.map(|c| CompoundId(["c1", "c2", "c3"][c].into())),
                ..AuditQuery::everything(&crate::principal::Scope::All)
            };
            let asof = query.to.min(at(now));
            prop_assert_eq!(figures(&rows, asof), reference::figures(&rows, asof));
            prop_assert_eq!(
                summarize(&rows, &query, at(now), label),
                reference::summarize(&rows, &query, at(now), label)
            );
        }

        #[test]
        fn every_group_counts_exactly_its_own_rows(
            mut rows in proptest::collection::vec(row(), 0..60),
            from in 0..1_000i64,
            length in 1..1_500i64,
            now in 0..2_500i64,
        ) {
            numbered(&mut rows);
            let query = AuditQuery {
                from: at(from),
                to: at(from + length),
                ..AuditQuery::everything(&crate::principal::Scope::All)
            };
            let summary = summarize(&rows, &query, at(now), label);
            let asof = summary.asof;
            let chosen: Vec<AuditRow> = rows.iter().filter(|r| query.matches(r)).cloned().collect();
            prop_assert_eq!(&summary.figures, &figures(&chosen, asof));

            let groups = |list: &[Group]| -> Vec<(String, Figures)> {
                list.iter().map(|g| (g.key.clone(), g.figures.clone())).collect()
            };
            let worker: Key = |r| r.holder.as_ref().map(|h| h.id.as_str());
            prop_assert_eq!(groups(&summary.by_worker), plainly(&chosen, worker, asof));
            let compound: Key = |r| Some(r.compound.0.as_str());
            prop_assert_eq!(groups(&summary.by_compound), plainly(&chosen, compound, asof));
            let category: Key = |r| Some(r.category.0.as_str());
            prop_assert_eq!(groups(&summary.by_category), plainly(&chosen, category, asof));
            let origin: Key = |r| Some(r.origin.name());
            prop_assert_eq!(groups(&summary.by_origin), plainly(&chosen, origin, asof));
            // A worker is named as on their first row counted (by the label when it has none).
            for g in &summary.by_worker {
                let named = chosen.iter().filter_map(|r| r.holder.as_ref()).find(|h| h.id == g.key);
                let name = named.map(|h| h.name.clone()).unwrap_or_default();
                let expected = if name.is_empty() { label("worker", &g.key) } else { name };
                prop_assert_eq!(&g.label, &expected);
            }

            let counted = chosen.iter().filter(|r| !r.status.is_withdrawn()).count() as u64;
            prop_assert_eq!(summary.response_histogram.iter().map(|b| b.count).sum::<u64>(), counted);
            prop_assert_eq!(summary.daily.iter().map(|d| d.reports).sum::<u64>(), counted);
            let unanswered = summary.response_histogram.last().map(|b| b.count);
            prop_assert_eq!(unanswered, Some(counted - summary.figures.responded));

            // 每月一题: one entry per flagged place, with every counted report there, most first.
            let at_place = |r: &AuditRow| {
                !r.status.is_withdrawn() && !r.building.is_empty()
            };
            let mut expected: Vec<(CompoundId, String, CategoryId, Vec<IncidentId>)> = Vec::new();
            for flagged in chosen.iter().filter(|r| at_place(r) && r.recurring) {
                let place = (&flagged.compound, &flagged.building, &flagged.category);
                if expected.iter().any(|(c, b, k, _)| (c, b, k) == place) {
                    continue;
                }
                let ids = chosen
                    .iter()
                    .filter(|r| at_place(r) && (&r.compound, &r.building, &r.category) == place)
                    .map(|r| r.id)
                    .collect();
                expected.push((place.0.clone(), place.1.clone(), place.2.clone(), ids));
            }
            expected.sort_by(|a, b| {
                b.3.len().cmp(&a.3.len()).then_with(|| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)))
            });
            let got: Vec<_> = summary
                .recurring
                .iter()
                .map(|r| (r.compound.clone(), r.building.clone(), r.category.clone(), r.incidents.clone()))
                .collect();
            prop_assert_eq!(got, expected);
        }
    }
}
