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
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
            .arg(dir.path())
            .arg(format!("round{round}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start crash_writer");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // Kill at a different point each round, while sixteen writers are mid-flight.
        let kill_after = 50 + (round * 37) % 400;
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
        for line in lines.map_while(Result::ok) {
            let parts: Vec<&str> = line.split(' ').collect();
            if let ["ack", request, id] = parts[..] {
                acked.insert(request.to_owned(), id.parse().expect("id"));
                kills_mid_write += 1;
            }
        }
        child.wait().expect("reap");

        // Looked at read-only: the check must not add to what it checks.
        let clock = ManualClock::new(T0);
        let options = StoreOptions { mode: Mode::ReadOnly, ..Default::default() };
        let store = open_store_with(dir.path(), &clock, options).await.expect("reopen after kill");
        for (request, &id) in &acked {
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
