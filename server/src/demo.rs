//! `hongfan demo`: fills an empty data folder with demo accounts and a deterministic, realistic
//! month of history across the compounds, so a newcomer sees a lived-in board and audit page.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use hongfan_shared::office::{Rota, Shift};
use hongfan_shared::{
    Action, AnswerSource, CategoryId, Community, CompoundId, IncidentId, Millis, Principal, Rating,
    Report, Role, Scope, Timestamp, Urgency,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::store::{Store, StoreOptions};
use crate::{auth::Accounts, office::NewPerson};

/// The demo's password for every account: it is a demo.
pub const PASSWORD: &str = "hongfan-demo";

const DESCRIPTIONS: &[(&str, &str)] = &[
    ("elderly", "独居老人需要帮忙买菜送药"),
    ("elderly", "老人腿脚不便，想申请上门理发"),
    ("subsistence", "咨询低保年审需要的材料"),
    ("relief", "家里突发困难，想了解临时救助"),
    ("family_planning", "办理生育登记需要哪些证明"),
    ("dispute", "楼上漏水到楼下，邻居协商不成"),
    ("dispute", "楼道堆放杂物，邻里有矛盾"),
    ("repair", "楼道灯坏了，晚上看不见"),
    ("repair", "单元门禁坏了，门关不上"),
    ("repair", "雨水管堵塞，下雨就积水"),
    ("sanitation", "垃圾桶满了没人清运"),
    ("sanitation", "绿化带里有人乱扔垃圾"),
    ("safety", "电动车在楼道里充电，很危险"),
    ("safety", "小区路口井盖松动"),
    ("other", "想报名小板凳红色宣讲队"),
];

const WORKERS: &[(&str, &str, &str)] = &[
    ("wangfang", "王芳", "c1"),
    ("liqiang", "李强", "c1"),
    ("zhaomin", "赵敏", "c2"),
    ("sunli", "孙丽", "c2"),
    ("zhouwei", "周伟", "c3"),
    ("wujing", "吴静", "c3"),
];

fn as_principal(id: &str, name: &str, role: Role, compound: Option<&str>) -> Principal {
    let actor = hongfan_shared::Actor { id: id.into(), name: name.into(), role };
    let scope = match compound {
        Some(c) => Scope::Compounds(vec![CompoundId(c.into())]),
        None => Scope::All,
    };
    Principal { actor, scope }
}

/// One step of the demo history, applied in time order.
struct Step {
    at: Timestamp,
    incident: usize,
    what: StepKind,
}

enum StepKind {
    /// A report at the kiosk, or (`true`) by the building head for a resident (代报).
    Report(Box<Report>, bool),
    /// A note for the resident from the building head.
    Tell(&'static str),
    /// 挂起 asked, decided by the 书记 (approved or not), and resumed by the worker.
    Pause(&'static str),
    DecidePause(bool),
    Resume,
    /// The building head's patrol round (not an incident's step); what was found, if anything.
    Patrol(&'static str),
    /// The 书记's correction of the building head's points.
    Adjust,
    /// 调解: handed to 周楼长, and settled by them.
    Mediate,
    Settle,
    Claim,
    Note(&'static str),
    HandOver,
    Return,
    Resolve(&'static str),
    Cancel,
    /// The resident's answer, from where it came, solved or not.
    Rate(Rating, bool, AnswerSource),
}

/// When the office opens and closes, Asia/Shanghai (from midnight).
const OPENS: Millis = Millis::from_hours(8);
const CLOSES: Millis = Millis::from_hours(20);

/// `at`, or when the office next opens if it is closed then: what the grid workers, building
/// heads and supervisors do happens in the office's day, not at 4 am. Never earlier, and never
/// out of order (a later time never moves before an earlier one).
fn in_office_hours(at: Timestamp) -> Timestamp {
    let day = hongfan_shared::audit::day_start(at);
    let into = at.since(day);
    if into < OPENS {
        day.plus(OPENS)
    } else if into >= CLOSES {
        day.plus(Millis::from_hours(24)).plus(OPENS)
    } else {
        at
    }
}

/// Fills `dir` (which must be empty or missing) and prints the accounts to `out`.
pub async fn fill(dir: &Path, config: Option<&Path>, out: &mut impl Write) -> anyhow::Result<()> {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        anyhow::bail!("{} is not empty: the demo fills only a new data folder", dir.display());
    }
    let communities: Arc<[Community]> = crate::config::load(config)?.into();
    // The demo's people and reports are the first community's.
    let community = communities.first().cloned().context("no community configured")?;
    let now = SystemClock.now();
    let start = Timestamp(hongfan_shared::audit::day_start(now).0 - 30 * 86_400_000);
    let clock = ManualClock::new(start);
    let store = Store::open(dir, communities, clock.clone(), StoreOptions::default())?;
    let accounts = Accounts::new(store.clone(), clock.clone())?;
    let system = Principal::system();
    let person =
        |login: &str, name: &str, role, compounds: &[&str], buildings: &[&str]| NewPerson {
            login: login.into(),
            name: name.into(),
            role,
            community: None,
            compounds: compounds.iter().map(|c| CompoundId((*c).into())).collect(),
            communities: Vec::new(),
            buildings: buildings.iter().map(|b| (*b).into()).collect(),
        };
    accounts
        .add_user(&system, person("shuji", "书记", Role::Supervisor, &[], &[]), PASSWORD)
        .await?;
    let leader = person("wanggezhang", "钱网格长", Role::Supervisor, &["c1"], &[]);
    accounts.add_user(&system, leader, PASSWORD).await?;
    for (login, name, compound) in WORKERS {
        let worker = person(login, name, Role::Worker, &[compound], &[]);
        accounts.add_user(&system, worker, PASSWORD).await?;
    }
    let head = person("louzhang", "周楼长", Role::BuildingHead, &["c1"], &["3号楼", "5号楼"]);
    accounts.add_user(&system, head, PASSWORD).await?;
    let mut kiosks = Vec::new();
    for compound in &community.compounds {
        kiosks.push((compound.id.clone(), accounts.add_kiosk(&system, &compound.id, "").await?));
    }
    // Each compound's two workers split the weekday: mornings and afternoons; the first of
    // them answers nights and weekends.
    for compound in &community.compounds {
        let workers: Vec<String> = WORKERS
            .iter()
            .filter(|(_, _, c)| *c == compound.id.0)
            .map(|(login, _, _)| (*login).to_owned())
            .collect();
        let [first, second] = workers.as_slice() else { continue };
        let day = vec![
            Shift { from: 8 * 60 + 30, to: 12 * 60, workers: vec![first.clone()] },
            Shift { from: 12 * 60, to: 17 * 60 + 30, workers: vec![second.clone()] },
        ];
        let mut rota = Rota { otherwise: vec![first.clone()], ..Rota::default() };
        rota.week.iter_mut().take(5).for_each(|d| *d = day.clone());
        crate::office::set_rota(&store, &system, compound.id.clone(), rota).await?;
    }

    // A fixed seed: every demo folder tells the same month.
    let mut rng = StdRng::seed_from_u64(20_201_108);
    let mut steps = Vec::new();
    let mut incident = 0;
    for day in 0..30u64 {
        for _ in 0..rng.random_range(8..16) {
            let (category, text) = DESCRIPTIONS[rng.random_range(0..DESCRIPTIONS.len())];
            let compound = ["c1", "c2", "c3"][rng.random_range(0..3)];
            // Reports come between 07:00 and 21:00 Shanghai time.
            let minute = rng.random_range(7 * 60..21 * 60);
            let at = start.plus(Millis::from_hours(day * 24)).plus(Millis::from_mins(minute));
            if at >= now {
                continue;
            }
            let urgency = if rng.random_bool(0.15) { Urgency::Urgent } else { Urgency::Normal };
            // A building the compound has, and one of its units.
            let buildings = &community
                .compound(&CompoundId(compound.into()))
                .ok_or_else(|| anyhow::anyhow!("the demo needs the built-in compounds"))?
                .buildings;
            let building = &buildings[rng.random_range(0..buildings.len())];
            let unit = match building.units.len() {
                0 => String::new(),
                n => building.units[rng.random_range(0..n)].clone(),
            };
            let report = Report {
                compound: CompoundId(compound.into()),
                category: CategoryId(category.into()),
                urgency,
                building: building.name.clone(),
                unit,
                room: format!("{}0{}", rng.random_range(1..7), rng.random_range(1..4)),
                description: text.into(),
                phone: rng
                    .random_bool(0.7)
                    .then(|| format!("139{:08}", rng.random_range(0..100_000_000))),
                attachments: Vec::new(),
                order: None,
            };
            // Some of 第一小区's 3号楼 reports come through its building head (代报).
            let by_head = compound == "c1" && rng.random_bool(0.12);
            let report =
                if by_head { Report { building: "3号楼".into(), ..report } } else { report };
            steps.push(Step { at, incident, what: StepKind::Report(Box::new(report), by_head) });
            let target = community
                .category(&CategoryId(category.into()))
                .map(|c| c.targets.for_urgency(urgency))
                .ok_or_else(|| anyhow::anyhow!("the demo needs the built-in categories"))?;
            let mut t = at;
            let mut later = |share: f64| {
                t = t.plus(Millis((target.respond.0 as f64 * share) as u64 + 60_000));
                t
            };
            if rng.random_bool(0.04) {
                steps.push(Step { at: later(0.2), incident, what: StepKind::Cancel });
            } else {
                // Most are answered well within target, some late, a few not yet.
                let share = if rng.random_bool(0.12) {
                    rng.random_range(1.1..3.0)
                } else {
                    rng.random_range(0.05..0.9)
                };
                steps.push(Step { at: later(share), incident, what: StepKind::Claim });
                steps.push(Step {
                    at: later(0.3),
                    incident,
                    what: StepKind::Note("已电话联系居民，约好上门时间"),
                });
                if category == "dispute" && compound == "c1" {
                    steps.push(Step { at: later(0.4), incident, what: StepKind::Mediate });
                    steps.push(Step { at: later(6.0), incident, what: StepKind::Settle });
                }
                if by_head {
                    let tell = StepKind::Tell("已和网格员说好，明天上午上门，请您在家");
                    steps.push(Step { at: later(0.2), incident, what: tell });
                }
                if rng.random_bool(0.08) {
                    let reasons = ["等待居民在家", "等待物业/施工方", "等待街道批复"];
                    let pause = StepKind::Pause(reasons[rng.random_range(0..reasons.len())]);
                    steps.push(Step { at: later(0.3), incident, what: pause });
                    let approve = rng.random_bool(0.75);
                    let decided = later(0.6);
                    steps.push(Step {
                        at: decided,
                        incident,
                        what: StepKind::DecidePause(approve),
                    });
                    if approve {
                        let resumed = decided.plus(Millis::from_hours(rng.random_range(3..30)));
                        steps.push(Step { at: resumed, incident, what: StepKind::Resume });
                    }
                }
                if category == "subsistence" || rng.random_bool(0.1) {
                    steps.push(Step { at: later(1.0), incident, what: StepKind::HandOver });
                    steps.push(Step { at: later(8.0), incident, what: StepKind::Return });
                }
                let resolve = Millis((target.resolve.0 as f64 * rng.random_range(0.1..1.3)) as u64);
                let done = t.plus(resolve);
                steps.push(Step {
                    at: done,
                    incident,
                    what: StepKind::Resolve("已上门处理，居民确认"),
                });
                let source = match rng.random_range(0..10) {
                    0..=3 => AnswerSource::Kiosk,
                    4..=6 => AnswerSource::StatusPage,
                    _ => AnswerSource::Callback,
                };
                let answered = done.plus(Millis::from_mins(if source == AnswerSource::Callback {
                    26 * 60
                } else {
                    5
                }));
                if rng.random_bool(0.08) {
                    // 二次办理: not solved, handled again, then answered again.
                    let rate = StepKind::Rate(Rating::Dissatisfied, false, source);
                    steps.push(Step { at: answered, incident, what: rate });
                    let claim = answered.plus(Millis::from_mins(20));
                    steps.push(Step { at: claim, incident, what: StepKind::Claim });
                    let again = claim.plus(Millis::from_hours(5));
                    let resolve = StepKind::Resolve("再次上门，已彻底修好");
                    steps.push(Step { at: again, incident, what: resolve });
                    let rate = StepKind::Rate(Rating::BasicallySatisfied, true, source);
                    steps.push(Step {
                        at: again.plus(Millis::from_mins(30)),
                        incident,
                        what: rate,
                    });
                } else if rng.random_bool(0.7) {
                    let rating = match rng.random_range(0..10) {
                        0 => Rating::Dissatisfied,
                        1..=2 => Rating::BasicallySatisfied,
                        _ => Rating::Satisfied,
                    };
                    let rate = StepKind::Rate(rating, true, source);
                    steps.push(Step { at: answered, incident, what: rate });
                }
            }
            incident += 1;
        }
    }
    // The building head patrols 3号楼 and 5号楼 every third morning; the 书记 corrects once.
    for day in (1..30u64).step_by(3) {
        let at = start.plus(Millis::from_hours(day * 24 + 9)); // 09:00 Shanghai
        let found =
            if day % 9 == 1 { "5号楼楼道堆放纸箱，堵住消防通道" } else { "" };
        steps.push(Step { at, incident: usize::MAX, what: StepKind::Patrol(found) });
    }
    let at = start.plus(Millis::from_hours(20 * 24 + 10));
    steps.push(Step { at, incident: usize::MAX, what: StepKind::Adjust });
    // People act in the office's day; residents report when they like.
    for step in &mut steps {
        if !matches!(step.what, StepKind::Report(..)) {
            step.at = in_office_hours(step.at);
        }
    }
    steps.retain(|s| s.at < now);
    steps.sort_by_key(|s| s.at);
    let head = as_principal("louzhang", "周楼长", Role::BuildingHead, Some("c1"));
    let shuji = as_principal("shuji", "书记", Role::Supervisor, None);

    let mut ids: Vec<Option<(IncidentId, String, Principal)>> = vec![None; incident];
    for step in steps {
        clock.set(step.at);
        let kiosk_of = |compound: &CompoundId| {
            kiosks
                .iter()
                .find(|(c, _)| c == compound)
                .map(|(c, (k, _))| as_principal(&k.id, &k.name, Role::Kiosk, Some(&c.0)))
        };
        match step.what {
            StepKind::Patrol(found) => {
                let patrol = hongfan_shared::points::Patrol {
                    buildings: vec!["3号楼".into(), "5号楼".into()],
                    checked: "消防通道、楼道杂物、电动车充电".into(),
                    found: found.into(),
                };
                crate::office::record_patrol(&store, &head, patrol).await?;
            }
            StepKind::Adjust => {
                let why = "组织3号楼楼道大扫除".to_owned();
                crate::office::adjust_points(&store, &shuji, "louzhang".into(), 2, why, None)
                    .await?;
            }
            StepKind::Report(report, by_head) => {
                let Some(kiosk) = kiosk_of(&report.compound) else { continue };
                let reporter = if by_head { head.clone() } else { kiosk };
                let compound = report.compound.0.clone();
                let reported =
                    store.report(&reporter, &format!("demo-{}", step.incident), *report).await?;
                let workers: Vec<_> = WORKERS.iter().filter(|(_, _, c)| *c == compound).collect();
                let (login, name, c) = workers[step.incident % workers.len()];
                ids[step.incident] = Some((
                    reported.incident.id,
                    compound,
                    as_principal(login, name, Role::Worker, Some(c)),
                ));
            }
            kind => {
                let Some((id, compound, worker)) = ids[step.incident].clone() else { continue };
                let action = match kind {
                    StepKind::Claim => Action::Claim,
                    StepKind::Note(text) => Action::Note { text: text.into() },
                    StepKind::HandOver => {
                        Action::HandOver { note: "需街道审批，代为提交".into() }
                    }
                    StepKind::Return => {
                        Action::Return { note: "街道已办结，材料已取回".into() }
                    }
                    StepKind::Resolve(outcome) => {
                        Action::Resolve { outcome: outcome.into(), proof: None }
                    }
                    StepKind::Cancel => Action::Cancel { reason: "重复上报".into() },
                    StepKind::Tell(text) => {
                        let _ = store.act(&head, id, Action::Tell { text: text.into() }).await;
                        continue;
                    }
                    StepKind::Pause(reason) => Action::Pause { reason: reason.into() },
                    StepKind::DecidePause(approve) => {
                        let _ = store.act(&shuji, id, Action::DecidePause { approve }).await;
                        continue;
                    }
                    StepKind::Resume => Action::Resume,
                    StepKind::Mediate => Action::Mediate { to: head.clone() },
                    StepKind::Settle => {
                        let outcome = "双方已和解，约定互相体谅".into();
                        let settle = Action::EndMediation { outcome, settled: true };
                        let _ = store.act(&head, id, settle).await;
                        continue;
                    }
                    StepKind::Rate(rating, solved, source) => {
                        let Some(kiosk) = kiosk_of(&CompoundId(compound.clone())) else {
                            continue;
                        };
                        // The slip the resident kept, at the kiosk or on the status page; or
                        // the compound leader's 回访.
                        let key = store.incident(id).await?.and_then(|i| i.key);
                        let who = match source {
                            AnswerSource::Kiosk => kiosk,
                            AnswerSource::StatusPage => Principal::resident(),
                            // 周楼长 calls back half of 第一小区's; the leader the rest.
                            AnswerSource::Callback
                                if compound == "c1" && step.incident % 2 == 0 =>
                            {
                                head.clone()
                            }
                            AnswerSource::Callback => as_principal(
                                "wanggezhang",
                                "钱网格长",
                                Role::Supervisor,
                                Some(&compound),
                            ),
                        };
                        let action = Action::Rate { rating, key, solved };
                        // The leader's 回访 reaches only their compound; others are left unanswered.
                        let _ = store.act(&who, id, action).await;
                        continue;
                    }
                    StepKind::Report(..) | StepKind::Patrol(_) | StepKind::Adjust => continue,
                };
                // A step made moot by an earlier one (a cancelled report) is skipped.
                let _ = store.act(&worker, id, action).await;
            }
        }
    }
    clock.set(now);
    store.tick().await?;
    let count = store.audit_rows(&hongfan_shared::audit::AuditQuery::everything(&Scope::All))?;
    store.close().await?;

    writeln!(out, "demo data in {}: {} incidents over 30 days", dir.display(), count.len())?;
    writeln!(out, "every account's password: {PASSWORD}")?;
    writeln!(out, "  supervisor 书记: shuji")?;
    writeln!(out, "  compound leader 钱网格长 (c1): wanggezhang")?;
    for (login, name, compound) in WORKERS {
        writeln!(out, "  worker {name} ({compound}): {login}")?;
    }
    writeln!(out, "  building head 周楼长 (c1): louzhang")?;
    for (compound, (kiosk, credential)) in &kiosks {
        writeln!(out, "  kiosk {} ({}): /kiosk#pair={credential}", kiosk.id, compound.0)?;
    }
    writeln!(out, "start it: hongfan --data-dir {}", dir.display())?;
    Ok(())
}
