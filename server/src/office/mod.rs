//! The office as supervisors run it while the server runs: its people (`people`), its kiosks
//! (`kiosks`), the API keys of other systems (`keys`), its duty rotas and its community, and the history of every change to it. Each
//! edit is decided by the committer against the office as it is then, and logged with who made
//! it and what was there before. Checking secrets and keeping sessions is `auth`'s.

pub mod keys;
mod kiosks;
mod people;

pub use people::{FirstStart, NewPerson};

use hongfan_shared::office::{Office, OfficeChange, OfficeEvent, Person, Rota, without_secrets};
use hongfan_shared::{Community, CompoundId, Principal, Role};

use crate::store::{OfficeEdit, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    #[error("this is outside the compounds you manage")]
    NotYours,
    #[error("only a community supervisor (书记) changes the community")]
    NotEverything,
    #[error("unknown compound {0:?}")]
    UnknownCompound(String),
    #[error("{0}")]
    BadRota(String),
    #[error("{0}")]
    BadCommunity(String),
    #[error("{0}")]
    BadPoints(String),
    #[error("{0}")]
    BadPatrol(String),
    #[error("a key is named after who holds it: 1 to 40 characters")]
    BadKeyName,
    #[error("a platform's webhook is an http or https URL")]
    BadWebhook,
    #[error("unknown API key {0:?}")]
    UnknownKey(String),
    #[error("unknown community {0:?}")]
    UnknownCommunity(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Logs one change decided by `edit` against the office as the committer has it.
async fn change(
    store: &Store,
    by: &Principal,
    edit: impl FnOnce(&Office) -> Result<OfficeChange, OfficeError> + Send + 'static,
) -> Result<OfficeEvent, OfficeError> {
    let edit: OfficeEdit = Box::new(move |office| edit(office).map_err(Into::into));
    match store.change_office(&by.actor, edit).await {
        Ok(event) => Ok(event),
        Err(StoreError::Refused(refused)) => match refused.downcast::<OfficeError>() {
            Ok(office) => Err(*office),
            Err(other) => Err(OfficeError::Store(StoreError::Write(other.to_string()))),
        },
        Err(e) => Err(e.into()),
    }
}

/// Whether `by` runs the office: a supervisor, or the operator.
fn runs_office(by: &Principal) -> bool {
    matches!(by.actor.role, Role::Supervisor | Role::System)
}

/// Replaces a compound's rota. Every worker it names must be an active grid worker of the
/// compound; `by` must manage the compound.
pub async fn set_rota(
    store: &Store,
    by: &Principal,
    compound: CompoundId,
    rota: Rota,
) -> Result<OfficeEvent, OfficeError> {
    if !runs_office(by) || !by.may_act_in(&compound) {
        return Err(OfficeError::NotYours);
    }
    change(store, by, move |office| {
        if office.community_of(&compound).is_none() {
            return Err(OfficeError::UnknownCompound(compound.0.clone()));
        }
        rota.check(&office.workers_of(&compound)).map_err(OfficeError::BadRota)?;
        let before = office.rotas.get(&compound).cloned().map(Box::new);
        Ok(OfficeChange::Rota { compound, before, after: Box::new(rota) })
    })
    .await
}

/// Replaces a community (compounds, buildings, categories, targets, phrases), or adds one. It
/// applies to new incidents only: an incident keeps the targets it was reported with. Only
/// whoever runs that community may, nothing incidents refer to may go, and no compound may be
/// another community's.
pub async fn set_community(
    store: &Store,
    by: &Principal,
    community: Community,
) -> Result<OfficeEvent, OfficeError> {
    if !runs_office(by) || !by.runs(&community.id) {
        return Err(OfficeError::NotEverything);
    }
    change(store, by, move |office| {
        office.check_community(&community).map_err(|p| OfficeError::BadCommunity(p.reason))?;
        let before = office.communities.get(&community.id).map(|c| Box::new(Community::clone(c)));
        Ok(OfficeChange::Community { before, after: Box::new(community) })
    })
    .await
}

/// Whether `by` may read of `event`: whoever runs a community reads everything of it; a
/// compound leader what concerns their compounds, and their community's points and patrols.
fn concerns(by: &Principal, event: &OfficeEvent, office: &Office) -> bool {
    let person = |p: &Person| by.runs(&p.community) || p.compounds.iter().any(|c| by.may_act_in(c));
    // Points and patrols are the building heads' list of the community (the 楼长节's).
    let of_community = |login: &str| {
        let Some(community) = office.people.get(login).map(|p| &p.community) else {
            return false;
        };
        by.runs(community)
            || office
                .communities
                .get(community)
                .is_some_and(|c| c.compounds.iter().any(|c| by.may_act_in(&c.id)))
    };
    match &event.change {
        OfficeChange::Person { before, after } => {
            person(after) || before.as_deref().is_some_and(person)
        }
        OfficeChange::Kiosk { after, .. } => by.may_act_in(&after.compound),
        OfficeChange::Rota { compound, .. } => by.may_act_in(compound),
        OfficeChange::Community { after, .. } => {
            by.runs(&after.id) || after.compounds.iter().any(|c| by.may_act_in(&c.id))
        }
        OfficeChange::Award(award) => of_community(&award.head.id),
        OfficeChange::Patrol(_) => of_community(&event.actor.id),
        OfficeChange::ApiKey { after, .. } => by.runs(&after.community),
    }
}

/// The office's history as `by` may read it, newest first: up to `limit` events before `before`
/// (a sequence number; none for the newest), without any secret.
pub fn history(
    store: &Store,
    by: &Principal,
    before: Option<u64>,
    limit: usize,
    points: bool,
) -> Result<Vec<OfficeEvent>, OfficeError> {
    if !runs_office(by) {
        return Err(OfficeError::NotYours);
    }
    let events = store.office_history()?;
    let office = store.office();
    // The points and patrols are many (a deed a day per building head) and are read on the
    // audit page: the office's own changes would drown in them.
    let wanted = |e: &&OfficeEvent| {
        points || !matches!(e.change, OfficeChange::Award(_) | OfficeChange::Patrol(_))
    };
    Ok(events
        .iter()
        .rev()
        .filter(|e| before.is_none_or(|b| e.seq < b))
        .filter(wanted)
        .filter(|e| concerns(by, e, &office.office))
        .take(limit)
        .map(without_secrets)
        .collect())
}

/// Longest reason of a points adjustment, or text of a patrol, in characters.
pub const MAX_POINTS_TEXT: usize = 200;
/// Largest adjustment, either way.
pub const MAX_ADJUSTMENT: i32 = 100;

/// 楼长积分: a supervisor adds or corrects a building head's points, with a reason. The ledger
/// is never edited: a correction is one more entry.
pub async fn adjust_points(
    store: &Store,
    by: &Principal,
    head: String,
    points: i32,
    reason: String,
    incident: Option<hongfan_shared::IncidentId>,
) -> Result<OfficeEvent, OfficeError> {
    if by.actor.role != Role::Supervisor {
        return Err(OfficeError::NotYours);
    }
    let reason = reason.trim().to_owned();
    if points == 0 || points.abs() > MAX_ADJUSTMENT {
        return Err(OfficeError::BadPoints(format!(
            "points are between -{MAX_ADJUSTMENT} and {MAX_ADJUSTMENT}, not 0"
        )));
    }
    if reason.is_empty() || reason.chars().count() > MAX_POINTS_TEXT {
        return Err(OfficeError::BadPoints(format!(
            "a reason of 1 to {MAX_POINTS_TEXT} characters is needed"
        )));
    }
    let by = by.clone();
    change(store, &by.clone(), move |office| {
        let person =
            office.people.get(&head).filter(|p| p.role == Role::BuildingHead).ok_or_else(|| {
                OfficeError::BadPoints(format!("{head:?} is not a building head"))
            })?;
        if !person.compounds.iter().any(|c| by.may_act_in(c)) {
            return Err(OfficeError::NotYours);
        }
        let head = hongfan_shared::Actor {
            id: person.login.clone(),
            name: person.name.clone(),
            role: Role::BuildingHead,
        };
        let rule = hongfan_shared::points::PointsRule::Adjustment;
        Ok(OfficeChange::Award(hongfan_shared::points::Award {
            head,
            points,
            rule,
            reason,
            incident,
        }))
    })
    .await
}

/// 巡防: a building head records a patrol round of their own buildings; it earns its points in
/// the same group.
pub async fn record_patrol(
    store: &Store,
    by: &Principal,
    patrol: hongfan_shared::points::Patrol,
) -> Result<OfficeEvent, OfficeError> {
    if by.actor.role != Role::BuildingHead {
        return Err(OfficeError::NotYours);
    }
    let checked = patrol.checked.trim();
    if checked.is_empty()
        || checked.chars().count() > MAX_POINTS_TEXT
        || patrol.found.chars().count() > hongfan_shared::lifecycle::MAX_TEXT_CHARS
    {
        return Err(OfficeError::BadPatrol(format!(
            "what was checked (1 to {MAX_POINTS_TEXT} characters) is needed"
        )));
    }
    let login = by.actor.id.clone();
    change(store, by, move |office| {
        let theirs = office.people.get(&login).map(|p| p.buildings.clone()).unwrap_or_default();
        if patrol.buildings.is_empty() || !patrol.buildings.iter().all(|b| theirs.contains(b)) {
            return Err(OfficeError::BadPatrol(
                "a patrol covers some of your own buildings".into(),
            ));
        }
        Ok(OfficeChange::Patrol(patrol))
    })
    .await
}
