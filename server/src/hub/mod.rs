//! The hub: who is connected, who is on duty, and the fan-out of every durable change.
//!
//! One task reads the store's commits in order and puts each event into the bounded queue of
//! every connection that may see it. A connection whose queue is full is not waited for: it is
//! closed with `SLOW_CONSUMER`, and resumes from its last sequence number when it reconnects, so
//! a slow client neither slows the others nor silently misses anything.

mod connection;
pub mod roster;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use hongfan_shared::office::{Office, OfficeChange, OfficeEvent};
use hongfan_shared::protocol::{ErrorBody, ErrorCode, ServerMessage, close, patch};
use hongfan_shared::view::{self, Chime, Sight};
use hongfan_shared::{CommunityId, Incident, IncidentId, Principal, Role, Scope, Seq, Timestamp};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{Authenticated, SessionKey, Subject};
pub use crate::limits::Limits;
use crate::limits::{Allowance, Proofs};
use crate::store::{Commit, Committed, DutySwitch, Store, StoreError};
pub use connection::serve;
use roster::Roster;

/// One item in a connection's queue. Events carry their sequence number so a connection that
/// is catching up can drop what it already sent.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Event { seq: Seq, text: Utf8Bytes },
    Text(Utf8Bytes),
}

/// Closes one connection from outside, with a reason. Its token is a child of the server's
/// shutdown, so that a connection waits on one token for both.
#[derive(Debug)]
struct Kick {
    token: CancellationToken,
    reason: OnceLock<(u16, &'static str)>,
}

impl Kick {
    fn kick(&self, code: u16, reason: &'static str) {
        // Once closing (the server shutting down), the reason it closes for stays.
        if !self.token.is_cancelled() {
            let _ = self.reason.set((code, reason));
            self.token.cancel();
        }
    }

    /// Why the connection ends: its kick's reason, or the server shutting down.
    fn reason(&self) -> (u16, &'static str) {
        self.reason.get().copied().unwrap_or((1001, "server shutting down"))
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
    /// Adds messages together (none come between them), unless that would put more than `cap`
    /// in waiting.
    fn push(&self, out: impl ExactSizeIterator<Item = Outgoing>, cap: usize) -> bool {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if items.len() + out.len() > cap {
            return false;
        }
        items.extend(out);
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
    /// The community whose office it belongs to.
    community: CommunityId,
    subject: Subject,
    session: SessionKey,
    queue: Arc<Queue>,
    kick: Arc<Kick>,
    subscribed: bool,
}

impl Conn {
    fn role(&self) -> Role {
        self.principal.actor.role
    }

    /// The communities whose rosters it hears: its own, and any it runs.
    fn communities(&self) -> BTreeSet<CommunityId> {
        let mut ours = BTreeSet::from([self.community.clone()]);
        if let Scope::Communities { communities, .. } = &self.principal.scope {
            ours.extend(communities.iter().cloned());
        }
        ours
    }

    fn push(&self, out: Outgoing, cap: usize, metrics: &crate::metrics::Metrics) {
        self.push_all(vec![out], cap, metrics);
    }

    /// Queues messages together; a connection too slow to take them is closed.
    fn push_all(&self, out: Vec<Outgoing>, cap: usize, metrics: &crate::metrics::Metrics) {
        if out.is_empty() {
            return;
        }
        if !self.queue.push(out.into_iter(), cap) {
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
    /// When each account's last socket closed (since this server started).
    left: HashMap<Subject, Timestamp>,
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
        let now = self.hub.0.store.now();
        clients.left.insert(self.subject.clone(), now);
        give_back(clients.by_address.get_mut(&self.from));
        clients.by_subject.retain(|_, n| *n > 0);
        clients.by_address.retain(|_, n| *n > 0);
    }
}

#[derive(Debug)]
struct Inner {
    store: Store,
    limits: Limits,
    reports: Allowance,
    actions: Allowance,
    lookups: Proofs,
    clients: Mutex<Clients>,
    next_conn: AtomicU64,
    /// Cancelled at shutdown: every connection closes with 1001.
    shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    tasks: TaskTracker,
    /// The duty switches as last kept in the store (`None` until read, once this server
    /// writes); its lock orders the writes.
    duty_kept: tokio::sync::Mutex<Option<BTreeMap<String, DutySwitch>>>,
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
        StoreError::Refused(_) => (ErrorCode::Forbidden, None),
        StoreError::Open { .. }
        | StoreError::Corrupt { .. }
        | StoreError::Read(_)
        | StoreError::Write(_)
        | StoreError::LostLease
        | StoreError::Poisoned
        | StoreError::Closed => (ErrorCode::Unavailable, None),
        StoreError::Standby => (ErrorCode::Standby, None),
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
    /// Makes the hub and starts its fan-out task; `ended` tells of sessions that ended early,
    /// whose sockets it closes.
    pub fn start(
        store: Store,
        limits: Limits,
        shutdown: CancellationToken,
        ended: broadcast::Receiver<Vec<SessionKey>>,
    ) -> Hub {
        let commits = store.subscribe();
        let hub = Hub(Arc::new(Inner {
            store,
            reports: Allowance::new(limits.report_burst, limits.reports_per_minute),
            actions: Allowance::new(limits.action_burst, limits.actions_per_minute),
            lookups: Proofs::new(limits.lookup_burst, limits.lookups_per_minute),
            limits,
            clients: Mutex::new(Clients::default()),
            next_conn: AtomicU64::new(1),
            shutdown,
            tasks: TaskTracker::new(),
            duty_kept: tokio::sync::Mutex::default(),
        }));
        let last = hub.0.store.last_seq().unwrap_or(0);
        hub.0.tasks.spawn(hub.clone().fan_out(commits, ended, last));
        // The switches kept are in force once this server writes: at once, or at a takeover.
        let duty = hub.clone();
        hub.0.tasks.spawn(async move {
            tokio::select! {
                () = duty.0.store.until_primary() => {}
                () = duty.0.shutdown.cancelled() => return,
            }
            if let Err(e) = duty.keep_duty().await {
                tracing::error!(error = %e, "cannot read the duty switches kept");
            }
        });
        hub
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// How many new reports each device may still send.
    pub fn report_limiter(&self) -> &Allowance {
        &self.0.reports
    }

    /// How many lifecycle actions each account may still send.
    pub fn action_limiter(&self) -> &Allowance {
        &self.0.actions
    }

    /// Wrong proofs of a ticket, per ticket and per kiosk (or, on the status page, per address).
    pub fn proofs(&self) -> &Proofs {
        &self.0.lookups
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

    /// How many live sockets an account or kiosk has, and when it was last connected (now, if
    /// it is).
    pub fn presence(&self, subject: &Subject) -> (usize, Option<Timestamp>) {
        let clients = self.clients();
        let online = clients.by_subject.get(subject).copied().unwrap_or(0);
        let seen =
            if online > 0 { Some(self.0.store.now()) } else { clients.left.get(subject).copied() };
        (online, seen)
    }

    /// Who is on duty now, by the rota and the workers' switches.
    pub fn on_duty(&self) -> Vec<hongfan_shared::protocol::OnDuty> {
        let (office, at) = (self.0.store.office(), self.0.store.now());
        self.clients().roster.list(&office.office, at)
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
        let kick = Arc::new(Kick { token: self.0.shutdown.child_token(), reason: OnceLock::new() });
        let conn = Conn {
            principal: auth.principal.clone(),
            community: auth.identity.community.clone(),
            subject: auth.subject.clone(),
            session: auth.session.clone(),
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

    /// A worker switches on or off duty (overriding the rota until it next changes for them);
    /// everyone who watches the roster hears of it, and the switch is kept.
    async fn set_duty(&self, principal: &Principal, on: bool) -> Result<(), StoreError> {
        // The switches kept come first (just after a takeover they may not be read yet), so
        // that this one is not overwritten by an older one.
        self.keep_duty().await?;
        {
            let (office, at) = (self.0.store.office(), self.0.store.now());
            let mut clients = self.clients();
            let id = &principal.actor.id;
            clients.roster.switch(id, on, roster::scheduled(&office.office, id, at));
            self.publish_duty(&mut clients, &office.office, at);
        }
        self.keep_duty().await
    }

    /// Keeps the roster's switches where they changed since last kept. The first time this
    /// server writes (it starts, or takes over), it first reads the switches kept into the
    /// roster; a standby keeps nothing (its switches are the primary's, in the log).
    async fn keep_duty(&self) -> Result<(), StoreError> {
        let mut kept = self.0.duty_kept.lock().await;
        if self.0.store.is_standby() {
            return Ok(());
        }
        if kept.is_none() {
            let store = self.0.store.clone();
            let switches = tokio::task::spawn_blocking(move || store.duty_switches())
                .await
                .map_err(|e| StoreError::Read(e.to_string()))??;
            let (office, at) = (self.0.store.office(), self.0.store.now());
            let mut clients = self.clients();
            clients.roster.restore(switches.clone(), Instant::now());
            self.publish_duty(&mut clients, &office.office, at);
            *kept = Some(switches);
        }
        let Some(before) = kept.as_mut() else { return Ok(()) };
        let now = self.clients().roster.kept();
        let gone: Vec<String> = before.keys().filter(|w| !now.contains_key(*w)).cloned().collect();
        for worker in gone {
            self.0.store.keep_duty(&worker, None).await?;
            before.remove(&worker);
        }
        for (worker, switch) in now {
            if before.get(&worker) != Some(&switch) {
                self.0.store.keep_duty(&worker, Some(switch)).await?;
                before.insert(worker, switch);
            }
        }
        Ok(())
    }

    /// Gives the committer the switches in force, and tells the boards when who is on duty
    /// changed.
    fn publish_duty(&self, clients: &mut Clients, office: &Office, at: Timestamp) {
        self.0.store.duty().set(clients.roster.overrides());
        if let Some(on_duty) = clients.roster.news(office, at) {
            let (cap, metrics) = (self.0.limits.queue, self.0.store.metrics());
            // Each community's list encoded once, however many connections read it.
            let mut encoded: HashMap<BTreeSet<CommunityId>, Utf8Bytes> = HashMap::new();
            for conn in clients.conns.values() {
                if conn.subscribed && sees_roster(conn.role()) {
                    let text = encoded.entry(conn.communities()).or_insert_with_key(|ours| {
                        let on_duty = roster::within(&on_duty, ours, office);
                        encode(&ServerMessage::Roster { on_duty })
                    });
                    conn.push(Outgoing::Text(text.clone()), cap, metrics);
                }
            }
        }
    }

    /// Who is on duty now in the communities of connection `id`, as a message.
    fn roster_message(&self, id: u64) -> Utf8Bytes {
        let (office, at) = (self.0.store.office(), self.0.store.now());
        let clients = self.clients();
        let ours = clients.conns.get(&id).map(Conn::communities).unwrap_or_default();
        let on_duty =
            roster::within(&clients.roster.list(&office.office, at), &ours, &office.office);
        encode(&ServerMessage::Roster { on_duty })
    }

    /// Closes every connection of an account or kiosk, with a close code and reason.
    fn kick_subject(&self, subject: &Subject, code: u16, reason: &'static str) {
        for conn in self.clients().conns.values().filter(|c| &c.subject == subject) {
            conn.kick.kick(code, reason);
        }
    }

    /// Closes the sockets of sessions that ended.
    fn kick_sessions(&self, ended: &[SessionKey]) {
        for conn in self.clients().conns.values().filter(|c| ended.contains(&c.session)) {
            conn.kick.kick(close::REVOKED, "this session ended: log in or pair again");
        }
    }

    /// Acts on changes to the office: a disabled account's or revoked kiosk's sockets close; an
    /// account whose compounds, communities or name changed reconnects as what it is now, as
    /// does whoever runs a community that gained a compound; a community's people hear of its
    /// new version; the roster follows the rota.
    fn office_changed(&self, events: &[OfficeEvent]) {
        for event in events {
            match &event.change {
                OfficeChange::Person { before: Some(before), after } => {
                    let subject = Subject::User(after.login.clone());
                    if after.disabled {
                        self.kick_subject(&subject, close::REVOKED, "this account was disabled");
                    } else if (&before.name, &before.compounds, &before.buildings)
                        != (&after.name, &after.compounds, &after.buildings)
                        || (&before.community, &before.communities)
                            != (&after.community, &after.communities)
                    {
                        self.kick_subject(
                            &subject,
                            close::RENEW,
                            "this account changed: reconnect",
                        );
                    }
                }
                OfficeChange::Kiosk { before: Some(before), after } => {
                    let subject = Subject::Kiosk(after.id.clone());
                    if after.revoked {
                        self.kick_subject(&subject, close::REVOKED, "this kiosk was revoked");
                    } else if (&before.name, &before.compound) != (&after.name, &after.compound) {
                        self.kick_subject(&subject, close::RENEW, "this kiosk changed: reconnect");
                    }
                }
                OfficeChange::Community { before, after } => {
                    let version = self.0.store.office().version(&after.id).to_owned();
                    let text = encode(&ServerMessage::Community { version });
                    let (cap, metrics) = (self.0.limits.queue, self.0.store.metrics());
                    let clients = self.clients();
                    let ours = clients
                        .conns
                        .values()
                        .filter(|c| c.community == after.id || c.principal.runs(&after.id));
                    for conn in ours.filter(|c| c.subscribed) {
                        conn.push(Outgoing::Text(text.clone()), cap, metrics);
                    }
                    // Whoever runs it acts in the compounds it had when they connected.
                    let grew =
                        before.as_ref().is_some_and(|b| b.compounds.len() < after.compounds.len());
                    for conn in
                        clients.conns.values().filter(|c| grew && c.principal.runs(&after.id))
                    {
                        conn.kick.kick(close::RENEW, "the community changed: reconnect");
                    }
                }
                OfficeChange::Person { before: None, .. }
                | OfficeChange::Kiosk { before: None, .. }
                | OfficeChange::Rota { .. }
                | OfficeChange::Award(_)
                | OfficeChange::Patrol(_) => {}
            }
        }
        let (office, at) = (self.0.store.office(), self.0.store.now());
        self.publish_duty(&mut self.clients(), &office.office, at);
    }

    async fn fan_out(
        self,
        mut commits: broadcast::Receiver<Arc<Commit>>,
        mut ended: broadcast::Receiver<Vec<SessionKey>>,
        mut last: Seq,
    ) {
        // Often enough that a shift's start or end reaches the boards within seconds.
        let mut sweep = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                () = self.0.shutdown.cancelled() => break,
                received = ended.recv() => match received {
                    Ok(sessions) => self.kick_sessions(&sessions),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        // Which ones is lost: their sockets still fail at the next handshake.
                        tracing::warn!(missed, "missed ended sessions");
                    }
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                },
                received = commits.recv() => match received {
                    Ok(commit) => {
                        if !commit.ended.is_empty() {
                            self.kick_sessions(&commit.ended);
                        }
                        last = self.dispatch(&commit.changes, last);
                        if !commit.office.is_empty() {
                            self.office_changed(&commit.office);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "fan-out lagged behind the store; re-reading the log");
                        last = self.backfill(last).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = sweep.tick() => {
                    self.0.reports.forget_idle();
                    self.0.actions.forget_idle();
                    self.0.lookups.forget_idle();
                    self.sweep_duty();
                    // On a task of its own: a write waiting on the log never holds up the boards.
                    let duty = self.clone();
                    self.0.tasks.spawn(async move {
                        if let Err(e) = duty.keep_duty().await {
                            tracing::error!(error = %e, "cannot keep the duty switches");
                        }
                    });
                }
            }
        }
    }

    /// Lets lapsed duty switches go and tells the boards when a shift began or ended.
    pub fn sweep_duty(&self) {
        let (office, at) = (self.0.store.office(), self.0.store.now());
        let mut clients = self.clients();
        clients.roster.sweep(&office.office, at, Instant::now(), roster::DUTY_GRACE);
        self.publish_duty(&mut clients, &office.office, at);
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
        let office = self.0.store.office();
        let clients = self.clients();
        let overrides = clients.roster.overrides();
        let from = last;
        for Committed { event, before, after } in changes.iter().filter(|c| c.event.seq > from) {
            last = event.seq;
            let incident = after.as_ref();
            let compound = &incident.report.compound;
            // Every compound an incident names is a community's (none is ever removed).
            let Some(community) = office.community_of(compound) else { continue };
            // Who hears the chime: the rota when it came in, with the switches. An escalation
            // is logged in the report's own group, and so arrives right after it.
            let on_duty_here = || office.office.on_duty(compound, event.at, &overrides);
            let on_duty_anywhere = || -> BTreeSet<String> {
                community
                    .compounds
                    .iter()
                    .flat_map(|c| office.office.on_duty(&c.id, event.at, &overrides))
                    .collect()
            };
            let chime = Chime::of(&event.change, on_duty_here, on_duty_anywhere);
            // Each view encoded once, however many connections share it.
            let mut encoded: HashMap<(Sight, Option<Sight>, bool), Option<Utf8Bytes>> =
                HashMap::new();
            let mut alerts: HashMap<Sight, Utf8Bytes> = HashMap::new();
            for conn in clients.conns.values().filter(|c| c.subscribed) {
                let sight = view::sight(&conn.principal, incident, community);
                let mut out = Vec::with_capacity(2);
                if let Some(sight) = sight {
                    // What the viewer saw before: claiming a private case shows its holder more.
                    let saw =
                        before.as_ref().and_then(|b| view::sight(&conn.principal, b, community));
                    let role = conn.role();
                    let key = (sight, saw, role == Role::Supervisor);
                    let text = encoded.entry(key).or_insert_with(|| {
                        view::event_as_seen(event, sight, role).map(|event| {
                            // What changed, as this viewer sees it now against what they saw.
                            let was =
                                before.as_ref().zip(saw).map(|(b, s)| view::incident_as_seen(b, s));
                            let now = view::incident_as_seen(incident, sight);
                            let patch = patch(was.as_ref(), &now);
                            encode(&ServerMessage::Event { event, patch })
                        })
                    });
                    if let Some(text) = text {
                        out.push(Outgoing::Event { seq: event.seq, text: text.clone() });
                    }
                }
                if let Some(chime) =
                    chime.as_ref().filter(|c| c.heard_by(&conn.principal, compound))
                {
                    // Another compound's worker hears of it as much as a private case shows.
                    let sight = sight.unwrap_or(Sight::Restricted);
                    let alert = alerts.entry(sight).or_insert_with(|| {
                        let incident = view::incident_as_seen(incident, sight);
                        encode(&ServerMessage::Alert { incident, escalated: chime.escalated })
                    });
                    out.push(Outgoing::Text(alert.clone()));
                }
                // The alert right behind its event, in one go: no other message between them.
                conn.push_all(out, cap, metrics);
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: u64) -> Outgoing {
        Outgoing::Event { seq: n, text: Utf8Bytes::from(n.to_string()) }
    }

    #[test]
    fn a_connection_closed_by_the_shutdown_is_told_so_whatever_comes_after() {
        let shutdown = CancellationToken::new();
        let kick = Kick { token: shutdown.child_token(), reason: OnceLock::new() };
        shutdown.cancel();
        kick.kick(close::SLOW_CONSUMER, "too slow");
        assert_eq!(kick.reason(), (1001, "server shutting down"));
        let kick = Kick { token: shutdown.child_token(), reason: OnceLock::new() };
        assert!(kick.token.is_cancelled(), "a connection that comes during the shutdown ends");
        let open = CancellationToken::new();
        let kick = Kick { token: open.child_token(), reason: OnceLock::new() };
        kick.kick(close::SLOW_CONSUMER, "too slow");
        assert_eq!(kick.reason(), (close::SLOW_CONSUMER, "too slow"));
    }

    #[tokio::test]
    async fn a_queue_never_holds_more_than_its_cap_and_keeps_a_batch_together() {
        let queue = Queue::default();
        assert!(queue.push([text(1), text(2)].into_iter(), 3));
        // A batch that does not fit is refused whole: never half an event-and-alert.
        assert!(!queue.push([text(3), text(4)].into_iter(), 3));
        assert!(queue.push([text(3)].into_iter(), 3));
        assert!(!queue.push([text(4)].into_iter(), 3));
        let mut taken = Vec::new();
        queue.take(&mut taken).await;
        let seqs: Vec<u64> = taken
            .iter()
            .map(|o| match o {
                Outgoing::Event { seq, .. } => *seq,
                Outgoing::Text(_) => 0,
            })
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert!(queue.push([text(4), text(5)].into_iter(), 3), "taking makes room again");
    }
}
