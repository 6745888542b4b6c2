//! The office's people: accounts made, changed, disabled, given a one-time code; and the
//! first start's. Each change is logged in the office's log, decided by the committer against
//! the office as it is then; a change that takes away what sessions were given on ends them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hongfan_shared::office::{Kiosk, OfficeChange, Person};
use hongfan_shared::{Actor, CommunityId, CompoundId, Principal, Role, Scope};

use crate::auth::{
    Accounts, AuthError, Authenticated, MAX_NAME_CHARS, Subject, check_login, check_password,
    random_password,
};
use crate::store::StoreError;

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

impl Accounts {
    pub fn user(&self, login: &str) -> Result<Option<Person>, AuthError> {
        Ok(self.store.office().office.people.get(login).cloned())
    }

    pub fn users(&self) -> Result<Vec<Person>, AuthError> {
        Ok(self.store.office().office.people.values().cloned().collect())
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
}
