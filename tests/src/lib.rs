//! Helpers shared by the end-to-end tests: the built-in community, principals for each role,
//! reports, and waits with deadlines (never sleeps).

pub mod api;
pub mod browser;
pub mod nats;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use hongfan::store::{DutyOverrides, Mode, StoreOptions};
use hongfan::{ManualClock, Store};
use hongfan_shared::office::{OfficeChange, Person};
use hongfan_shared::{
    Actor, CategoryId, Community, CompoundId, Principal, Report, Role, Scope, Timestamp, Urgency,
};

/// A fixed point in time the tests' clocks start from: 2026-11-02 09:00 in Asia/Shanghai.
pub const T0: Timestamp = Timestamp(1_793_581_200_000);

/// The built-in community.
pub fn community() -> Arc<Community> {
    Arc::new(seed()[0].clone())
}

/// The communities a test folder starts with: the built-in one.
pub fn seed() -> Arc<[Community]> {
    hongfan::config::load(None).expect("built-in configuration").into()
}

pub fn principal(id: &str, role: Role, compounds: &[&str]) -> Principal {
    let scope = match role {
        Role::Supervisor => Scope::All,
        _ => Scope::Compounds(compounds.iter().map(|c| CompoundId((*c).into())).collect()),
    };
    Principal { actor: Actor { id: id.into(), name: id.to_string(), role }, scope }
}

pub fn kiosk(compound: &str) -> Principal {
    principal(&format!("kiosk-{compound}"), Role::Kiosk, &[compound])
}

pub fn worker(id: &str, compound: &str) -> Principal {
    principal(id, Role::Worker, &[compound])
}

pub fn supervisor() -> Principal {
    principal("supervisor", Role::Supervisor, &[])
}

/// A repair report in `compound`; `text` makes reports tell apart.
pub fn report(compound: &str, text: &str) -> Report {
    Report {
        compound: CompoundId(compound.into()),
        category: CategoryId("repair".into()),
        urgency: Urgency::Normal,
        building: "3号楼".into(),
        unit: "2单元".into(),
        room: "301".into(),
        description: text.into(),
        phone: Some("13800001234".into()),
        attachments: Vec::new(),
        order: None,
    }
}

/// Opens a store in `dir` on a manual clock, as a staffed office: someone is on duty in every
/// compound, so no report is escalated for want of a worker.
pub async fn open_store(
    dir: &std::path::Path,
    clock: &Arc<ManualClock>,
) -> Result<Store, hongfan::StoreError> {
    open_store_with(dir, clock, StoreOptions { duty: everyone_on_duty(), ..Default::default() })
        .await
}

/// The worker `open_store_with` keeps for `compound` when its options put someone on duty there.
pub fn duty_worker(compound: &str) -> String {
    format!("duty-{compound}")
}

/// A worker switched on duty in each of the built-in compounds.
pub fn everyone_on_duty() -> DutyOverrides {
    let all: Vec<String> = community().compounds.iter().map(|c| c.id.0.clone()).collect();
    on_duty_in(&all.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A worker switched on duty in each of `compounds` (and nobody elsewhere).
pub fn on_duty_in(compounds: &[&str]) -> DutyOverrides {
    let duty = DutyOverrides::default();
    duty.set(compounds.iter().map(|c| (duty_worker(c), true)).collect());
    duty
}

/// Opens a store in `dir` on a manual clock, with options (who is on duty, faults). When the
/// options switch workers on duty, those workers are made in the office first.
pub async fn open_store_with(
    dir: &std::path::Path,
    clock: &Arc<ManualClock>,
    options: StoreOptions,
) -> Result<Store, hongfan::StoreError> {
    let staffed = options.mode == Mode::Primary && !options.duty.get().is_empty();
    let options = StoreOptions { cache_bytes: 8 << 20, ..options };
    until_released(dir).await;
    let store = Store::open(dir, seed(), clock.clone(), options)?;
    if staffed {
        staff(&store).await?;
    }
    Ok(store)
}

/// Waits, up to ten seconds, until nothing in this process holds the store in `dir`: sled lets go
/// of its lock file from its own threads a moment after the last handle is dropped, and says
/// nothing when it does. (A new process never waits for that.)
pub async fn until_released(dir: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // No lock file yet (or one we cannot read: the open that follows says why) is free.
        let free = std::fs::File::open(dir.join("db")).map_or(true, |f| f.try_lock().is_ok());
        if free || std::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A grid worker `duty-<compound>` in each compound, unless there is one already.
pub async fn staff(store: &Store) -> Result<(), hongfan::StoreError> {
    for compound in community().compounds.iter().map(|c| c.id.clone()) {
        let login = duty_worker(&compound.0);
        if store.office().office.people.contains_key(&login) {
            continue;
        }
        let person = Person {
            name: login.clone(),
            login,
            role: Role::Worker,
            compounds: vec![compound],
            community: Default::default(),
            communities: Vec::new(),
            buildings: Vec::new(),
            secret: String::new(),
            disabled: false,
            must_change_password: false,
        };
        let add = move |_: &hongfan_shared::office::Office| {
            Ok(OfficeChange::Person { before: None, after: Box::new(person) })
        };
        store.change_office(&Actor::system(), Box::new(add)).await?;
    }
    Ok(())
}

/// How long any explicit wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test if it takes longer than `DEADLINE`.
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// A street office's or district's configuration: `n` communities `s0001`…, each with the
/// built-in community's categories and rules and three compounds of its own (`s0001-c1`…).
pub fn district_toml(n: usize) -> String {
    let mut text = String::new();
    for i in 1..=n {
        let id = format!("s{i:04}");
        let mut one = hongfan::config::BUILT_IN
            .replace("[[compound]]\nid = \"c", &format!("[[community.compound]]\nid = \"{id}-c"))
            .replace("[[category]]", "[[community.category]]")
            .replacen("name = \"财工街社区\"", &format!("name = \"第{i}社区\""), 1);
        for table in ["escalation", "pauses", "recurring", "points", "goals", "quick_replies"] {
            one = one.replace(&format!("[{table}]"), &format!("[community.{table}]"));
        }
        text += &format!("[[community]]\nid = \"{id}\"\n{one}\n");
    }
    text
}
