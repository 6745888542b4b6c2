//! Which actions a page may offer, derived from the rule the server enforces: `lifecycle::decide`
//! is asked, for every role, status, relation to the holder and kind of category, which actions it
//! would accept. The board shows exactly those buttons (served at `GET /api/rules`), so a button
//! and the server's answer to it cannot disagree.

use serde::Serialize;

use crate::community::{Category, CategoryId, Community, CompoundId, Urgency};
use crate::event::{Actor, Change, Event, Role};
use crate::incident::{Incident, IncidentId, Report, Status, Ticket};
use crate::lifecycle::{Action, Principal, Scope, decide};
use crate::time::{Millis, Timestamp};

/// How the viewer stands to an incident's holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// Nobody holds it.
    None,
    /// The viewer holds it.
    Me,
    /// Someone else does.
    Other,
}

/// Where an incident's pause (挂起) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PauseState {
    /// No pause asked for or running.
    None,
    /// Asked for, waiting for a supervisor.
    Asked,
    /// Approved: the resolution clock stands still.
    Running,
}

/// Whether a building head is mediating the incident (调解), and who.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MediationState {
    None,
    /// The viewer is mediating it.
    Mine,
    /// Another building head is.
    Other,
}

/// Whether the incident is a work order from above (上级派单), and where its 退单 stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Not a work order.
    None,
    /// A work order nobody asked to send back.
    Order,
    /// A work order the holder asked to send back, waiting for a supervisor.
    SendBackAsked,
}

/// The actions one kind of viewer may take on one kind of incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Permission {
    pub role: Role,
    pub status: Status,
    pub holder: Holder,
    /// A private category (助老, 低保, 救助 by default).
    pub private: bool,
    /// A category a building head may mediate (矛盾纠纷).
    pub mediable: bool,
    pub pause: PauseState,
    pub mediation: MediationState,
    pub order: OrderState,
    /// Client message types, for example `claim`, `resolve`, `assign`.
    pub actions: Vec<&'static str>,
}

const COMPOUND: &str = "c";

fn actor(id: &str, role: Role) -> Actor {
    Actor { id: id.into(), name: id.into(), role }
}

fn principal(id: &str, role: Role) -> Principal {
    Principal { actor: actor(id, role), scope: Scope::Compounds(vec![CompoundId(COMPOUND.into())]) }
}

fn community() -> Community {
    let mediable =
        Category { mediation: Some(Millis(60_000)), ..Category::sample("mediable", false) };
    Community::sample(
        &[COMPOUND],
        vec![Category::sample("open", false), Category::sample("private", true), mediable],
    )
}

fn incident(
    private: bool,
    mediable: bool,
    status: Status,
    holder: Holder,
    pause: PauseState,
    mediation: MediationState,
    order: OrderState,
) -> Incident {
    let report = Report {
        compound: CompoundId(COMPOUND.into()),
        category: CategoryId(
            if private {
                "private"
            } else if mediable {
                "mediable"
            } else {
                "open"
            }
            .into(),
        ),
        urgency: Urgency::Normal,
        building: "1".into(),
        unit: String::new(),
        room: String::new(),
        description: "x".into(),
        phone: Some("13800000000".into()),
        attachments: Vec::new(),
        order: (order != OrderState::None).then(|| crate::incident::WorkOrder {
            key: "key-1".into(),
            source: crate::incident::Source::Hotline,
            external_id: "1".into(),
            due: None,
        }),
    };
    let event = Event {
        seq: 1,
        at: Timestamp(0),
        incident: IncidentId(1),
        actor: actor("kiosk", Role::Kiosk),
        change: Change::Reported {
            ticket: Ticket("0001".into()),
            report: Box::new(report),
            request_id: "r".into(),
            respond_by: Timestamp(60_000),
            resolve_by: Timestamp(120_000),
            escalate_by: None,
            key: None,
            recurring: Vec::new(),
        },
    };
    let mut incident = Incident::from_event(&event).expect("a report makes an incident");
    incident.status = status;
    incident.holder = match holder {
        Holder::None => None,
        Holder::Me => Some(actor("viewer", Role::Worker)),
        Holder::Other => Some(actor("other", Role::Worker)),
    };
    incident.pause = (pause != PauseState::None).then(|| crate::incident::Pause {
        reason: "x".into(),
        asked_by: actor("other", Role::Worker),
        asked_at: Timestamp(0),
        decided_by: (pause == PauseState::Running).then(|| actor("boss", Role::Supervisor)),
        approved: pause == PauseState::Running,
        from: (pause == PauseState::Running).then_some(Timestamp(0)),
        to: None,
        until: (pause == PauseState::Running).then_some(Timestamp(1)),
    });
    incident.mediation = (mediation != MediationState::None).then(|| crate::incident::Mediation {
        head: actor(
            if mediation == MediationState::Mine { "viewer" } else { "other-head" },
            Role::BuildingHead,
        ),
        since: Timestamp(0),
        due: Timestamp(1),
        ended: None,
        outcome: None,
        settled: false,
        breached: false,
    });
    incident.send_back = (order == OrderState::SendBackAsked).then(|| crate::incident::SendBack {
        reason: "x".into(),
        asked_by: actor("other", Role::Worker),
        asked_at: Timestamp(0),
    });
    incident
}

/// Every action a board can send, with a harmless argument.
fn actions() -> Vec<(&'static str, Action)> {
    let text = || "x".to_owned();
    vec![
        ("claim", Action::Claim),
        ("note", Action::Note { text: text() }),
        ("hand_over", Action::HandOver { note: text() }),
        ("return", Action::Return { note: text() }),
        ("resolve", Action::Resolve { outcome: text(), proof: None }),
        ("reopen", Action::Reopen { reason: text() }),
        ("cancel", Action::Cancel { reason: text() }),
        ("reveal", Action::Reveal),
        ("assign", Action::Assign { to: principal("someone", Role::Worker) }),
        ("urge", Action::Urge { note: text() }),
        (
            "rate",
            Action::Rate { rating: crate::incident::Rating::Satisfied, key: None, solved: true },
        ),
        ("tell", Action::Tell { text: text() }),
        ("mediate", Action::Mediate { to: principal("head", Role::BuildingHead) }),
        ("end_mediation", Action::EndMediation { outcome: text(), settled: true }),
        (
            "pause",
            Action::Pause { reason: crate::community::PausePolicy::default().reasons[0].clone() },
        ),
        ("decide_pause", Action::DecidePause { approve: true }),
        ("resume", Action::Resume),
        ("send_back", Action::SendBack { reason: text() }),
        ("refuse_send_back", Action::RefuseSendBack { reason: text() }),
    ]
}

/// The table: every role that uses a board, every status, holder relation and kind of category.
pub fn permissions() -> Vec<Permission> {
    let community = community();
    let statuses = [
        Status::Reported,
        Status::Claimed,
        Status::HandedOver,
        Status::Resolved,
        Status::Cancelled,
        Status::SentBack,
    ];
    let mut table = Vec::new();
    for role in [Role::Supervisor, Role::Worker, Role::BuildingHead] {
        let who = principal("viewer", role);
        for status in statuses {
            for holder in [Holder::None, Holder::Me, Holder::Other] {
                if (status == Status::Reported) != (holder == Holder::None) {
                    continue;
                }
                for (private, mediable) in [(false, false), (true, false), (false, true)] {
                    for pause in [PauseState::None, PauseState::Asked, PauseState::Running] {
                        for mediation in
                            [MediationState::None, MediationState::Mine, MediationState::Other]
                        {
                            for order in
                                [OrderState::None, OrderState::Order, OrderState::SendBackAsked]
                            {
                                // A pause, a mediation or a 退单 asked belongs to an incident
                                // someone holds, open; a mediation to a category that has them.
                                // A 退单 asked for belongs to an incident someone holds, open;
                                // only a work order is ever sent back.
                                let open_held =
                                    matches!(status, Status::Claimed | Status::HandedOver);
                                if (pause != PauseState::None && !open_held)
                                    || (mediation != MediationState::None
                                        && !(open_held && mediable))
                                    || (order == OrderState::SendBackAsked && !open_held)
                                    || (status == Status::SentBack && order == OrderState::None)
                                {
                                    continue;
                                }
                                let incident = incident(
                                    private, mediable, status, holder, pause, mediation, order,
                                );
                                let actions = actions()
                                    .into_iter()
                                    .filter(|(_, action)| {
                                        decide(&incident, &who, action, Timestamp(0), &community)
                                            .is_ok()
                                    })
                                    .map(|(name, _)| name)
                                    .collect();
                                table.push(Permission {
                                    role,
                                    status,
                                    holder,
                                    private,
                                    mediable,
                                    pause,
                                    mediation,
                                    order,
                                    actions,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table asks about every lifecycle action of the protocol (and `assign` and
    /// `mediate`, requests that name a person), each a message a client can send: a new action
    /// appears on the boards' buttons when it is declared.
    #[test]
    fn the_table_covers_every_action_of_the_protocol() {
        let asked: Vec<&str> = actions().iter().map(|(tag, _)| *tag).collect();
        let missing: Vec<&&str> =
            crate::protocol::ACTION_TYPES.iter().filter(|t| !asked.contains(t)).collect();
        assert!(missing.is_empty(), "actions the table does not ask about: {missing:?}");
        let unknown: Vec<&&str> =
            asked.iter().filter(|t| !crate::protocol::CLIENT_TYPES.contains(t)).collect();
        assert!(unknown.is_empty(), "not messages of the protocol: {unknown:?}");
    }

    /// The actions of the table's one row for this viewer and incident.
    fn row(
        role: Role,
        status: Status,
        holder: Holder,
        (private, mediable): (bool, bool),
        pause: PauseState,
        mediation: MediationState,
    ) -> Vec<&'static str> {
        let found = permissions().into_iter().find(|p| {
            (p.role, p.status, p.holder, p.private, p.mediable, p.pause, p.mediation, p.order)
                == (role, status, holder, private, mediable, pause, mediation, OrderState::None)
        });
        found.map(|p| p.actions).unwrap_or_default()
    }

    fn allowed(role: Role, status: Status, holder: Holder, private: bool) -> Vec<&'static str> {
        row(role, status, holder, (private, false), PauseState::None, MediationState::None)
    }

    fn with_pause(role: Role, holder: Holder, pause: PauseState) -> Vec<&'static str> {
        row(role, Status::Claimed, holder, (false, false), pause, MediationState::None)
    }

    /// 挂起: the holder asks and resumes, a supervisor decides; nobody else.
    #[test]
    fn a_pause_is_asked_by_the_holder_and_decided_by_a_supervisor() {
        assert!(with_pause(Role::Worker, Holder::Me, PauseState::None).contains(&"pause"));
        assert!(!with_pause(Role::Worker, Holder::Other, PauseState::None).contains(&"pause"));
        let asked = with_pause(Role::Worker, Holder::Me, PauseState::Asked);
        assert!(!asked.contains(&"pause") && !asked.contains(&"decide_pause"), "{asked:?}");
        assert!(
            with_pause(Role::Supervisor, Holder::Other, PauseState::Asked)
                .contains(&"decide_pause")
        );
        assert!(with_pause(Role::Worker, Holder::Me, PauseState::Running).contains(&"resume"));
        assert!(
            !with_pause(Role::Supervisor, Holder::Other, PauseState::Running)
                .contains(&"decide_pause")
        );
        assert_eq!(with_pause(Role::BuildingHead, Holder::Other, PauseState::Asked), vec!["tell"]);
    }

    fn ordered(role: Role, status: Status, holder: Holder, order: OrderState) -> Vec<&'static str> {
        let found = permissions().into_iter().find(|p| {
            (p.role, p.status, p.holder, p.private, p.mediable, p.order)
                == (role, status, holder, false, false, order)
        });
        found.map(|p| p.actions).unwrap_or_default()
    }

    /// 退单: the holder of a work order asks, a supervisor sends it back or keeps it; nothing
    /// but a work order is sent back, and nothing is done with one sent back.
    #[test]
    fn a_work_order_is_sent_back_by_a_supervisor_at_the_holders_asking() {
        use OrderState::{Order, SendBackAsked};
        assert!(ordered(Role::Worker, Status::Claimed, Holder::Me, Order).contains(&"send_back"));
        assert!(
            !ordered(Role::Worker, Status::Claimed, Holder::Other, Order).contains(&"send_back")
        );
        let asked = ordered(Role::Worker, Status::Claimed, Holder::Me, SendBackAsked);
        assert!(!asked.contains(&"send_back") && !asked.contains(&"refuse_send_back"), "{asked:?}");
        assert!(!allowed(Role::Worker, Status::Claimed, Holder::Me, false).contains(&"send_back"));
        let supervisor = ordered(Role::Supervisor, Status::Claimed, Holder::Other, SendBackAsked);
        assert!(
            supervisor.contains(&"send_back") && supervisor.contains(&"refuse_send_back"),
            "{supervisor:?}"
        );
        let unasked = ordered(Role::Supervisor, Status::Claimed, Holder::Other, Order);
        assert!(unasked.contains(&"send_back") && !unasked.contains(&"refuse_send_back"));
        assert!(
            ordered(Role::Supervisor, Status::Reported, Holder::None, Order).contains(&"send_back")
        );
        assert_eq!(
            ordered(Role::BuildingHead, Status::Claimed, Holder::Other, SendBackAsked),
            vec!["tell"]
        );
        // A work order paused, mediated or of a private category has its buttons too.
        let paused = permissions().into_iter().find(|p| {
            (p.role, p.status, p.holder, p.private, p.pause, p.order)
                == (
                    Role::Supervisor,
                    Status::Claimed,
                    Holder::Other,
                    true,
                    PauseState::Asked,
                    Order,
                )
        });
        assert!(paused.is_some_and(|p| p.actions.contains(&"decide_pause")));
        for role in [Role::Supervisor, Role::Worker] {
            let gone = ordered(role, Status::SentBack, Holder::Me, Order);
            assert!(gone.iter().all(|a| *a == "reveal"), "{role:?}: {gone:?}");
        }
    }

    fn mediating(role: Role, holder: Holder, mediation: MediationState) -> Vec<&'static str> {
        row(role, Status::Claimed, holder, (false, true), PauseState::None, mediation)
    }

    /// 调解: the holder hands a dispute over; the mediating building head (only they) ends it,
    /// and the holder may take it back.
    #[test]
    fn a_mediation_is_started_by_the_holder_and_ended_by_its_building_head() {
        let none = MediationState::None;
        assert!(mediating(Role::Worker, Holder::Me, none).contains(&"mediate"));
        assert!(!mediating(Role::Worker, Holder::Other, none).contains(&"mediate"));
        assert!(!allowed(Role::Worker, Status::Claimed, Holder::Me, false).contains(&"mediate"));
        let mine = mediating(Role::BuildingHead, Holder::Other, MediationState::Mine);
        assert!(mine.contains(&"end_mediation"), "{mine:?}");
        let other = mediating(Role::BuildingHead, Holder::Other, MediationState::Other);
        assert!(!other.contains(&"end_mediation"), "{other:?}");
        let holder = mediating(Role::Worker, Holder::Me, MediationState::Other);
        assert!(holder.contains(&"end_mediation") && !holder.contains(&"mediate"), "{holder:?}");
    }

    /// What the issue found on the board: a building head was offered 接单 and 撤销. A building
    /// head may tell the resident (as the workers may), nothing of the workers' own.
    #[test]
    fn the_table_says_what_the_rule_allows() {
        assert_eq!(
            allowed(Role::BuildingHead, Status::Reported, Holder::None, false),
            vec!["tell"]
        );
        assert_eq!(
            allowed(Role::Worker, Status::Reported, Holder::None, false),
            vec!["claim", "note", "cancel", "reveal", "tell"]
        );
        assert_eq!(
            allowed(Role::Worker, Status::Claimed, Holder::Other, true),
            vec!["note", "tell"],
            "another's private case: a note, no phone, nothing of the holder's"
        );
        let supervisor = allowed(Role::Supervisor, Status::Claimed, Holder::Other, false);
        assert!(supervisor.contains(&"assign") && supervisor.contains(&"urge"), "{supervisor:?}");
        assert!(!allowed(Role::Worker, Status::Claimed, Holder::Me, false).contains(&"assign"));
        assert_eq!(
            allowed(Role::BuildingHead, Status::Resolved, Holder::Other, false),
            vec!["rate", "tell"]
        );
    }
}
