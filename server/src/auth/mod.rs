//! Accounts: who may log in and pair, and the sessions they are given. The people and kiosks
//! themselves are the office's (`crate::office`), kept in its log; this module checks their
//! secrets and keeps the sessions.
//!
//! Passwords and kiosk secrets are kept only as Argon2id hashes; session tokens only as SHA-256
//! hashes, so a copy of the data folder lets nobody in. Records live in the store's account
//! trees; this module decides what they hold.

mod passwords;
mod sessions;
mod throttle;

use std::sync::{Arc, RwLock};

use hongfan_shared::office::{Office, OfficeChange};
use hongfan_shared::{Actor, Role};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::store::{OfficeEdit, Store, StoreError};

pub use hongfan_shared::office::{Kiosk, Person};
pub use passwords::random_password;
pub(crate) use passwords::{MIN_PASSWORD_CHARS, check_login, check_password};
pub use sessions::{Authenticated, SessionKey, SessionPolicy, Subject};
pub use throttle::{LOGIN, LoginLimits};

/// Longest name a person or kiosk is shown with.
pub(crate) const MAX_NAME_CHARS: usize = 40;
/// Password checks at once: Argon2 is meant to be slow, so a burst of logins waits its turn on
/// the blocking pool rather than taking every core from the live feed.
const HASHES_AT_ONCE: usize = 2;

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

#[derive(Debug)]
pub struct Accounts {
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    records: RwLock<sessions::Records>,
    pub(crate) throttle: throttle::Throttle,
    hashing: Arc<tokio::sync::Semaphore>,
    policy: SessionPolicy,
    /// Sessions ended before their time, for the hub to close their sockets.
    ended: tokio::sync::broadcast::Sender<Vec<SessionKey>>,
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(bytes).map_err(|e| AuthError::Store(StoreError::Read(e.to_string())))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AuthError> {
    serde_json::to_vec(value).map_err(|e| AuthError::Store(StoreError::Write(e.to_string())))
}

impl Accounts {
    /// Reads every account record from the store (at start: this reads the disk).
    pub fn new(store: Store, clock: SharedClock) -> Result<Accounts, AuthError> {
        let mut records = sessions::Records::default();
        if !store.is_standby() {
            records.load(&store)?;
        }
        Ok(Accounts {
            store,
            clock,
            records: RwLock::new(records),
            throttle: throttle::Throttle::new(),
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
    pub(crate) async fn verify(&self, secret: &str, hash: &str) -> bool {
        let Ok(_turn) = self.hashing.clone().acquire_owned().await else { return false };
        let (secret, hash) = (secret.to_owned(), hash.to_owned());
        tokio::task::spawn_blocking(move || passwords::verify_secret(&secret, &hash))
            .await
            .unwrap_or(false)
    }

    /// Logs one change to the office, decided by `edit` against the office as it is when the
    /// committer takes it; a refusal comes back as the `AuthError` the edit gave.
    pub(crate) async fn change(
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
    pub(crate) async fn hash(&self, secret: &str) -> Result<String, AuthError> {
        let Ok(_turn) = self.hashing.clone().acquire_owned().await else {
            return Err(AuthError::BadCredentials);
        };
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || passwords::hash_secret(&secret))
            .await
            .map_err(|_| AuthError::BadCredentials)?
    }
}
