//! Accounts, kiosk credentials and sessions.
//!
//! Passwords and kiosk secrets are kept only as Argon2id hashes; session tokens only as SHA-256
//! hashes, so a copy of the data folder lets nobody in. Records live in the store's account
//! trees; this module decides what they hold.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hongfan_shared::protocol::Identity;
use hongfan_shared::{Actor, Community, CompoundId, Principal, Role, Scope, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::store::{Aux, Store, StoreError};

const MIN_PASSWORD_CHARS: usize = 8;
/// Longest name a person or kiosk is shown with.
const MAX_NAME_CHARS: usize = 40;
/// A session's last use is written down at most this often (it is kept in memory between).
const TOUCH_EVERY: Duration = Duration::from_secs(10 * 60);
/// Password checks at once: Argon2 is meant to be slow, so a burst of logins waits its turn on
/// the blocking pool rather than taking every core from the live feed.
const HASHES_AT_ONCE: usize = 2;
/// Most keys the login throttle keeps before it refuses new ones (a flood of made-up names).
const MAX_THROTTLE_KEYS: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub login: String,
    pub name: String,
    pub role: Role,
    /// Where a worker or building head acts; ignored for a supervisor, who acts everywhere.
    pub compounds: Vec<CompoundId>,
    /// Argon2id, PHC string.
    password: String,
    pub disabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kiosk {
    pub id: String,
    pub compound: CompoundId,
    pub name: String,
    /// Argon2id hash of the credential's secret part.
    secret: String,
    pub revoked: bool,
}

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    User(String),
    Kiosk(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
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

/// Backoff for guesses: per account and address together (so someone guessing one account from
/// one place locks out nobody else, nor the account's owner elsewhere) and per address. Every
/// attempt counts before its password is checked, so parallel guesses cannot slip past.
#[derive(Debug)]
struct Throttle {
    per_login: DefaultKeyedRateLimiter<(u64, IpAddr)>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    pairing: DefaultKeyedRateLimiter<IpAddr>,
}

impl Throttle {
    fn new() -> Throttle {
        let quota = |burst: u32, every: Duration| {
            Quota::with_period(every)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
        };
        Throttle {
            per_login: RateLimiter::keyed(quota(5, Duration::from_secs(60))),
            per_address: RateLimiter::keyed(quota(20, Duration::from_secs(6))),
            pairing: RateLimiter::keyed(quota(10, Duration::from_secs(60))),
        }
    }

    /// Takes one attempt from each allowance, or says how long to wait.
    fn attempt(&self, login: Option<&str>, from: IpAddr) -> Result<(), AuthError> {
        let full = self.per_login.len() + self.per_address.len() + self.pairing.len();
        if full > MAX_THROTTLE_KEYS {
            self.forget_idle();
            if self.per_login.len() + self.per_address.len() > MAX_THROTTLE_KEYS {
                return Err(AuthError::Throttled(60));
            }
        }
        let wait = |e: governor::NotUntil<_>| {
            AuthError::Throttled(e.wait_time_from(DefaultClock::default().now()).as_secs().max(1))
        };
        match login {
            Some(login) => {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                login.to_lowercase().hash(&mut hasher);
                self.per_address.check_key(&from).map_err(wait)?;
                self.per_login.check_key(&(hasher.finish(), from)).map_err(wait)
            }
            None => self.pairing.check_key(&from).map_err(wait),
        }
    }

    fn forget_idle(&self) {
        self.per_login.retain_recent();
        self.per_address.retain_recent();
        self.pairing.retain_recent();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong login or password")]
    BadCredentials,
    #[error("too many failed attempts; try again in {0} s")]
    Throttled(u64),
    #[error("no valid session: log in again")]
    NoSession,
    #[error("no account {0:?}")]
    UnknownUser(String),
    #[error("no kiosk {0:?}")]
    UnknownKiosk(String),
    #[error("an account {0:?} exists already")]
    UserExists(String),
    #[error(
        "a login is 2 to 32 lower-case letters, digits, '.', '_' or '-', and does not start with \"kiosk-\""
    )]
    BadLogin,
    #[error("a password has at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("a {0:?} account cannot be made here")]
    BadRole(Role),
    #[error("unknown compound {0:?}")]
    UnknownCompound(String),
    #[error("a worker or building head needs at least one compound")]
    NoCompound,
    #[error("a name has at most {MAX_NAME_CHARS} characters")]
    LongName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An authenticated connection's identity: what it may do, and how it introduces itself.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub identity: Identity,
    pub subject: Subject,
}

/// Every account record, kept in memory so that authenticating a request reads no disk; the
/// store's trees are the durable copy, written first.
#[derive(Debug, Default)]
struct Records {
    users: BTreeMap<String, User>,
    kiosks: BTreeMap<String, Kiosk>,
    /// By the SHA-256 of the token.
    sessions: HashMap<Vec<u8>, Session>,
}

#[derive(Debug)]
pub struct Accounts {
    store: Store,
    clock: SharedClock,
    records: RwLock<Records>,
    /// Held across a write of a user or kiosk record and its copy in memory, so that the two
    /// never disagree about the order of two writes.
    writing: tokio::sync::Mutex<()>,
    throttle: Throttle,
    hashing: Arc<tokio::sync::Semaphore>,
    policy: SessionPolicy,
}

fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A password people can read out and type: 12 characters, no look-alikes.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..12).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

fn hash_secret(secret: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|_| AuthError::BadCredentials)?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::BadCredentials)
}

fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok())
}

fn check_login(login: &str) -> Result<(), AuthError> {
    let ok = (2..=32).contains(&login.len())
        && !login.starts_with("kiosk-")
        && login
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(AuthError::BadLogin) }
}

fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() >= MIN_PASSWORD_CHARS {
        Ok(())
    } else {
        Err(AuthError::WeakPassword)
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(bytes).map_err(|e| AuthError::Store(StoreError::Read(e.to_string())))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AuthError> {
    serde_json::to_vec(value).map_err(|e| AuthError::Store(StoreError::Write(e.to_string())))
}

/// What the first start creates and shows once.
#[derive(Debug)]
pub struct FirstStart {
    pub supervisor_login: String,
    pub supervisor_password: String,
    /// (kiosk, credential) per compound.
    pub kiosks: Vec<(Kiosk, String)>,
}

impl Accounts {
    /// Reads every account record from the store (at start: this reads the disk).
    pub fn new(store: Store, clock: SharedClock) -> Result<Accounts, AuthError> {
        let mut records = Records::default();
        for user in store.scan(Aux::Users)?.iter().map(|v| decode::<User>(v)) {
            let user = user?;
            records.users.insert(user.login.clone(), user);
        }
        for kiosk in store.scan(Aux::Kiosks)?.iter().map(|v| decode::<Kiosk>(v)) {
            let kiosk = kiosk?;
            records.kiosks.insert(kiosk.id.clone(), kiosk);
        }
        for (key, value) in store.scan_entries(Aux::Sessions)? {
            records.sessions.insert(key, decode(&value)?);
        }
        Ok(Accounts {
            store,
            clock,
            records: RwLock::new(records),
            writing: tokio::sync::Mutex::new(()),
            throttle: Throttle::new(),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHES_AT_ONCE)),
            policy: SessionPolicy::default(),
        })
    }

    /// Sessions live as `policy` says.
    pub fn with_sessions(mut self, policy: SessionPolicy) -> Accounts {
        self.policy = policy;
        self
    }

    pub fn session_policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// Drops throttle entries whose allowance is full again.
    pub fn forget_idle(&self) {
        self.throttle.forget_idle();
    }

    /// Checks a secret against its hash on the blocking pool, a few at a time.
    async fn verify(&self, secret: &str, hash: &str) -> bool {
        let Ok(_turn) = self.hashing.clone().acquire_owned().await else { return false };
        let (secret, hash) = (secret.to_owned(), hash.to_owned());
        tokio::task::spawn_blocking(move || verify_secret(&secret, &hash)).await.unwrap_or(false)
    }

    /// Ends every session of `subject` (its password changed, it was disabled or revoked): a
    /// session never outlives the reason it was given.
    async fn end_sessions(&self, subject: &Subject) -> Result<(), AuthError> {
        let keys: Vec<Vec<u8>> = self
            .records()
            .sessions
            .iter()
            .filter(|(_, s)| &s.subject == subject)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.store.put(Aux::Sessions, &key, None).await?;
            self.records_mut().sessions.remove(&key);
        }
        Ok(())
    }

    fn community(&self) -> &Community {
        self.store.community()
    }

    fn records(&self) -> std::sync::RwLockReadGuard<'_, Records> {
        // Plain maps: a panic elsewhere leaves them usable.
        self.records.read().unwrap_or_else(|p| p.into_inner())
    }

    fn records_mut(&self) -> std::sync::RwLockWriteGuard<'_, Records> {
        self.records.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn user(&self, login: &str) -> Result<Option<User>, AuthError> {
        Ok(self.records().users.get(login).cloned())
    }

    pub fn users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.records().users.values().cloned().collect())
    }

    pub fn kiosk(&self, id: &str) -> Result<Option<Kiosk>, AuthError> {
        Ok(self.records().kiosks.get(id).cloned())
    }

    pub fn kiosks(&self) -> Result<Vec<Kiosk>, AuthError> {
        Ok(self.records().kiosks.values().cloned().collect())
    }

    /// Writes a user record durably, then its copy in memory. Callers hold `writing`.
    async fn save_user(&self, user: &User) -> Result<(), AuthError> {
        self.store.put(Aux::Users, user.login.as_bytes(), Some(encode(user)?)).await?;
        self.records_mut().users.insert(user.login.clone(), user.clone());
        Ok(())
    }

    async fn save_kiosk(&self, kiosk: &Kiosk) -> Result<(), AuthError> {
        self.store.put(Aux::Kiosks, kiosk.id.as_bytes(), Some(encode(kiosk)?)).await?;
        self.records_mut().kiosks.insert(kiosk.id.clone(), kiosk.clone());
        Ok(())
    }

    pub async fn add_user(
        &self,
        login: &str,
        name: &str,
        role: Role,
        compounds: &[CompoundId],
        password: &str,
    ) -> Result<User, AuthError> {
        check_login(login)?;
        check_password(password)?;
        if !matches!(role, Role::Supervisor | Role::Worker | Role::BuildingHead) {
            return Err(AuthError::BadRole(role));
        }
        if let Some(unknown) = compounds.iter().find(|c| self.community().compound(c).is_none()) {
            return Err(AuthError::UnknownCompound(unknown.0.clone()));
        }
        if role != Role::Supervisor && compounds.is_empty() {
            return Err(AuthError::NoCompound);
        }
        if name.trim().chars().count() > MAX_NAME_CHARS {
            return Err(AuthError::LongName);
        }
        let _writing = self.writing.lock().await;
        if self.user(login)?.is_some() {
            return Err(AuthError::UserExists(login.to_owned()));
        }
        let user = User {
            login: login.to_owned(),
            name: if name.trim().is_empty() { login.to_owned() } else { name.trim().to_owned() },
            role,
            compounds: compounds.to_vec(),
            password: hash_secret(password)?,
            disabled: false,
        };
        self.save_user(&user).await?;
        Ok(user)
    }

    pub async fn set_password(&self, login: &str, password: &str) -> Result<(), AuthError> {
        check_password(password)?;
        let _writing = self.writing.lock().await;
        let mut user = self.user(login)?.ok_or_else(|| AuthError::UnknownUser(login.into()))?;
        user.password = hash_secret(password)?;
        user.disabled = false;
        self.save_user(&user).await?;
        self.end_sessions(&Subject::User(login.to_owned())).await
    }

    pub async fn disable(&self, login: &str) -> Result<(), AuthError> {
        let _writing = self.writing.lock().await;
        let mut user = self.user(login)?.ok_or_else(|| AuthError::UnknownUser(login.into()))?;
        user.disabled = true;
        self.save_user(&user).await?;
        self.end_sessions(&Subject::User(login.to_owned())).await
    }

    /// Makes a kiosk credential for a compound's station; the credential is shown only now.
    pub async fn add_kiosk(
        &self,
        compound: &CompoundId,
        name: &str,
    ) -> Result<(Kiosk, String), AuthError> {
        let station = self
            .community()
            .compound(compound)
            .ok_or_else(|| AuthError::UnknownCompound(compound.0.clone()))?
            .station
            .clone();
        let _writing = self.writing.lock().await;
        let n = self.kiosks()?.len() + 1;
        let id = format!("kiosk-{n}");
        let secret = hex::encode(rand::random::<[u8; 12]>());
        let kiosk = Kiosk {
            id: id.clone(),
            compound: compound.clone(),
            name: if name.trim().is_empty() { station } else { name.trim().to_owned() },
            secret: hash_secret(&secret)?,
            revoked: false,
        };
        self.save_kiosk(&kiosk).await?;
        Ok((kiosk, format!("{id}.{secret}")))
    }

    pub async fn revoke(&self, id: &str) -> Result<(), AuthError> {
        let _writing = self.writing.lock().await;
        let mut kiosk = self.kiosk(id)?.ok_or_else(|| AuthError::UnknownKiosk(id.into()))?;
        kiosk.revoked = true;
        self.save_kiosk(&kiosk).await?;
        self.end_sessions(&Subject::Kiosk(id.to_owned())).await
    }

    /// On an empty database: a supervisor with a random password and a kiosk per compound.
    pub async fn first_start(&self) -> Result<Option<FirstStart>, AuthError> {
        if !self.users()?.is_empty() {
            return Ok(None);
        }
        let password = random_password();
        self.add_user("admin", "书记", Role::Supervisor, &[], &password).await?;
        let mut kiosks = Vec::new();
        for compound in self.community().compounds.clone() {
            kiosks.push(self.add_kiosk(&compound.id, "").await?);
        }
        Ok(Some(FirstStart {
            supervisor_login: "admin".into(),
            supervisor_password: password,
            kiosks,
        }))
    }

    async fn new_session(&self, subject: Subject) -> Result<String, AuthError> {
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
        self.throttle.attempt(Some(login), from)?;
        let user = self.user(login)?;
        // Verify against a fixed hash when the account does not exist, so that the answer takes
        // as long either way.
        let hash = user.as_ref().map_or_else(|| DUMMY_HASH.clone(), |u| u.password.clone());
        let matches = self.verify(password, &hash).await;
        match user {
            Some(u) if matches && !u.disabled => self.new_session(Subject::User(u.login)).await,
            _ => Err(AuthError::BadCredentials),
        }
    }

    /// Pairs a kiosk: checks its credential (`<kiosk id>.<secret>`); gives a session token.
    pub async fn pair(&self, credential: &str, from: IpAddr) -> Result<String, AuthError> {
        self.throttle.attempt(None, from)?;
        let (id, secret) = credential.trim().split_once('.').unwrap_or(("", ""));
        let kiosk = self.kiosk(id)?;
        let hash = kiosk.as_ref().map_or_else(|| DUMMY_HASH.clone(), |k| k.secret.clone());
        let matches = self.verify(secret, &hash).await;
        match kiosk {
            Some(k) if matches && !k.revoked => self.new_session(Subject::Kiosk(k.id)).await,
            _ => Err(AuthError::BadCredentials),
        }
    }

    /// How a login name may be written in the log: an account's own name, else a short hash, so
    /// that a password typed into the name field, or a forged log line, never lands there.
    pub fn loggable(&self, login: &str) -> String {
        if self.records().users.contains_key(login) {
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
        let Some(session) = self.records().sessions.get(&key).cloned() else {
            return Err(AuthError::NoSession);
        };
        let (idle, max) = self.policy.limits(&session.subject);
        let seen = session.seen.unwrap_or(session.created);
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if now.0.saturating_sub(session.created.0) > ms(max)
            || now.0.saturating_sub(seen.0) > ms(idle)
        {
            self.store.put(Aux::Sessions, &key, None).await?;
            self.records_mut().sessions.remove(&key);
            return Err(AuthError::NoSession);
        }
        if now.0.saturating_sub(seen.0) > ms(TOUCH_EVERY) {
            let touched = Session { seen: Some(now), ..session.clone() };
            self.store.put(Aux::Sessions, &key, Some(encode(&touched)?)).await?;
            self.records_mut().sessions.insert(key, touched);
        }
        self.identify(&session.subject)
    }

    /// The principal and identity of an active account or kiosk.
    fn identify(&self, subject: &Subject) -> Result<Authenticated, AuthError> {
        let all = || self.community().compounds.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        let (actor, compounds, scope) = match subject {
            Subject::User(login) => {
                let user = self.user(login)?.filter(|u| !u.disabled).ok_or(AuthError::NoSession)?;
                let actor =
                    Actor { id: user.login.clone(), name: user.name.clone(), role: user.role };
                if user.role == Role::Supervisor {
                    (actor, all(), Scope::All)
                } else {
                    (actor, user.compounds.clone(), Scope::Compounds(user.compounds.clone()))
                }
            }
            Subject::Kiosk(id) => {
                let kiosk = self.kiosk(id)?.filter(|k| !k.revoked).ok_or(AuthError::NoSession)?;
                let actor =
                    Actor { id: kiosk.id.clone(), name: kiosk.name.clone(), role: Role::Kiosk };
                (actor, vec![kiosk.compound.clone()], Scope::Compounds(vec![kiosk.compound]))
            }
        };
        let identity = Identity {
            id: actor.id.clone(),
            name: actor.name.clone(),
            role: actor.role,
            compounds,
        };
        Ok(Authenticated {
            principal: Principal { actor, scope },
            identity,
            subject: subject.clone(),
        })
    }
}

/// A hash of a password nobody knows, verified against when a login does not exist.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_secret(&random_token()).unwrap_or_default());
