//! One WebSocket connection: its hello, its subscription (snapshot or resume), its requests,
//! and the queue of messages the hub put aside for it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::FutureExt;
use futures::SinkExt;
use futures::stream::{SplitSink, StreamExt};
use hongfan_shared::protocol::{
    ClientMessage, ErrorBody, ErrorCode, PROTOCOL_VERSION, Position, Request, ServerMessage,
    SnapshotReason, close, patch,
};
use hongfan_shared::view;
use hongfan_shared::{Action, Incident, IncidentId, Role, Seq, Ticket, lifecycle};
use std::sync::Arc;

use tokio_util::sync::WaitForCancellationFutureOwned;
use tracing::Instrument;

use super::registry::Kick;
use super::{Hub, Outgoing, encode, error, wire_error};
use crate::auth::Authenticated;

/// Events read from the log per step while a client catches up.
const RESUME_CHUNK: usize = 500;

struct Connection {
    /// The hub's name for it; it leaves the hub when this is dropped.
    id: u64,
    hub: Hub,
    auth: Authenticated,
    sink: SplitSink<WebSocket, Message>,
    kick: Arc<Kick>,
    /// The kick (or the server's shutdown), waited on by every await that may take long: made
    /// once, not for each message.
    ended: std::pin::Pin<Box<WaitForCancellationFutureOwned>>,
    /// The last event sent; queued events at or below it were already sent while catching up.
    floor: Seq,
}

/// Why the loop ended: the peer went away (nothing to send), or we close with a reason.
enum End {
    PeerGone,
    Close(u16, Cow<'static, str>),
}

/// Serves one authenticated socket until it closes. `held` is its place under the connection caps,
/// given back when it ends.
///
/// Not an `async fn`: the future lives as long as the connection, and an `async fn` would keep
/// room for its arguments (the socket before it is split, among them) all that time.
pub fn serve<H: Send + 'static>(
    socket: WebSocket,
    hub: Hub,
    auth: Authenticated,
    held: H,
) -> impl Future<Output = ()> + Send + 'static {
    let (id, queue, kick) = hub.register(&auth);
    let span = tracing::info_span!("conn", conn = id, actor = %auth.identity.id, role = ?auth.identity.role);
    let (sink, stream) = socket.split();
    let ended = Box::pin(kick.token.clone().cancelled_owned());
    let connection = Connection { id, hub, auth, sink, kick, ended, floor: 0 };
    // A combinator rather than an `async` block around `run`: that would hold the future twice.
    connection
        .run(stream, queue)
        .map(move |end| {
            match &end {
                End::PeerGone => tracing::info!("peer went away"),
                End::Close(code, reason) => tracing::info!(code, %reason, "closed by the server"),
            }
            drop(held);
        })
        .instrument(span)
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

impl Connection {
    async fn run(
        mut self,
        mut stream: futures::stream::SplitStream<WebSocket>,
        queue: Arc<super::Queue>,
    ) -> End {
        tracing::info!("connected");
        let id = self.id;
        // Only what is needed across the awaits below: they are kept for the connection's life.
        let (ping_every, idle_timeout) =
            (self.hub.limits().ping_every, self.hub.limits().idle_timeout);
        let hello = encode(&ServerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            server: format!("hongfan {}", env!("CARGO_PKG_VERSION")),
            identity: self.auth.identity.clone(),
            community: self.hub.store().office().version(&self.auth.identity.community).to_owned(),
            epoch: self.hub.store().epoch().to_owned(),
            now: self.hub.store().now(),
        });
        if let Err(end) = self.send(hello).await {
            return end;
        }
        let mut waiting = Vec::new();
        let mut heartbeat = tokio::time::interval(ping_every);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let end = loop {
            tokio::select! {
                biased;
                () = &mut self.ended => break kick_end(&self.kick),
                frame = stream.next() => {
                    last_heard = Instant::now();
                    match frame {
                        None | Some(Ok(Message::Close(_))) => break End::PeerGone,
                        Some(Ok(Message::Text(text))) => {
                            // Boxed: the handling state is large and needed only while a request runs,
                            // so an idle connection does not carry it.
                            if let Err(end) = Box::pin(self.handle(id, &text)).await {
                                break end;
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            break End::Close(1003, "binary frames are not supported: send JSON text".into());
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Err(e)) => break classify(e),
                    }
                }
                () = queue.take(&mut waiting) => {
                    // Everything waiting goes out in one write.
                    if let Err(end) = self.send_all(&mut waiting).await {
                        break end;
                    }
                    if waiting.capacity() > 64 {
                        waiting = Vec::new();
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > idle_timeout {
                        break End::Close(close::IDLE, "no message or pong for too long".into());
                    }
                    if let Err(end) = self.send_frame(Message::Ping(Default::default())).await {
                        break end;
                    }
                }
            }
        };
        if let End::Close(code, reason) = &end {
            let frame = CloseFrame { code: *code, reason: Utf8Bytes::from(reason.to_string()) };
            // A peer that does not read gets no more than a second to take the close frame.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                self.sink.send(Message::Close(Some(frame))),
            )
            .await;
        }
        end
    }

    /// Sends one frame, giving up when the connection is kicked or the server stops: a peer
    /// that does not read must not hold its task (and its queue) forever.
    async fn send_frame(&mut self, frame: Message) -> Result<(), End> {
        tokio::select! {
            biased;
            () = &mut self.ended => Err(kick_end(&self.kick)),
            sent = self.sink.send(frame) => sent.map_err(|_| End::PeerGone),
        }
    }

    async fn send(&mut self, text: Utf8Bytes) -> Result<(), End> {
        self.send_frame(Message::Text(text)).await
    }

    /// Writes the queued messages (leaving out events already sent while catching up) and
    /// flushes once.
    async fn send_all(&mut self, waiting: &mut Vec<Outgoing>) -> Result<(), End> {
        let floor = &mut self.floor;
        let frames = waiting.drain(..).filter_map(|out| match out {
            Outgoing::Event { seq, .. } if seq <= *floor => None,
            Outgoing::Event { seq, text } => {
                *floor = seq;
                Some(Message::Text(text))
            }
            Outgoing::Text(text) => Some(Message::Text(text)),
        });
        let frames: Vec<Message> = frames.collect();
        let sink = &mut self.sink;
        let write = async {
            for frame in frames {
                sink.feed(frame).await?;
            }
            sink.flush().await
        };
        tokio::select! {
            biased;
            () = &mut self.ended => Err(kick_end(&self.kick)),
            sent = write => sent.map_err(|_| End::PeerGone),
        }
    }

    async fn send_message(&mut self, message: &ServerMessage) -> Result<(), End> {
        self.send(encode(message)).await
    }

    async fn refuse(&mut self, body: ErrorBody) -> Result<(), End> {
        self.send_message(&ServerMessage::Error(body)).await
    }

    fn role(&self) -> Role {
        self.auth.principal.actor.role
    }

    /// Handles one text frame. An `Err` ends the connection.
    async fn handle(&mut self, id: u64, text: &str) -> Result<(), End> {
        let message = match ClientMessage::decode(text) {
            Ok(message) => message,
            Err(e) => {
                tracing::debug!(code = ?e.code(), "undecodable message");
                let detail: String = e.to_string().chars().take(300).collect();
                let (id, request_id) = e.correlation();
                return self.refuse(ErrorBody { id, request_id, ..error(e.code(), detail) }).await;
            }
        };
        match Request::from(message) {
            Request::Subscribe { since } => self.subscribe(id, since).await,
            Request::Report { request_id, report } => self.report(request_id, report).await,
            Request::Duty { id: request, on } => {
                if self.role() != Role::Worker {
                    let refusal = error(ErrorCode::Forbidden, "only a grid worker goes on duty");
                    return self.refuse(ErrorBody { id: Some(request), ..refusal }).await;
                }
                // The switches live in the primary's hub (the committer reads them).
                if self.hub.store().is_standby() {
                    let refusal = super::wire_error(&crate::store::StoreError::Standby);
                    return self.refuse(ErrorBody { id: Some(request), ..refusal }).await;
                }
                tracing::info!(on, "duty");
                if let Err(e) = self.hub.set_duty(&self.auth.principal, on).await {
                    let refusal = super::wire_error(&e);
                    return self.refuse(ErrorBody { id: Some(request), ..refusal }).await;
                }
                self.send_message(&ServerMessage::DutySet { id: request, on }).await
            }
            Request::Lookup { id: request, ticket, community, incident, phone_tail, key } => {
                let which = match incident {
                    Some(incident) => Which::Incident(incident),
                    None => Which::Ticket(community, ticket),
                };
                self.lookup(request, which, phone_tail.as_deref(), key.as_deref()).await
            }
            Request::Act { id: request, incident, action } => {
                self.act(request, incident, action).await
            }
            Request::Assign { id: request, incident, worker } => {
                // The assignee as the office knows them now; the rule decides the rest.
                let office = self.hub.store().office();
                let Some(to) = office.office.people.get(&worker).filter(|p| !p.disabled) else {
                    let refusal = error(ErrorCode::NotAWorkerHere, "no such active grid worker");
                    return self.refuse(ErrorBody { id: Some(request), ..refusal }).await;
                };
                self.act(request, incident, Action::Assign { to: to.principal(&office.office) })
                    .await
            }
            Request::Mediate { id: request, incident, head } => {
                let office = self.hub.store().office();
                let Some(to) = office.office.people.get(&head).filter(|p| !p.disabled) else {
                    let refusal =
                        error(ErrorCode::NotABuildingHeadHere, "no such active building head");
                    return self.refuse(ErrorBody { id: Some(request), ..refusal }).await;
                };
                self.act(request, incident, Action::Mediate { to: to.principal(&office.office) })
                    .await
            }
        }
    }

    /// A lifecycle action, answered once durable.
    async fn act(
        &mut self,
        request: u64,
        incident: IncidentId,
        mut action: Action,
    ) -> Result<(), End> {
        if let Action::Resolve { proof: Some(proof), .. } = &mut action
            && !self.describe_attachments(std::slice::from_mut(proof))
        {
            let why = "the photo is not stored here, or is not a photo";
            let refusal = error(ErrorCode::BadAttachments, why);
            return self.refuse(ErrorBody { id: Some(request), ..refusal }).await;
        }
        if !self.hub.action_limiter().admit(&self.auth.principal.actor.id) {
            let refusal =
                error(ErrorCode::RateLimited, "too many actions from this account; wait a minute");
            return self.refuse(ErrorBody { id: Some(request), ..refusal }).await;
        }
        let reveal = action == Action::Reveal;
        // A kiosk's rating carries the slip's code: a wrong one is a guess, counted as at lookup.
        let hub = self.hub.clone();
        let keys = crate::limits::ProofKeys {
            who: self.auth.principal.actor.id.clone(),
            ticket: crate::limits::ticket_key(Some(incident), &Default::default(), ""),
        };
        let guess = match &action {
            Action::Rate { .. } if self.role() == Role::Kiosk => {
                match hub.proofs().at_kiosk(&keys) {
                    Some(guess) => Some(guess),
                    None => {
                        let why = "too many wrong tries at a ticket; wait a minute";
                        let refusal = error(ErrorCode::RateLimited, why);
                        return self.refuse(ErrorBody { id: Some(request), ..refusal }).await;
                    }
                }
            }
            _ => None,
        };
        let result = self.hub.store().act(&self.auth.principal, incident, action).await;
        if let (
            Some(guess),
            Err(crate::StoreError::Lifecycle(lifecycle::LifecycleError::WrongKey)),
        ) = (guess, &result)
        {
            guess.wrong();
        }
        match result {
            // The number goes to this connection alone; everyone else sees only that it was
            // looked at (supervisors), or nothing.
            Ok((_, state)) if reveal => {
                let phone = state.report.phone.unwrap_or_default();
                tracing::info!(incident = incident.0, "phone number revealed");
                let answer = ServerMessage::Revealed { id: request, incident, phone };
                self.send_message(&answer).await
            }
            Ok((event, _)) => self.send_message(&ServerMessage::Done { id: request, event }).await,
            Err(e) => self.refuse(ErrorBody { id: Some(request), ..wire_error(&e) }).await,
        }
    }

    async fn report(
        &mut self,
        request_id: String,
        mut report: hongfan_shared::Report,
    ) -> Result<(), End> {
        let refuse = |body: ErrorBody| ErrorBody { request_id: Some(request_id.clone()), ..body };
        if !self.describe_attachments(&mut report.attachments) {
            let why = "an attachment is not stored here, or is not what it says";
            return self.refuse(refuse(error(ErrorCode::BadAttachments, why))).await;
        }
        self.hub.store().metrics().reports_received.inc();
        let (hub, device) = (self.hub.clone(), self.auth.principal.actor.id.clone());
        let admit = Box::new(move || hub.report_limiter().admit(&device));
        match self.hub.store().report_if(&self.auth.principal, &request_id, report, admit).await {
            Ok(reported) => {
                if reported.event.is_some() {
                    tracing::debug!(incident = reported.incident.id.0, "report stored");
                }
                // The slip's code goes to the device that reported, and nowhere else.
                let key = reported.incident.key.clone();
                let incident = self.view(&reported.incident).unwrap_or(reported.incident);
                self.send_message(&ServerMessage::Reported { request_id, incident, key }).await
            }
            Err(e) => self.refuse(refuse(wire_error(&e))).await,
        }
    }

    /// Checks that every attachment a report names is stored, and describes each by the file
    /// itself (kind, type, size), whatever the client said.
    fn describe_attachments(&self, attachments: &mut [hongfan_shared::Attachment]) -> bool {
        let store = self.hub.store().attachments();
        attachments.iter_mut().all(|a| match store.describe(&a.id) {
            Some((kind, mime, bytes)) if kind == a.kind => {
                (a.mime, a.bytes) = (mime.to_owned(), bytes);
                true
            }
            _ => false,
        })
    }

    /// A kiosk must prove the ticket is the resident's (the slip's code or the phone's last four
    /// digits), and its wrong guesses are counted; staff look up what they may see.
    async fn lookup(
        &mut self,
        request: u64,
        which: Which,
        phone_tail: Option<&str>,
        key: Option<&str>,
    ) -> Result<(), End> {
        let refusal = |code, message: &str| ErrorBody { id: Some(request), ..error(code, message) };
        let kiosk = self.role() == Role::Kiosk;
        let (id, given) = match which {
            // A kiosk's number is its own community's, whatever it says.
            Which::Ticket(community, ticket) => {
                let community = match community {
                    Some(community) if !kiosk => community,
                    _ => self.auth.identity.community.clone(),
                };
                let id = Ticket::parse(&ticket)
                    .and_then(|n| self.hub.store().find_ticket(&community, n));
                (id, ticket)
            }
            Which::Incident(_) if kiosk => {
                let why = "a kiosk looks up by the ticket on the slip";
                return self.refuse(refusal(ErrorCode::Forbidden, why)).await;
            }
            Which::Incident(id) => (Some(id), String::new()),
        };
        if kiosk && phone_tail.is_none() && key.is_none() {
            let why = "a ticket number alone opens nothing: give the phone's last four digits or the slip's code";
            return self.refuse(refusal(ErrorCode::WrongKey, why)).await;
        }
        // At a kiosk, a spent allowance refuses every try, right or wrong: the phone's last four
        // digits can be guessed, and the kiosk is one device in the station, not a resident's own.
        let hub = self.hub.clone();
        let keys = crate::limits::ProofKeys {
            who: self.auth.principal.actor.id.clone(),
            ticket: crate::limits::ticket_key(id, &self.auth.identity.community, &given),
        };
        let guess = if kiosk { hub.proofs().at_kiosk(&keys) } else { None };
        if kiosk && guess.is_none() {
            let why = "too many wrong tries at a ticket; wait a minute";
            return self.refuse(refusal(ErrorCode::RateLimited, why)).await;
        }
        let found = match id {
            Some(id) => match self.hub.store().incident(id).await {
                Ok(found) => found,
                Err(e) => {
                    return self.refuse(ErrorBody { id: Some(request), ..wire_error(&e) }).await;
                }
            },
            None => None,
        };
        // Another compound's ticket, or a wrong proof, answers as a ticket that does not exist:
        // its existence is not this screen's business.
        let proven = |i: &Incident| {
            !kiosk
                || lifecycle::holds_key(i, key)
                || phone_tail.is_some_and(|tail| lifecycle::phone_ends_with(i, tail))
        };
        match found.filter(proven).and_then(|i| self.view(&i)) {
            Some(incident) => {
                self.send_message(&ServerMessage::Found { id: request, incident }).await
            }
            None if kiosk => {
                if let Some(guess) = guess {
                    guess.wrong();
                }
                let why = "no ticket with that number and proof";
                self.refuse(refusal(ErrorCode::WrongKey, why)).await
            }
            None => self.refuse(refusal(ErrorCode::NotFound, "no such ticket")).await,
        }
    }

    /// The incident as this connection may see it, or `None`.
    fn view(&self, incident: &Incident) -> Option<Incident> {
        let office = self.hub.store().office();
        let community = office.community_of(&incident.report.compound)?;
        view::incident(&self.auth.principal, incident, community)
    }

    /// Starts the live feed: the missed events when the client can resume, a snapshot when not.
    /// The connection is marked subscribed first, so nothing committed meanwhile falls between
    /// what is read here and what the hub queues; `floor` drops what arrives twice.
    async fn subscribe(&mut self, id: u64, since: Option<Position>) -> Result<(), End> {
        self.hub.mark_subscribed(id);
        let store = self.hub.store().clone();
        let unavailable = |e| End::Close(1011, format!("store unavailable: {e}").into());
        let reason = match &since {
            None => Some(SnapshotReason::First),
            Some(p) if p.epoch != store.epoch() => Some(SnapshotReason::EpochChanged),
            Some(p) => {
                let next = store.events_after(p.seq, 1).await.map_err(unavailable)?;
                let window = window_ms(self.hub.limits().resume_window);
                match next.first() {
                    Some(first) if first.at.0 < store.now().0 - window => {
                        Some(SnapshotReason::TooOld)
                    }
                    _ if p.seq > store.last_seq().map_err(unavailable)? => {
                        Some(SnapshotReason::Ahead)
                    }
                    _ => None,
                }
            }
        };
        if let Some(reason) = reason {
            let snapshot = store.snapshot().map_err(unavailable)?;
            let incidents = snapshot.incidents.iter().filter_map(|i| self.view(i)).collect();
            self.floor = snapshot.seq;
            let epoch = store.epoch().to_owned();
            tracing::info!(?reason, seq = snapshot.seq, "snapshot");
            store.metrics().snapshots.inc();
            self.send_message(&ServerMessage::Snapshot {
                epoch,
                seq: snapshot.seq,
                reason,
                incidents,
            })
            .await?;
        } else {
            let mut last = since.map_or(0, |p| p.seq);
            let mut missed = 0;
            loop {
                let events = store.events_after(last, RESUME_CHUNK).await.map_err(unavailable)?;
                let Some(end) = events.last().map(|e| e.seq) else { break };
                // Each incident's first event here carries the incident as it is now; its later
                // events here change nothing more.
                let mut states: HashMap<IncidentId, Option<Incident>> = HashMap::new();
                for event in events {
                    let first = !states.contains_key(&event.incident);
                    if first {
                        let now = self.current(event.incident).await?;
                        states.insert(event.incident, now);
                    }
                    let Some(Some(incident)) = states.get(&event.incident) else { continue };
                    let office = self.hub.store().office();
                    let Some(community) = office.community_of(&incident.report.compound) else {
                        continue;
                    };
                    let principal = &self.auth.principal;
                    let Some(event) = view::event(principal, &event, incident, community) else {
                        continue;
                    };
                    let Some(seen) = self.view(incident) else { continue };
                    let patch = if first { patch(None, &seen) } else { Default::default() };
                    self.send_message(&ServerMessage::Event { event, patch }).await?;
                    missed += 1;
                }
                last = end;
            }
            self.floor = last;
            tracing::info!(missed, seq = last, "resumed");
            store.metrics().resumes.inc();
            let epoch = store.epoch().to_owned();
            self.send_message(&ServerMessage::Resumed { epoch, seq: last, missed }).await?;
        }
        if matches!(self.role(), Role::Worker | Role::Supervisor) {
            let roster = self.hub.roster_message(self.id);
            self.send(roster).await?;
        }
        Ok(())
    }

    async fn current(&self, id: IncidentId) -> Result<Option<Incident>, End> {
        self.hub
            .store()
            .incident(id)
            .await
            .map_err(|e| End::Close(1011, format!("store unavailable: {e}").into()))
    }
}

fn kick_end(kick: &Kick) -> End {
    let (code, reason) = kick.reason();
    End::Close(code, reason.into())
}

fn window_ms(window: std::time::Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX)
}

/// Tells a peer that went away from a frame the server refuses.
fn classify(e: axum::Error) -> End {
    use tungstenite::error::{CapacityError, Error as WsError};
    let inner = e.into_inner();
    match inner.downcast_ref::<WsError>() {
        Some(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
            End::Close(1009, "message too big".into())
        }
        Some(WsError::Capacity(_)) => End::Close(1009, "frame too big".into()),
        Some(WsError::Protocol(p)) => End::Close(1002, format!("protocol error: {p}").into()),
        Some(WsError::Utf8(_)) => End::Close(1007, "text frame is not UTF-8".into()),
        _ => {
            tracing::debug!(error = %inner, "read error");
            End::PeerGone
        }
    }
}

/// What a lookup names: a community's ticket (the connection's own community when not said),
/// or, for staff, an incident by its id.
enum Which {
    Ticket(Option<hongfan_shared::CommunityId>, String),
    Incident(IncidentId),
}
