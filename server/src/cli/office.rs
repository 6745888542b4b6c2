//! `hongfan user …`, `hongfan kiosk …` and `hongfan open311 key …`: through the running server's operator channel (the
//! same admin API the admin page uses, logged as the operator), or straight in the data folder
//! when no server runs on it.

use std::io::{BufRead, Write};
use std::sync::Arc;

use axum::http::Method;
use clap::{Subcommand, ValueEnum};
use hongfan_shared::office::PersonView;
use hongfan_shared::{CommunityId, CompoundId, Principal, Role};
use serde::Deserialize;
use serde_json::json;

use super::DataArgs;
use super::operator::Operator;
use crate::auth::{Accounts, random_password};
use crate::clock::SystemClock;
use crate::office::NewPerson;
use crate::store::{Store, StoreOptions};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Worker,
    /// A community supervisor (书记) without --compound; a compound leader (网格长) with.
    Supervisor,
    BuildingHead,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Worker => Role::Worker,
            RoleArg::Supervisor => Role::Supervisor,
            RoleArg::BuildingHead => Role::BuildingHead,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account; prints a random password unless --password-stdin is given.
    Add {
        login: String,
        /// The name people see, for example 王芳.
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, value_enum, default_value = "worker")]
        role: RoleArg,
        /// A compound the account works in (repeat for more).
        #[arg(long = "compound")]
        compounds: Vec<String>,
        /// The account's community, when its compounds do not tell (a 书记 where there are
        /// several); repeat for a street office's supervisor, who runs all of them.
        #[arg(long = "community")]
        communities: Vec<String>,
        /// A building head's building, as the community writes it (repeat for more).
        #[arg(long = "building")]
        buildings: Vec<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    /// Set a new password (random unless --password-stdin), and enable the account.
    Passwd {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Give the account a one-time code, to be changed at its next login.
    Reset {
        login: String,
    },
    Disable {
        login: String,
    },
    Enable {
        login: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KioskCommand {
    /// Make a credential for a compound's station kiosk; it is printed once.
    Add {
        compound: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    List,
    /// Make a one-time pairing code (30 minutes) and print its link.
    Pair {
        id: String,
    },
    Revoke {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Open311Command {
    /// The API keys other systems post requests with (接口密钥).
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a key for who holds it (街道办, 12345 热线…); it is printed once.
    Add {
        name: String,
        /// Its community, when the server serves several.
        #[arg(long)]
        community: Option<String>,
        /// 上级派单: a platform's key (the 12345 hotline's or the street office's), whose work
        /// orders are answered at --webhook.
        #[arg(long, value_enum, requires = "webhook")]
        upstream: Option<SourceArg>,
        /// Where each change of its orders is POSTed as signed JSON.
        #[arg(long, requires = "upstream")]
        webhook: Option<String>,
    },
    List,
    Revoke {
        id: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceArg {
    /// The city's 12345 hotline (接诉即办).
    Hotline,
    /// The street office (街道).
    StreetOffice,
}

impl From<SourceArg> for hongfan_shared::Source {
    fn from(source: SourceArg) -> hongfan_shared::Source {
        match source {
            SourceArg::Hotline => hongfan_shared::Source::Hotline,
            SourceArg::StreetOffice => hongfan_shared::Source::StreetOffice,
        }
    }
}

/// Where the commands act: the running server, or the folder itself.
enum Target {
    Running(Operator),
    Folder { store: Store, accounts: Box<Accounts> },
}

/// A kiosk as listed.
#[derive(Debug, Deserialize)]
struct KioskLine {
    id: String,
    compound: CompoundId,
    name: String,
    revoked: bool,
    #[serde(default)]
    online: usize,
}

impl From<crate::auth::Kiosk> for KioskLine {
    fn from(k: crate::auth::Kiosk) -> KioskLine {
        KioskLine { id: k.id, compound: k.compound, name: k.name, revoked: k.revoked, online: 0 }
    }
}

fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
    } else {
        Ok((random_password(), true))
    }
}

impl Target {
    async fn open(data: &DataArgs) -> anyhow::Result<Target> {
        if let Some(operator) = Operator::find(&data.data_dir).await? {
            return Ok(Target::Running(operator));
        }
        let community = crate::config::load(data.config.as_deref())?.into();
        let store =
            Store::open(&data.data_dir, community, Arc::new(SystemClock), StoreOptions::default())?;
        let accounts = Box::new(Accounts::new(store.clone(), Arc::new(SystemClock))?);
        Ok(Target::Folder { store, accounts })
    }

    async fn close(self) -> anyhow::Result<()> {
        if let Target::Folder { store, .. } = self {
            store.close().await?;
        }
        Ok(())
    }

    async fn user(&self, command: &UserCommand, out: &mut impl Write) -> anyhow::Result<()> {
        let operator = Principal::operator();
        match (self, command) {
            (
                target,
                UserCommand::Add {
                    login,
                    name,
                    role,
                    compounds,
                    communities,
                    buildings,
                    password_stdin,
                },
            ) => {
                let (password, show) = password(*password_stdin)?;
                let compounds: Vec<CompoundId> =
                    compounds.iter().map(|c| CompoundId(c.clone())).collect();
                let mut communities = communities.iter().map(|c| CommunityId(c.clone()));
                let community = communities.next();
                let communities: Vec<CommunityId> = communities.collect();
                let person = match target {
                    Target::Running(server) => {
                        let added: serde_json::Value = server
                            .call(
                                Method::POST,
                                "/api/admin/people",
                                Some(json!({
                                    "login": login, "name": name, "role": Role::from(*role),
                                    "community": community, "communities": communities,
                                    "compounds": compounds, "buildings": buildings,
                                    "password": password,
                                })),
                            )
                            .await?;
                        serde_json::from_value::<PersonView>(added["person"].clone())?
                    }
                    Target::Folder { accounts, .. } => {
                        let new = NewPerson {
                            login: login.clone(),
                            name: name.clone(),
                            role: (*role).into(),
                            community,
                            compounds,
                            communities,
                            buildings: buildings.clone(),
                        };
                        PersonView::from(&accounts.add_user(&operator, new, &password).await?)
                    }
                };
                writeln!(out, "added {} ({}, {:?})", person.login, person.name, person.role)?;
                if show {
                    writeln!(out, "password: {password}")?;
                }
            }
            (target, UserCommand::List) => {
                let people: Vec<PersonView> = match target {
                    Target::Running(server) => {
                        server.call(Method::GET, "/api/admin/people", None).await?
                    }
                    Target::Folder { accounts, .. } => {
                        accounts.users()?.iter().map(PersonView::from).collect()
                    }
                };
                for p in people {
                    let compounds: Vec<&str> = p.compounds.iter().map(|c| c.0.as_str()).collect();
                    let state = if p.disabled { "disabled" } else { "active" };
                    let role = format!("{:?}", p.role);
                    writeln!(
                        out,
                        "{}\t{}\t{role}\t{}\t{state}",
                        p.login,
                        p.name,
                        compounds.join(",")
                    )?;
                }
            }
            (target, UserCommand::Passwd { login, password_stdin }) => {
                let (password, show) = password(*password_stdin)?;
                match target {
                    Target::Running(server) => {
                        let path = format!("/api/admin/people/{login}/password");
                        let body = json!({ "password": password });
                        server.call::<PersonView>(Method::POST, &path, Some(body)).await?;
                    }
                    Target::Folder { accounts, .. } => {
                        accounts.set_password(&operator, login, &password).await?;
                    }
                }
                writeln!(out, "password changed for {login}")?;
                if show {
                    writeln!(out, "password: {password}")?;
                }
            }
            (target, UserCommand::Reset { login }) => {
                let code = match target {
                    Target::Running(server) => {
                        let path = format!("/api/admin/people/{login}/reset");
                        let reset: serde_json::Value =
                            server.call(Method::POST, &path, None).await?;
                        reset["code"].as_str().unwrap_or_default().to_owned()
                    }
                    Target::Folder { accounts, .. } => {
                        accounts.reset_password(&operator, login).await?
                    }
                };
                writeln!(
                    out,
                    "one-time code for {login} (to be changed at the next login): {code}"
                )?;
            }
            (target, UserCommand::Disable { login } | UserCommand::Enable { login }) => {
                let enable = matches!(command, UserCommand::Enable { .. });
                match target {
                    Target::Running(server) => {
                        let what = if enable { "enable" } else { "disable" };
                        let path = format!("/api/admin/people/{login}/{what}");
                        server.call::<PersonView>(Method::POST, &path, None).await?;
                    }
                    Target::Folder { accounts, .. } if enable => {
                        accounts.enable(&operator, login).await?;
                    }
                    Target::Folder { accounts, .. } => {
                        accounts.disable(&operator, login).await?;
                    }
                }
                writeln!(out, "{} {login}", if enable { "enabled" } else { "disabled" })?;
            }
        }
        Ok(())
    }

    async fn key(&self, command: &KeyCommand, out: &mut impl Write) -> anyhow::Result<()> {
        use hongfan_shared::office::ApiKey;
        let operator = Principal::operator();
        match (self, command) {
            (target, KeyCommand::Add { name, community, upstream, webhook }) => {
                let upstream = upstream.map(hongfan_shared::Source::from).zip(webhook.clone());
                let (key, api_key, webhook_secret): (ApiKey, String, Option<String>) = match target
                {
                    Target::Running(server) => {
                        let upstream = upstream.map(
                            |(source, webhook)| json!({ "source": source, "webhook": webhook }),
                        );
                        let body =
                            json!({ "name": name, "community": community, "upstream": upstream });
                        let issued: serde_json::Value = server
                            .call(Method::POST, "/api/admin/open311/keys", Some(body))
                            .await?;
                        let key = serde_json::from_value(issued["key"].clone())?;
                        let api_key = issued["api_key"].as_str().unwrap_or_default().to_owned();
                        let secret = issued["webhook_secret"].as_str().map(str::to_owned);
                        (key, api_key, secret)
                    }
                    Target::Folder { store, .. } => {
                        let community = match community {
                            Some(id) => CommunityId(id.clone()),
                            None => {
                                let office = store.office();
                                let mut ids = office.office.communities.keys();
                                match (ids.next(), ids.next()) {
                                    (Some(only), None) => only.clone(),
                                    _ => anyhow::bail!("name the key's community: --community"),
                                }
                            }
                        };
                        let issued = crate::office::keys::issue(
                            store, &operator, &community, name, upstream,
                        )
                        .await?;
                        (issued.key, issued.api_key, issued.webhook_secret)
                    }
                };
                writeln!(out, "issued {} for {} ({})", key.id, key.name, key.community.0)?;
                writeln!(out, "api_key (shown once): {api_key}")?;
                if let Some(secret) = webhook_secret {
                    writeln!(out, "webhook signing secret (shown once): {secret}")?;
                }
            }
            (target, KeyCommand::List) => {
                let keys: Vec<ApiKey> = match target {
                    Target::Running(server) => {
                        server.call(Method::GET, "/api/admin/open311/keys", None).await?
                    }
                    Target::Folder { store, .. } => crate::office::keys::keys(store, &operator),
                };
                for k in keys {
                    let state = if k.revoked { "revoked" } else { "active" };
                    writeln!(out, "{}\t{}\t{}\t{state}", k.id, k.community.0, k.name)?;
                }
            }
            (target, KeyCommand::Revoke { id }) => {
                match target {
                    Target::Running(server) => {
                        let path = format!("/api/admin/open311/keys/{id}/revoke");
                        server.call::<serde_json::Value>(Method::POST, &path, None).await?;
                    }
                    Target::Folder { store, .. } => {
                        crate::office::keys::revoke(store, &operator, id).await?;
                    }
                }
                writeln!(out, "revoked {id}")?;
            }
        }
        Ok(())
    }

    async fn kiosk(&self, command: &KioskCommand, out: &mut impl Write) -> anyhow::Result<()> {
        let operator = Principal::operator();
        match (self, command) {
            (target, KioskCommand::Add { compound, name }) => {
                let (kiosk, credential) = match target {
                    Target::Running(server) => {
                        let body = json!({ "compound": compound, "name": name });
                        let added: serde_json::Value =
                            server.call(Method::POST, "/api/admin/kiosks", Some(body)).await?;
                        let kiosk: KioskLine = serde_json::from_value(added["kiosk"].clone())?;
                        (kiosk, added["credential"].as_str().unwrap_or_default().to_owned())
                    }
                    Target::Folder { accounts, .. } => {
                        let compound = CompoundId(compound.clone());
                        let (k, credential) =
                            accounts.add_kiosk(&operator, &compound, name).await?;
                        (KioskLine::from(k), credential)
                    }
                };
                writeln!(out, "added {} for {} ({})", kiosk.id, kiosk.compound.0, kiosk.name)?;
                writeln!(out, "credential: {credential}")?;
            }
            (target, KioskCommand::List) => {
                let kiosks: Vec<KioskLine> = match target {
                    Target::Running(server) => {
                        server.call(Method::GET, "/api/admin/kiosks", None).await?
                    }
                    Target::Folder { accounts, .. } => {
                        accounts.kiosks()?.into_iter().map(KioskLine::from).collect()
                    }
                };
                for k in kiosks {
                    let state = match (k.revoked, k.online) {
                        (true, _) => "revoked",
                        (false, 0) => "active",
                        (false, _) => "online",
                    };
                    writeln!(out, "{}\t{}\t{}\t{state}", k.id, k.compound.0, k.name)?;
                }
            }
            (target, KioskCommand::Pair { id }) => {
                let link = match target {
                    Target::Running(server) => {
                        let path = format!("/api/admin/kiosks/{id}/pairing");
                        let pairing: serde_json::Value =
                            server.call(Method::POST, &path, None).await?;
                        pairing["link"].as_str().unwrap_or_default().to_owned()
                    }
                    Target::Folder { accounts, .. } => {
                        let (code, _) = accounts.pairing_code(&operator, id).await?;
                        format!("/kiosk#pair={code}")
                    }
                };
                writeln!(out, "open on the kiosk within 30 minutes (once): {link}")?;
            }
            (target, KioskCommand::Revoke { id }) => {
                match target {
                    Target::Running(server) => {
                        let path = format!("/api/admin/kiosks/{id}/revoke");
                        server.call::<serde_json::Value>(Method::POST, &path, None).await?;
                    }
                    Target::Folder { accounts, .. } => {
                        accounts.revoke(&operator, id).await?;
                    }
                }
                writeln!(out, "revoked {id}")?;
            }
        }
        Ok(())
    }
}

/// Runs an `open311` command; prints to `out`.
pub async fn open311(
    data: &DataArgs,
    command: &Open311Command,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let target = Target::open(data).await?;
    let Open311Command::Key(command) = command;
    let result = target.key(command, out).await;
    target.close().await?;
    result
}

/// Runs a `user` command; prints to `out`.
pub async fn user(
    data: &DataArgs,
    command: &UserCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let target = Target::open(data).await?;
    let result = target.user(command, out).await;
    target.close().await?;
    result
}

/// Runs a `kiosk` command; prints to `out`.
pub async fn kiosk(
    data: &DataArgs,
    command: &KioskCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let target = Target::open(data).await?;
    let result = target.kiosk(command, out).await;
    target.close().await?;
    result
}
