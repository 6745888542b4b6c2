//! Accounts, kiosk credentials and sessions.
//!
//! Passwords and kiosk secrets are kept only as Argon2id hashes; session tokens only as SHA-256
//! hashes, so a copy of the data folder lets nobody in. Records live in the store's account
//! trees; this module decides what they hold.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hongfan_shared::office::{Office, OfficeChange, Pairing};
use hongfan_shared::protocol::Identity;
use hongfan_shared::{Actor, CommunityId, CompoundId, Millis, Principal, Role, Scope, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::limits::{Allowance, Check, Failures};
use crate::store::{Aux, OfficeEdit, Store, StoreError};

pub(crate) const MIN_PASSWORD_CHARS: usize = 8;
/// How long a pairing code from the admin page may be used.
const PAIRING_VALID: Millis = Millis::from_mins(30);
/// Longest name a person or kiosk is shown with.
pub(crate) const MAX_NAME_CHARS: usize = 40;
/// A session's last use is written down at most this often (it is kept in memory between).
const TOUCH_EVERY: Duration = Duration::from_secs(10 * 60);
/// Password checks at once: Argon2 is meant to be slow, so a burst of logins waits its turn on
/// the blocking pool rather than taking every core from the live feed.
const HASHES_AT_ONCE: usize = 2;
/// Most keys the login throttle keeps before it refuses new ones (a flood of made-up names).
const MAX_THROTTLE_KEYS: usize = 100_000;

pub use hongfan_shared::office::{Kiosk, Person};

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

/// The login throttle. Guessing is slowed by failures alone: per account and address together
/// (so someone guessing one account from one place locks out nobody else, nor the account's owner
/// elsewhere) and per address; a right password never counts, so an office behind one router
/// logs in as often as it needs. At most two tries of one account from one address are checked
/// at once, so parallel guesses cannot slip past the count. The cost of hashing is bounded apart:
/// every try takes one from its address's much larger allowance (and two hashes run at once in
/// all, `HASHES_AT_ONCE`), so a flood of logins cannot burn the CPU either.
#[derive(Debug)]
struct Throttle {
    hashes: Allowance,
    per_address: Failures,
    per_login: Failures,
    pairing: Failures,
}

/// One login or pairing being checked: `failed` counts it against every key it was tried under.
#[derive(Debug)]
struct Attempt<'a>(Vec<Check<'a>>);

impl Attempt<'_> {
    fn failed(self) {
        for check in self.0 {
            check.failed();
        }
    }
}

impl Throttle {
    fn new() -> Throttle {
        Throttle {
            hashes: Allowance::new(LOGIN.hash_burst, LOGIN.hashes_per_minute),
            per_address: Failures::new(LOGIN.address_burst, LOGIN.address_per_minute, u32::MAX),
            per_login: Failures::new(LOGIN.account_burst, LOGIN.account_per_minute, 2),
            pairing: Failures::new(LOGIN.pairing_burst, LOGIN.pairing_per_minute, 2),
        }
    }

    /// Admits one try (`login`'s, or a pairing's when `None`) from `from`, or says how long to
    /// wait: when the address's hashing allowance or a failure allowance is spent.
    fn attempt(&self, login: Option<&str>, from: IpAddr) -> Result<Attempt<'_>, AuthError> {
        let keys = self.hashes.tracked()
            + self.per_address.tracked()
            + self.per_login.tracked()
            + self.pairing.tracked();
        if keys > MAX_THROTTLE_KEYS {
            self.forget_idle();
        }
        let wait = |d: Duration| AuthError::Throttled(d.as_secs().max(1));
        let address = crate::limits::address_key(from);
        let checks: Vec<(&Failures, String)> = match login {
            Some(login) => {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                login.to_lowercase().hash(&mut hasher);
                let account = format!("{address} account {:x}", hasher.finish());
                vec![(&self.per_address, address.clone()), (&self.per_login, account)]
            }
            None => vec![(&self.pairing, address.clone())],
        };
        if let Some(left) = checks.iter().find_map(|(failures, key)| failures.spent(key)) {
            return Err(wait(left));
        }
        let full = self.hashes.tracked() > MAX_THROTTLE_KEYS;
        if full || !self.hashes.admit(&address) {
            return Err(wait(Duration::from_secs(60) / LOGIN.hashes_per_minute));
        }
        let mut attempt = Attempt(Vec::with_capacity(checks.len()));
        for (failures, key) in checks {
            attempt.0.push(failures.check(key).ok_or_else(|| wait(failures.refill()))?);
        }
        Ok(attempt)
    }

    fn forget_idle(&self) {
        self.hashes.forget_idle();
        self.per_address.forget_idle();
        self.per_login.forget_idle();
        self.pairing.forget_idle();
    }
}

/// The login throttle's allowances (`Throttle`): failures per address and per account at an
/// address, failed pairings per address, and the hashing any address may cause.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub address_burst: u32,
    pub address_per_minute: u32,
    pub account_burst: u32,
    pub account_per_minute: u32,
    pub pairing_burst: u32,
    pub pairing_per_minute: u32,
    pub hash_burst: u32,
    pub hashes_per_minute: u32,
}

/// See `LoginLimits`; docs/operations.md ("Logins") says the same.
pub const LOGIN: LoginLimits = LoginLimits {
    address_burst: 20,
    address_per_minute: 10,
    account_burst: 5,
    account_per_minute: 1,
    pairing_burst: 10,
    pairing_per_minute: 1,
    hash_burst: 100,
    hashes_per_minute: 100,
};

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
    #[error("unknown community {0:?}")]
    UnknownCommunity(String),
    #[error("say which community: the compounds do not tell, or belong to different ones")]
    CommunityNeeded,
    #[error("only a supervisor without compounds runs further communities")]
    NotAStreetSupervisor,
    #[error("a worker or building head needs at least one compound")]
    NoCompound,
    #[error("a name has at most {MAX_NAME_CHARS} characters")]
    LongName,
    #[error("this is outside the compounds you manage")]
    NotYours,
    #[error("a building head needs at least one building")]
    NoBuilding,
    #[error("set a new password first")]
    MustChangePassword,
    #[error("the pairing code has expired or was used: make a new one")]
    PairingExpired,
    #[error(transparent)]
    Store(#[from] StoreError),
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
/// sessions tree is the durable copy, written first. People and kiosks are the office's (the
/// store's office log, in memory there).
#[derive(Debug, Default)]
struct Records {
    /// By the SHA-256 of the token.
    sessions: HashMap<Vec<u8>, Session>,
    /// Whether `sessions` holds the store's. Not on a standby: the primary makes and ends
    /// sessions in the log it follows, so it reads each from its folder; it loads them all once
    /// it takes over.
    loaded: bool,
}

#[derive(Debug)]
pub struct Accounts {
    store: Store,
    clock: SharedClock,
    records: RwLock<Records>,
    throttle: Throttle,
    hashing: Arc<tokio::sync::Semaphore>,
    policy: SessionPolicy,
    /// Sessions ended before their time, for the hub to close their sockets.
    ended: tokio::sync::broadcast::Sender<Vec<SessionKey>>,
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

/// Which sessions a change to an account ends.
#[derive(Debug)]
enum Ending {
    None,
    /// All of them, but the one given (the session that changed its own password).
    AllBut(Option<Vec<u8>>),
}

/// An account to make, or what an account is to become.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub login: String,
    pub name: String,
    pub role: Role,
    /// Whose office: `None` for the one its compounds belong to, or (a 书记) the one community
    /// the person adding it runs.
    pub community: Option<CommunityId>,
    pub compounds: Vec<CompoundId>,
    /// A street office's supervisor: the further communities they run. Given only by someone
    /// who runs every one of them (the operator, say).
    pub communities: Vec<CommunityId>,
    pub buildings: Vec<String>,
}

/// What the first start creates and shows once.
#[derive(Debug)]
pub struct FirstStart {
    pub supervisor_login: String,
    pub supervisor_password: String,
    /// (kiosk, credential) per compound.
    pub kiosks: Vec<(Kiosk, String)>,
}

impl Records {
    fn load(&mut self, store: &Store) -> Result<(), AuthError> {
        for (key, value) in store.scan_entries(Aux::Sessions)? {
            self.sessions.insert(key, decode(&value)?);
        }
        self.loaded = true;
        Ok(())
    }
}

impl Accounts {
    /// Reads every account record from the store (at start: this reads the disk).
    pub fn new(store: Store, clock: SharedClock) -> Result<Accounts, AuthError> {
        let mut records = Records::default();
        if !store.is_standby() {
            records.load(&store)?;
        }
        Ok(Accounts {
            store,
            clock,
            records: RwLock::new(records),
            throttle: Throttle::new(),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHES_AT_ONCE)),
            policy: SessionPolicy::default(),
            ended: tokio::sync::broadcast::channel(64).0,
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

    /// Sessions that end before their time (a password changed, an account disabled, a kiosk
    /// revoked): their sockets are to close.
    pub fn ended(&self) -> tokio::sync::broadcast::Receiver<Vec<SessionKey>> {
        self.ended.subscribe()
    }

    /// Ends every session of `subject` but `keep` (its password changed, it was disabled or
    /// revoked): a session never outlives the reason it was given.
    async fn end_sessions(&self, subject: &Subject, keep: Option<&[u8]>) -> Result<(), AuthError> {
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

    pub fn user(&self, login: &str) -> Result<Option<Person>, AuthError> {
        Ok(self.store.office().office.people.get(login).cloned())
    }

    pub fn users(&self) -> Result<Vec<Person>, AuthError> {
        Ok(self.store.office().office.people.values().cloned().collect())
    }

    pub fn kiosk(&self, id: &str) -> Result<Option<Kiosk>, AuthError> {
        Ok(self.store.office().office.kiosks.get(id).cloned())
    }

    pub fn kiosks(&self) -> Result<Vec<Kiosk>, AuthError> {
        Ok(self.store.office().office.kiosks.values().cloned().collect())
    }

    /// Logs one change to the office, decided by `edit` against the office as it is when the
    /// committer takes it; a refusal comes back as the `AuthError` the edit gave.
    async fn change(
        &self,
        by: &Actor,
        edit: impl FnOnce(&Office) -> Result<OfficeChange, AuthError> + Send + 'static,
    ) -> Result<OfficeChange, AuthError> {
        let edit: OfficeEdit = Box::new(move |office| edit(office).map_err(Into::into));
        match self.store.change_office(by, edit).await {
            Ok(event) => Ok(event.change),
            Err(StoreError::Refused(refused)) => Err(match refused.downcast::<AuthError>() {
                Ok(auth) => *auth,
                Err(other) => AuthError::Store(StoreError::Write(other.to_string())),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Hashes a secret on the blocking pool, a few at a time.
    async fn hash(&self, secret: &str) -> Result<String, AuthError> {
        let Ok(_turn) = self.hashing.clone().acquire_owned().await else {
            return Err(AuthError::BadCredentials);
        };
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || hash_secret(&secret))
            .await
            .map_err(|_| AuthError::BadCredentials)?
    }

    /// Adds an account. `by` must manage every compound the account is for.
    pub async fn add_user(
        &self,
        by: &Principal,
        new: NewPerson,
        password: &str,
    ) -> Result<Person, AuthError> {
        self.add(by, new, password, false).await
    }

    async fn add(
        &self,
        by: &Principal,
        new: NewPerson,
        password: &str,
        must_change_password: bool,
    ) -> Result<Person, AuthError> {
        check_login(&new.login)?;
        check_password(password)?;
        let community = self.check_person(by, &new)?;
        let secret = self.hash(password).await?;
        let NewPerson { login, name, role, compounds, mut communities, buildings, .. } = new;
        communities.retain(|c| *c != community);
        communities.sort();
        communities.dedup();
        let person = Person {
            name: if name.trim().is_empty() { login.clone() } else { name.trim().to_owned() },
            login,
            role,
            community,
            compounds,
            communities,
            buildings,
            secret,
            disabled: false,
            must_change_password,
        };
        let after = person.clone();
        self.change(&by.actor, move |office| {
            if office.people.contains_key(&after.login) {
                return Err(AuthError::UserExists(after.login.clone()));
            }
            Ok(OfficeChange::Person { before: None, after: Box::new(after) })
        })
        .await?;
        Ok(person)
    }

    /// Adds an account whose password is a one-time code, to be changed at its first login;
    /// returns the code (shown once, to be handed over).
    pub async fn add_user_with_code(
        &self,
        by: &Principal,
        new: NewPerson,
    ) -> Result<(Person, String), AuthError> {
        let code = random_password();
        let person = self.add(by, new, &code, true).await?;
        Ok((person, code))
    }

    /// Whether `by` may make or keep an account like `new`: a known role, known compounds of
    /// one community, all of them `by`'s to manage, a name of sensible length. Returns the
    /// account's community.
    fn check_person(&self, by: &Principal, new: &NewPerson) -> Result<CommunityId, AuthError> {
        if !matches!(new.role, Role::Supervisor | Role::Worker | Role::BuildingHead) {
            return Err(AuthError::BadRole(new.role));
        }
        if new.role != Role::Supervisor && new.compounds.is_empty() {
            return Err(AuthError::NoCompound);
        }
        let office = self.store.office();
        let mut owners = BTreeSet::new();
        for compound in &new.compounds {
            let owner = office.office.community_of(compound);
            let owner = owner.ok_or_else(|| AuthError::UnknownCompound(compound.0.clone()))?;
            owners.insert(owner.id.clone());
        }
        if let Some(id) = &new.community {
            if !office.office.communities.contains_key(id) {
                return Err(AuthError::UnknownCommunity(id.0.clone()));
            }
            owners.insert(id.clone());
        }
        let community = match (owners.len(), &by.scope) {
            (1, _) => owners.pop_first().unwrap_or_default(),
            (0, Scope::Communities { communities, .. }) if communities.len() == 1 => {
                communities.first().cloned().unwrap_or_default()
            }
            (0, Scope::All) if office.office.communities.len() == 1 => {
                office.office.communities.keys().next().cloned().unwrap_or_default()
            }
            // A compound leader manages no one beyond their compounds.
            (0, Scope::Compounds(_)) => return Err(AuthError::NotYours),
            _ => return Err(AuthError::CommunityNeeded),
        };
        if new.role != Role::Supervisor && new.compounds.is_empty() {
            return Err(AuthError::NoCompound);
        }
        if new.role == Role::BuildingHead && new.buildings.is_empty() {
            return Err(AuthError::NoBuilding);
        }
        if new.name.trim().chars().count() > MAX_NAME_CHARS {
            return Err(AuthError::LongName);
        }
        if !new.communities.is_empty()
            && (new.role != Role::Supervisor || !new.compounds.is_empty())
        {
            return Err(AuthError::NotAStreetSupervisor);
        }
        if let Some(unknown) =
            new.communities.iter().find(|c| !office.office.communities.contains_key(c))
        {
            return Err(AuthError::UnknownCommunity(unknown.0.clone()));
        }
        // A compound leader manages only accounts wholly within their compounds.
        let within = !new.compounds.is_empty() && new.compounds.iter().all(|c| by.may_act_in(c));
        if (!by.runs(&community) && !within) || !new.communities.iter().all(|c| by.runs(c)) {
            return Err(AuthError::NotYours);
        }
        Ok(community)
    }

    /// Changes one account with `edit`, if `by` manages it; ends its sessions when `end` says
    /// the change takes away what they were given on.
    async fn edit_person(
        &self,
        by: &Principal,
        login: &str,
        end: Ending,
        edit: impl FnOnce(&mut Person) -> Result<(), AuthError> + Send + 'static,
    ) -> Result<Person, AuthError> {
        let (login, scope) = (login.to_owned(), by.clone());
        let changed = self
            .change(&by.actor, move |office| {
                let before = office
                    .people
                    .get(&login)
                    .ok_or_else(|| AuthError::UnknownUser(login.clone()))?;
                // A street office's supervisor is the operator's to change.
                let runs = std::iter::once(&before.community).chain(&before.communities);
                let manages = runs.clone().all(|c| scope.runs(c))
                    || (!before.compounds.is_empty()
                        && before.compounds.iter().all(|c| scope.may_act_in(c)));
                if !manages {
                    return Err(AuthError::NotYours);
                }
                let mut after = before.clone();
                edit(&mut after)?;
                Ok(OfficeChange::Person {
                    before: Some(Box::new(before.clone())),
                    after: Box::new(after),
                })
            })
            .await?;
        let OfficeChange::Person { after, .. } = changed else {
            return Err(AuthError::Store(StoreError::Write("not a person's change".into())));
        };
        if let Ending::AllBut(keep) = end {
            self.end_sessions(&Subject::User(after.login.clone()), keep.as_deref()).await?;
        }
        Ok(*after)
    }

    /// Changes an account's name, compounds and buildings (not its role).
    pub async fn update_person(
        &self,
        by: &Principal,
        login: &str,
        name: String,
        compounds: Vec<CompoundId>,
        buildings: Vec<String>,
    ) -> Result<Person, AuthError> {
        let current = self.user(login)?.ok_or_else(|| AuthError::UnknownUser(login.into()))?;
        let new = NewPerson {
            login: login.to_owned(),
            name: name.clone(),
            role: current.role,
            community: Some(current.community.clone()),
            compounds: compounds.clone(),
            communities: current.communities.clone(),
            buildings: buildings.clone(),
        };
        self.check_person(by, &new)?;
        self.edit_person(by, login, Ending::None, move |p| {
            p.name = if name.trim().is_empty() { p.login.clone() } else { name.trim().to_owned() };
            p.compounds = compounds;
            p.buildings = buildings;
            Ok(())
        })
        .await
    }

    /// Sets a new password (and enables the account); every other session of it ends.
    pub async fn set_password(
        &self,
        by: &Principal,
        login: &str,
        password: &str,
    ) -> Result<Person, AuthError> {
        check_password(password)?;
        let secret = self.hash(password).await?;
        self.edit_person(by, login, Ending::AllBut(None), move |p| {
            p.secret = secret;
            p.disabled = false;
            p.must_change_password = false;
            Ok(())
        })
        .await
    }

    /// Gives an account a one-time code as its password, to be changed at the next login;
    /// returns the code (shown once, to be handed over). Every session of it ends.
    pub async fn reset_password(&self, by: &Principal, login: &str) -> Result<String, AuthError> {
        let code = random_password();
        let secret = self.hash(&code).await?;
        self.edit_person(by, login, Ending::AllBut(None), move |p| {
            p.secret = secret;
            p.must_change_password = true;
            Ok(())
        })
        .await?;
        Ok(code)
    }

    /// A person changes their own password (required after a reset): every other session of
    /// theirs ends, the one they changed it in stays.
    pub async fn change_own_password(
        &self,
        me: &Authenticated,
        current: &str,
        new: &str,
        from: IpAddr,
    ) -> Result<(), AuthError> {
        check_password(new)?;
        let Subject::User(login) = &me.subject else { return Err(AuthError::BadCredentials) };
        let attempt = self.throttle.attempt(Some(login), from)?;
        let person = self.user(login)?.ok_or(AuthError::BadCredentials)?;
        if !self.verify(current, &person.secret).await {
            attempt.failed();
            return Err(AuthError::BadCredentials);
        }
        if current == new {
            return Err(AuthError::BadCredentials);
        }
        let secret = self.hash(new).await?;
        let myself = Principal {
            actor: Actor { id: person.login.clone(), name: person.name.clone(), role: person.role },
            scope: Scope::All,
        };
        let keep = Some(me.session.to_vec());
        self.edit_person(&myself, login, Ending::AllBut(keep), move |p| {
            p.secret = secret;
            p.must_change_password = false;
            Ok(())
        })
        .await
        .map(drop)
    }

    pub async fn disable(&self, by: &Principal, login: &str) -> Result<Person, AuthError> {
        if by.actor.id == login {
            return Err(AuthError::NotYours);
        }
        self.edit_person(by, login, Ending::AllBut(None), |p| {
            p.disabled = true;
            Ok(())
        })
        .await
    }

    pub async fn enable(&self, by: &Principal, login: &str) -> Result<Person, AuthError> {
        self.edit_person(by, login, Ending::None, |p| {
            p.disabled = false;
            Ok(())
        })
        .await
    }

    /// Makes a kiosk for a compound's station; its credential is shown only now.
    pub async fn add_kiosk(
        &self,
        by: &Principal,
        compound: &CompoundId,
        name: &str,
    ) -> Result<(Kiosk, String), AuthError> {
        let station = self
            .store
            .office()
            .office
            .community_of(compound)
            .and_then(|c| c.compound(compound))
            .ok_or_else(|| AuthError::UnknownCompound(compound.0.clone()))?
            .station
            .clone();
        if !by.may_act_in(compound) {
            return Err(AuthError::NotYours);
        }
        if name.trim().chars().count() > MAX_NAME_CHARS {
            return Err(AuthError::LongName);
        }
        let secret = hex::encode(rand::random::<[u8; 12]>());
        let hashed = self.hash(&secret).await?;
        let (compound, name) = (compound.clone(), name.trim().to_owned());
        let added = self
            .change(&by.actor, move |office| {
                let kiosk = Kiosk {
                    id: format!("kiosk-{}", office.kiosks.len() + 1),
                    compound,
                    name: if name.is_empty() { station } else { name },
                    secret: hashed,
                    pairing: None,
                    revoked: false,
                };
                Ok(OfficeChange::Kiosk { before: None, after: Box::new(kiosk) })
            })
            .await?;
        let OfficeChange::Kiosk { after, .. } = added else {
            return Err(AuthError::Store(StoreError::Write("not a kiosk's change".into())));
        };
        let credential = format!("{}.{secret}", after.id);
        Ok((*after, credential))
    }

    /// Changes one kiosk with `edit`, if `by` manages its compound.
    async fn edit_kiosk(
        &self,
        by: &Principal,
        id: &str,
        edit: impl FnOnce(&mut Kiosk) + Send + 'static,
    ) -> Result<Kiosk, AuthError> {
        let (id, scope) = (id.to_owned(), by.clone());
        let changed = self
            .change(&by.actor, move |office| {
                let before =
                    office.kiosks.get(&id).ok_or_else(|| AuthError::UnknownKiosk(id.clone()))?;
                if !scope.may_act_in(&before.compound) {
                    return Err(AuthError::NotYours);
                }
                let mut after = before.clone();
                edit(&mut after);
                Ok(OfficeChange::Kiosk {
                    before: Some(Box::new(before.clone())),
                    after: Box::new(after),
                })
            })
            .await?;
        let OfficeChange::Kiosk { after, .. } = changed else {
            return Err(AuthError::Store(StoreError::Write("not a kiosk's change".into())));
        };
        Ok(*after)
    }

    /// A one-time pairing code for a kiosk (shown as a QR code on the admin page), valid for
    /// `PAIRING_VALID`; it replaces any earlier one. Answers the code and until when it holds.
    pub async fn pairing_code(
        &self,
        by: &Principal,
        id: &str,
    ) -> Result<(String, Timestamp), AuthError> {
        let code = hex::encode(rand::random::<[u8; 12]>());
        let hashed = self.hash(&code).await?;
        let expires = self.clock.now().plus(PAIRING_VALID);
        let kiosk = self
            .edit_kiosk(by, id, move |k| {
                k.pairing = Some(Pairing { code: hashed, expires });
                k.revoked = false;
            })
            .await?;
        Ok((format!("{}.{code}", kiosk.id), expires))
    }

    pub async fn revoke(&self, by: &Principal, id: &str) -> Result<Kiosk, AuthError> {
        let kiosk = self
            .edit_kiosk(by, id, |k| {
                k.revoked = true;
                k.pairing = None;
            })
            .await?;
        self.end_sessions(&Subject::Kiosk(id.to_owned()), None).await?;
        Ok(kiosk)
    }

    /// On an empty data folder: a supervisor with a random password who runs every community,
    /// and, when there is one community, a kiosk per compound (with many, the admin page pairs
    /// them as the stations open).
    pub async fn first_start(&self) -> Result<Option<FirstStart>, AuthError> {
        if !self.users()?.is_empty() {
            return Ok(None);
        }
        let system = Principal { actor: Actor::system(), scope: Scope::All };
        let password = random_password();
        let office = self.store.office();
        let mut ids = office.office.communities.keys().cloned();
        let admin = NewPerson {
            login: "admin".into(),
            name: if office.office.communities.len() > 1 { "街道管理员" } else { "书记" }.into(),
            role: Role::Supervisor,
            community: ids.next(),
            compounds: Vec::new(),
            communities: ids.collect(),
            buildings: Vec::new(),
        };
        self.add_user(&system, admin, &password).await?;
        let mut kiosks = Vec::new();
        if let [community] = office.office.communities.values().collect::<Vec<_>>()[..] {
            for compound in &community.compounds {
                kiosks.push(self.add_kiosk(&system, &compound.id, "").await?);
            }
        }
        Ok(Some(FirstStart {
            supervisor_login: "admin".into(),
            supervisor_password: password,
            kiosks,
        }))
    }

    /// When a session of `subject` was last used, as written down (at most `TOUCH_EVERY` late).
    pub fn last_used(&self, subject: &Subject) -> Option<Timestamp> {
        let records = self.records();
        let sessions = records.sessions.values().filter(|s| &s.subject == subject);
        sessions.map(|s| s.seen.unwrap_or(s.created)).max()
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
        let attempt = self.throttle.attempt(Some(login), from)?;
        let user = self.user(login)?;
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
        let kiosk = self.kiosk(id)?;
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
                let user = self.user(login)?.filter(|u| !u.disabled).ok_or(AuthError::NoSession)?;
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
                let kiosk = self.kiosk(id)?.filter(|k| !k.revoked).ok_or(AuthError::NoSession)?;
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

/// A hash of a password nobody knows, verified against when a login does not exist.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_secret(&random_token()).unwrap_or_default());
