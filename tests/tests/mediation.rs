//! 调解: a dispute handed by its holder to a building head of its compound, with the building
//! head's own clock (a breach when it passes), and back: settled by the building head (who earns
//! the community's mediation points, once), or taken back by the holder.

use hongfan::ManualClock;
use hongfan_shared::points::PointsRule;
use hongfan_shared::{Action, CategoryId, Change, Millis, Report, Role, Timer, Timestamp};
use hongfan_tests::{T0, kiosk, open_store, principal, report, worker};

fn at(hours: u64) -> Timestamp {
    T0.plus(Millis::from_hours(hours))
}

fn dispute(text: &str) -> Report {
    Report { category: CategoryId("dispute".into()), ..report("c1", text) }
}

#[tokio::test]
async fn a_dispute_goes_to_a_building_head_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let wang = worker("wang", "c1");
    let zhou = principal("zhou", Role::BuildingHead, &["c1"]);
    let other_head = principal("qian", Role::BuildingHead, &["c2"]);
    let mediate = |to: &hongfan_shared::Principal| Action::Mediate { to: to.clone() };
    let end = |settled| Action::EndMediation {
        outcome: "双方已和解，约定晚十点后不再施工".into(),
        settled,
    };

    let a = store.report(&kiosk("c1"), "a", dispute("楼上装修噪音")).await.unwrap().incident.id;
    let repair = store.report(&kiosk("c1"), "r", report("c1", "灯坏了")).await.unwrap().incident.id;
    for id in [a, repair] {
        store.act(&wang, id, Action::Claim).await.unwrap();
    }
    // Only a dispute, only to a building head of its compound, only by the holder.
    let refused = |r: Result<_, hongfan::store::StoreError>| {
        r.map(|_: (hongfan_shared::Event, hongfan_shared::Incident)| ()).unwrap_err().to_string()
    };
    assert!(
        refused(store.act(&wang, repair, mediate(&zhou)).await)
            .contains("not one a building head mediates")
    );
    assert!(
        refused(store.act(&wang, a, mediate(&other_head)).await)
            .contains("building head of the incident's compound")
    );
    assert!(refused(store.act(&worker("li", "c1"), a, mediate(&zhou)).await).contains("held by"));

    clock.set(at(1));
    let (_, started) = store.act(&wang, a, mediate(&zhou)).await.unwrap();
    let m = started.mediation.clone().unwrap();
    assert_eq!(
        (m.head.id.as_str(), m.since, m.due),
        ("zhou", at(1), at(1 + 72)),
        "three days for a dispute"
    );
    assert_eq!(started.holder.unwrap().id, "wang", "the worker keeps it");
    assert!(refused(store.act(&zhou, a, Action::Claim).await).contains("may not"));
    // The building head's clock passes: a breach of the mediation target, once.
    clock.set(at(74));
    store.tick().await.unwrap();
    store.tick().await.unwrap();
    let events = store.events_after_blocking(0, usize::MAX).unwrap();
    let late: Vec<_> = events
        .iter()
        .filter(|e| e.change == Change::Breached { timer: Timer::Mediation, deadline: at(73) })
        .collect();
    assert_eq!(late.len(), 1);
    // Settled by the building head: their points, once, and the incident is back with its holder.
    clock.set(at(75));
    let (_, back) = store.act(&zhou, a, end(true)).await.unwrap();
    let m = back.mediation.clone().unwrap();
    assert_eq!((m.ended, m.settled, m.breached), (Some(at(75)), true, true));
    assert!(
        refused(store.act(&zhou, a, end(true)).await).contains("may not"),
        "over: nothing more for the building head"
    );
    let awards = |store: &hongfan::Store| {
        store
            .office()
            .office
            .ledger
            .iter()
            .filter(|e| e.award.rule == PointsRule::Mediation)
            .map(|e| (e.award.head.id.clone(), e.award.points, e.award.incident))
            .collect::<Vec<_>>()
    };
    assert_eq!(awards(&store), vec![("zhou".to_owned(), 3, Some(a))]);

    // A second dispute taken back by the holder: not settled, no points.
    let b = store.report(&kiosk("c1"), "b", dispute("停车纠纷")).await.unwrap().incident.id;
    store.act(&wang, b, Action::Claim).await.unwrap();
    store.act(&wang, b, mediate(&zhou)).await.unwrap();
    let (_, taken) = store.act(&wang, b, end(true)).await.unwrap();
    assert!(!taken.mediation.unwrap().settled, "taken back is not settled");
    store.close().await.unwrap();
    drop(store);
    let store = open_store(dir.path(), &clock).await.unwrap();
    assert_eq!(
        awards(&store),
        vec![("zhou".to_owned(), 3, Some(a))],
        "after a restart, still once"
    );
}
