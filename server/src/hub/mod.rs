//! The hub: who is connected, who is on duty, and the fan-out of every durable change.
//!
//! One task reads the store's commits in order and puts each event into the bounded queue of
//! every connection that may see it. A connection whose queue is full is not waited for: it is
//! closed with `SLOW_CONSUMER`, and resumes from its last sequence number when it reconnects, so
//! a slow client neither slows the others nor silently misses anything.

mod connection;
pub mod roster;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use hongfan_shared::protocol::{ErrorBody, ErrorCode, ServerMessage, close, patch};
use hongfan_shared::view::{self, Sight};
use hongfan_shared::{
    Change, CompoundId, EscalationReason, Incident, IncidentId, Principal, Role, Seq,
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{Authenticated, Subject};
pub use crate::limits::Limits;
use crate::limits::{ActionLimiter, ReportLimiter};
use crate::store::{Commit, Committed, Store, StoreError};
pub use connection::serve;
use roster::Roster;

/// One item in a connection's queue. Events carry their sequence number so a connection that
/// is catching up can drop what it already sent.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Event { seq: Seq, text: Utf8Bytes },
    Text(Utf8Bytes),
}

/// Closes one connection from outside, with a reason.
#[derive(Debug, Default)]
struct Kick {
    token: CancellationToken,
    reason: OnceLock<(u16, &'static str)>,
}

impl Kick {
    fn kick(&self, code: u16, reason: &'static str) {
        let _ = self.reason.set((code, reason));
        self.token.cancel();
    }
}

/// A connection's queue of messages to send: bounded, allocating only while it holds something
/// (an idle board costs next to nothing), and drained whole so that the frames waiting are
/// written together.
#[derive(Debug, Default)]
pub struct Queue {
    items: Mutex<std::collections::VecDeque<Outgoing>>,
    ready: tokio::sync::Notify,
}

impl Queue {
    /// Adds one message, unless `cap` are waiting already.
    fn push(&self, out: Outgoing, cap: usize) -> bool {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if items.len() >= cap {
            return false;
        }
        items.push_back(out);
        drop(items);
        self.ready.notify_one();
        true
    }

    /// Waits for messages, then takes every one waiting.
    pub async fn take(&self, into: &mut Vec<Outgoing>) {
        loop {
            {
                let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
                if !items.is_empty() {
                    into.extend(items.drain(..));
                    // A burst's room is given back, not kept by an idle connection.
                    if items.capacity() > 64 {
                        items.shrink_to_fit();
                    }
                    return;
                }
            }
            self.ready.notified().await;
        }
    }
}

#[derive(Debug)]
struct Conn {
    principal: Principal,
    subject: Subject,
    queue: Arc<Queue>,
    kick: Arc<Kick>,
    subscribed: bool,
}

impl Conn {
    fn role(&self) -> Role {
        self.principal.actor.role
    }

    fn push(&self, out: Outgoing, cap: usize, metrics: &crate::metrics::Metrics) {
        if !self.queue.push(out, cap) {
            if !self.kick.token.is_cancelled() {
                metrics.slow_consumers.inc();
            }
            self.kick.kick(close::SLOW_CONSUMER, "too slow to keep up: reconnect and resume");
        }
    }
}

#[derive(Debug, Default)]
struct Clients {
    conns: HashMap<u64, Conn>,
    roster: Roster,
    /// Live sockets per account and per client address, for their caps.
    by_subject: HashMap<Subject, usize>,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted socket's place under the caps; given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    hub: Hub,
    subject: Subject,
    from: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut clients = self.hub.clients();
        let give_back = |count: Option<&mut usize>| {
            if let Some(count) = count {
                *count = count.saturating_sub(1);
            }
        };
        give_back(clients.by_subject.get_mut(&self.subject));
        give_back(clients.by_address.get_mut(&self.from));
        clients.by_subject.retain(|_, n| *n > 0);
        clients.by_address.retain(|_, n| *n > 0);
    }
}

#[derive(Debug)]
struct Inner {
    store: Store,
    limits: Limits,
    reports: ReportLimiter,
    actions: ActionLimiter,
    clients: Mutex<Clients>,
    next_conn: AtomicU64,
    /// Cancelled at shutdown: every connection closes with 1001.
    shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    tasks: TaskTracker,
}

/// A cheap-to-clone handle to the hub.
#[derive(Debug, Clone)]
pub struct Hub(Arc<Inner>);

/// Encodes a server message once, to be shared by every connection that gets it.
pub fn encode(message: &ServerMessage) -> Utf8Bytes {
    // Serialising plain data into a String cannot fail.
    Utf8Bytes::from(serde_json::to_string(message).unwrap_or_default())
}

/// Whether a role watches the duty roster (workers and supervisors).
fn sees_roster(role: Role) -> bool {
    matches!(role, Role::Worker | Role::Supervisor)
}

/// The one place a store refusal becomes a wire error.
pub fn wire_error(e: &StoreError) -> ErrorBody {
    let (code, holder) = match e {
        StoreError::Lifecycle(l) => (l.code(), l.holder().cloned()),
        StoreError::NotFound(_) => (ErrorCode::NotFound, None),
        StoreError::RequestReused { .. } => (ErrorCode::RequestReused, None),
        StoreError::BadRequestId => (ErrorCode::BadRequestId, None),
        StoreError::RateLimited => (ErrorCode::RateLimited, None),
        StoreError::Open { .. }
        | StoreError::Corrupt { .. }
        | StoreError::Read(_)
        | StoreError::Write(_)
        | StoreError::Poisoned
        | StoreError::Closed => (ErrorCode::Unavailable, None),
    };
    let message = match code {
        // Internal details stay in the server's log.
        ErrorCode::Unavailable => "the server cannot store this right now; try again".to_owned(),
        _ => e.to_string(),
    };
    ErrorBody {
        id: None,
        request_id: None,
        code,
        message,
        message_zh: code.message_zh().into(),
        holder,
    }
}

pub fn error(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        id: None,
        request_id: None,
        code,
        message: message.into(),
        message_zh: code.message_zh().into(),
        holder: None,
    }
}

impl Hub {
    /// Makes the hub and starts its fan-out task.
    pub fn start(store: Store, limits: Limits, shutdown: CancellationToken) -> Hub {
        let commits = store.subscribe();
        let hub = Hub(Arc::new(Inner {
            store,
            reports: ReportLimiter::new(&limits),
            actions: ActionLimiter::new(&limits),
            limits,
            clients: Mutex::new(Clients::default()),
            next_conn: AtomicU64::new(1),
            shutdown,
            tasks: TaskTracker::new(),
        }));
        let last = hub.0.store.last_seq().unwrap_or(0);
        hub.0.tasks.spawn(hub.clone().fan_out(commits, last));
        hub
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// How many new reports each device may still send.
    pub fn report_limiter(&self) -> &ReportLimiter {
        &self.0.reports
    }

    /// How many lifecycle actions each account may still send.
    pub fn action_limiter(&self) -> &ActionLimiter {
        &self.0.actions
    }

    /// Admits one more live socket for `subject` from `from`, within the caps per account and
    /// per address; the answer holds its place until it is dropped with the socket.
    pub fn admit(&self, subject: &Subject, from: IpAddr) -> Result<Admitted, &'static str> {
        let limits = &self.0.limits;
        let cap = match subject {
            Subject::Kiosk(_) => limits.sockets_per_kiosk,
            Subject::User(_) => limits.sockets_per_person,
        };
        let mut clients = self.clients();
        if clients.by_subject.get(subject).copied().unwrap_or(0) >= cap {
            return Err("for this account: close another of its pages");
        }
        if clients.by_address.get(&from).copied().unwrap_or(0) >= limits.sockets_per_address {
            return Err("from this address");
        }
        *clients.by_subject.entry(subject.clone()).or_default() += 1;
        *clients.by_address.entry(from).or_default() += 1;
        Ok(Admitted { hub: self.clone(), subject: subject.clone(), from })
    }

    pub fn tasks(&self) -> &TaskTracker {
        &self.0.tasks
    }

    pub fn connections(&self) -> usize {
        self.clients().conns.len()
    }

    /// `/metrics`: the counters, with the gauges read now.
    pub fn render_metrics(&self) -> String {
        let metrics = self.0.store.metrics();
        let mut by_role: HashMap<Role, i64> = HashMap::new();
        for conn in self.clients().conns.values() {
            *by_role.entry(conn.role()).or_default() += 1;
        }
        for role in [Role::Supervisor, Role::Worker, Role::BuildingHead, Role::Kiosk] {
            let label = crate::metrics::RoleLabel { role: format!("{role:?}").to_lowercase() };
            metrics.connections.get_or_create(&label).set(by_role.get(&role).copied().unwrap_or(0));
        }
        for (compound, open) in self.0.store.open_by_compound().unwrap_or_default() {
            let label = crate::metrics::CompoundLabel { compound };
            metrics
                .open_incidents
                .get_or_create(&label)
                .set(i64::try_from(open).unwrap_or(i64::MAX));
        }
        metrics.render()
    }

    fn clients(&self) -> MutexGuard<'_, Clients> {
        // std's Mutex: it is never held across an await, and a panic while holding it leaves
        // plain maps that are still usable.
        self.0.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, auth: &Authenticated) -> (u64, Arc<Queue>, Arc<Kick>) {
        let id = self.0.next_conn.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(Queue::default());
        let kick = Arc::new(Kick::default());
        let conn = Conn {
            principal: auth.principal.clone(),
            subject: auth.subject.clone(),
            queue: queue.clone(),
            kick: kick.clone(),
            subscribed: false,
        };
        let mut clients = self.clients();
        clients.roster.connected(&auth.principal.actor.id);
        clients.conns.insert(id, conn);
        (id, queue, kick)
    }

    fn unregister(&self, id: u64) {
        let mut clients = self.clients();
        if let Some(conn) = clients.conns.remove(&id) {
            clients.roster.disconnected(&conn.principal.actor.id, Instant::now());
        }
    }

    /// From now on this connection gets live events; it must then send what it missed.
    fn mark_subscribed(&self, id: u64) {
        if let Some(conn) = self.clients().conns.get_mut(&id) {
            conn.subscribed = true;
        }
    }

    /// Puts a worker on or off duty and tells everyone who watches the roster.
    fn set_duty(&self, principal: &Principal, on: bool, compounds: Vec<CompoundId>) {
        let mut clients = self.clients();
        let id = &principal.actor.id;
        let connections = clients.conns.values().filter(|c| &c.principal.actor.id == id).count();
        if on {
            clients.roster.set_on(principal.actor.clone(), compounds, connections);
        } else {
            clients.roster.set_off(id);
        }
        self.0.store.coverage().set(clients.roster.covered());
        Self::send_roster(&clients, self.0.limits.queue, self.0.store.metrics());
    }

    fn roster_message(clients: &Clients) -> Utf8Bytes {
        encode(&ServerMessage::Roster { on_duty: clients.roster.list() })
    }

    fn send_roster(clients: &Clients, cap: usize, metrics: &crate::metrics::Metrics) {
        let text = Self::roster_message(clients);
        for conn in clients.conns.values() {
            if conn.subscribed && sees_roster(conn.role()) {
                conn.push(Outgoing::Text(text.clone()), cap, metrics);
            }
        }
    }

    /// Closes every connection of an account or kiosk (disabled, revoked).
    pub fn kick_subject(&self, subject: &Subject) {
        for conn in self.clients().conns.values().filter(|c| &c.subject == subject) {
            conn.kick.kick(close::REVOKED, "this account was disabled or this kiosk revoked");
        }
    }

    async fn fan_out(self, mut commits: broadcast::Receiver<Arc<Commit>>, mut last: Seq) {
        let mut sweep = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                () = self.0.shutdown.cancelled() => break,
                received = commits.recv() => match received {
                    Ok(commit) => last = self.dispatch(&commit.changes, last),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "fan-out lagged behind the store; re-reading the log");
                        last = self.backfill(last).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = sweep.tick() => {
                    self.0.reports.forget_idle();
                    self.0.actions.forget_idle();
                    let mut clients = self.clients();
                    if clients.roster.sweep(Instant::now(), roster::DUTY_GRACE) {
                        self.0.store.coverage().set(clients.roster.covered());
                        Self::send_roster(&clients, self.0.limits.queue, self.0.store.metrics());
                    }
                }
            }
        }
    }

    /// Re-reads events after `last` from the log, with the incidents' current state.
    async fn backfill(&self, mut last: Seq) -> Seq {
        loop {
            let events = match self.0.store.events_after(last, 1000).await {
                Ok(events) if !events.is_empty() => events,
                Ok(_) => return last,
                Err(e) => {
                    tracing::error!(error = %e, "cannot re-read the log for fan-out");
                    return last;
                }
            };
            // What each incident is now: its events are sent with it whole, as in a resume.
            let mut now: HashMap<IncidentId, Arc<Incident>> = HashMap::new();
            let mut changes = Vec::new();
            for event in events {
                if !now.contains_key(&event.incident)
                    && let Ok(Some(incident)) = self.0.store.incident(event.incident).await
                {
                    now.insert(event.incident, Arc::new(incident));
                }
                if let Some(after) = now.get(&event.incident) {
                    changes.push(Committed { event, before: None, after: after.clone() });
                }
            }
            last = self.dispatch(&changes, last);
        }
    }

    /// Queues each event (after `last`) for every connection that may see it, and the alerts
    /// for new and escalated reports. Returns the last sequence number dispatched.
    fn dispatch(&self, changes: &[Committed], mut last: Seq) -> Seq {
        let cap = self.0.limits.queue;
        let metrics = self.0.store.metrics().clone();
        let metrics = metrics.as_ref();
        let community = self.0.store.community().clone();
        let community = community.as_ref();
        let clients = self.clients();
        let from = last;
        for Committed { event, before, after } in changes.iter().filter(|c| c.event.seq > from) {
            last = event.seq;
            let incident = after.as_ref();
            // Each view encoded once, however many connections share it.
            let mut encoded: HashMap<(Sight, bool), Option<Utf8Bytes>> = HashMap::new();
            for conn in clients.conns.values().filter(|c| c.subscribed) {
                let Some(sight) = view::sight(&conn.principal, incident, community) else {
                    continue;
                };
                let role = conn.role();
                let text = encoded.entry((sight, role == Role::Supervisor)).or_insert_with(|| {
                    view::event_as_seen(event, sight, role).map(|event| {
                        // What changed, as this sight sees it: the sight before the event is
                        // the same one (who may see an incident never changes with it).
                        let was = before.as_ref().map(|b| view::incident_as_seen(b, sight));
                        let now = view::incident_as_seen(incident, sight);
                        encode(&ServerMessage::Event { event, patch: patch(was.as_ref(), &now) })
                    })
                });
                if let Some(text) = text {
                    conn.push(Outgoing::Event { seq: event.seq, text: text.clone() }, cap, metrics);
                }
            }
            let compound = &incident.report.compound;
            let on_duty =
                |c: &Conn| c.role() == Role::Worker && clients.roster.is_on(&c.principal.actor.id);
            // Who hears the chime: the on-duty workers of the compound for a new report; the
            // supervisors (and, when nobody was on duty, the other compounds' on-duty workers)
            // for an escalation. An escalation is logged in the report's own group, so it
            // arrives here right after it.
            let (escalated, hears): (bool, &dyn Fn(&Conn) -> bool) = match event.change {
                Change::Reported { .. } => {
                    (false, &|c| on_duty(c) && c.principal.may_act_in(compound))
                }
                Change::Escalated { reason: EscalationReason::NobodyOnDuty } => {
                    (true, &|c| c.role() == Role::Supervisor || on_duty(c))
                }
                Change::Escalated { reason: EscalationReason::Unclaimed } => {
                    (true, &|c| c.role() == Role::Supervisor)
                }
                _ => continue,
            };
            let mut alerts: HashMap<Sight, Utf8Bytes> = HashMap::new();
            for conn in clients.conns.values().filter(|c| c.subscribed && hears(c)) {
                // Another compound's worker hears of it as much as a private case shows.
                let sight =
                    view::sight(&conn.principal, incident, community).unwrap_or(Sight::Restricted);
                let alert = alerts.entry(sight).or_insert_with(|| {
                    let incident = view::incident_as_seen(incident, sight);
                    encode(&ServerMessage::Alert { incident, escalated })
                });
                conn.push(Outgoing::Text(alert.clone()), cap, metrics);
            }
        }
        last
    }
}
