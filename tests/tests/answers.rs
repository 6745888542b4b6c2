//! Closing the loop with the resident: after 办结 they answer 解决了吗？满意吗？ (at the kiosk, on
//! the status page, or when a supervisor or building head calls back, 回访); "not solved" starts
//! a second handling (二次办理) with its own clocks; the audit's 一次解决率, 二次办理 and 满意率 by
//! source follow, as worked out by hand.

use hongfan::ManualClock;
use hongfan_shared::audit::{AuditQuery, Rating, figures};
use hongfan_shared::protocol::{ClientMessage, ServerMessage};
use hongfan_shared::{
    Action, AnswerSource, Change, IncidentId, LifecycleError, Millis, Principal, Report, Role,
    Status, Timer, Timestamp,
};
use hongfan_tests::server::TestServer;
use hongfan_tests::{T0, kiosk, open_store, principal, report, supervisor, worker};

fn at(minutes: u64) -> Timestamp {
    T0.plus(Millis::from_mins(minutes))
}

fn answer(rating: Rating, key: Option<String>, solved: bool) -> Action {
    Action::Rate { rating, key, solved }
}

fn resolve() -> Action {
    Action::Resolve { outcome: "修好了".into(), proof: None }
}

#[tokio::test]
async fn not_solved_starts_a_second_handling_with_new_clocks_and_the_figures_follow() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let wang = worker("wang", "c1");
    let head = principal("zhou", Role::BuildingHead, &["c1"]);

    // A: reported at 0, claimed at 10, resolved at 60; the kiosk's answer: solved, satisfied.
    let a = store.report(&kiosk("c1"), "a", report("c1", "A")).await.unwrap().incident;
    // B: reported at 0, claimed at 20, resolved at 90; on the status page the resident says it
    // is not solved and they are not satisfied.
    let b = store.report(&kiosk("c1"), "b", report("c1", "B")).await.unwrap().incident;
    // C: reported at 0, claimed at 30, resolved at 100, never answered.
    let c = store.report(&kiosk("c1"), "c", report("c1", "C")).await.unwrap().incident;
    for (minute, id) in [(10, a.id), (20, b.id), (30, c.id)] {
        clock.set(at(minute));
        store.act(&wang, id, Action::Claim).await.unwrap();
    }
    for (minute, id) in [(60, a.id), (90, b.id), (100, c.id)] {
        clock.set(at(minute));
        store.act(&wang, id, resolve()).await.unwrap();
    }
    clock.set(at(120));
    store.act(&kiosk("c1"), a.id, answer(Rating::Satisfied, a.key.clone(), true)).await.unwrap();
    // The worker who did the work does not answer for the resident.
    let own = store.act(&wang, c.id, answer(Rating::Satisfied, None, true)).await.unwrap_err();
    assert_eq!(
        own.to_string(),
        LifecycleError::RoleNotAllowed { role: Role::Worker, what: "rate" }.to_string()
    );

    clock.set(at(180));
    let (event, again) = store
        .act(&Principal::resident(), b.id, answer(Rating::Dissatisfied, b.key.clone(), false))
        .await
        .unwrap();
    // Open again, unclaimed, with clocks that start now: the repair category's 1 h to respond
    // and 2 days to resolve.
    let clocks = hongfan_shared::lifecycle::Deadlines {
        respond_by: at(180 + 60),
        resolve_by: at(180 + 2 * 24 * 60),
        escalate_by: at(180 + 30),
    };
    assert_eq!(
        event.change,
        Change::Rated { rating: Rating::Dissatisfied, solved: false, again: Some(clocks) }
    );
    assert_eq!((again.status, again.round, again.holder.clone()), (Status::Reported, 1, None));
    assert_eq!((again.respond_by, again.resolve_by), (clocks.respond_by, clocks.resolve_by));
    assert_eq!(again.claimed_at, Some(at(20)), "the first response stays on the record");
    assert_eq!(again.answers.len(), 1);
    assert_eq!(again.answers[0].source, AnswerSource::StatusPage);
    assert_eq!(again.rating, None, "the second handling is answered afresh");

    // The second handling's response target passes at 240, not at the first one's 60.
    clock.set(at(239));
    store.tick().await.unwrap();
    let b_now = store.incident(b.id).await.unwrap().unwrap();
    assert!(!b_now.response_breached);
    clock.set(at(241));
    store.tick().await.unwrap();
    let breaches: Vec<Change> = store
        .events_after_blocking(0, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|e| e.incident == b.id && matches!(e.change, Change::Breached { .. }))
        .map(|e| e.change)
        .collect();
    assert_eq!(breaches, vec![Change::Breached { timer: Timer::Response, deadline: at(240) }]);

    // Claimed and resolved again; the building head calls back (回访): solved, basically
    // satisfied, recorded with who called.
    clock.set(at(250));
    store.act(&worker("li", "c1"), b.id, Action::Claim).await.unwrap();
    clock.set(at(400));
    store.act(&worker("li", "c1"), b.id, resolve()).await.unwrap();
    clock.set(at(500));
    // Not yet: the resident has a day after 办结 to answer by themselves.
    let early = store.act(&head, b.id, answer(Rating::BasicallySatisfied, None, true)).await;
    assert!(early.unwrap_err().to_string().contains("callback_after"));
    clock.set(at(400 + 24 * 60));
    let (event, done) =
        store.act(&head, b.id, answer(Rating::BasicallySatisfied, None, true)).await.unwrap();
    assert_eq!(event.actor.name, "zhou");
    assert_eq!(
        (done.status, done.round, done.rating),
        (Status::Resolved, 1, Some(Rating::BasicallySatisfied))
    );
    assert_eq!(
        done.answers.iter().map(|a| (a.source, a.solved, a.round)).collect::<Vec<_>>(),
        vec![(AnswerSource::StatusPage, false, 0), (AnswerSource::Callback, true, 1)]
    );
    let refused = store.act(&supervisor(), b.id, answer(Rating::Satisfied, None, true)).await;
    assert!(refused.unwrap_err().to_string().contains("already rated"));

    // By hand: 3 reports, all resolved at least once; A and B answered (2 of 3: 评价率 2/3);
    // only A was solved the first time (一次解决率 1/2); B was handled twice (二次办理 1);
    // 满意率 by the latest answer: A satisfied (kiosk), B basically satisfied (回访): 2/2;
    // one breach, B's second response target.
    let rows = store.audit_rows(&AuditQuery::everything(&hongfan_shared::Scope::All)).unwrap();
    // B's first response (at 20) is judged against the first handling's target (60), not the
    // second's.
    let b_row = rows.iter().find(|r| r.id == b.id).unwrap();
    assert_eq!((b_row.claimed_at, b_row.respond_by), (Some(at(20)), at(60)));
    let f = figures(&rows, at(400 + 24 * 60 + 100));
    assert_eq!((f.reports, f.resolved, f.answered), (3, 3, 2));
    assert_eq!(f.answer_rate, Some(2.0 / 3.0));
    assert_eq!((f.solved_first_time, f.first_time_rate), (1, Some(0.5)));
    assert_eq!(f.second_handlings, 1);
    assert_eq!((f.rated, f.satisfied, f.basically_satisfied), (2, 1, 1));
    assert_eq!(f.satisfaction_rate, Some(1.0));
    assert_eq!(f.breaches, 1);
    let source = |s: AnswerSource| {
        let g = f.by_source.iter().find(|g| g.source == s).unwrap();
        (g.rated, g.satisfied)
    };
    assert_eq!(source(AnswerSource::Kiosk), (1, 1));
    assert_eq!(source(AnswerSource::StatusPage), (0, 0), "B's latest answer came by 回访");
    assert_eq!(source(AnswerSource::Callback), (1, 1));
    // As of 200 (after B's "not solved", before its second resolution): B is open again.
    let f = figures(&rows, at(200));
    assert_eq!((f.resolved, f.open, f.second_handlings), (2, 1, 1));
    assert_eq!((f.rated, f.dissatisfied), (2, 1));

    // Everything survives a restart as it was.
    let before = store.incident(b.id).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    let store = open_store(dir.path(), &clock).await.unwrap();
    assert_eq!(store.incident(b.id).await.unwrap(), before);
    assert_eq!(store.incident(IncidentId(c.id.0)).await.unwrap().unwrap().rating, None);
}

fn tickets(list: &serde_json::Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|i| i["ticket"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_resolutions_go_on_the_callback_list_and_a_callback_can_start_a_second_handling()
{
    let clock = ManualClock::new(T0);
    let server = TestServer::start_in_process(clock.clone()).await;
    let mut kiosk = server.kiosk("c1").await;
    let mut wang = server.user("wang").await;
    wang.subscribe(None).await;
    wang.send(&ClientMessage::Duty { id: 1, on: true }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::DutySet { .. })).await;
    let a = kiosk.file(report("c1", "A")).await;
    let b = kiosk.file(Report { building: "5号楼".into(), ..report("c1", "B") }).await;
    for incident in [&a, &b] {
        for message in [
            ClientMessage::Claim { id: wang.id(), incident: incident.id },
            ClientMessage::Resolve {
                id: wang.id(),
                incident: incident.id,
                outcome: "修好了".into(),
                proof: None,
            },
        ] {
            wang.send(&message).await;
            wang.recv_until(|m| matches!(m, ServerMessage::Done { .. })).await;
        }
    }
    let (boss, head, worker) =
        (server.login("boss").await, server.login("head").await, server.login("wang").await);

    // Not yet: the resident has a day to answer by themselves.
    assert_eq!(server.get_json("/api/callbacks", &boss).await, (200, serde_json::json!([])));
    clock.advance(Millis::from_hours(24));
    let (status, list) = server.get_json("/api/callbacks", &boss).await;
    assert_eq!(
        (status, tickets(&list)),
        (200, vec![a.ticket.as_str().to_owned(), b.ticket.as_str().to_owned()])
    );
    assert_eq!(list[0]["report"]["phone"], "138****1234", "masked, as on every shared screen");
    // The building head sees their own building only; a worker has no 回访 list.
    let (_, list) = server.get_json("/api/callbacks", &head).await;
    assert_eq!(tickets(&list), vec![a.ticket.as_str().to_owned()]);
    assert_eq!(server.get_json("/api/callbacks", &worker).await.0, 403);

    // The building head calls: not solved. A is open again, and the on-duty worker hears of it
    // as of a new report.
    let mut zhou = server.user("head").await;
    zhou.subscribe(None).await;
    let answer = ClientMessage::Rate {
        id: zhou.id(),
        incident: a.id,
        rating: Rating::Dissatisfied,
        key: None,
        solved: false,
    };
    zhou.send(&answer).await;
    zhou.recv_until(|m| matches!(m, ServerMessage::Done { .. })).await;
    let (_, _) = wang
        .recv_until(|m| {
            matches!(m, ServerMessage::Event { event, .. }
                if event.incident == a.id && event.change.name() == "rated")
        })
        .await;
    match wang.recv().await {
        ServerMessage::Alert { incident, escalated } => {
            assert_eq!((incident.id, incident.status, incident.round), (a.id, Status::Reported, 1));
            assert!(!escalated);
        }
        other => panic!("expected the chime of a second handling, got {other:?}"),
    }
    assert_eq!(wang.incident(a.id).status, Status::Reported, "the board's card is open again");
    let (_, list) = server.get_json("/api/callbacks", &boss).await;
    assert_eq!(tickets(&list), vec![b.ticket.as_str().to_owned()]);
}

/// "Not solved" when nobody of the compound is on duty: the second handling is escalated at once,
/// in the same group as the answer, as a new report would be.
#[tokio::test]
async fn a_second_handling_with_nobody_on_duty_is_escalated_at_once() {
    use hongfan::store::StoreOptions;
    use hongfan_shared::EscalationReason;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let options = StoreOptions { duty: hongfan_tests::on_duty_in(&["c2"]), ..Default::default() };
    let store = hongfan_tests::open_store_with(dir.path(), &clock, options).await.unwrap();
    let a = store.report(&kiosk("c1"), "a", report("c1", "A")).await.unwrap().incident;
    assert!(a.escalated, "nobody on duty in c1");
    store.act(&worker("wang", "c1"), a.id, Action::Claim).await.unwrap();
    store.act(&worker("wang", "c1"), a.id, resolve()).await.unwrap();
    let (rated, again) = store
        .act(&Principal::resident(), a.id, answer(Rating::Dissatisfied, a.key.clone(), false))
        .await
        .unwrap();
    assert_eq!((again.round, again.escalated), (1, true));
    let next = store.events_after_blocking(rated.seq, 1).unwrap();
    assert_eq!(
        next.first().map(|e| e.change.clone()),
        Some(Change::Escalated { reason: EscalationReason::NobodyOnDuty }),
        "logged right after the answer"
    );
}
