//! The committer: the one writer of the store.
//!
//! It takes every request waiting, decides each against the current state (including what the
//! same group decided before it), gives each event the next sequence number, writes the group to
//! the write-ahead log, syncs once, and only then answers the requests and publishes the events
//! (group commit). Its state sits behind one lock, taken by its own thread or, when requests come
//! one at a time, by a request committing itself (`commit_now`); one holder at a time is what
//! makes sequence numbers gap-free and claims race-free, and keeps sled's flush from ever
//! running concurrently. Requests are committed in the order the lock's holders take them: one
//! connection's in the order it sent them, different connections' not necessarily first come.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hongfan_shared::lifecycle::{check_report, decide};
use hongfan_shared::office::{Office, OfficeChange, OfficeEvent};
use hongfan_shared::{
    Action, Actor, Change, Community, CommunityId, CompoundId, EscalationReason, Event, Incident,
    IncidentId, LifecycleError, Principal, Report, Seq, Ticket, Timestamp,
};
use tokio::sync::oneshot;

use super::deadlines::Deadlines;
use super::disk::{AuxWrite, Loaded};
use super::housekeeping::Housekeeping;
use super::places::Places;
use super::replica::{File, Record, ReplicaError, Replicator};
use super::{Aux, Reported, Shared, StoreError};

/// How many requests one group commit takes at most.
const MAX_GROUP: usize = 4096;
/// The same when each group is a message of the replicated log, which has a size limit (4 MB
/// configured, see operations.md): a few hundred reports, or one attachment with what came
/// before it.
const MAX_REPLICATED_GROUP: usize = 256;
/// Longest wait between deadline checks, so a wall-clock jump is noticed.
const MAX_IDLE: Duration = Duration::from_secs(30);

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Command {
    Report {
        who: Principal,
        request_id: String,
        report: Report,
        /// Asked only when the report would be stored: may this device store one more now?
        admit: super::Admit,
        reply: Reply<Reported>,
    },
    Act {
        who: Principal,
        id: IncidentId,
        action: Action,
        reply: Reply<(Event, Incident)>,
    },
    Get {
        id: IncidentId,
        reply: Reply<Option<Incident>>,
    },
    /// Writes (or with `None` removes) one account record, in the group's transaction.
    Put {
        tree: Aux,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        reply: Reply<()>,
    },
    /// Records everything due now; answers with how many events that made.
    Tick {
        reply: Reply<usize>,
    },
    /// Changes how the office runs: `edit` decides the change against the office as it is when
    /// its turn comes (so two supervisors' edits never cross), or refuses.
    Office {
        actor: Actor,
        edit: super::OfficeEdit,
        reply: Reply<OfficeEvent>,
    },
    /// An attachment for the replicated log, in the next group (the file is already stored).
    File {
        file: File,
        reply: Reply<()>,
    },
    Shutdown {
        reply: Reply<()>,
    },
}

/// Answers held back until the group they belong to is durable.
enum Answer {
    Report(Reply<Reported>, Result<Reported, StoreError>),
    Act(Reply<(Event, Incident)>, Result<(Event, Incident), StoreError>),
    Get(Reply<Option<Incident>>, Result<Option<Incident>, StoreError>),
    Put(Reply<()>, Result<(), StoreError>),
    Tick(Reply<usize>, usize),
    Office(Reply<OfficeEvent>, Result<OfficeEvent, StoreError>),
    Shutdown(Reply<()>),
}

#[derive(Default)]
struct Group {
    events: Vec<Event>,
    /// The state of the incident before and after each event, in step with `events`.
    states: Vec<(Option<Arc<Incident>>, Arc<Incident>)>,
    /// The latest state of each incident this group changed, shared with `states`.
    latest: HashMap<IncidentId, Arc<Incident>>,
    /// The new state of every incident this group changes.
    touched: BTreeMap<IncidentId, Incident>,
    /// Account records written with the events, in the same transaction.
    aux: Vec<AuxWrite>,
    /// Changes to how the office runs.
    office: Vec<OfficeEvent>,
    /// Attachments for the replicated log.
    files: Vec<File>,
    answers: Vec<Answer>,
    shutdown: bool,
}

pub(super) struct Committer {
    shared: Arc<Shared>,
    /// The requests queued for the committer; `None` once it has stopped taking writes (at the
    /// shutdown, or after a failed write), so that the channel closes and later requests are
    /// refused rather than left unanswered.
    rx: Option<Receiver<Command>>,
    /// To wake the committer's thread when a request committing itself brings a deadline
    /// earlier than the thread's wake-up.
    tx: Sender<Command>,
    /// When the thread, waiting for requests, will wake up (`None` while it is not waiting).
    sleeping_until: Option<Timestamp>,
    next_seq: Seq,
    next_id: u64,
    /// Each community's last ticket number.
    tickets: HashMap<CommunityId, u64>,
    requests: HashMap<(String, String), IncidentId>,
    deadlines: Deadlines,
    places: Places,
    housekeeping: Housekeeping,
    /// The replicated log each group goes to before the disk (a primary with a standby).
    log: Option<Arc<dyn Replicator>>,
    /// The office as this committer has made it, ahead of what is published by the group being
    /// written.
    office: Office,
}

impl Committer {
    pub(super) fn new(
        shared: Arc<Shared>,
        loaded: Loaded,
        (tx, rx): (Sender<Command>, Receiver<Command>),
        log: Option<Arc<dyn Replicator>>,
    ) -> Committer {
        let mut deadlines = Deadlines::default();
        for incident in loaded.open.values() {
            deadlines.update(incident);
        }
        let published = shared.read().ok();
        let office = published.as_ref().map(|p| p.office.office.clone()).unwrap_or_default();
        let tickets = published.iter().flat_map(|p| &p.tickets);
        let tickets = tickets.map(|(c, ids)| (c.clone(), ids.len() as u64)).collect();
        Committer {
            office,
            tickets,
            shared,
            rx: Some(rx),
            tx,
            sleeping_until: None,
            next_seq: loaded.last_seq + 1,
            next_id: loaded.next_id,
            requests: loaded.requests,
            places: Places::from_rows(&loaded.rows),
            deadlines,
            housekeeping: Housekeeping::default(),
            log,
        }
    }

    fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Records the breaches and escalations that fell due while the server was down. Runs before
    /// the store is handed out, so they are on disk before anyone can ask.
    pub(super) fn catch_up(&mut self) -> Result<(), StoreError> {
        let mut group = Group::default();
        self.seed(&mut group)?;
        self.stage_timers(&mut group);
        self.commit(group)?;
        // Thousands of incidents may be due after a long outage: a group each share.
        while self.deadlines.next().is_some_and(|at| at <= self.now()) {
            let mut group = Group::default();
            self.stage_timers(&mut group);
            self.commit(group)?;
        }
        Ok(())
    }

    /// The configured communities the office does not hold yet (on a new folder, all of them;
    /// afterwards the office edits its own), and on a folder's first start the accounts a
    /// folder from before the office log kept in trees of their own (moved here).
    fn seed(&mut self, group: &mut Group) -> Result<(), StoreError> {
        let first = self.office.seq == 0;
        if !first && !self.shared.join {
            return Ok(());
        }
        // Each joins as the admin page's would: checked against the office it joins.
        let shared = self.shared.clone();
        for community in shared.seed.iter() {
            if self.office.communities.contains_key(&community.id) {
                continue;
            }
            if let Err(problem) = self.office.check_community(community) {
                tracing::warn!(
                    community = %community.id,
                    %problem,
                    "a configured community cannot join the data folder's"
                );
                continue;
            }
            let change =
                OfficeChange::Community { before: None, after: Box::new(community.clone()) };
            self.append_office(group, Actor::system(), change)?;
        }
        if !first {
            return Ok(());
        }
        let mut changes = Vec::new();
        let (people, kiosks) = self.shared.disk.legacy_accounts()?;
        for person in people {
            group.aux.push(AuxWrite {
                tree: Aux::Users,
                key: person.login.clone().into_bytes(),
                value: None,
            });
            changes.push(OfficeChange::Person { before: None, after: Box::new(person) });
        }
        for kiosk in kiosks {
            group.aux.push(AuxWrite {
                tree: Aux::Kiosks,
                key: kiosk.id.clone().into_bytes(),
                value: None,
            });
            changes.push(OfficeChange::Kiosk { before: None, after: Box::new(kiosk) });
        }
        for change in changes {
            self.append_office(group, Actor::system(), change)?;
        }
        Ok(())
    }

    /// Adds one office event to the group and to the committer's office.
    fn append_office(
        &mut self,
        group: &mut Group,
        actor: Actor,
        change: OfficeChange,
    ) -> Result<OfficeEvent, StoreError> {
        let event = OfficeEvent { seq: self.office.seq + 1, at: self.now(), actor, change };
        self.office.apply(&event).map_err(StoreError::Write)?;
        group.office.push(event.clone());
        Ok(event)
    }

    /// The committer's thread: waits for a request (or the next deadline), then commits it with
    /// whatever is queued behind it as one group. It stops at the shutdown or after a failed
    /// write; the requests queued then are refused, not dropped unanswered.
    pub(super) fn run(me: Arc<Mutex<Committer>>) {
        let lock = || me.lock().ok();
        let Some(rx) = lock().and_then(|c| c.rx.clone()) else { return };
        while let Some(wait) = lock().map(|mut c| c.wait()) {
            let first = match rx.recv_timeout(wait) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // A request committing on its own (`commit_now`) may have stopped the committer.
            match lock() {
                Some(mut committer) if committer.rx.is_some() => {
                    committer.sleeping_until = None;
                    if !committer.round(first) {
                        break;
                    }
                }
                _ => break,
            }
        }
        // Also after a panic in a commit (the lock poisoned): nothing more is committed, and
        // the queue closes, so that every request waiting in it is refused.
        me.lock().unwrap_or_else(std::sync::PoisonError::into_inner).stop();
    }

    /// How long the thread may wait for a request before a deadline falls due.
    fn wait(&mut self) -> Duration {
        let now = self.now();
        let wait = match self.deadlines.next() {
            None => MAX_IDLE,
            Some(at) => {
                let ms = at.0.saturating_sub(now.0).max(0);
                Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(MAX_IDLE)
            }
        };
        let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        self.sleeping_until = Some(Timestamp(now.0.saturating_add(ms)));
        wait
    }

    /// A request that found the committer idle while requests come one at a time, committed
    /// by the requester's own thread with whatever is queued behind it: a hand-off to the
    /// committer's thread and back costs two wake-ups, each an exit to the hypervisor on a
    /// virtual machine, more than the rest of the report together. Once the committer has
    /// stopped, the request is given back.
    pub(super) fn commit_now(&mut self, command: Command) -> Option<Command> {
        if self.rx.is_none() {
            return Some(command);
        }
        self.round(Some(command));
        // Wake the thread when this round stopped the committer (a shutdown queued behind the
        // request, or a failed write), so that it ends now and the queue closes; or when a
        // deadline now falls due before the thread would wake up (a new report's, say), so that
        // the breach is recorded when it falls due. Nobody waits for this tick's answer.
        let (next, until) = (self.deadlines.next(), self.sleeping_until);
        if self.rx.is_none() || next.zip(until).is_some_and(|(at, until)| at < until) {
            self.sleeping_until = None;
            let (reply, _) = tokio::sync::oneshot::channel();
            let _ = self.tx.send(Command::Tick { reply });
        }
        None
    }

    /// Commits nothing more: the queue closes once the thread lets go of it too.
    pub(super) fn stop(&mut self) {
        self.rx = None;
    }

    /// Commits `first` and the requests queued behind it (up to a group's limit) as one group,
    /// with the deadlines that fell due. Whether the committer goes on: not after the shutdown
    /// or a failed write — the in-memory state would be ahead of the disk, and nothing may be
    /// acknowledged on top of a state that may not exist after a restart.
    fn round(&mut self, first: Option<Command>) -> bool {
        let mut group = Group::default();
        if let Some(command) = first {
            self.stage(command, &mut group);
        }
        let max = self.max_group();
        // An attachment (only ever for a replicated log) ends its group: the log's messages
        // have a size limit.
        while group.answers.len() < max && !group.shutdown && group.files.is_empty() {
            match self.rx.as_ref().map(Receiver::try_recv) {
                Some(Ok(command)) => self.stage(command, &mut group),
                _ => break,
            }
        }
        self.stage_timers(&mut group);
        let shutdown = group.shutdown;
        let go_on = self.commit(group).is_ok() && !shutdown;
        if !go_on {
            self.stop();
        }
        go_on
    }

    fn stage(&mut self, command: Command, group: &mut Group) {
        match command {
            Command::Report { who, request_id, report, admit, reply } => {
                let result = self.stage_report(group, &who, request_id, report, admit);
                group.answers.push(Answer::Report(reply, result));
            }
            Command::Act { who, id, action, reply } => {
                let result = self.stage_action(group, &who, id, &action);
                group.answers.push(Answer::Act(reply, result));
            }
            Command::Get { id, reply } => {
                let result = self.incident(group, id);
                group.answers.push(Answer::Get(reply, result));
            }
            Command::Put { tree, key, value, reply } => {
                group.aux.push(AuxWrite { tree, key, value });
                group.answers.push(Answer::Put(reply, Ok(())));
            }
            Command::Tick { reply } => {
                let before = group.events.len();
                self.stage_timers(group);
                group.answers.push(Answer::Tick(reply, group.events.len() - before));
            }
            Command::Office { actor, edit, reply } => {
                let result = match edit(&self.office) {
                    Ok(change) => {
                        self.append_office(group, actor.clone(), change).and_then(|event| {
                            // A patrol round earns its points in the same group, by the rules of
                            // the building head's community.
                            let points = self
                                .office
                                .people
                                .get(&actor.id)
                                .and_then(|p| self.office.communities.get(&p.community))
                                .map_or(0, |c| c.points.patrol);
                            // One patrol's points a day, however many rounds (or double taps).
                            let day = |at: Timestamp| (at.0 + 8 * 3_600_000).div_euclid(86_400_000);
                            let earned_today = self.office.ledger.iter().any(|e| {
                                e.award.rule == hongfan_shared::points::PointsRule::Patrol
                                    && e.award.head.id == actor.id
                                    && day(e.at) == day(event.at)
                            });
                            if matches!(event.change, OfficeChange::Patrol(_))
                                && points != 0
                                && !earned_today
                            {
                                let award = hongfan_shared::points::Award {
                                    head: actor,
                                    points,
                                    rule: hongfan_shared::points::PointsRule::Patrol,
                                    reason: "巡防一次".into(),
                                    incident: None,
                                };
                                self.append_office(
                                    group,
                                    Actor::system(),
                                    OfficeChange::Award(award),
                                )?;
                            }
                            Ok(event)
                        })
                    }
                    Err(refused) => Err(StoreError::Refused(refused)),
                };
                group.answers.push(Answer::Office(reply, result));
            }
            Command::File { file, reply } => {
                group.files.push(file);
                group.answers.push(Answer::Put(reply, Ok(())));
            }
            Command::Shutdown { reply } => {
                group.shutdown = true;
                group.answers.push(Answer::Shutdown(reply));
            }
        }
    }

    fn stage_report(
        &mut self,
        group: &mut Group,
        who: &Principal,
        request_id: String,
        report: Report,
        admit: super::Admit,
    ) -> Result<Reported, StoreError> {
        let now = self.now();
        let request = (who.actor.id.clone(), request_id);
        if let Some(&id) = self.requests.get(&request) {
            let existing = self.incident(group, id)?.ok_or(StoreError::NotFound(id))?;
            if existing.report != report {
                return Err(StoreError::RequestReused { request_id: request.1 });
            }
            return Ok(Reported { incident: existing, event: None });
        }
        if request.1.is_empty() || request.1.len() > 64 {
            return Err(StoreError::BadRequestId);
        }
        let community = self.community_of(&report.compound)?;
        let deadlines = check_report(who, &report, &community, now)?;
        if !admit() {
            return Err(StoreError::RateLimited);
        }
        let id = IncidentId(self.next_id);
        let compound = report.compound.clone();
        let ticket = self.tickets.get(&community.id).copied().unwrap_or(0) + 1;
        let policy = community.recurring;
        let since = Timestamp(now.0.saturating_sub(policy.within.0 as i64));
        let recurring = self.places.recurring(&report, since, policy.reports as usize);
        let change = Change::Reported {
            ticket: Ticket::new(ticket),
            report: Box::new(report),
            request_id: request.1.clone(),
            respond_by: deadlines.respond_by,
            resolve_by: deadlines.resolve_by,
            escalate_by: Some(deadlines.escalate_by),
            key: Some(slip_key()),
            recurring,
        };
        let event = self.event(id, who.actor.clone(), change, now);
        let mut incident =
            Incident::from_event(&event).map_err(|e| StoreError::Write(e.to_string()))?;
        self.next_seq += 1;
        self.next_id += 1;
        self.tickets.insert(community.id.clone(), ticket);
        self.requests.insert(request, id);
        self.places.add(&incident.report, now, id);
        group.events.push(event.clone());
        let created = Arc::new(incident.clone());
        group.states.push((None, created.clone()));
        group.latest.insert(id, created);
        // Decided here, in the report's own group, so that no crash can separate the two.
        let duty = self.shared.duty.get();
        if self.office.on_duty(&compound, now, &duty).is_empty() {
            let reason = EscalationReason::NobodyOnDuty;
            let escalated = Change::Escalated { reason };
            self.append(group, &mut incident, Actor::system(), escalated, now)?;
        }
        self.deadlines.update(&incident);
        group.touched.insert(id, incident.clone());
        Ok(Reported { incident, event: Some(event) })
    }

    fn stage_action(
        &mut self,
        group: &mut Group,
        who: &Principal,
        id: IncidentId,
        action: &Action,
    ) -> Result<(Event, Incident), StoreError> {
        let now = self.now();
        let mut incident = self.incident(group, id)?.ok_or(StoreError::NotFound(id))?;
        // What fell due before this command is logged before it: a late claim still leaves the
        // breach of the response target on the record.
        self.stage_due(group, &mut incident, now);
        let community = self.community_of(&incident.report.compound)?;
        let change = decide(&incident, who, action, now, &community)?;
        let again = matches!(change, Change::Rated { again: Some(_), .. });
        let event = self.append(group, &mut incident, who.actor.clone(), change, now)?;
        if matches!(event.change, Change::Cancelled { .. } | Change::SentBack { .. }) {
            self.places.cancel(&incident.report, id);
        }
        // A second handling nobody is on duty for is escalated at once, as a new report is.
        if again
            && self
                .office
                .on_duty(&incident.report.compound, now, &self.shared.duty.get())
                .is_empty()
        {
            let escalated = Change::Escalated { reason: EscalationReason::NobodyOnDuty };
            self.append(group, &mut incident, Actor::system(), escalated, now)?;
        }
        // 楼长积分: what this earned is written in the same group, so exactly once.
        let rules = community.points;
        let earned = hongfan_shared::points::earned(&event, &incident, &rules, |rule, id| {
            self.office.awarded(rule, id)
        });
        if let Some(award) = earned {
            self.append_office(group, Actor::system(), OfficeChange::Award(award))?;
        }
        self.deadlines.update(&incident);
        group.touched.insert(id, incident.clone());
        Ok((event, incident))
    }

    /// The community `compound` belongs to, whose rules its incidents follow.
    fn community_of(&self, compound: &CompoundId) -> Result<Arc<Community>, StoreError> {
        let community = self.office.community_of(compound).cloned();
        community.ok_or_else(|| LifecycleError::UnknownCompound(compound.clone()).into())
    }

    /// How many requests a group takes, and incidents whose timers ran out: a message of the
    /// replicated log has a size limit.
    fn max_group(&self) -> usize {
        if self.log.is_some() { MAX_REPLICATED_GROUP } else { MAX_GROUP }
    }

    /// Logs what is due for the incidents whose timer ran out, at most a group's share of them:
    /// the rest stay due, and the next round (at once) takes them.
    fn stage_timers(&mut self, group: &mut Group) {
        let now = self.now();
        for id in self.deadlines.take_due(now, self.max_group()) {
            match self.incident(group, id) {
                Ok(Some(mut incident)) => self.stage_due(group, &mut incident, now),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(incident = id.0, error = %e, "cannot read incident to record what is due");
                }
            }
        }
    }

    /// Logs the breaches and escalation due for `incident` at `now`, and keeps its timer.
    fn stage_due(&mut self, group: &mut Group, incident: &mut Incident, now: Timestamp) {
        let mut logged = false;
        // A pause that ran out moves the resolution deadline, which may itself have passed by
        // now: what is due is asked again after each round (a few at most).
        for _ in 0..4 {
            let due = incident.due(now);
            if due.is_empty() {
                break;
            }
            logged = true;
            for change in due {
                if let Err(e) = self.append(group, incident, Actor::system(), change, now) {
                    tracing::error!(error = %e, "a due change does not apply");
                }
            }
        }
        self.deadlines.update(incident);
        if logged {
            group.touched.insert(incident.id, incident.clone());
        }
    }

    /// Folds one new event into `incident` and adds it to the group.
    fn append(
        &mut self,
        group: &mut Group,
        incident: &mut Incident,
        actor: Actor,
        change: Change,
        now: Timestamp,
    ) -> Result<Event, StoreError> {
        let event = self.event(incident.id, actor, change, now);
        let before = match group.latest.get(&incident.id) {
            Some(latest) => latest.clone(),
            None => Arc::new(incident.clone()),
        };
        incident.apply(&event).map_err(|e| StoreError::Write(e.to_string()))?;
        self.next_seq += 1;
        group.events.push(event.clone());
        let after = Arc::new(incident.clone());
        group.states.push((Some(before), after.clone()));
        group.latest.insert(incident.id, after);
        Ok(event)
    }

    /// The next event; `next_seq` moves on only once the event is known to apply, so a refused
    /// change leaves no gap in the log.
    fn event(&self, incident: IncidentId, actor: Actor, change: Change, now: Timestamp) -> Event {
        Event { seq: self.next_seq, at: now, incident, actor, change }
    }

    /// The incident as this group sees it: its own changes first, then the published state,
    /// then the disk for incidents that are no longer open.
    fn incident(&self, group: &Group, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        if let Some(incident) = group.touched.get(&id) {
            return Ok(Some(incident.clone()));
        }
        if let Some(incident) = self.shared.read()?.open.get(&id) {
            return Ok(Some(Incident::clone(incident)));
        }
        self.shared.disk.incident(id)
    }

    fn commit(&mut self, group: Group) -> Result<(), StoreError> {
        let Group {
            events,
            states,
            latest,
            touched,
            mut aux,
            office,
            files,
            mut answers,
            shutdown,
        } = group;
        self.shared.last_group.store(answers.len(), std::sync::atomic::Ordering::Relaxed);
        // The webhooks these events call, into the outbox in the same write: none lost, none
        // twice, whatever the crash.
        let mut deliveries = Vec::new();
        let hooked = !self.shared.webhooks.is_empty();
        for (event, (_, after)) in events.iter().zip(&states) {
            if !hooked && after.report.order.is_none() {
                continue;
            }
            // Every compound an incident names is a community's (none is ever removed).
            let Ok(community) = self.community_of(&after.report.compound) else { continue };
            deliveries.extend(self.shared.webhooks.deliveries(event, after, &community));
            deliveries.extend(crate::webhooks::order_delivery(event, after, &community));
        }
        for delivery in &deliveries {
            let value =
                serde_json::to_vec(delivery).map_err(|e| StoreError::Write(e.to_string()))?;
            aux.push(AuxWrite {
                tree: Aux::Outbox,
                key: delivery.id.clone().into_bytes(),
                value: Some(value),
            });
        }
        let mut failed = None;
        // The sequence number written, when there was something to write: the checkpoint and
        // the high-water mark come after the answers (a request committing itself still waits
        // for them, once a second, before it writes its own answer).
        let mut housekeeping = None;
        let shared = self.shared.clone();
        let metrics = &shared.metrics;
        if !events.is_empty() || !aux.is_empty() || !office.is_empty() || !files.is_empty() {
            let started = std::time::Instant::now();
            // With a standby, the replicated log holds the group before this disk does: the
            // disk is never ahead of the log, so whatever this process acknowledged, a standby
            // has. (Dying between the two, this folder gets the group back from the log.)
            let position = self.log.as_ref().map(|log| {
                let record = Record::borrowed(&events, &office, &aux, &files);
                log.append(&record).map_err(|e| match e {
                    ReplicaError::LostLease => StoreError::LostLease,
                    e => StoreError::Write(format!("the replicated log: {e}")),
                })
            });
            let states: Vec<&Incident> = touched.values().collect();
            // Then durable here, and into sled and the published state before anyone hears of
            // it, so that whoever is answered reads what they wrote.
            let applied = position
                .transpose()
                .and_then(|position| shared.disk.commit(&events, &states, &office, &aux, position))
                .and_then(|ops| shared.disk.apply(&ops));
            metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
            metrics.commit_batch.observe(answers.len().max(1) as f64);
            if let Err(e) = applied {
                shared.fail_write(&e);
                for answer in answers.drain(..) {
                    answer.fail(&e);
                }
                return Err(e);
            }
            let office_now = (!office.is_empty()).then_some(&self.office);
            housekeeping = Some(shared.show(&events, touched.values(), &latest, office_now)?);
        } else if shutdown {
            if let Err(e) = shared.disk.checkpoint() {
                tracing::error!(error = %e, "the last checkpoint failed; the write-ahead log keeps the writes");
                shared.health.fail(format!("the last checkpoint failed: {e}"));
            }
            let _ = shared.disk.write_mark(shared.read()?.seq);
        }
        // At the end, sled is made durable before the shutdown is answered.
        if let Some(seq) = housekeeping.filter(|_| shutdown) {
            failed = failed.or(self.housekeeping.run(&shared, seq, true));
        }
        for answer in answers {
            answer.send();
        }
        shared.broadcast(events, states, office, deliveries, Vec::new());
        if let Some(seq) = housekeeping.filter(|_| !shutdown) {
            failed = failed.or(self.housekeeping.run(&shared, seq, false));
        }
        failed.map_or(Ok(()), Err)
    }
}

impl Answer {
    fn send(self) {
        // A requester that went away no longer needs its answer; what it asked for is stored.
        match self {
            Answer::Report(tx, r) => drop(tx.send(r)),
            Answer::Act(tx, r) => drop(tx.send(r)),
            Answer::Get(tx, r) => drop(tx.send(r)),
            Answer::Put(tx, r) => drop(tx.send(r)),
            Answer::Tick(tx, n) => drop(tx.send(Ok(n))),
            Answer::Office(tx, r) => drop(tx.send(r)),
            Answer::Shutdown(tx) => drop(tx.send(Ok(()))),
        }
    }

    fn fail(self, e: &StoreError) {
        let e = StoreError::Write(e.to_string());
        match self {
            Answer::Report(tx, _) => drop(tx.send(Err(e))),
            Answer::Act(tx, _) => drop(tx.send(Err(e))),
            Answer::Get(tx, _) => drop(tx.send(Err(e))),
            Answer::Put(tx, _) => drop(tx.send(Err(e))),
            Answer::Tick(tx, _) => drop(tx.send(Err(e))),
            Answer::Office(tx, _) => drop(tx.send(Err(e))),
            Answer::Shutdown(tx) => drop(tx.send(Err(e))),
        }
    }
}

/// A new report's private code: ten random digits, so that it can be typed on the kiosk's
/// keypad; with the ticket it opens the status page (one in 10^10 per guess, and guesses are
/// rate-limited).
fn slip_key() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..10).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").field("next_seq", &self.next_seq).finish_non_exhaustive()
    }
}
