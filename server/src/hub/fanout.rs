//! The fan-out: one task reads the store's commits in order and queues each event for every
//! connection that may see it (`view::sight`), with the alert for whoever hears it
//! (`view::Chime`); the office's changes close or renew the connections they concern.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use hongfan_shared::office::{OfficeChange, OfficeEvent};
use hongfan_shared::protocol::{ServerMessage, close, patch};
use hongfan_shared::view::{self, Chime, Sight};
use hongfan_shared::{Incident, IncidentId, Role, Seq};
use tokio::sync::broadcast;

use super::registry::Outgoing;
use super::{Hub, encode};
use crate::auth::{SessionKey, Subject};
use crate::store::{Commit, Committed};

impl Hub {
    /// Acts on changes to the office: a disabled account's or revoked kiosk's sockets close; an
    /// account whose compounds, communities or name changed reconnects as what it is now, as
    /// does whoever runs a community that gained a compound; a community's people hear of its
    /// new version; the roster follows the rota.
    pub(super) fn office_changed(&self, events: &[OfficeEvent]) {
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
                | OfficeChange::Patrol(_)
                | OfficeChange::ApiKey { .. } => {}
            }
        }
        let (office, at) = (self.0.store.office(), self.0.store.now());
        self.publish_duty(&mut self.clients(), &office.office, at);
    }

    pub(super) async fn fan_out(
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

    /// Re-reads events after `last` from the log, with the incidents' current state.
    pub(super) async fn backfill(&self, mut last: Seq) -> Seq {
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
    pub(super) fn dispatch(&self, changes: &[Committed], mut last: Seq) -> Seq {
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
