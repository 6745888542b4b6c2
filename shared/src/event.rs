//! Events: the append-only log every incident's state is derived from, and the audit trail.

use serde::{Deserialize, Serialize};

pub use crate::ids::{Actor, Role, Seq};
use crate::incident::{
    Answer, AnswerSource, Deadlines, Incident, IncidentId, Mediation, Note, Pause, Report,
    SendBack, Status, Ticket,
};
use crate::time::Timestamp;

/// One change to one incident, as stored and as pushed to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub seq: Seq,
    pub at: Timestamp,
    pub incident: IncidentId,
    pub actor: Actor,
    pub change: Change,
}

/// Which first-time promise a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Timer {
    /// Time to first response: report to claim.
    Response,
    /// Time to resolution.
    Resolution,
    /// A building head's time to mediate (调解).
    Mediation,
}

/// Why a report was shown beyond the on-duty workers of its compound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    /// Nobody of its compound was on duty when it was reported: the supervisors and the other
    /// compounds' on-duty workers are told at once. The default, because logs written before
    /// reasons existed escalated only for this.
    #[default]
    NobodyOnDuty,
    /// Still unclaimed when the escalation policy's time ran out: the supervisors are told.
    Unclaimed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// 上报. Carries the deadlines so they are as durable as the report itself.
    Reported {
        ticket: Ticket,
        report: Box<Report>,
        /// The reporting device's own id for this report; the same id again is the same report.
        request_id: String,
        respond_by: Timestamp,
        resolve_by: Timestamp,
        /// When it is escalated if still unclaimed (absent in logs from before the policy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        escalate_by: Option<Timestamp>,
        /// The resident's private code (see `Incident::key`); absent in logs from before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// 每月一题: the earlier reports of the same category at the same building that make
        /// this one recurring (`community.recurring`), oldest first, at most the latest ten;
        /// empty when it is not.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recurring: Vec<IncidentId>,
    },
    /// 接单.
    Claimed,
    /// 派单 / 改派: a supervisor gives the incident to a worker (who holds it from then on).
    Assigned {
        to: Actor,
    },
    /// 督办: a supervisor's logged nudge to whoever holds (or should take) the incident.
    Urged {
        note: String,
    },
    Noted {
        text: String,
    },
    /// A note for the resident (not the workers' internal notes): shown on their status page
    /// and at the kiosk, for example a building head's 已联系物业，明天上午来修.
    Told {
        text: String,
    },
    /// 代办: taken to the street office on the resident's behalf.
    HandedOver {
        note: String,
    },
    /// Back from the street office to the holder.
    Returned {
        note: String,
    },
    /// 办结, with a photo of the result when one was taken (影像证明).
    Resolved {
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<crate::incident::Attachment>,
    },
    /// 调解: handed to a building head to mediate, who has until `due`; the holder keeps it.
    MediationStarted {
        head: Actor,
        due: Timestamp,
    },
    /// The mediation is over: by the building head (settled or not, with what came of it), or
    /// taken back by the holder or a supervisor.
    MediationEnded {
        outcome: String,
        settled: bool,
    },
    /// 挂起 asked for, with one of the community's reasons: nothing stops until a supervisor
    /// approves.
    PauseAsked {
        reason: String,
    },
    /// A supervisor's decision on the pause asked for; an approved one stops the resolution
    /// clock until `until` at the latest.
    PauseDecided {
        approved: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
    /// The resolution clock runs again: the holder or a supervisor resumed, or the pause's limit
    /// passed (logged by the system, ending at the limit).
    Resumed,
    /// Opened again after resolution; the resolution timer starts again.
    Reopened {
        reason: String,
        resolve_by: Timestamp,
    },
    /// A duplicate or mistaken report, with the reason.
    Cancelled {
        reason: String,
    },
    /// 退单 asked: the holder of a work order from above asks a supervisor to send it back,
    /// with a reason for the supervisor.
    SendBackAsked {
        reason: String,
    },
    /// A supervisor keeps the order with the office, telling the holder why.
    SendBackRefused {
        reason: String,
    },
    /// 退单: a supervisor sends the work order back to its platform, with the reason the
    /// platform is told. It is closed here.
    SentBack {
        reason: String,
    },
    /// The resident's answer after 办结 — 解决了吗？满意吗？ — once per handling: from the
    /// status page, the reporting kiosk, or a 回访 (the actor is who called). Not solved starts a
    /// second handling (二次办理): the incident is open and unclaimed again, with the new
    /// clocks in `again`.
    Rated {
        rating: crate::incident::Rating,
        /// Absent in logs from before the question was asked: those ratings meant solved.
        #[serde(default = "yes")]
        solved: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        again: Option<crate::incident::Deadlines>,
    },
    /// Shown beyond the on-duty workers of its compound, for `reason`. Each reason is logged at
    /// most once per incident, in the same group as the report (nobody on duty) or when the
    /// escalation time passes (unclaimed).
    Escalated {
        #[serde(default)]
        reason: EscalationReason,
    },
    /// The resident's phone number was shown to the actor (a worker or supervisor who asked for
    /// it on the board): personal data is seen on a need-to-know basis, and each look is on
    /// the record, for the supervisors.
    Revealed,
    /// A first-time target passed. `deadline` is when it passed, which is earlier than the
    /// event's own time when the server was down at that moment.
    Breached {
        timer: Timer,
        deadline: Timestamp,
    },
}

fn yes() -> bool {
    true
}

impl Change {
    /// The stable name of this change, as in `type` on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Change::Reported { .. } => "reported",
            Change::Claimed => "claimed",
            Change::Noted { .. } => "noted",
            Change::Told { .. } => "told",
            Change::Assigned { .. } => "assigned",
            Change::Urged { .. } => "urged",
            Change::HandedOver { .. } => "handed_over",
            Change::Returned { .. } => "returned",
            Change::Resolved { .. } => "resolved",
            Change::Reopened { .. } => "reopened",
            Change::MediationStarted { .. } => "mediation_started",
            Change::MediationEnded { .. } => "mediation_ended",
            Change::PauseAsked { .. } => "pause_asked",
            Change::PauseDecided { .. } => "pause_decided",
            Change::Resumed => "resumed",
            Change::Cancelled { .. } => "cancelled",
            Change::SendBackAsked { .. } => "send_back_asked",
            Change::SendBackRefused { .. } => "send_back_refused",
            Change::SentBack { .. } => "sent_back",
            Change::Rated { .. } => "rated",
            Change::Escalated { .. } => "escalated",
            Change::Revealed => "revealed",
            Change::Breached { .. } => "breached",
        }
    }
}

/// Why an event does not fit the incident it is applied to: a corrupt or reordered log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {seq} ({change}) does not apply to incident {incident}")]
pub struct ApplyError {
    pub seq: Seq,
    pub incident: u64,
    pub change: &'static str,
}

impl Incident {
    /// The state a `Reported` event creates.
    pub fn from_event(event: &Event) -> Result<Incident, ApplyError> {
        let Change::Reported {
            ticket,
            report,
            request_id,
            respond_by,
            resolve_by,
            escalate_by,
            key,
            recurring,
        } = &event.change
        else {
            return Err(ApplyError {
                seq: event.seq,
                incident: event.incident.0,
                change: event.change.name(),
            });
        };
        Ok(Incident {
            id: event.incident,
            ticket: ticket.clone(),
            report: Report::clone(report),
            request_id: request_id.clone(),
            reported_by: event.actor.clone(),
            reported_at: event.at,
            status: Status::Reported,
            holder: None,
            claimed_at: None,
            resolved_at: None,
            outcome: None,
            cancel_reason: None,
            respond_by: *respond_by,
            resolve_by: *resolve_by,
            response_breached: false,
            resolution_breached: false,
            escalated: false,
            escalate_by: *escalate_by,
            escalated_unclaimed: false,
            rating: None,
            round: 0,
            answers: Vec::new(),
            earlier_breaches: 0,
            first_respond_by: None,
            pause: None,
            pauses: Vec::new(),
            paused_ms: 0,
            recurring: recurring.clone(),
            notices: Vec::new(),
            mediation: None,
            key: key.clone(),
            proof: None,
            urges: 0,
            send_back: None,
            notes: Vec::new(),
            last_seq: event.seq,
        })
    }

    /// Folds one later event into this state. Only events that `lifecycle::decide` or
    /// `Incident::due` produced for this state are accepted.
    pub fn apply(&mut self, event: &Event) -> Result<(), ApplyError> {
        let bad =
            || ApplyError { seq: event.seq, incident: self.id.0, change: event.change.name() };
        if event.incident != self.id || self.last_seq >= event.seq {
            return Err(bad());
        }
        match &event.change {
            Change::Reported { .. } => return Err(bad()),
            // `claimed_at` is the first response to the report; a second handling's claim is in
            // its timeline.
            Change::Claimed if self.status == Status::Reported => {
                self.status = Status::Claimed;
                self.holder = Some(event.actor.clone());
                self.claimed_at.get_or_insert(event.at);
            }
            Change::Assigned { to } if self.status.is_open() => {
                if self.status == Status::Reported {
                    self.status = Status::Claimed;
                    self.claimed_at.get_or_insert(event.at);
                }
                // A 退单 asked by the holder before goes with their holding it.
                if self.holder.as_ref().is_some_and(|h| h.id != to.id) {
                    self.send_back = None;
                }
                self.holder = Some(to.clone());
            }
            Change::Urged { .. } if self.status.is_open() => self.urges += 1,
            Change::Told { text } if !self.status.is_withdrawn() => self.notices.push(Note {
                at: event.at,
                by: event.actor.clone(),
                text: text.clone(),
            }),
            Change::Noted { text } if !self.status.is_withdrawn() => {
                self.notes.push(Note { at: event.at, by: event.actor.clone(), text: text.clone() })
            }
            Change::HandedOver { .. } if self.status == Status::Claimed => {
                self.status = Status::HandedOver;
            }
            Change::Returned { .. } if self.status == Status::HandedOver => {
                self.status = Status::Claimed;
            }
            Change::MediationStarted { head, due }
                if matches!(self.status, Status::Claimed | Status::HandedOver)
                    && !self.mediation.as_ref().is_some_and(Mediation::running) =>
            {
                self.mediation = Some(Mediation {
                    head: head.clone(),
                    since: event.at,
                    due: *due,
                    ended: None,
                    outcome: None,
                    settled: false,
                    breached: false,
                });
            }
            Change::MediationEnded { outcome, settled }
                if self.mediation.as_ref().is_some_and(Mediation::running) =>
            {
                let mediation = self.mediation.as_mut().expect("checked");
                mediation.ended = Some(event.at);
                mediation.outcome = Some(outcome.clone());
                mediation.settled = *settled;
            }
            Change::Breached { timer: Timer::Mediation, .. }
                if self.mediation.as_ref().is_some_and(|m| m.running() && !m.breached) =>
            {
                if let Some(m) = self.mediation.as_mut() {
                    m.breached = true;
                }
            }
            Change::PauseAsked { reason }
                if matches!(self.status, Status::Claimed | Status::HandedOver)
                    && self.pause.is_none() =>
            {
                self.pause = Some(Pause {
                    reason: reason.clone(),
                    asked_by: event.actor.clone(),
                    asked_at: event.at,
                    decided_by: None,
                    approved: false,
                    from: None,
                    to: None,
                    until: None,
                });
            }
            Change::PauseDecided { approved, until }
                if self.status.is_open()
                    && self.pause.as_ref().is_some_and(|p| p.decided_by.is_none())
                    && *approved == until.is_some() =>
            {
                let mut pause = self.pause.take().expect("checked");
                pause.decided_by = Some(event.actor.clone());
                pause.approved = *approved;
                if *approved {
                    pause.from = Some(event.at);
                    pause.until = *until;
                    self.pause = Some(pause);
                } else {
                    self.pauses.push(pause);
                }
            }
            Change::Resumed if self.pause.as_ref().is_some_and(Pause::active) => {
                self.end_pause(event.at);
            }
            Change::Resolved { outcome, proof }
                if matches!(self.status, Status::Claimed | Status::HandedOver) =>
            {
                self.end_pause(event.at);
                self.end_mediation(event.at);
                self.send_back = None;
                self.status = Status::Resolved;
                self.resolved_at = Some(event.at);
                self.outcome = Some(outcome.clone());
                self.proof = proof.clone();
            }
            Change::Reopened { resolve_by, .. } if self.status == Status::Resolved => {
                self.status =
                    if self.holder.is_some() { Status::Claimed } else { Status::Reported };
                self.resolved_at = None;
                self.outcome = None;
                self.proof = None;
                self.resolve_by = *resolve_by;
                // Reopened: answered afresh once resolved again; the breach stays counted.
                self.earlier_breaches += u32::from(self.resolution_breached);
                self.resolution_breached = false;
                self.rating = None;
            }
            Change::Cancelled { reason } if self.status.is_open() => {
                self.end_pause(event.at);
                self.end_mediation(event.at);
                self.send_back = None;
                self.status = Status::Cancelled;
                self.cancel_reason = Some(reason.clone());
            }
            Change::SendBackAsked { reason }
                if self.status.is_open()
                    && self.report.order.is_some()
                    && self.send_back.is_none() =>
            {
                self.send_back = Some(SendBack {
                    reason: reason.clone(),
                    asked_by: event.actor.clone(),
                    asked_at: event.at,
                });
            }
            Change::SendBackRefused { .. } if self.send_back.is_some() && self.status.is_open() => {
                self.send_back = None;
            }
            Change::SentBack { .. } if self.status.is_open() && self.report.order.is_some() => {
                self.end_pause(event.at);
                self.end_mediation(event.at);
                self.status = Status::SentBack;
                self.send_back = None;
            }
            Change::Rated { rating, solved, again }
                if self.status == Status::Resolved
                    && self.rating.is_none()
                    && *solved == again.is_none() =>
            {
                self.answers.push(Answer {
                    at: event.at,
                    by: event.actor.clone(),
                    source: AnswerSource::of(event.actor.role),
                    solved: *solved,
                    rating: *rating,
                    round: self.round,
                });
                match again {
                    None => self.rating = Some(*rating),
                    Some(clocks) => self.start_again(clocks),
                }
            }
            Change::Escalated { reason: EscalationReason::NobodyOnDuty }
                if !self.escalated && self.status.is_open() =>
            {
                self.escalated = true;
            }
            Change::Escalated { reason: EscalationReason::Unclaimed }
                if !self.escalated_unclaimed && self.status == Status::Reported =>
            {
                self.escalated_unclaimed = true;
            }
            Change::Revealed => {}
            Change::Breached { timer: Timer::Response, .. }
                if !self.response_breached && self.status.is_open() =>
            {
                self.response_breached = true;
            }
            Change::Breached { timer: Timer::Resolution, .. }
                if !self.resolution_breached && self.status.is_open() =>
            {
                self.resolution_breached = true;
            }
            _ => return Err(bad()),
        }
        self.last_seq = event.seq;
        Ok(())
    }

    /// Ends the current pause at `at` (an approved one at its limit at the latest): its time is
    /// added to the resolution deadline. One still waiting for a decision is dropped undecided.
    fn end_pause(&mut self, at: Timestamp) {
        let Some(mut pause) = self.pause.take() else { return };
        if let (true, Some(from)) = (pause.active(), pause.from) {
            let end = pause.until.map_or(at, |until| until.min(at)).max(from);
            let paused = end.since(from);
            pause.to = Some(end);
            self.paused_ms += paused.0;
            self.resolve_by = self.resolve_by.plus(paused);
        }
        self.pauses.push(pause);
    }

    /// A mediation still running when the incident closes ends with it, unsettled.
    fn end_mediation(&mut self, at: Timestamp) {
        if let Some(m) = self.mediation.as_mut().filter(|m| m.running()) {
            m.ended = Some(at);
        }
    }

    /// 二次办理: open and unclaimed again, with the new handling's clocks.
    fn start_again(&mut self, clocks: &Deadlines) {
        self.earlier_breaches +=
            u32::from(self.response_breached) + u32::from(self.resolution_breached);
        self.first_respond_by.get_or_insert(self.respond_by);
        self.round += 1;
        self.status = Status::Reported;
        self.holder = None;
        self.resolved_at = None;
        self.outcome = None;
        self.proof = None;
        self.respond_by = clocks.respond_by;
        self.resolve_by = clocks.resolve_by;
        self.escalate_by = Some(clocks.escalate_by);
        self.response_breached = false;
        self.resolution_breached = false;
        self.escalated = false;
        self.escalated_unclaimed = false;
    }

    /// The earliest moment something is due for this incident (a breach or an escalation).
    pub fn next_due(&self) -> Option<Timestamp> {
        self.timers().map(|(at, _)| at).min()
    }

    /// What is due at `now` and not yet recorded — breaches and the unclaimed escalation —
    /// earliest first. The committer logs these before it applies any command to the incident,
    /// so a late claim or resolve cannot hide the deadline it missed.
    pub fn due(&self, now: Timestamp) -> Vec<Change> {
        let mut due: Vec<(Timestamp, Change)> =
            self.timers().filter(|(at, _)| *at <= now).collect();
        due.sort_by_key(|(at, _)| *at);
        due.into_iter().map(|(_, change)| change).collect()
    }

    /// Every timer still running, with the change it logs when it runs out.
    fn timers(&self) -> impl Iterator<Item = (Timestamp, Change)> + '_ {
        let open = self.status.is_open();
        let unclaimed = self.status == Status::Reported;
        let response = (unclaimed && !self.response_breached).then(|| {
            let change = Change::Breached { timer: Timer::Response, deadline: self.respond_by };
            (self.respond_by, change)
        });
        let paused = self.pause.as_ref().filter(|p| p.active());
        let resolution = (open && !self.resolution_breached && paused.is_none()).then(|| {
            let change = Change::Breached { timer: Timer::Resolution, deadline: self.resolve_by };
            (self.resolve_by, change)
        });
        let resume = paused.and_then(|p| p.until).map(|until| (until, Change::Resumed));
        let mediation = self
            .mediation
            .as_ref()
            .filter(|m| open && m.running() && !m.breached)
            .map(|m| (m.due, Change::Breached { timer: Timer::Mediation, deadline: m.due }));
        let escalation = self
            .escalate_by
            .filter(|_| unclaimed && !self.escalated_unclaimed)
            .map(|at| (at, Change::Escalated { reason: EscalationReason::Unclaimed }));
        response.into_iter().chain(resolution).chain(escalation).chain(resume).chain(mediation)
    }
}
