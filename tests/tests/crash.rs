//! Kill -9 while reports are being acknowledged: every acknowledged report is there afterwards,
//! once, with the escalation it was acknowledged with (nobody is on duty in the child).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use hongfan::ManualClock;
use hongfan::store::{Mode, StoreOptions};
use hongfan_shared::IncidentId;
use hongfan_tests::{T0, open_store_with};

/// Rounds of start, write, kill; set HONGFAN_CRASH_ROUNDS for a longer run.
fn rounds() -> usize {
    std::env::var("HONGFAN_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(25)
}

/// Rounds on one data folder before a fresh one: every check reads everything acknowledged so
/// far, so a soak of a thousand rounds (HONGFAN_CRASH_FOLDER_ROUNDS=50) stays linear.
fn rounds_per_folder() -> usize {
    std::env::var("HONGFAN_CRASH_FOLDER_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1000)
}

/// Starts the writer on `dir`, reads `kill_after` acknowledgements, kills it (SIGKILL) and
/// reads the acknowledgements printed meanwhile: every one into `acked`. Returns how many came
/// after the kill was decided.
fn write_and_kill(
    dir: &std::path::Path,
    round: usize,
    kill_after: usize,
    acked: &mut HashMap<String, u64>,
) -> usize {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
        .arg(dir)
        .arg(format!("round{round}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash_writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = 0;
    while seen < kill_after {
        let line = lines.next().expect("crash_writer ended early").expect("read");
        let mut parts = line.split(' ');
        assert_eq!(parts.next(), Some("ack"), "{line}");
        let request = parts.next().expect("request").to_owned();
        let id: u64 = parts.next().expect("id").parse().expect("id");
        acked.insert(request, id);
        seen += 1;
    }
    child.kill().expect("SIGKILL");
    // Acks printed between our last read and the kill count too.
    let mut late = 0;
    for line in lines.map_while(Result::ok) {
        let parts: Vec<&str> = line.split(' ').collect();
        if let ["ack", request, id] = parts[..] {
            acked.insert(request.to_owned(), id.parse().expect("id"));
            late += 1;
        }
    }
    child.wait().expect("reap");
    late
}

/// Every report in `acked` is in the store once, with its escalation; the log has no gap.
/// Returns (doubled, escalations missing).
async fn check(store: &hongfan::store::Store, acked: &HashMap<String, u64>) -> (usize, usize) {
    let (mut doubled, mut escalations_missing) = (0, 0);
    for (request, &id) in acked {
        let incident = store.incident(IncidentId(id)).await.unwrap();
        let incident = incident.unwrap_or_else(|| panic!("acknowledged report {request} lost"));
        assert_eq!(&incident.request_id, request);
        if !incident.escalated {
            escalations_missing += 1;
        }
    }
    let log = store.events_after_blocking(0, usize::MAX).unwrap();
    assert!(log.iter().enumerate().all(|(n, e)| e.seq == n as u64 + 1), "gap in the log");
    // Stored once: no request id names two incidents.
    let mut stored = HashMap::new();
    for event in &log {
        if let hongfan_shared::Change::Reported { request_id, .. } = &event.change
            && let Some(first) = stored.insert(request_id.clone(), event.incident)
        {
            doubled += 1;
            eprintln!("{request_id} stored twice: {first:?} and {:?}", event.incident);
        }
    }
    (doubled, escalations_missing)
}

#[tokio::test]
async fn every_acknowledged_report_survives_sigkill() {
    let mut dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<String, u64> = HashMap::new();
    let (mut total_acked, mut kills_mid_write) = (0, 0);
    let (mut doubled, mut escalations_missing) = (0, 0);
    for round in 0..rounds() {
        if round > 0 && round % rounds_per_folder() == 0 {
            total_acked += acked.len();
            acked.clear();
            dir = tempfile::tempdir().unwrap();
        }
        // Kill at a different point each round, while sixteen writers are mid-flight.
        kills_mid_write += write_and_kill(dir.path(), round, 50 + (round * 37) % 400, &mut acked);
        // Looked at read-only: the check must not add to what it checks.
        let clock = ManualClock::new(T0);
        let options = StoreOptions { mode: Mode::ReadOnly, ..Default::default() };
        let store = open_store_with(dir.path(), &clock, options).await.expect("reopen after kill");
        let (d, e) = check(&store, &acked).await;
        (doubled, escalations_missing) = (doubled + d, escalations_missing + e);
        store.close().await.unwrap();
        assert_eq!((doubled, escalations_missing), (0, 0), "after round {round}");
    }
    eprintln!(
        "crash test: {} rounds, {} acknowledged reports checked after every round ({} acks read after the kill): 0 lost, {doubled} doubled, {escalations_missing} escalations missing",
        rounds(),
        total_acked + acked.len(),
        kills_mid_write
    );
    assert!(total_acked + acked.len() >= rounds() * 50);
}

/// Rounds of the damage test; HONGFAN_DAMAGE_ROUNDS for a soak.
fn damage_rounds() -> usize {
    std::env::var("HONGFAN_DAMAGE_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20)
}

/// What a power cut can leave of sled's files, whose writes between checkpoints sled only
/// `sync_file_range`s: the file cut short, blocks never written (zeros), blocks of garbage,
/// blocks written out of order (a newer one over an older place), the `conf` file empty or gone.
/// A small xorshift picks, so a failing round can be run again.
fn damage_sled(dir: &std::path::Path, round: usize) -> &'static str {
    let mut seed = (round as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let db = dir.join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let blocks = (bytes.len() / 4096).max(1);
    let kind = ["cut short", "zeros", "garbage", "out of order", "conf lost"][round % 5];
    match kind {
        "cut short" => bytes.truncate(next() as usize % (bytes.len() + 1)),
        "conf lost" => {
            std::fs::write(dir.join("conf"), b"").unwrap();
            bytes.truncate(bytes.len() / 3);
        }
        _ => {
            for _ in 0..1 + next() % 8 {
                let at = (next() as usize % blocks) * 4096;
                let end = (at + 4096).min(bytes.len());
                match kind {
                    "zeros" => bytes[at..end].fill(0),
                    "garbage" => bytes[at..end].iter_mut().for_each(|b| *b = next() as u8),
                    _ => {
                        let from = (next() as usize % blocks) * 4096;
                        let block: Vec<u8> = bytes[from..(from + 4096).min(bytes.len())].to_vec();
                        let n = block.len().min(end - at);
                        bytes[at..at + n].copy_from_slice(&block[..n]);
                    }
                }
            }
        }
    }
    std::fs::write(&db, &bytes).unwrap();
    kind
}

/// sled's files damaged after each kill -9 as a power cut may leave them: every folder opens
/// (sled rebuilt from the event log where it must be), every acknowledged report is there once,
/// and `verify` finds nothing wrong after.
#[tokio::test]
async fn sleds_files_damaged_by_a_power_cut_never_cost_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for round in 0..damage_rounds() {
        write_and_kill(dir.path(), round, 30 + (round * 37) % 200, &mut acked);
        *kinds.entry(damage_sled(dir.path(), round)).or_default() += 1;
        let clock = ManualClock::new(T0);
        let options = StoreOptions { mode: Mode::ReadOnly, ..Default::default() };
        let store = open_store_with(dir.path(), &clock, options)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the folder does not open: {e}"));
        let (doubled, escalations_missing) = check(&store, &acked).await;
        assert_eq!((doubled, escalations_missing), (0, 0), "after round {round}");
        store.close().await.unwrap();
        drop(store);
        hongfan_tests::until_released(dir.path()).await;
        let report = hongfan::store::backup::verify(dir.path()).unwrap();
        assert!(report.problems.is_empty(), "round {round}: {:?}", report.problems);
    }
    eprintln!(
        "damage test: {} rounds ({kinds:?}), {} acknowledged reports: 0 lost, 0 doubled, every folder opened, verify clean",
        damage_rounds(),
        acked.len()
    );
}
