//! 每月一题: the same category at the same building reported three times within 60 days is
//! flagged when the third comes in (not at the second), with the earlier ones; cancelled
//! reports and older ones do not count; the flag is part of the report's own event, so it is
//! there after a restart, and the audit lists the problem for the period.

use hongfan::ManualClock;
use hongfan_shared::audit::AuditQuery;
use hongfan_shared::{Action, Change, Millis, Report, Timestamp};
use hongfan_tests::{T0, kiosk, open_store, report, supervisor};

fn day(n: u64) -> Timestamp {
    T0.plus(Millis::from_hours(24 * n))
}

#[tokio::test]
async fn the_third_report_at_a_building_within_sixty_days_is_recurring() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let at =
        |building: &str, text: &str| Report { building: building.into(), ..report("c1", text) };
    let file = |n: usize, r: Report| {
        let store = store.clone();
        async move { store.report(&kiosk("c1"), &format!("r{n}"), r).await.unwrap().incident }
    };

    // Day 0: the first, long ago; day 70: a second; day 80 another at 5号楼 and a duplicate
    // that is cancelled; day 90: the third within 60 days only counting from day 70.
    let first = file(1, at("3号楼", "楼道灯坏了")).await;
    clock.set(day(70));
    let second = file(2, at("3号楼", "楼道灯又坏了")).await;
    assert!(second.recurring.is_empty(), "the one on day 0 is older than 60 days");
    clock.set(day(80));
    let elsewhere = file(3, at("5号楼", "楼道灯坏了")).await;
    let duplicate = file(4, at("3号楼", "楼道灯坏了（重复）")).await;
    assert!(elsewhere.recurring.is_empty() && duplicate.recurring.is_empty(), "second at 3号楼");
    store
        .act(&supervisor(), duplicate.id, Action::Cancel { reason: "重复上报".into() })
        .await
        .unwrap();
    clock.set(day(90));
    let third = file(5, at("3号楼", "楼道灯还是不亮")).await;
    assert!(third.recurring.is_empty(), "a cancelled duplicate does not count: this is the second");
    let sanitation = Report {
        category: hongfan_shared::CategoryId("sanitation".into()),
        ..at("3号楼", "垃圾")
    };
    assert!(file(6, sanitation).await.recurring.is_empty(), "another category");
    clock.set(day(95));
    let fourth = file(7, at("3号楼", "楼道灯第三次坏")).await;
    assert_eq!(fourth.recurring, vec![second.id, third.id], "the third within 60 days");
    let _ = first;

    // In the report's own event, and so after a restart; the index is rebuilt for the next one.
    let events = store.events_after_blocking(0, usize::MAX).unwrap();
    let logged = events.iter().find_map(|e| match &e.change {
        Change::Reported { recurring, .. } if e.incident == fourth.id => Some(recurring.clone()),
        _ => None,
    });
    assert_eq!(logged, Some(vec![second.id, third.id]));
    store.close().await.unwrap();
    drop(store);
    let store = open_store(dir.path(), &clock).await.unwrap();
    assert_eq!(
        store.incident(fourth.id).await.unwrap().unwrap().recurring,
        vec![second.id, third.id]
    );
    let fifth = store.report(&kiosk("c1"), "r8", at("3号楼", "又坏了")).await.unwrap().incident;
    assert_eq!(fifth.recurring, vec![second.id, third.id, fourth.id]);

    // A place reported every day: a flag names the latest ten earlier reports, not them all.
    for n in 0..12u64 {
        clock.set(day(96).plus(Millis::from_hours(n)));
        store.report(&kiosk("c1"), &format!("busy{n}"), at("3号楼", "又坏了")).await.unwrap();
    }
    let busy = store.report(&kiosk("c1"), "busy", at("3号楼", "又坏了")).await.unwrap().incident;
    assert_eq!(busy.recurring.len(), 10);
    assert!(busy.recurring.windows(2).all(|w| w[0] < w[1]), "oldest first");

    // The audit's problem of the month: the period's reports there, the cancelled one left out.
    let month = AuditQuery {
        from: day(70),
        to: day(96),
        compound: None,
        worker: None,
        category: None,
        within: None,
    };
    let summary = store.audit(&month, |_, k| k.to_owned()).unwrap();
    assert_eq!(summary.recurring.len(), 1, "{:?}", summary.recurring);
    let problem = &summary.recurring[0];
    assert_eq!((problem.building.as_str(), problem.category.0.as_str()), ("3号楼", "repair"));
    assert_eq!(problem.incidents, vec![second.id, third.id, fourth.id, fifth.id]);
}
