//! Group commit: durable reports per second and acknowledgement latency with 1 and with 64
//! concurrent writers, straight against the store (no network).
//!
//! Run: `cargo bench -p hongfan --bench group_commit` (HONGFAN_BENCH_SECS sets the length of each
//! run, default 5). Writes into a temporary folder under cargo's `CARGO_TARGET_TMPDIR`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hongfan::store::StoreOptions;
use hongfan::{Store, SystemClock};
use hongfan_shared::{Actor, CategoryId, CompoundId, Principal, Report, Role, Scope, Urgency};

fn kiosk(compound: &str) -> Principal {
    Principal {
        actor: Actor { id: format!("kiosk-{compound}"), name: "bench".into(), role: Role::Kiosk },
        scope: Scope::Compounds(vec![CompoundId(compound.into())]),
    }
}

fn report(compound: &str, n: usize) -> Report {
    Report {
        compound: CompoundId(compound.into()),
        category: CategoryId("repair".into()),
        urgency: Urgency::Normal,
        building: "3号楼".into(),
        unit: "2单元".into(),
        room: format!("{}", 100 + n % 600),
        description: "楼道灯坏了，晚上看不见路，请尽快来修".into(),
        phone: Some("13800001234".into()),
        attachments: Vec::new(),
        order: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(writers: usize, secs: u64) -> anyhow::Result<()> {
    // Cargo's scratch folder for benches: inside the target folder, never in the source tree.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let store = Store::open(
        dir.path(),
        hongfan::config::load(None)?.into(),
        Arc::new(SystemClock),
        StoreOptions::default(),
    )?;
    let stop = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let compound = ["c1", "c2", "c3"][w % 3];
                let who = kiosk(compound);
                let mut latencies = Vec::new();
                let mut n = 0;
                while Instant::now() < stop {
                    let sent = Instant::now();
                    store.report(&who, &format!("w{w}-{n}"), report(compound, n)).await?;
                    latencies.push(sent.elapsed());
                    n += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = start.elapsed();
    store.close().await?;
    all.sort();
    println!(
        "writers {writers:>3}: {:>7} reports in {:.1} s = {:>7.0} durable reports/s; ack p50 {:>6.2} ms, p99 {:>6.2} ms, p99.9 {:>6.2} ms, max {:>6.2} ms",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        percentile(&all, 50.0).as_secs_f64() * 1e3,
        percentile(&all, 99.0).as_secs_f64() * 1e3,
        percentile(&all, 99.9).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = std::env::var("HONGFAN_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    for writers in [1, 64] {
        run(writers, secs).await?;
    }
    Ok(())
}
