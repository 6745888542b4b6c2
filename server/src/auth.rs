//! Accounts, kiosk credentials and sessions.
//!
//! Passwords and kiosk secrets are kept only as Argon2id hashes; session tokens only as SHA-256
//! hashes, so a copy of the data folder lets nobody in. Records live in the store's account
//! trees; this module decides what they hold.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hongfan_shared::protocol::Identity;
use hongfan_shared::{Actor, Community, CompoundId, Principal, Role, Scope, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::store::{Aux, Store, StoreError};

/// Failed logins allowed per account (and per address) within `THROTTLE_WINDOW`.
const MAX_FAILURES: u32 = 5;
const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
const MIN_PASSWORD_CHARS: usize = 8;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    User(String),
    Kiosk(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    subject: Subject,
    created: Timestamp,
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
    failures: Mutex<HashMap<String, (u32, Instant)>>,
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
            failures: Mutex::new(HashMap::new()),
        })
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
        self.save_user(&user).await
    }

    pub async fn disable(&self, login: &str) -> Result<(), AuthError> {
        let _writing = self.writing.lock().await;
        let mut user = self.user(login)?.ok_or_else(|| AuthError::UnknownUser(login.into()))?;
        user.disabled = true;
        self.save_user(&user).await
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
        self.save_kiosk(&kiosk).await
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

    fn throttled(&self, keys: &[String]) -> Result<(), AuthError> {
        let failures = self.failures.lock().map_err(|_| AuthError::Store(StoreError::Poisoned))?;
        for key in keys {
            if let Some(&(count, since)) = failures.get(key) {
                let left = THROTTLE_WINDOW.saturating_sub(since.elapsed());
                if count >= MAX_FAILURES && !left.is_zero() {
                    return Err(AuthError::Throttled(left.as_secs().max(1)));
                }
            }
        }
        Ok(())
    }

    fn record_failure(&self, keys: &[String]) {
        if let Ok(mut failures) = self.failures.lock() {
            for key in keys {
                let entry = failures.entry(key.clone()).or_insert((0, Instant::now()));
                if entry.1.elapsed() > THROTTLE_WINDOW {
                    *entry = (0, Instant::now());
                }
                entry.0 += 1;
            }
        }
    }

    async fn new_session(&self, subject: Subject) -> Result<String, AuthError> {
        let token = random_token();
        let session = Session { subject, created: self.clock.now() };
        let key = hash_token(&token);
        self.store.put(Aux::Sessions, &key, Some(encode(&session)?)).await?;
        self.records_mut().sessions.insert(key, session);
        Ok(token)
    }

    /// Checks a login and password; gives a session token. `from` is the client's address,
    /// throttled along with the login.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        from: &str,
    ) -> Result<String, AuthError> {
        let keys = [format!("login:{}", login.to_lowercase()), format!("addr:{from}")];
        self.throttled(&keys)?;
        let user = self.user(login)?;
        // Verify against a fixed hash when the account does not exist, so that the answer takes
        // as long either way.
        let ok = match &user {
            Some(u) => verify_secret(password, &u.password) && !u.disabled,
            None => {
                let _ = verify_secret(password, &DUMMY_HASH);
                false
            }
        };
        if !ok {
            self.record_failure(&keys);
            return Err(AuthError::BadCredentials);
        }
        self.new_session(Subject::User(login.to_owned())).await
    }

    /// Pairs a kiosk: checks its credential (`<kiosk id>.<secret>`); gives a session token.
    pub async fn pair(&self, credential: &str, from: &str) -> Result<String, AuthError> {
        let keys = [format!("addr:{from}")];
        self.throttled(&keys)?;
        let (id, secret) = credential.trim().split_once('.').unwrap_or(("", ""));
        let ok = match self.kiosk(id)? {
            Some(k) => !k.revoked && verify_secret(secret, &k.secret),
            None => false,
        };
        if !ok {
            self.record_failure(&keys);
            return Err(AuthError::BadCredentials);
        }
        self.new_session(Subject::Kiosk(id.to_owned())).await
    }

    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let key = hash_token(token);
        self.store.put(Aux::Sessions, &key, None).await?;
        self.records_mut().sessions.remove(&key);
        Ok(())
    }

    /// Who a session token belongs to, if it is valid and its account still active.
    pub fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let session = self.records().sessions.get(&hash_token(token)).cloned();
        let session = session.ok_or(AuthError::NoSession)?;
        let all = || self.community().compounds.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        let (actor, compounds, scope) = match &session.subject {
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
            subject: session.subject,
        })
    }
}

/// A hash of a password nobody knows, verified against when a login does not exist.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_secret(&random_token()).unwrap_or_default());
