//! An incident's current state, derived by folding its events in order.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::community::{CategoryId, CompoundId, Urgency};
use crate::event::{Actor, Change, EscalationReason, Event, Seq, Timer};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct IncidentId(pub u64);

/// The number a resident keeps and can read aloud: the incident's number within its
/// community (1, 2, 3… in the order reported there), at least four digits. In a deployment
/// serving one community it is the incident id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String))]
#[serde(transparent)]
pub struct Ticket(pub CompactString);

impl Ticket {
    pub fn new(number: u64) -> Ticket {
        Ticket(compact_str::format_compact!("{number:04}"))
    }

    /// The ticket's number.
    pub fn number(&self) -> Option<u64> {
        Ticket::parse(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number a ticket names; accepts what a person might type (spaces, fewer zeros).
    pub fn parse(text: &str) -> Option<u64> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.is_empty() || digits.len() > 12 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|&n| n > 0)
    }
}

/// What a resident (or someone on their behalf) reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub compound: CompoundId,
    pub category: CategoryId,
    pub urgency: Urgency,
    /// 楼 / 单元 / 室 as the resident gives them; any may be empty (a problem in a courtyard).
    pub building: String,
    pub unit: String,
    pub room: String,
    pub description: String,
    /// Personal data: never logged, masked on shared screens.
    pub phone: Option<String>,
    /// A voice note and a photo, uploaded first (`POST /api/attachments`), named by content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// A file attached to a report: stored once by the server, named by the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// The SHA-256 of the stored bytes, as 64 lower-case hex digits.
    pub id: String,
    pub kind: AttachmentKind,
    /// The stored file's MIME type, for example `image/jpeg` or `audio/webm`.
    pub mime: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// A photo from the kiosk's camera, JPEG, metadata (location, device) removed.
    Photo,
    /// A voice note of up to 60 seconds.
    Voice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 已上报: waiting for a worker.
    Reported,
    /// 已接单: a worker holds it.
    Claimed,
    /// 代办中: with the street office.
    HandedOver,
    /// 已办结.
    Resolved,
    /// 已撤销.
    Cancelled,
}

impl Status {
    /// Open incidents are on the board and have running timers.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Reported | Status::Claimed | Status::HandedOver)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Note {
    pub at: Timestamp,
    pub by: Actor,
    pub text: String,
}

/// Where a resident's answer came from: 满意率 is shown per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// At the kiosk that took the report.
    Kiosk,
    /// On the private status page the slip opens.
    StatusPage,
    /// 回访: a supervisor or building head called or visited and recorded the answer.
    Callback,
}

impl AnswerSource {
    pub const ALL: [AnswerSource; 3] =
        [AnswerSource::Kiosk, AnswerSource::StatusPage, AnswerSource::Callback];

    /// The one rule: the answering actor's role says where the answer came from.
    pub fn of(role: crate::event::Role) -> AnswerSource {
        match role {
            crate::event::Role::Kiosk => AnswerSource::Kiosk,
            crate::event::Role::Resident => AnswerSource::StatusPage,
            _ => AnswerSource::Callback,
        }
    }
}

/// 挂起: a pause of an incident's resolution clock, as asked and decided. Only an approved pause
/// stops the clock: from the approval until the holder resumes, the incident is resolved, or
/// `until` passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pause {
    /// One of the community's configured reasons.
    pub reason: String,
    pub asked_by: Actor,
    pub asked_at: Timestamp,
    /// The supervisor who approved or refused it; absent while it waits.
    pub decided_by: Option<Actor>,
    pub approved: bool,
    /// When the clock stopped (the approval), and when it ran again.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// When an approved pause ends by itself.
    pub until: Option<Timestamp>,
}

impl Pause {
    /// Approved and not over: the resolution clock is stopped.
    pub fn active(&self) -> bool {
        self.approved && self.to.is_none()
    }
}

/// 调解: a building head mediating a dispute for the holder, with their own clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mediation {
    pub head: Actor,
    pub since: Timestamp,
    pub due: Timestamp,
    /// When it ended, and what came of it; absent while it runs.
    pub ended: Option<Timestamp>,
    pub outcome: Option<String>,
    pub settled: bool,
    /// `due` passed while it ran.
    pub breached: bool,
}

impl Mediation {
    pub fn running(&self) -> bool {
        self.ended.is_none()
    }
}

/// The resident's answer to 解决了吗？满意吗？ after one handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Answer {
    pub at: Timestamp,
    /// Who recorded it: the kiosk, the resident, or the one who called (回访).
    pub by: Actor,
    pub source: AnswerSource,
    pub solved: bool,
    pub rating: crate::audit::Rating,
    /// Which handling it answers: 0 the first, 1 the second (二次办理), …
    pub round: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    pub id: IncidentId,
    pub ticket: Ticket,
    pub report: Report,
    pub request_id: String,
    pub reported_by: Actor,
    pub reported_at: Timestamp,
    pub status: Status,
    /// The worker who claimed it; kept after resolution so reopening returns it to them.
    pub holder: Option<Actor>,
    pub claimed_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub outcome: Option<String>,
    pub cancel_reason: Option<String>,
    pub respond_by: Timestamp,
    pub resolve_by: Timestamp,
    pub response_breached: bool,
    pub resolution_breached: bool,
    /// Reported while nobody of its compound was on duty.
    pub escalated: bool,
    /// When it is escalated to the supervisors if still unclaimed; absent for incidents reported
    /// before the escalation policy existed.
    #[serde(default)]
    pub escalate_by: Option<Timestamp>,
    /// Escalated because it stayed unclaimed.
    #[serde(default)]
    pub escalated_unclaimed: bool,
    /// The resident's satisfaction with the current handling, once answered.
    #[serde(default)]
    pub rating: Option<crate::audit::Rating>,
    /// Which handling this is: 0 the first, 1 after the resident said "not solved" once
    /// (二次办理), and so on. Each has its own response and resolution clocks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
    /// Every answer the resident gave, one per finished handling, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
    /// The first handling's response target, kept when a second handling sets new clocks: the
    /// first response (`claimed_at`) is judged against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_respond_by: Option<Timestamp>,
    /// Breaches of earlier handlings (the flags above are the current handling's).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub earlier_breaches: u32,
    /// 挂起 asked and waiting for a supervisor, or approved and running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
    /// Pauses over (ended, refused, or left undecided at resolution), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<Pause>,
    /// Time the resolution clock stood still (ms): not counted against the target.
    #[serde(default, skip_serializing_if = "is_zero64")]
    pub paused_ms: u64,
    /// 调解: the latest mediation by a building head, running or over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mediation: Option<Mediation>,
    /// Notes for the resident (`tell`), oldest first: on the status page and at the kiosk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Note>,
    /// 每月一题: the earlier reports that make this one a recurring problem (same compound,
    /// building and category within the community's `recurring.within`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recurring: Vec<IncidentId>,
    /// The private code on the resident's slip and in their status link: with the ticket it
    /// opens the status page and lets them rate. Never in any view (`view` clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The photo of the result the resolving worker took (影像证明).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Attachment>,
    /// How often a supervisor urged it (督办).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub urges: u32,
    pub notes: Vec<Note>,
    /// The sequence number of its last event. Its timeline (every event of it) is kept in the
    /// store's index, not here, so that the state stays small however long its history.
    pub last_seq: Seq,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero64(n: &u64) -> bool {
    *n == 0
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
                self.holder = Some(to.clone());
            }
            Change::Urged { .. } if self.status.is_open() => self.urges += 1,
            Change::Told { text } if self.status != Status::Cancelled => self.notices.push(Note {
                at: event.at,
                by: event.actor.clone(),
                text: text.clone(),
            }),
            Change::Noted { text } if self.status != Status::Cancelled => {
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
                self.status = Status::Cancelled;
                self.cancel_reason = Some(reason.clone());
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
    fn start_again(&mut self, clocks: &crate::lifecycle::Deadlines) {
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
