//! The audit summary over a large history: 100,000 incidents and about 500,000 events.
//!
//! Run: `cargo bench -p hongfan --bench audit` (HONGFAN_BENCH_INCIDENTS sets the count;
//! HONGFAN_BENCH_COMMUNITIES spreads it over that many communities of three compounds each, as a
//! district's deployment, and adds the summary as one street office and one 书记 see it).
//! Prints the time to build the history, to reopen the store, and to compute the summary for
//! the whole history and for one month, with the process's resident memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hongfan::store::StoreOptions;
use hongfan::{ManualClock, Store};
use hongfan_shared::audit::AuditQuery;
use hongfan_shared::{
    Action, Actor, CategoryId, CompoundId, Millis, Principal, Report, Role, Scope, Timestamp,
    Urgency,
};

fn principal(id: &str, role: Role, compound: &str) -> Principal {
    Principal {
        actor: Actor { id: id.into(), name: id.into(), role },
        scope: Scope::Compounds(vec![CompoundId(compound.into())]),
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        out = Some(f());
        best = best.min(start.elapsed());
    }
    (best, out.expect("ran"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let incidents: usize = std::env::var("HONGFAN_BENCH_INCIDENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    // Cargo's scratch folder for benches: inside the target folder, never in the source tree.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let communities: usize =
        std::env::var("HONGFAN_BENCH_COMMUNITIES").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let built_in = hongfan::config::load(None)?.remove(0);
    // One community: the built-in. More: copies of it, `s0001` with `s0001-c1`…
    let compounds: Vec<String> = if communities == 1 {
        built_in.compounds.iter().map(|c| c.id.0.clone()).collect()
    } else {
        (1..=communities).flat_map(|i| (1..=3).map(move |c| format!("s{i:04}-c{c}"))).collect()
    };
    let community: Arc<[hongfan_shared::Community]> = if communities == 1 {
        vec![built_in].into()
    } else {
        (1..=communities)
            .map(|i| {
                let mut copy = built_in.clone();
                copy.id = hongfan_shared::CommunityId(format!("s{i:04}"));
                for (c, compound) in copy.compounds.iter_mut().enumerate() {
                    compound.id = CompoundId(format!("s{i:04}-c{}", c + 1));
                }
                copy
            })
            .collect()
    };
    let compounds: Arc<[String]> = compounds.into();
    let start = Timestamp(1_790_000_000_000);
    let clock = ManualClock::new(start);
    let store = Store::open(dir.path(), community.clone(), clock.clone(), StoreOptions::default())?;
    let before = rss_mib();
    let built = Instant::now();
    let chunk = 64;
    for first in (0..incidents).step_by(chunk) {
        let late = (first / chunk) % 10 == 0;
        let tasks: Vec<_> = (first..(first + chunk).min(incidents))
            .map(|n| {
                let (store, clock, compounds) = (store.clone(), clock.clone(), compounds.clone());
                tokio::spawn(async move {
                    let compound = compounds[n % compounds.len()].as_str();
                    let kiosk = principal(&format!("kiosk-{compound}"), Role::Kiosk, compound);
                    let worker = principal(&format!("worker-{}", n % 12), Role::Worker, compound);
                    let report = Report {
                        compound: CompoundId(compound.into()),
                        category: CategoryId(
                            ["repair", "elderly", "sanitation", "dispute"][n % 4].into(),
                        ),
                        urgency: if n % 7 == 0 { Urgency::Urgent } else { Urgency::Normal },
                        building: "3号楼".into(),
                        unit: "2单元".into(),
                        room: "301".into(),
                        description: "楼道灯坏了，晚上看不见".into(),
                        phone: None,
                        attachments: Vec::new(),
                        order: None,
                    };
                    let id = store.report(&kiosk, &format!("r{n}"), report).await?.incident.id;
                    if late && n % chunk == 0 {
                        clock.advance(Millis::from_hours(2));
                    }
                    store.act(&worker, id, Action::Claim).await?;
                    store.act(&worker, id, Action::Note { text: "已联系".into() }).await?;
                    store.act(&worker, id, Action::Note { text: "已上门".into() }).await?;
                    store
                        .act(&worker, id, Action::Resolve { outcome: "已办结".into(), proof: None })
                        .await?;
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        clock.advance(Millis::from_mins(60));
    }
    let events = store.last_seq()?;
    let build_time = built.elapsed();
    store.close().await?;
    drop(store);
    let reopened = Instant::now();
    let store = Store::open(dir.path(), community.clone(), clock.clone(), StoreOptions::default())?;
    let reopen_time = reopened.elapsed();
    let after = rss_mib();

    let label = |_: &str, key: &str| key.to_owned();
    let all = AuditQuery::everything(&Scope::All);
    let (whole, summary) = timed(5, || store.audit(&all, label));
    let summary = summary?;
    let month =
        AuditQuery { from: start, to: start.plus(Millis::from_hours(30 * 24)), ..all.clone() };
    let (one_month, month_summary) = timed(5, || store.audit(&month, label));
    let c1 = AuditQuery { compound: Some(CompoundId(compounds[0].clone())), ..all };
    let (filtered, _) = timed(5, || store.audit(&c1, label));
    // As the people of a district see it: a street office running every community, and the
    // 书记 of one.
    let scope = |ids: &[&hongfan_shared::Community]| Scope::Communities {
        communities: ids.iter().map(|c| c.id.clone()).collect(),
        compounds: ids.iter().flat_map(|c| c.compounds.iter().map(|c| c.id.clone())).collect(),
    };
    let everyone: Vec<&hongfan_shared::Community> = community.iter().collect();
    let street = AuditQuery::everything(&scope(&everyone));
    let (street_time, street_summary) = timed(5, || store.audit(&street, label));
    let one = AuditQuery::everything(&scope(&everyone[..1]));
    let (one_time, one_summary) = timed(5, || store.audit(&one, label));
    println!(
        "history: {incidents} incidents, {events} events, built in {:.1} s",
        build_time.as_secs_f64()
    );
    println!(
        "reopen (load state, audit rows, request index): {:.0} ms",
        reopen_time.as_secs_f64() * 1e3
    );
    println!(
        "audit summary, whole history ({} reports, {} breaches): {:.1} ms",
        summary.figures.reports,
        summary.figures.breaches,
        whole.as_secs_f64() * 1e3
    );
    println!(
        "audit summary, one month ({} reports): {:.1} ms",
        month_summary?.figures.reports,
        one_month.as_secs_f64() * 1e3
    );
    println!("audit summary, one compound, whole history: {:.1} ms", filtered.as_secs_f64() * 1e3);
    println!(
        "audit summary, a street office running all {communities} communities ({} reports): {:.1} ms",
        street_summary?.figures.reports,
        street_time.as_secs_f64() * 1e3
    );
    println!(
        "audit summary, the 书记 of one community ({} reports): {:.1} ms",
        one_summary?.figures.reports,
        one_time.as_secs_f64() * 1e3
    );
    println!("resident memory: {before:.0} MiB before, {after:.0} MiB with the history loaded");
    store.close().await?;
    Ok(())
}
