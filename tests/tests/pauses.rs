//! 挂起: a worker asks to pause an incident's resolution clock with a configured reason; only a
//! supervisor's approval stops it; the paused time moves the target and is left out of the
//! resolution time; a pause ends by itself at the limit (logged once, across a restart).

use hongfan::ManualClock;
use hongfan_shared::audit::{AuditQuery, figures};
use hongfan_shared::{Action, Change, IncidentId, LifecycleError, Millis, Role, Timer, Timestamp};
use hongfan_tests::{T0, kiosk, open_store, principal, report, supervisor, worker};

fn at(hours: u64) -> Timestamp {
    T0.plus(Millis::from_hours(hours))
}

fn pause(reason: &str) -> Action {
    Action::Pause { reason: reason.into() }
}

fn changes(store: &hongfan::Store, id: IncidentId) -> Vec<Change> {
    let events = store.events_after_blocking(0, usize::MAX).unwrap();
    events.into_iter().filter(|e| e.incident == id).map(|e| e.change).collect()
}

fn breaches(store: &hongfan::Store, id: IncidentId) -> Vec<Timestamp> {
    changes(store, id)
        .into_iter()
        .filter_map(|c| match c {
            Change::Breached { timer: Timer::Resolution, deadline } => Some(deadline),
            _ => None,
        })
        .collect()
}

fn refused(
    result: Result<(hongfan_shared::Event, hongfan_shared::Incident), hongfan::store::StoreError>,
) -> String {
    result.map(|_| ()).unwrap_err().to_string()
}

#[tokio::test]
async fn a_pause_counts_only_once_approved_and_its_time_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let wang = worker("wang", "c1");
    let boss = supervisor();
    // Repair, normal: two days to resolve.
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let id = store.report(&kiosk("c1"), name, report("c1", name)).await.unwrap().incident.id;
        store.act(&wang, id, Action::Claim).await.unwrap();
        ids.push(id);
    }
    let [a, b, c, d] = ids[..] else { unreachable!() };

    // Bad asks: a reason not on the list, someone not holding it, a supervisor deciding
    // nothing, a worker deciding.
    clock.set(at(1));
    assert!(
        refused(store.act(&wang, a, pause("出去玩")).await)
            .contains(&LifecycleError::UnknownPauseReason.to_string())
    );
    let li = worker("li", "c1");
    assert!(refused(store.act(&li, a, pause("等待居民在家")).await).contains("held by"));
    let head = principal("zhou", Role::BuildingHead, &["c1"]);
    assert!(refused(store.act(&head, a, pause("等待居民在家")).await).contains("may not"));
    let decide = |approve| Action::DecidePause { approve };
    assert!(
        refused(store.act(&boss, a, decide(true)).await)
            .contains(&LifecycleError::NotPaused.to_string())
    );

    // A: asked, never approved: the clock runs on, the target passes as it would have.
    for id in [a, b, c, d] {
        store.act(&wang, id, pause("等待物业/施工方")).await.unwrap();
    }
    assert!(refused(store.act(&wang, a, decide(true)).await).contains("may not"));
    assert!(
        refused(store.act(&wang, a, pause("等待居民在家")).await)
            .contains(&LifecycleError::AlreadyPaused.to_string())
    );
    // B: approved at 2 h, resumed by the worker at 12 h: ten hours off the clock.
    clock.set(at(2));
    let (_, approved) = store.act(&boss, b, decide(true)).await.unwrap();
    let running = approved.pause.clone().unwrap();
    assert_eq!((running.approved, running.until), (true, Some(at(2 + 72))));
    assert_eq!(running.decided_by.unwrap().role, Role::Supervisor);
    // C: approved at 2 h and left to run out at its limit (72 h).
    store.act(&boss, c, decide(true)).await.unwrap();
    // D: refused: nothing changes but the record.
    let (_, refused_d) = store.act(&boss, d, decide(false)).await.unwrap();
    assert!(refused_d.pause.is_none());
    assert_eq!((refused_d.pauses.len(), refused_d.pauses[0].approved), (1, false));
    clock.set(at(12));
    store.act(&wang, b, Action::Resume).await.unwrap();
    let b_now = store.incident(b).await.unwrap().unwrap();
    assert_eq!((b_now.paused_ms, b_now.resolve_by), (Millis::from_hours(10).0, at(48 + 10)));

    // Two days on: A and D breach at their own targets; B is not due yet, C is still paused.
    clock.set(at(50));
    store.tick().await.unwrap();
    assert_eq!(breaches(&store, a), vec![at(48)], "an unapproved pause does nothing");
    assert_eq!(breaches(&store, d), vec![at(48)]);
    assert!(breaches(&store, b).is_empty() && breaches(&store, c).is_empty());
    // B resolved at 56 h: within its moved target, and 46 h of resolution time, not 56.
    clock.set(at(56));
    store.act(&wang, b, Action::Resolve { outcome: "修好了".into(), proof: None }).await.unwrap();

    // C's pause ends by itself at 74 h, logged once, even across a restart in between.
    clock.set(at(60));
    store.close().await.unwrap();
    drop(store);
    clock.set(at(80));
    let store = open_store(dir.path(), &clock).await.unwrap();
    store.tick().await.unwrap();
    store.tick().await.unwrap();
    let resumed = changes(&store, c).into_iter().filter(|c| *c == Change::Resumed).count();
    assert_eq!(resumed, 1);
    let c_now = store.incident(c).await.unwrap().unwrap();
    assert_eq!(c_now.paused_ms, Millis::from_hours(72).0, "ended at its limit, not at 80 h");
    assert_eq!(c_now.resolve_by, at(48 + 72));
    assert!(breaches(&store, c).is_empty());

    // The audit: B's resolution time is 46 h and in target; every pause is listed with its
    // reason and approver.
    let all = AuditQuery::everything(&hongfan_shared::Scope::All);
    let rows = store.audit_rows(&all).unwrap();
    let f = figures(rows.iter().filter(|r| r.id == b), at(80));
    assert_eq!((f.resolved, f.resolved_in_target), (1, 1));
    assert_eq!(f.resolution.median, Some(Millis::from_hours(46).0));
    let listed: Vec<(IncidentId, bool, Option<&str>)> = rows
        .iter()
        .flat_map(|r| {
            r.pauses
                .iter()
                .map(move |p| (r.id, p.approved, p.decided_by.as_ref().map(|d| d.name.as_str())))
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (a, false, None),
            (b, true, Some("supervisor")),
            (c, true, Some("supervisor")),
            (d, false, Some("supervisor"))
        ]
    );
}

/// A board holding an incident sees a pause end: the field the incident no longer has comes as
/// `null` in the patch (merged, it would otherwise stay paused on every board).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_sees_a_pause_end() {
    use hongfan_shared::protocol::{ClientMessage, ServerMessage};
    let clock = ManualClock::new(T0);
    let server = hongfan_tests::server::TestServer::start_in_process(clock.clone()).await;
    let mut kiosk = server.kiosk("c1").await;
    let incident = kiosk.file(report("c1", "楼顶漏水")).await;
    let (mut wang, mut boss) = (server.user("wang").await, server.user("boss").await);
    wang.subscribe(None).await;
    let done =
        |id| move |m: &ServerMessage| matches!(m, ServerMessage::Done { id: i, .. } if *i == id);
    let id = incident.id;
    wang.send(&ClientMessage::Claim { id: 1, incident: id }).await;
    wang.recv_until(done(1)).await;
    wang.send(&ClientMessage::Pause {
        id: 2, incident: id, reason: "等待物业/施工方".into()
    })
    .await;
    wang.recv_until(done(2)).await;
    boss.send(&ClientMessage::DecidePause { id: 3, incident: id, approve: true }).await;
    boss.recv_until(done(3)).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Event { event, .. } if matches!(event.change, Change::PauseDecided { approved: true, .. }))).await;
    assert!(wang.incident(id).pause.is_some_and(|p| p.approved));
    wang.send(&ClientMessage::Resume { id: 4, incident: id }).await;
    wang.recv_until(
        |m| matches!(m, ServerMessage::Event { event, .. } if event.change == Change::Resumed),
    )
    .await;
    let held = wang.incident(id);
    assert_eq!((held.pause, held.pauses.len()), (None, 1), "the pause is over on the board");
}
