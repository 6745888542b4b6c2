//! The store: durability across reopen, idempotent reports, timers and breaches, races.

use std::sync::Arc;

use hongfan::{ManualClock, StoreError};
use hongfan_shared::{Action, Change, IncidentId, LifecycleError, Millis, Status, Timer};
use hongfan_tests::{T0, kiosk, open_store, report, supervisor, worker};

fn all_events(store: &hongfan::Store) -> Vec<hongfan_shared::Event> {
    store.events_after_blocking(0, usize::MAX).expect("read log")
}

#[tokio::test]
async fn a_report_is_durable_and_its_request_id_makes_it_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let first = store.report(&kiosk("c1"), "req-1", report("c1", "楼道灯坏了")).await.unwrap();
    assert_eq!(first.incident.ticket.0, "0001");
    assert_eq!(first.event.as_ref().map(|e| e.seq), Some(1));

    let again = store.report(&kiosk("c1"), "req-1", report("c1", "楼道灯坏了")).await.unwrap();
    assert_eq!(again.incident.id, first.incident.id);
    assert!(again.event.is_none(), "the same request writes nothing");
    assert_eq!(all_events(&store).len(), 1);

    let err = store.report(&kiosk("c1"), "req-1", report("c1", "别的事")).await.unwrap_err();
    assert!(matches!(err, StoreError::RequestReused { .. }), "{err}");
    // The same request id from another device is another report.
    let other = store.report(&kiosk("c2"), "req-1", report("c2", "楼道灯坏了")).await.unwrap();
    assert_eq!(other.incident.ticket.0, "0002");
    assert_eq!(all_events(&store).iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test]
async fn refused_requests_leave_no_gap_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let id = store.report(&kiosk("c1"), "r", report("c1", "x")).await.unwrap().incident.id;
    let err = store
        .act(&worker("a", "c1"), id, Action::Resolve { outcome: "x".into(), proof: None })
        .await;
    assert!(matches!(err, Err(StoreError::Lifecycle(LifecycleError::NotClaimed))));
    let err = store.act(&worker("a", "c1"), IncidentId(99), Action::Claim).await;
    assert!(matches!(err, Err(StoreError::NotFound(IncidentId(99)))));
    let err = store.report(&kiosk("c1"), "r2", report("c2", "x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Lifecycle(LifecycleError::OtherCompound(_))));
    let (event, _) = store.act(&worker("a", "c1"), id, Action::Claim).await.unwrap();
    assert_eq!(event.seq, 2);
}

#[tokio::test]
async fn state_sequence_epoch_and_deadlines_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let epoch = store.epoch().to_owned();
    let a = store.report(&kiosk("c1"), "r1", report("c1", "一")).await.unwrap().incident;
    let b = store.report(&kiosk("c2"), "r2", report("c2", "二")).await.unwrap().incident;
    clock.advance(Millis::from_mins(5));
    store.act(&worker("w", "c1"), a.id, Action::Claim).await.unwrap();
    store.act(&worker("w", "c1"), a.id, Action::Note { text: "已联系物业".into() }).await.unwrap();
    store
        .act(&worker("w", "c1"), a.id, Action::Resolve { outcome: "修好了".into(), proof: None })
        .await
        .unwrap();
    let before = store.snapshot().unwrap();
    let log_before = all_events(&store);
    let resolved_before = store.incident(a.id).await.unwrap().unwrap();
    store.close().await.unwrap();
    drop(store);

    let store = open_store(dir.path(), &clock).await.unwrap();
    assert_eq!(store.epoch(), epoch);
    assert_eq!(store.last_seq().unwrap(), 5);
    assert_eq!(all_events(&store), log_before);
    let after = store.snapshot().unwrap();
    assert_eq!((after.seq, after.incidents.clone()), (before.seq, before.incidents));
    assert_eq!(after.incidents.iter().map(|i| i.id).collect::<Vec<_>>(), [b.id]);
    assert_eq!(after.incidents[0].respond_by, b.respond_by);
    assert_eq!(after.incidents[0].resolve_by, b.resolve_by);
    assert_eq!(store.incident(a.id).await.unwrap().unwrap(), resolved_before);
    // New work continues the sequence and the ticket numbers.
    let c = store.report(&kiosk("c3"), "r3", report("c3", "三")).await.unwrap();
    assert_eq!((c.incident.ticket.as_str(), c.event.unwrap().seq), ("0003", 6));
    // The request index was rebuilt: a retry after the restart is still recognised.
    let retry = store.report(&kiosk("c1"), "r1", report("c1", "一")).await.unwrap();
    assert_eq!((retry.incident.id, retry.event), (a.id, None));
}

#[tokio::test]
async fn a_deadline_that_passes_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let i = store.report(&kiosk("c1"), "r1", report("c1", "x")).await.unwrap().incident;
    clock.set(i.respond_by);
    // The unclaimed escalation (after 30 minutes) and the response breach (after an hour).
    assert_eq!(store.tick().await.unwrap(), 2);
    assert_eq!(store.tick().await.unwrap(), 0, "never twice");
    let log = all_events(&store);
    assert_eq!(log[2].change, Change::Breached { timer: Timer::Response, deadline: i.respond_by });
    let state = store.incident(i.id).await.unwrap().unwrap();
    assert!(state.response_breached && !state.resolution_breached);
    // A late claim is still a claim; the resolution timer keeps running.
    store.act(&worker("w", "c1"), i.id, Action::Claim).await.unwrap();
    clock.set(i.resolve_by);
    assert_eq!(store.tick().await.unwrap(), 1);
    assert_eq!(
        all_events(&store).last().unwrap().change,
        Change::Breached { timer: Timer::Resolution, deadline: i.resolve_by }
    );
}

#[tokio::test]
async fn a_deadline_passed_during_downtime_yields_exactly_one_breach_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let i = store.report(&kiosk("c1"), "r1", report("c1", "x")).await.unwrap().incident;
    let claimed = store.report(&kiosk("c1"), "r2", report("c1", "y")).await.unwrap().incident;
    store.act(&worker("w", "c1"), claimed.id, Action::Claim).await.unwrap();
    store.close().await.unwrap();
    drop(store);

    // Down for two hours: the first incident's response target (1 h) passes meanwhile.
    clock.advance(Millis::from_hours(2));
    let store = open_store(dir.path(), &clock).await.unwrap();
    let breaches: Vec<_> = all_events(&store)
        .into_iter()
        .filter(|e| matches!(e.change, Change::Breached { .. }))
        .collect();
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0].incident, i.id);
    assert_eq!(
        breaches[0].change,
        Change::Breached { timer: Timer::Response, deadline: i.respond_by }
    );
    assert_eq!(breaches[0].at, clock_now(&clock), "recorded at start");
    assert_eq!(store.tick().await.unwrap(), 0);
    store.close().await.unwrap();
    drop(store);

    let store = open_store(dir.path(), &clock).await.unwrap();
    let count =
        all_events(&store).iter().filter(|e| matches!(e.change, Change::Breached { .. })).count();
    assert_eq!(count, 1, "a second start records nothing new");
}

fn clock_now(clock: &Arc<ManualClock>) -> hongfan_shared::Timestamp {
    hongfan::Clock::now(clock.as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_transitions_have_exactly_one_winner_each() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let id = store.report(&kiosk("c1"), "r1", report("c1", "x")).await.unwrap().incident.id;

    let claims = (0..50).map(|n| {
        let store = store.clone();
        tokio::spawn(
            async move { store.act(&worker(&format!("w{n}"), "c1"), id, Action::Claim).await },
        )
    });
    let results = futures_join(claims).await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1);
    let holder = winners[0].1.holder.clone().unwrap();
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        match r {
            StoreError::Lifecycle(LifecycleError::AlreadyClaimed { holder: h }) => {
                assert_eq!(h, &holder)
            }
            other => panic!("unexpected {other}"),
        }
    }

    // The holder and a supervisor race to resolve and to cancel: one of the four wins.
    let racers = [
        (worker(&holder.id, "c1"), Action::Resolve { outcome: "修好了".into(), proof: None }),
        (supervisor(), Action::Resolve { outcome: "已处理".into(), proof: None }),
        (worker(&holder.id, "c1"), Action::Cancel { reason: "重复".into() }),
        (supervisor(), Action::Cancel { reason: "误报".into() }),
    ];
    let results = futures_join(racers.into_iter().map(|(who, action)| {
        let store = store.clone();
        tokio::spawn(async move { store.act(&who, id, action).await })
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);

    let log = all_events(&store);
    assert_eq!(log.iter().filter(|e| e.change == Change::Claimed).count(), 1);
    let ends = log
        .iter()
        .filter(|e| matches!(e.change, Change::Resolved { .. } | Change::Cancelled { .. }));
    assert_eq!(ends.count(), 1);
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=3).collect::<Vec<_>>());
    let state = store.incident(id).await.unwrap().unwrap();
    assert!(matches!(state.status, Status::Resolved | Status::Cancelled));
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn a_folder_that_is_not_a_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "my files").unwrap();
    let clock = ManualClock::new(T0);
    let err = open_store(dir.path(), &clock).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "names the folder: {msg}");
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["notes.txt"], "nothing was created");
}

#[tokio::test]
async fn a_closed_store_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    store.close().await.unwrap();
    let err = store.report(&kiosk("c1"), "r", report("c1", "x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed));
}
