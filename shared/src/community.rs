//! The community hongfan serves: its compounds and the categories of problems residents report,
//! each with the "first-time" targets the grid office promises to meet.

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// Stable identifier of a compound (小区), as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct CompoundId(pub String);

/// Stable identifier of an incident category, as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct CategoryId(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Community {
    /// For example 财工街社区.
    pub name: String,
    /// The street office (街道) that 代办 hands matters over to.
    pub street_office: String,
    pub compounds: Vec<Compound>,
    pub categories: Vec<Category>,
    #[serde(default)]
    pub escalation: EscalationPolicy,
}

/// When a report is shown beyond the on-duty workers of its compound. Nobody on duty: at once,
/// to the supervisors and the other compounds' on-duty workers. Still unclaimed: to the
/// supervisors, after `unclaimed_after` or when the response target passes, whichever is first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationPolicy {
    pub unclaimed_after: Millis,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy { unclaimed_after: Millis::from_mins(30) }
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

impl Community {
    pub fn compound(&self, id: &CompoundId) -> Option<&Compound> {
        self.compounds.iter().find(|c| &c.id == id)
    }

    pub fn category(&self, id: &CategoryId) -> Option<&Category> {
        self.categories.iter().find(|c| &c.id == id)
    }
}
