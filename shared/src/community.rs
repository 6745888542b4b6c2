//! The community hongfan serves: its compounds and the categories of problems residents report,
//! each with the "first-time" targets the grid office promises to meet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// Stable identifier of a community (社区) within a deployment, as written in the configuration.
/// A deployment serving one community calls it `default`, as every record from before there
/// could be several does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct CommunityId(pub String);

impl Default for CommunityId {
    fn default() -> Self {
        CommunityId("default".into())
    }
}

impl std::fmt::Display for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Stable identifier of a compound (小区), as written in the configuration. Unique across the
/// deployment: a compound belongs to one community, and never moves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct CompoundId(pub String);

/// Stable identifier of an incident category, as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct CategoryId(pub String);

/// What a report without a building names as its place, as the office writes it.
pub const PUBLIC_AREA: &str = "公共区域";

/// The board actions that take a text, and so may have quick replies.
pub const QUICK_REPLY_ACTIONS: &[&str] =
    &["note", "tell", "hand_over", "return", "resolve", "cancel", "urge"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Community {
    /// Which community of the deployment this is (`default` when it serves one).
    #[serde(default)]
    pub id: CommunityId,
    /// For example 财工街社区.
    pub name: String,
    /// The street office (街道) that 代办 hands matters over to.
    pub street_office: String,
    pub compounds: Vec<Compound>,
    pub categories: Vec<Category>,
    #[serde(default)]
    pub escalation: EscalationPolicy,
    /// Phrases a worker taps instead of typing, per action (`note`, `hand_over`, `return`,
    /// `resolve`, `cancel`, `urge`): 已联系居民, 已上门查看, 已报物业…
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quick_replies: BTreeMap<String, Vec<String>>,
    /// 挂起: why a worker may ask to pause a resolution clock, and how long a pause lasts at most.
    #[serde(default)]
    pub pauses: PausePolicy,
    /// 每月一题: when the same problem at the same building counts as recurring.
    #[serde(default)]
    pub recurring: RecurringPolicy,
    /// 楼长积分: how many points each deed of a building head earns.
    #[serde(default)]
    pub points: PointsRules,
    /// What the office aims for: the audit draws these as target lines.
    #[serde(default)]
    pub goals: Goals,
}

/// The office's aims, in percent: 响应率 (answered within target) and 满意率.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Goals {
    pub response_rate: u32,
    pub satisfaction_rate: u32,
}

impl Default for Goals {
    fn default() -> Self {
        Goals { response_rate: 90, satisfaction_rate: 90 }
    }
}

/// A report is flagged as recurring when, with it, its compound's building has had `reports`
/// reports of its category within `within` (cancelled ones not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecurringPolicy {
    pub reports: u32,
    pub within: Millis,
}

impl Default for RecurringPolicy {
    fn default() -> Self {
        RecurringPolicy { reports: 3, within: Millis::from_hours(60 * 24) }
    }
}

/// 挂起: a worker asks, with one of `reasons`; a supervisor approves or refuses; an approved
/// pause ends when the worker resumes, when the incident is resolved, or after `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PausePolicy {
    pub reasons: Vec<String>,
    pub limit: Millis,
}

impl Default for PausePolicy {
    fn default() -> Self {
        PausePolicy {
            reasons: ["等待居民在家", "等待物业/施工方", "等待街道批复"].map(String::from).to_vec(),
            limit: Millis::from_hours(72),
        }
    }
}

/// When a report is shown beyond the on-duty workers of its compound. Nobody on duty: at once,
/// to the supervisors and the other compounds' on-duty workers. Still unclaimed: to the
/// supervisors, after `unclaimed_after` or when the response target passes, whichever is first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationPolicy {
    pub unclaimed_after: Millis,
    /// A resolved incident the resident has not answered (解决了吗？满意吗？) this long after 办结
    /// goes on the 回访 list of the supervisors and building heads.
    #[serde(default = "default_callback_after")]
    pub callback_after: Millis,
}

fn default_callback_after() -> Millis {
    Millis::from_hours(24)
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            unclaimed_after: Millis::from_mins(30),
            callback_after: default_callback_after(),
        }
    }
}

/// A residential compound (小区) with its service station (红帆驿站) and grid office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Compound {
    pub id: CompoundId,
    pub name: String,
    pub station: String,
    pub grid: String,
    /// Its buildings, as residents pick them at the kiosk (empty: typed instead).
    #[serde(default)]
    pub buildings: Vec<Building>,
}

/// A building (楼) and its units (单元).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Building {
    /// As the community writes it, for example 3号楼.
    pub name: String,
    /// For example 1单元, 2单元; empty for a building without units.
    #[serde(default)]
    pub units: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Category {
    pub id: CategoryId,
    /// The Chinese name residents see, for example 助老.
    pub name: String,
    pub name_en: String,
    /// A single emoji or symbol shown on the kiosk button beside the name.
    pub icon: String,
    pub targets: Targets,
    /// Its reports concern people who need discretion (elderly people living alone, families on
    /// assistance): description, room and notes only for the holder and supervisors.
    #[serde(default)]
    pub private: bool,
    /// Preset phrases a resident taps instead of typing (楼道灯坏了, 水管漏水…).
    #[serde(default)]
    pub phrases: Vec<String>,
    /// A kiosk report is not an emergency call: the kiosk shows 110 / 119 / 120 in large type
    /// before the form (安全隐患, 助老).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emergency: bool,
    /// No longer offered for new reports; kept because incidents refer to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
    /// 矛盾纠纷: a worker may hand it to a building head to mediate (调解), who has this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediation: Option<Millis>,
}

impl Category {
    /// A category `id`, named after itself, to be answered within a minute and resolved within
    /// two (urgent or not): see `Community::sample`.
    pub fn sample(id: &str, private: bool) -> Category {
        let target = Target { respond: Millis(60_000), resolve: Millis(120_000) };
        Category {
            id: CategoryId(id.into()),
            name: id.into(),
            name_en: id.into(),
            icon: String::new(),
            targets: Targets { normal: target, urgent: target },
            private,
            phrases: Vec::new(),
            emergency: false,
            retired: false,
            mediation: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Normal,
    /// 紧急: shorter targets, shown first on the board.
    Urgent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Targets {
    pub normal: Target,
    pub urgent: Target,
}

/// The two first-time promises for one category and urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Target {
    /// From report to claim (接单).
    pub respond: Millis,
    /// From report, or from reopening, to resolution (办结).
    pub resolve: Millis,
}

impl Targets {
    pub fn for_urgency(&self, urgency: Urgency) -> Target {
        match urgency {
            Urgency::Normal => self.normal,
            Urgency::Urgent => self.urgent,
        }
    }
}

/// Where in a community a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Community,
    Escalation,
    /// The compound at this index.
    Compound(usize),
    /// The category at this index.
    Category(usize),
}

/// Why a community cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Problem {
    pub place: Place,
    pub reason: String,
}

/// Longest name, phrase or building a community may hold, in characters.
const MAX_TEXT: usize = 40;
/// Most phrases per category and buildings per compound.
const MAX_ITEMS: usize = 200;

fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok { Ok(()) } else { Err(format!("id {id:?} must be 1 to 32 letters, digits, '_' or '-'")) }
}

impl Community {
    /// A small community of `compounds` (each named after its id) and `categories`, every
    /// other setting its default: the one `permissions` derives its table from, and the one the
    /// tests of every floor try the rules on.
    pub fn sample(compounds: &[&str], categories: Vec<Category>) -> Community {
        Community {
            id: CommunityId::default(),
            name: "社区".into(),
            street_office: "街道".into(),
            compounds: compounds
                .iter()
                .map(|id| Compound {
                    id: CompoundId((*id).into()),
                    name: (*id).into(),
                    station: (*id).into(),
                    grid: (*id).into(),
                    buildings: Vec::new(),
                })
                .collect(),
            categories,
            escalation: EscalationPolicy::default(),
            quick_replies: BTreeMap::new(),
            pauses: PausePolicy::default(),
            recurring: RecurringPolicy::default(),
            points: PointsRules::default(),
            goals: Goals::default(),
        }
    }

    /// Every rule a community must keep, wherever it comes from (the configuration file, the
    /// admin page): ids unique and well-formed, names present, targets positive with the
    /// response no later than the resolution.
    pub fn check(&self) -> Result<(), Problem> {
        let at = |place| move |reason: String| Problem { place, reason };
        if self.name.trim().is_empty() || self.street_office.trim().is_empty() {
            return Err(at(Place::Community)(
                "the community needs a name and a street office".into(),
            ));
        }
        check_id(&self.id.0).map_err(at(Place::Community))?;
        if self.compounds.is_empty() {
            return Err(at(Place::Community)("at least one compound is needed".into()));
        }
        if self.categories.iter().all(|c| c.retired) {
            return Err(at(Place::Community)("at least one category in use is needed".into()));
        }
        if self.escalation.unclaimed_after.0 == 0 || self.escalation.callback_after.0 == 0 {
            return Err(at(Place::Escalation)("a duration must be longer than zero".into()));
        }
        if self.recurring.reports < 2 || self.recurring.within.0 == 0 {
            return Err(at(Place::Community)(
                "recurring: at least 2 reports within a time longer than zero".into(),
            ));
        }
        let points = [
            self.points.proxy_report,
            self.points.callback,
            self.points.patrol,
            self.points.mediation,
        ];
        if [self.goals.response_rate, self.goals.satisfaction_rate].iter().any(|g| *g > 100) {
            return Err(at(Place::Community)("goals: percentages from 0 to 100".into()));
        }
        if points.iter().any(|p| !(0..=100).contains(p)) {
            return Err(at(Place::Community)("points: each from 0 to 100".into()));
        }
        if self.categories.iter().any(|c| c.mediation.is_some_and(|m| m.0 == 0)) {
            return Err(at(Place::Community)("a mediation time must be longer than zero".into()));
        }
        if self.pauses.limit.0 == 0
            || self.pauses.reasons.len() > MAX_ITEMS
            || self
                .pauses
                .reasons
                .iter()
                .any(|r| r.trim().is_empty() || r.chars().count() > MAX_TEXT)
        {
            return Err(at(Place::Community)(format!(
                "pauses: a limit longer than zero and at most {MAX_ITEMS} reasons of at most {MAX_TEXT} characters"
            )));
        }
        for (action, replies) in &self.quick_replies {
            if !QUICK_REPLY_ACTIONS.contains(&action.as_str()) {
                return Err(at(Place::Community)(format!(
                    "quick replies for {action:?}: only for {}",
                    QUICK_REPLY_ACTIONS.join(", ")
                )));
            }
            if replies.len() > MAX_ITEMS
                || replies.iter().any(|r| r.trim().is_empty() || r.chars().count() > MAX_TEXT)
            {
                return Err(at(Place::Community)(format!(
                    "quick replies for {action:?}: at most {MAX_ITEMS}, each 1 to {MAX_TEXT} characters"
                )));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for (i, c) in self.compounds.iter().enumerate() {
            let problem = at(Place::Compound(i));
            check_id(&c.id.0).map_err(problem)?;
            if !ids.insert(&c.id.0) {
                return Err(problem(format!("compound id {:?} is used twice", c.id.0)));
            }
            for (value, field) in [(&c.name, "name"), (&c.station, "station"), (&c.grid, "grid")] {
                if value.trim().is_empty() {
                    return Err(problem(format!("compound {:?} has an empty {field}", c.id.0)));
                }
            }
            if c.buildings.len() > MAX_ITEMS {
                return Err(problem(format!(
                    "compound {:?} has over {MAX_ITEMS} buildings",
                    c.id.0
                )));
            }
            let mut names = std::collections::HashSet::new();
            for b in &c.buildings {
                if b.name.trim().is_empty() || !names.insert(b.name.trim()) {
                    return Err(problem(format!(
                        "compound {:?}: every building needs a name of its own",
                        c.id.0
                    )));
                }
                let texts = std::iter::once(&b.name).chain(&b.units);
                if texts.clone().any(|t| t.chars().count() > MAX_TEXT || t.trim().is_empty()) {
                    return Err(problem(format!(
                        "compound {:?}: building and unit names are 1 to {MAX_TEXT} characters",
                        c.id.0
                    )));
                }
            }
        }
        let mut ids = std::collections::HashSet::new();
        for (i, c) in self.categories.iter().enumerate() {
            let problem = at(Place::Category(i));
            check_id(&c.id.0).map_err(problem)?;
            if !ids.insert(&c.id.0) {
                return Err(problem(format!("category id {:?} is used twice", c.id.0)));
            }
            if c.name.trim().is_empty() || c.name_en.trim().is_empty() {
                return Err(problem(format!("category {:?} needs a name and a name_en", c.id.0)));
            }
            for t in [c.targets.normal, c.targets.urgent] {
                if t.respond.0 == 0 || t.resolve.0 == 0 {
                    return Err(problem("a duration must be longer than zero".into()));
                }
                if t.respond > t.resolve {
                    return Err(problem("respond must not be longer than resolve".into()));
                }
            }
            if c.phrases.len() > MAX_ITEMS
                || c.phrases.iter().any(|p| p.trim().is_empty() || p.chars().count() > MAX_TEXT)
            {
                return Err(problem(format!(
                    "category {:?}: at most {MAX_ITEMS} phrases of 1 to {MAX_TEXT} characters",
                    c.id.0
                )));
            }
        }
        Ok(())
    }

    /// Whether `self` may replace `before`: it must keep every rule, and every compound and
    /// category `before` has (incidents refer to them by id; retire a category instead).
    pub fn check_replaces(&self, before: &Community) -> Result<(), Problem> {
        self.check()?;
        if self.id != before.id {
            return Err(Problem {
                place: Place::Community,
                reason: format!("the community's id {:?} cannot change", before.id.0),
            });
        }
        for c in &before.compounds {
            if self.compound(&c.id).is_none() {
                return Err(Problem {
                    place: Place::Community,
                    reason: format!(
                        "compound {:?} cannot be removed: incidents refer to it",
                        c.id.0
                    ),
                });
            }
        }
        for c in &before.categories {
            if self.category(&c.id).is_none() {
                return Err(Problem {
                    place: Place::Community,
                    reason: format!(
                        "category {:?} cannot be removed: incidents refer to it; retire it instead",
                        c.id.0
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn compound(&self, id: &CompoundId) -> Option<&Compound> {
        self.compounds.iter().find(|c| &c.id == id)
    }

    pub fn category(&self, id: &CategoryId) -> Option<&Category> {
        self.categories.iter().find(|c| &c.id == id)
    }
}

/// How many points each deed earns (楼长积分奖励制度).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointsRules {
    /// 代报 confirmed as real: a report the building head made is resolved.
    pub proxy_report: i32,
    /// A 回访 done: the building head recorded a resident's answer.
    pub callback: i32,
    /// A patrol round (巡防) recorded.
    pub patrol: i32,
    /// A mediation (调解) the building head settled.
    #[serde(default = "three")]
    pub mediation: i32,
}

fn three() -> i32 {
    3
}

impl Default for PointsRules {
    fn default() -> Self {
        PointsRules { proxy_report: 2, callback: 1, patrol: 1, mediation: 3 }
    }
}
