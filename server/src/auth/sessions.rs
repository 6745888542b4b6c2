//! Sessions: who a token belongs to, how long it lives, and the logins and pairings that
//! make one. Kept in memory, so that authenticating a request reads no disk; the store's
//! sessions tree is the durable copy, written first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hongfan_shared::office::OfficeChange;
use hongfan_shared::protocol::Identity;
use hongfan_shared::{Actor, CommunityId, Principal, Role, Scope, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::passwords::{DUMMY_HASH, hash_token, random_token};
use super::{Accounts, AuthError, decode, encode};
use crate::store::{Aux, Store};

/// A session's last use is written down at most this often (it is kept in memory between).
const TOUCH_EVERY: Duration = Duration::from_secs(10 * 60);

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    User(String),
    Kiosk(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    subject: Subject,
    created: Timestamp,
    /// Last used, as last written down (at most `TOUCH_EVERY` behind the truth in memory).
    #[serde(default)]
    seen: Option<Timestamp>,
}

/// How long sessions live: a kiosk on its stand for months, a person's for a working period.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub person_idle: Duration,
    pub person_max: Duration,
    pub kiosk_idle: Duration,
    pub kiosk_max: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        SessionPolicy {
            person_idle: Duration::from_secs(3 * DAY),
            person_max: Duration::from_secs(30 * DAY),
            kiosk_idle: Duration::from_secs(30 * DAY),
            kiosk_max: Duration::from_secs(365 * DAY),
        }
    }
}

impl SessionPolicy {
    fn limits(&self, subject: &Subject) -> (Duration, Duration) {
        match subject {
            Subject::User(_) => (self.person_idle, self.person_max),
            Subject::Kiosk(_) => (self.kiosk_idle, self.kiosk_max),
        }
    }

    /// How long a new session's cookie should be kept by the browser.
    pub fn cookie_lifetime(&self, kiosk: bool) -> Duration {
        if kiosk { self.kiosk_max } else { self.person_max }
    }
}

/// An authenticated connection's identity: what it may do, and how it introduces itself.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub identity: Identity,
    pub subject: Subject,
    /// Which session: its sockets close when it ends.
    pub session: SessionKey,
}

/// A session, as the SHA-256 of its token (the token itself is never kept).
pub type SessionKey = Arc<[u8]>;

/// The sessions, kept in memory so that authenticating a request reads no disk; the store's
/// sessions tree is the durable copy, written first.
#[derive(Debug, Default)]
pub(crate) struct Records {
    /// By the SHA-256 of the token.
    sessions: HashMap<Vec<u8>, Session>,
    /// Whether `sessions` holds the store's. Not on a standby: the primary makes and ends
    /// sessions in the log it follows, so it reads each from its folder; it loads them all once
    /// it takes over.
    loaded: bool,
}

impl Records {
    pub(crate) fn load(&mut self, store: &Store) -> Result<(), AuthError> {
        for (key, value) in store.scan_entries(Aux::Sessions)? {
            self.sessions.insert(key, decode(&value)?);
        }
        self.loaded = true;
        Ok(())
    }
}

impl Accounts {
    /// Sessions that end before their time (a password changed, an account disabled, a kiosk
    /// revoked): their sockets are to close.
    pub fn ended(&self) -> tokio::sync::broadcast::Receiver<Vec<SessionKey>> {
        self.ended.subscribe()
    }

    /// Ends every session of `subject` but `keep` (its password changed, it was disabled or
    /// revoked): a session never outlives the reason it was given.
    pub(crate) async fn end_sessions(
        &self,
        subject: &Subject,
        keep: Option<&[u8]>,
    ) -> Result<(), AuthError> {
        let keys: Vec<Vec<u8>> = self
            .records()
            .sessions
            .iter()
            .filter(|(k, s)| &s.subject == subject && Some(k.as_slice()) != keep)
            .map(|(k, _)| k.clone())
            .collect();
        let mut ended = Vec::new();
        for key in keys {
            self.store.put(Aux::Sessions, &key, None).await?;
            self.records_mut().sessions.remove(&key);
            ended.push(SessionKey::from(key));
        }
        if !ended.is_empty() {
            // Nobody listening (the command line) is fine.
            let _ = self.ended.send(ended);
        }
        Ok(())
    }

    fn records(&self) -> std::sync::RwLockReadGuard<'_, Records> {
        // Plain maps: a panic elsewhere leaves them usable.
        let records = self.records.read().unwrap_or_else(|p| p.into_inner());
        if records.loaded || self.store.is_standby() {
            return records;
        }
        drop(records);
        drop(self.records_mut());
        self.records.read().unwrap_or_else(|p| p.into_inner())
    }

    fn records_mut(&self) -> std::sync::RwLockWriteGuard<'_, Records> {
        let mut records = self.records.write().unwrap_or_else(|p| p.into_inner());
        // Once, when a standby has taken over.
        if !records.loaded
            && !self.store.is_standby()
            && let Err(e) = records.load(&self.store)
        {
            tracing::error!(error = %e, "cannot read the sessions");
        }
        records
    }

    /// When a session of `subject` was last used, as written down (at most `TOUCH_EVERY` late).
    pub fn last_used(&self, subject: &Subject) -> Option<Timestamp> {
        let records = self.records();
        let sessions = records.sessions.values().filter(|s| &s.subject == subject);
        sessions.map(|s| s.seen.unwrap_or(s.created)).max()
    }

    pub(crate) async fn new_session(&self, subject: Subject) -> Result<String, AuthError> {
        let token = random_token();
        let now = self.clock.now();
        let session = Session { subject, created: now, seen: Some(now) };
        let key = hash_token(&token);
        self.store.put(Aux::Sessions, &key, Some(encode(&session)?)).await?;
        self.records_mut().sessions.insert(key, session);
        Ok(token)
    }

    /// Checks a login and password; gives a session token. `from` is the client's address.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<String, AuthError> {
        let attempt = self.throttle.attempt(Some(login), from)?;
        let user = self.store.office().office.people.get(login).cloned();
        // Verify against a fixed hash when the account does not exist, so that the answer takes
        // as long either way.
        let hash = user.as_ref().map_or_else(|| DUMMY_HASH.clone(), |u| u.secret.clone());
        let matches = self.verify(password, &hash).await;
        match user {
            Some(u) if matches && !u.disabled => self.new_session(Subject::User(u.login)).await,
            _ => {
                attempt.failed();
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// Pairs a kiosk: checks its credential or a one-time pairing code (`<kiosk id>.<secret>`);
    /// gives a session token. A pairing code is used up by it.
    pub async fn pair(&self, credential: &str, from: IpAddr) -> Result<String, AuthError> {
        let attempt = self.throttle.attempt(None, from)?;
        let (id, secret) = credential.trim().split_once('.').unwrap_or(("", ""));
        let kiosk = self.store.office().office.kiosks.get(id).cloned();
        let hash = kiosk.as_ref().map_or_else(|| DUMMY_HASH.clone(), |k| k.secret.clone());
        if self.verify(secret, &hash).await {
            return match kiosk {
                Some(k) if !k.revoked => self.new_session(Subject::Kiosk(k.id)).await,
                _ => Err(AuthError::BadCredentials),
            };
        }
        let Some(pairing) = kiosk.as_ref().and_then(|k| k.pairing.clone()) else {
            attempt.failed();
            return Err(AuthError::BadCredentials);
        };
        if !self.verify(secret, &pairing.code).await {
            attempt.failed();
            return Err(AuthError::BadCredentials);
        }
        drop(attempt);
        // Used once: taken away before the session is given, and only if it is still this one.
        let now = self.clock.now();
        let id = id.to_owned();
        let used = self
            .change(&Actor { id: id.clone(), name: id.clone(), role: Role::Kiosk }, move |office| {
                let before = office.kiosks.get(&id).ok_or(AuthError::BadCredentials)?;
                if before.pairing.as_ref() != Some(&pairing) || pairing.expires < now {
                    return Err(AuthError::PairingExpired);
                }
                let mut after = before.clone();
                after.pairing = None;
                after.revoked = false;
                Ok(OfficeChange::Kiosk {
                    before: Some(Box::new(before.clone())),
                    after: Box::new(after),
                })
            })
            .await?;
        let OfficeChange::Kiosk { after, .. } = used else { return Err(AuthError::BadCredentials) };
        self.new_session(Subject::Kiosk(after.id)).await
    }

    /// How a login name may be written in the log: an account's own name, else a short hash, so
    /// that a password typed into the name field, or a forged log line, never lands there.
    pub fn loggable(&self, login: &str) -> String {
        if self.store.office().office.people.contains_key(login) {
            login.to_owned()
        } else {
            format!("unknown:{}", &hex::encode(Sha256::digest(login.as_bytes()))[..8])
        }
    }

    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let key = hash_token(token);
        self.store.put(Aux::Sessions, &key, None).await?;
        self.records_mut().sessions.remove(&key);
        Ok(())
    }

    /// Who a session token belongs to, if it is valid, not idle or old past its policy, and its
    /// account still active.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let key = hash_token(token);
        let now = self.clock.now();
        if self.store.is_standby() {
            return self.authenticate_on_standby(key, now);
        }
        let Some(session) = self.records().sessions.get(&key).cloned() else {
            return Err(AuthError::NoSession);
        };
        let seen = session.seen.unwrap_or(session.created);
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if self.expired(&session, now) {
            self.store.put(Aux::Sessions, &key, None).await?;
            self.records_mut().sessions.remove(&key);
            return Err(AuthError::NoSession);
        }
        if now.0.saturating_sub(seen.0) > ms(TOUCH_EVERY) {
            let touched = Session { seen: Some(now), ..session.clone() };
            self.store.put(Aux::Sessions, &key, Some(encode(&touched)?)).await?;
            self.records_mut().sessions.insert(key.clone(), touched);
        }
        self.identify(&session.subject, SessionKey::from(key))
    }

    /// Whether a session is idle or old past its policy.
    fn expired(&self, session: &Session, now: Timestamp) -> bool {
        let (idle, max) = self.policy.limits(&session.subject);
        let seen = session.seen.unwrap_or(session.created);
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        now.0.saturating_sub(session.created.0) > ms(max) || now.0.saturating_sub(seen.0) > ms(idle)
    }

    /// `authenticate` on a standby: the session as the primary last wrote it, and nothing
    /// written (no touch, no removal): the primary does that.
    fn authenticate_on_standby(
        &self,
        key: Vec<u8>,
        now: Timestamp,
    ) -> Result<Authenticated, AuthError> {
        let Some(stored) = self.store.get(Aux::Sessions, &key)? else {
            return Err(AuthError::NoSession);
        };
        let session: Session = decode(&stored)?;
        if self.expired(&session, now) {
            return Err(AuthError::NoSession);
        }
        self.identify(&session.subject, SessionKey::from(key))
    }

    /// The principal and identity of an active account or kiosk.
    fn identify(&self, subject: &Subject, session: SessionKey) -> Result<Authenticated, AuthError> {
        let office = self.store.office();
        let mut identity = Identity {
            id: String::new(),
            name: String::new(),
            role: Role::Kiosk,
            community: CommunityId::default(),
            compounds: Vec::new(),
            everything: false,
            communities: Vec::new(),
            buildings: Vec::new(),
            must_change_password: false,
        };
        let (actor, scope) = match subject {
            Subject::User(login) => {
                let user = self
                    .store
                    .office()
                    .office
                    .people
                    .get(login)
                    .cloned()
                    .filter(|u| !u.disabled)
                    .ok_or(AuthError::NoSession)?;
                identity.everything = !user.runs().is_empty();
                identity.community = user.community.clone();
                if !user.communities.is_empty() {
                    identity.communities = std::iter::once(&user.community)
                        .chain(&user.communities)
                        .cloned()
                        .collect();
                }
                identity.buildings = user.buildings.clone();
                identity.must_change_password = user.must_change_password;
                let Principal { actor, scope } = user.principal(&office.office);
                identity.compounds = match &scope {
                    Scope::Communities { compounds, .. } => compounds.iter().cloned().collect(),
                    _ => user.compounds.clone(),
                };
                (actor, scope)
            }
            Subject::Kiosk(id) => {
                let kiosk = office
                    .office
                    .kiosks
                    .get(id)
                    .cloned()
                    .filter(|k| !k.revoked)
                    .ok_or(AuthError::NoSession)?;
                let actor =
                    Actor { id: kiosk.id.clone(), name: kiosk.name.clone(), role: Role::Kiosk };
                identity.compounds = vec![kiosk.compound.clone()];
                if let Some(community) = office.community_of(&kiosk.compound) {
                    identity.community = community.id.clone();
                }
                (actor, Scope::Compounds(vec![kiosk.compound]))
            }
        };
        identity.id = actor.id.clone();
        identity.name = actor.name.clone();
        identity.role = actor.role;
        Ok(Authenticated {
            principal: Principal { actor, scope },
            identity,
            subject: subject.clone(),
            session,
        })
    }
}
