//! Kill -9 while reports are being acknowledged: every acknowledged report is there afterwards.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use hongfan::ManualClock;
use hongfan_shared::IncidentId;
use hongfan_tests::{T0, open_store};

/// Rounds of start, write, kill; set HONGFAN_CRASH_ROUNDS for a longer run.
fn rounds() -> usize {
    std::env::var("HONGFAN_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(25)
}

#[tokio::test]
async fn every_acknowledged_report_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut kills_mid_write = 0;
    for round in 0..rounds() {
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

        let clock = ManualClock::new(T0);
        let store = open_store(dir.path(), &clock).expect("reopen after kill");
        for (request, &id) in &acked {
            let incident = store.incident(IncidentId(id)).await.unwrap();
            let incident = incident.unwrap_or_else(|| panic!("acknowledged report {request} lost"));
            assert_eq!(&incident.request_id, request);
        }
        let log = store.events_after(0, usize::MAX).unwrap();
        assert!(log.iter().enumerate().all(|(n, e)| e.seq == n as u64 + 1), "gap in the log");
        store.close().await.unwrap();
    }
    eprintln!(
        "crash test: {} rounds, {} acknowledged reports checked after every round, {} acks read after the kill",
        rounds(),
        acked.len(),
        kills_mid_write
    );
    assert!(acked.len() >= rounds() * 50);
}
