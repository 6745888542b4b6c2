//! Who is connected: each connection's queue, how it is closed from outside, and the caps on
//! live sockets per account and per address.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use hongfan_shared::protocol::close;
use hongfan_shared::{CommunityId, Principal, Role, Scope, Seq, Timestamp};
use tokio_util::sync::CancellationToken;

use super::Hub;
use super::roster::Roster;
use crate::auth::{Authenticated, SessionKey, Subject};

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
pub(super) struct Kick {
    pub(super) token: CancellationToken,
    pub(super) reason: OnceLock<(u16, &'static str)>,
}

impl Kick {
    pub(super) fn kick(&self, code: u16, reason: &'static str) {
        // Once closing (the server shutting down), the reason it closes for stays.
        if !self.token.is_cancelled() {
            let _ = self.reason.set((code, reason));
            self.token.cancel();
        }
    }

    /// Why the connection ends: its kick's reason, or the server shutting down.
    pub(super) fn reason(&self) -> (u16, &'static str) {
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
    pub(super) fn push(&self, out: impl ExactSizeIterator<Item = Outgoing>, cap: usize) -> bool {
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
pub(super) struct Conn {
    pub(super) principal: Principal,
    /// The community whose office it belongs to.
    pub(super) community: CommunityId,
    pub(super) subject: Subject,
    pub(super) session: SessionKey,
    pub(super) queue: Arc<Queue>,
    pub(super) kick: Arc<Kick>,
    pub(super) subscribed: bool,
}

impl Conn {
    pub(super) fn role(&self) -> Role {
        self.principal.actor.role
    }

    /// The communities whose rosters it hears: its own, and any it runs.
    pub(super) fn communities(&self) -> BTreeSet<CommunityId> {
        let mut ours = BTreeSet::from([self.community.clone()]);
        if let Scope::Communities { communities, .. } = &self.principal.scope {
            ours.extend(communities.iter().cloned());
        }
        ours
    }

    pub(super) fn push(&self, out: Outgoing, cap: usize, metrics: &crate::metrics::Metrics) {
        self.push_all(vec![out], cap, metrics);
    }

    /// Queues messages together; a connection too slow to take them is closed.
    pub(super) fn push_all(
        &self,
        out: Vec<Outgoing>,
        cap: usize,
        metrics: &crate::metrics::Metrics,
    ) {
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
pub(super) struct Clients {
    pub(super) conns: HashMap<u64, Conn>,
    pub(super) roster: Roster,
    /// Live sockets per account and per client address, for their caps.
    pub(super) by_subject: HashMap<Subject, usize>,
    /// When each account's last socket closed (since this server started).
    pub(super) left: HashMap<Subject, Timestamp>,
    pub(super) by_address: HashMap<IpAddr, usize>,
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

impl Hub {
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

    pub fn connections(&self) -> usize {
        self.clients().conns.len()
    }

    pub(super) fn clients(&self) -> MutexGuard<'_, Clients> {
        // std's Mutex: it is never held across an await, and a panic while holding it leaves
        // plain maps that are still usable.
        self.0.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn register(&self, auth: &Authenticated) -> (u64, Arc<Queue>, Arc<Kick>) {
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

    pub(super) fn unregister(&self, id: u64) {
        let mut clients = self.clients();
        if let Some(conn) = clients.conns.remove(&id) {
            clients.roster.disconnected(&conn.principal.actor.id, Instant::now());
        }
    }

    /// From now on this connection gets live events; it must then send what it missed.
    pub(super) fn mark_subscribed(&self, id: u64) {
        if let Some(conn) = self.clients().conns.get_mut(&id) {
            conn.subscribed = true;
        }
    }

    /// Closes every connection of an account or kiosk, with a close code and reason.
    pub(super) fn kick_subject(&self, subject: &Subject, code: u16, reason: &'static str) {
        for conn in self.clients().conns.values().filter(|c| &c.subject == subject) {
            conn.kick.kick(code, reason);
        }
    }

    /// Closes the sockets of sessions that ended.
    pub(super) fn kick_sessions(&self, ended: &[SessionKey]) {
        for conn in self.clients().conns.values().filter(|c| ended.contains(&c.session)) {
            conn.kick.kick(close::REVOKED, "this session ended: log in or pair again");
        }
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
