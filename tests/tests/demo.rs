//! The demo month shows everything the pages show: residents' answers from the kiosk, the
//! status page and 回访, second handlings, pauses approved and refused, recurring problems, the
//! building head's 代报, messages, mediations, patrols and points (with a correction), and resolutions left
//! for the 回访 list.

use hongfan::ManualClock;
use hongfan_shared::audit::AuditQuery;
use hongfan_shared::points::PointsRule;
use hongfan_shared::{AnswerSource, Role, Timestamp};
use hongfan_tests::open_store;

#[tokio::test]
async fn the_demo_month_has_every_kind_of_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut out = Vec::new();
    hongfan::demo::fill(&data, None, &mut out).await.unwrap();
    let clock = ManualClock::new(Timestamp(i64::MAX / 2));
    let store = open_store(&data, &clock).await.unwrap();
    let all = AuditQuery::everything(&hongfan_shared::Scope::All);
    let rows = store.audit_rows(&all).unwrap();
    let answers: Vec<_> = rows.iter().flat_map(|r| &r.answers).collect();
    for source in AnswerSource::ALL {
        assert!(answers.iter().any(|a| a.source == source), "answers from {source:?}");
    }
    assert!(answers.iter().any(|a| !a.solved), "a second handling");
    let pauses: Vec<_> = rows.iter().flat_map(|r| &r.pauses).collect();
    assert!(
        pauses.iter().any(|p| p.approved)
            && pauses.iter().any(|p| !p.approved && p.decided_by.is_some())
    );
    assert!(rows.iter().any(|r| r.recurring), "a recurring problem");
    assert!(
        rows.iter().any(|r| r.status == hongfan_shared::Status::Resolved && r.rating.is_none()),
        "some left for 回访"
    );
    let mut by_head = 0;
    let mut told = 0;
    for row in &rows {
        let incident = store.incident(row.id).await.unwrap().unwrap();
        by_head += usize::from(incident.reported_by.role == Role::BuildingHead);
        told += usize::from(!incident.notices.is_empty());
    }
    assert!(by_head > 0 && told > 0, "代报 {by_head}, messages {told}");
    // Every report at a building its compound has (or in a public area), with one of its units.
    let community = hongfan::config::load(None).unwrap().remove(0);
    for row in &rows {
        let incident = store.incident(row.id).await.unwrap().unwrap();
        let compound = community.compound(&row.compound).unwrap();
        let r = &incident.report;
        let building = compound.buildings.iter().find(|b| b.name == r.building);
        assert!(
            building.is_some_and(|b| r.unit.is_empty() || b.units.contains(&r.unit)),
            "{} has no {} {}",
            compound.name,
            r.building,
            r.unit
        );
    }
    let office = store.office();
    // People act in the office's day: no deed, patrol or correction at 4 am.
    let hour = |at: Timestamp| (at.0 + 8 * 3_600_000).rem_euclid(86_400_000) / 3_600_000;
    for entry in &office.office.ledger {
        assert!((8..20).contains(&hour(entry.at)), "{entry:?} at {}h", hour(entry.at));
    }
    let rules: std::collections::BTreeSet<PointsRule> =
        office.office.ledger.iter().map(|e| e.award.rule).collect();
    assert_eq!(
        rules,
        [
            PointsRule::ProxyReport,
            PointsRule::Callback,
            PointsRule::Patrol,
            PointsRule::Mediation,
            PointsRule::Adjustment
        ]
        .into()
    );
}
