//! 楼长积分: the building heads' points. The rules are the community's (`PointsRules`); each
//! award is an office event the committer writes in the same group as what earned it, so it is
//! recorded exactly once, crash or not. A supervisor adds or corrects with a reason, never edits:
//! a correction is one more award.

use serde::{Deserialize, Serialize};

pub use crate::community::PointsRules;
use crate::event::{Actor, Change, Event, Role};
use crate::incident::{Incident, IncidentId};
use crate::time::Timestamp;

/// Why points were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PointsRule {
    ProxyReport,
    Callback,
    Patrol,
    Mediation,
    /// Added or corrected by a supervisor, with a reason.
    Adjustment,
}

/// One award (or correction) in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Award {
    /// The building head (`id` is their login).
    pub head: Actor,
    /// Negative for a correction downwards.
    pub points: i32,
    pub rule: PointsRule,
    pub reason: String,
    /// The incident behind it, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentId>,
}

/// An award as the ledger keeps it: where it is in the office's log, when, and who wrote it
/// (the system for a rule, the supervisor for an adjustment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    pub seq: u64,
    pub at: Timestamp,
    pub by: Actor,
    pub award: Award,
}

/// A patrol round of a building head's buildings (巡防).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Patrol {
    pub buildings: Vec<String>,
    /// What was checked (消防通道, 楼道杂物, 电动车充电…).
    pub checked: String,
    /// Anything found; empty when all was well.
    #[serde(default)]
    pub found: String,
}

/// What `event` (folded into `incident`) earns, by `rules`; `awarded` says whether an award of a
/// rule for an incident is already in the ledger (a 代报 earns once, however often reopened).
pub fn earned(
    event: &Event,
    incident: &Incident,
    rules: &PointsRules,
    awarded: impl Fn(PointsRule, IncidentId) -> bool,
) -> Option<Award> {
    let award = |head: &Actor, points, rule, reason: &str| Award {
        head: head.clone(),
        points,
        rule,
        reason: reason.into(),
        incident: Some(incident.id),
    };
    match &event.change {
        Change::Resolved { .. }
            if incident.reported_by.role == Role::BuildingHead
                && !awarded(PointsRule::ProxyReport, incident.id) =>
        {
            let reason = "代报的问题已办结";
            Some(award(&incident.reported_by, rules.proxy_report, PointsRule::ProxyReport, reason))
        }
        Change::MediationEnded { settled: true, .. } if event.actor.role == Role::BuildingHead => {
            Some(award(&event.actor, rules.mediation, PointsRule::Mediation, "调解成功"))
        }
        Change::Rated { .. } if event.actor.role == Role::BuildingHead => {
            Some(award(&event.actor, rules.callback, PointsRule::Callback, "完成回访"))
        }
        _ => None,
    }
    .filter(|a| a.points != 0)
}

/// One building head's points in one year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Standing {
    pub head: Actor,
    /// January to December.
    pub months: [i32; 12],
    pub year: i32,
    /// How many awards (corrections included).
    pub awards: u32,
}

/// Year and month (1–12) of `at` in Asia/Shanghai.
pub fn year_month(at: Timestamp) -> (i32, usize) {
    let date = crate::time::date_of((at.0 + 8 * 3_600_000).div_euclid(86_400_000));
    let year = date[..4].parse().unwrap_or(0);
    let month = date[5..7].parse().unwrap_or(1);
    (year, month)
}

/// The standings of `year`, most points first (then by name): every award of that year, by
/// month.
pub fn standings<'a>(ledger: impl IntoIterator<Item = &'a Entry>, year: i32) -> Vec<Standing> {
    let mut by_head: std::collections::BTreeMap<&str, Standing> = Default::default();
    for Entry { at, award, .. } in ledger {
        let (y, month) = year_month(*at);
        if y != year {
            continue;
        }
        let s = by_head.entry(award.head.id.as_str()).or_insert_with(|| Standing {
            head: award.head.clone(),
            months: [0; 12],
            year: 0,
            awards: 0,
        });
        s.months[month - 1] += award.points;
        s.year += award.points;
        s.awards += 1;
    }
    let mut list: Vec<Standing> = by_head.into_values().collect();
    list.sort_by(|a, b| b.year.cmp(&a.year).then_with(|| a.head.name.cmp(&b.head.name)));
    list
}
