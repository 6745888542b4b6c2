//! Damage that sled reads back without complaint — an old event changed or missing — is caught
//! by the checksum chain: `verify` names the first bad event, and start-up rebuilds sled from
//! the event log, which has them as they were; a folder without an event log is refused.
//! Folders of the first format (no checksums) are upgraded in place on open.

use std::path::Path;

use hongfan::store::backup::verify;
use hongfan::store::{Mode, StoreOptions};
use hongfan::{ManualClock, StoreError};
use hongfan_tests::{T0, everyone_on_duty, kiosk, open_store, open_store_with, report};

/// A closed data folder with `n` reports (events 1..=n), every one in the event log's
/// segments, none left in the write-ahead log (whose records a start applies again).
async fn folder_with_reports(dir: &Path, n: usize) {
    let clock = ManualClock::new(T0);
    let options = StoreOptions { segment_bytes: 1, duty: everyone_on_duty(), ..Default::default() };
    let store = open_store_with(dir, &clock, options).await.unwrap();
    for i in 0..n {
        store
            .report(&kiosk("c1"), &format!("r{i}"), report("c1", &format!("第{i}件")))
            .await
            .unwrap();
    }
    store.close().await.unwrap();
}

/// Changes the log behind the store's back, as silent damage would.
fn tamper(dir: &Path, change: impl FnOnce(&sled::Tree)) {
    let db = sled::open(dir).unwrap();
    let events = db.open_tree("events").unwrap();
    change(&events);
    db.flush().unwrap();
}

fn copy(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg("-r").arg(from).arg(to).status().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn an_old_event_changed_or_lost_is_named_at_start_and_by_verify() {
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good");
    folder_with_reports(&good, 30).await;

    // Event 5's description changed: still valid JSON, so only the chain can tell.
    let changed = root.path().join("changed");
    copy(&good, &changed);
    tamper(&changed, |events| {
        let key = 5u64.to_be_bytes();
        let stored = events.get(key).unwrap().unwrap().to_vec();
        let text = String::from_utf8(stored[4..].to_vec()).unwrap().replace("第4件", "第9件");
        let mut forged = stored[..4].to_vec();
        forged.extend_from_slice(text.as_bytes());
        events.insert(key, forged).unwrap();
    });
    // Event 7 gone.
    let lost = root.path().join("lost");
    copy(&good, &lost);
    tamper(&lost, |events| {
        events.remove(7u64.to_be_bytes()).unwrap();
    });

    let clock = ManualClock::new(T0);
    for (dir, named) in [
        (&changed, "event 5 is damaged: its checksum does not follow from the events before it"),
        (&lost, "event 7 is missing"),
    ] {
        let report = verify(dir).unwrap();
        assert!(
            report.problems.first().is_some_and(|p| p.contains(named)),
            "{:?} {:?}",
            report.problems,
            report.rebuilt
        );
        // Without its event log (a folder of before), the folder is refused, naming it.
        let bare = root.path().join(format!("{}-bare", dir.file_name().unwrap().to_string_lossy()));
        copy(dir, &bare);
        std::fs::remove_dir_all(bare.join("log")).unwrap();
        let err = open_store(&bare, &clock).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(named), "{err}");
        // With it, the server rebuilds sled at start: every event as it was, verify clean.
        let store = open_store(dir, &clock).await.unwrap();
        let log = store.events_after_blocking(0, usize::MAX).unwrap();
        assert_eq!(log.len(), 30);
        let fifth = serde_json::to_string(&log[4]).unwrap();
        assert!(fifth.contains("第4件") && !fifth.contains("第9件"), "{fifth}");
        store.close().await.unwrap();
        drop(store);
        assert!(verify(dir).unwrap().problems.is_empty());
    }
    // One damaged event is reported once, not again for every event after it.
    let again = root.path().join("changed-again");
    copy(&good, &again);
    tamper(&again, |events| {
        let key = 5u64.to_be_bytes();
        let stored = events.get(key).unwrap().unwrap().to_vec();
        events.insert(key, [&stored[..4], b"{}"].concat()).unwrap();
    });
    let report = verify(&again).unwrap();
    assert_eq!(report.problems.iter().filter(|p| p.contains("checksum")).count(), 1);
    assert!(verify(&good).unwrap().problems.is_empty());
}

#[tokio::test]
async fn a_folder_of_the_first_format_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    folder_with_reports(dir.path(), 25).await;
    // Back to the first format: events as bare JSON, the old format mark.
    {
        let db = sled::open(dir.path()).unwrap();
        let events = db.open_tree("events").unwrap();
        for entry in events.iter() {
            let (k, v) = entry.unwrap();
            events.insert(k, v[4..].to_vec()).unwrap();
        }
        db.open_tree("meta").unwrap().insert("format", "hongfan-1").unwrap();
        db.flush().unwrap();
    }
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let log = store.events_after_blocking(0, usize::MAX).unwrap();
    assert_eq!(log.len(), 25);
    store.report(&kiosk("c1"), "after", report("c1", "升级之后")).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let report = verify(dir.path()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.events, 26);
    let options = StoreOptions { mode: Mode::ReadOnly, ..Default::default() };
    let store = open_store_with(dir.path(), &clock, options).await.unwrap();
    assert_eq!(store.last_seq().unwrap(), 26);
}

/// A folder written before there was an event log (no `log/`) opens as it is, and its first
/// start begins the event log with everything it holds: from then on its sled can be rebuilt.
#[tokio::test]
async fn a_folder_from_before_the_event_log_begins_one_at_its_first_start() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("old");
    folder_with_reports(&dir, 12).await;
    std::fs::remove_dir_all(dir.join("log")).unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(&dir, &clock).await.unwrap();
    store.report(&kiosk("c1"), "after", report("c1", "有了事件日志之后")).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    assert!(dir.join("log").is_dir(), "the event log begun");
    // sled's files lost: everything comes back from the event log.
    std::fs::remove_file(dir.join("conf")).unwrap();
    std::fs::write(dir.join("db"), b"").unwrap();
    let store = open_store(&dir, &clock).await.unwrap();
    let log = store.events_after_blocking(0, usize::MAX).unwrap();
    let reports =
        log.iter().filter(|e| matches!(e.change, hongfan_shared::Change::Reported { .. })).count();
    assert_eq!(reports, 13);
    store.close().await.unwrap();
}

/// A write-ahead log of the first layout (before 2026-11-29) left holding records by a crash:
/// applied at start, and the store writes after it (it was never emptied once the log was kept).
#[tokio::test]
async fn a_write_ahead_log_of_the_first_layout_with_records_is_applied_and_writing_goes_on() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("old");
    folder_with_reports(&dir, 3).await;
    // One record of the first layout: [length][crc32][payload], the payload one put into `meta`.
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.push(9);
    payload.extend_from_slice(&5u32.to_be_bytes());
    payload.extend_from_slice(b"probe");
    payload.push(1);
    payload.extend_from_slice(&2u32.to_be_bytes());
    payload.extend_from_slice(b"ok");
    let mut record = (payload.len() as u32).to_be_bytes().to_vec();
    record.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    record.extend_from_slice(&payload);
    std::fs::write(dir.join("hongfan.wal"), &record).unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(&dir, &clock).await.unwrap();
    store.report(&kiosk("c1"), "after", report("c1", "旧格式日志之后")).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let report = verify(&dir).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
