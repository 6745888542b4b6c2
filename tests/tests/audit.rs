//! The supervisors' figures, checked against values worked out by hand for a day's history that
//! has late answers, incidents still open at the end, a cancelled duplicate, ratings, and a
//! breach that fell due while the server was down.

use hongfan::ManualClock;
use hongfan_shared::audit::{AuditQuery, Rating, Spread};
use hongfan_shared::{Action, CategoryId, Change, CompoundId, Millis, Report, Timestamp};
use hongfan_tests::{T0, kiosk, open_store, report, worker};

fn at(minutes: u64) -> Timestamp {
    T0.plus(Millis::from_mins(minutes))
}

fn elderly(compound: &str, text: &str) -> Report {
    Report { category: CategoryId("elderly".into()), ..report(compound, text) }
}

const MIN: u64 = 60_000;

#[tokio::test]
async fn figures_match_the_hand_computed_values() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let (wang, li, zhao) = (worker("wang", "c1"), worker("li", "c1"), worker("zhao", "c2"));

    // A: c1 repair at 0, claimed at +10 min, resolved at +2 h, rated satisfied.
    let a = store.report(&kiosk("c1"), "a", report("c1", "A")).await.unwrap().incident;
    // The slip the resident keeps: the kiosk rates with its code.
    let (a, a_key) = (a.id, a.key);
    clock.set(at(10));
    store.act(&wang, a, Action::Claim).await.unwrap();
    // B: c1 repair at +1 h; its 1 h response target passes at +2 h; claimed late at +2 h 10.
    clock.set(at(60));
    let b = store.report(&kiosk("c1"), "b", report("c1", "B")).await.unwrap().incident.id;
    clock.set(at(120));
    store.act(&wang, a, Action::Resolve { outcome: "修好了".into(), proof: None }).await.unwrap();
    // Any write (or a tick) records what fell due by now: here B's response breach.
    store.tick().await.unwrap();
    let rate = |rating, key| Action::Rate { rating, key, solved: true };
    store.act(&kiosk("c1"), a, rate(Rating::Satisfied, a_key)).await.unwrap();
    // C: c2 elderly (30 min target) at +2 h, never claimed.
    let c = store.report(&kiosk("c2"), "c", elderly("c2", "C")).await.unwrap().incident.id;
    clock.set(at(130));
    store.act(&li, b, Action::Claim).await.unwrap();
    // Down from +2 h 25 to +2 h 50: C's target (+2 h 30) passes meanwhile.
    clock.set(at(145));
    store.close().await.unwrap();
    drop(store);
    clock.set(at(170));
    let store = open_store(dir.path(), &clock).await.unwrap();
    // D: a duplicate, cancelled.
    clock.set(at(180));
    let d = store.report(&kiosk("c1"), "d", report("c1", "D")).await.unwrap().incident.id;
    store.act(&wang, d, Action::Cancel { reason: "重复上报".into() }).await.unwrap();
    // E: c2 repair at +5 h, claimed at +5 h 20, handed over, resolved at +6 h, rated dissatisfied.
    clock.set(at(300));
    let e = store.report(&kiosk("c2"), "e", report("c2", "E")).await.unwrap().incident;
    let (e, e_key) = (e.id, e.key);
    clock.set(at(320));
    store.act(&zhao, e, Action::Claim).await.unwrap();
    store.act(&zhao, e, Action::HandOver { note: "街道审批".into() }).await.unwrap();
    clock.set(at(360));
    store.act(&zhao, e, Action::Resolve { outcome: "已批".into(), proof: None }).await.unwrap();
    store.act(&kiosk("c2"), e, rate(Rating::Dissatisfied, e_key.clone())).await.unwrap();
    let again = store.act(&kiosk("c2"), e, rate(Rating::Satisfied, e_key)).await;
    assert!(again.is_err(), "rated once");
    // F: the next day, outside the period.
    clock.set(at(25 * 60));
    store.report(&kiosk("c1"), "f", report("c1", "F")).await.unwrap();
    clock.set(at(30 * 60));
    store.tick().await.unwrap();

    let day = AuditQuery {
        from: T0,
        to: at(24 * 60),
        compound: None,
        worker: None,
        category: None,
        within: None,
    };
    let label = |_: &str, key: &str| key.to_uppercase();
    let summary = store.audit(&day, label).unwrap();
    let f = &summary.figures;
    assert_eq!(summary.asof, at(24 * 60), "counted as of the end of the period");
    assert_eq!((f.reports, f.cancelled), (4, 1));
    assert_eq!((f.responded, f.responded_in_target), (3, 2));
    assert_eq!(
        f.response,
        Spread { median: Some(20 * MIN), p90: Some(70 * MIN), max: Some(70 * MIN) }
    );
    assert_eq!((f.resolved, f.resolved_in_target, f.open), (2, 2, 2));
    assert_eq!(
        f.resolution,
        Spread { median: Some(60 * MIN), p90: Some(120 * MIN), max: Some(120 * MIN) }
    );
    assert_eq!(
        f.breaches, 2,
        "B late, and C during the downtime; C's resolution breach is after the period"
    );
    assert_eq!(
        (f.response_rate, f.resolution_rate, f.resolved_in_target_rate),
        (Some(0.5), Some(0.5), Some(0.5))
    );
    assert_eq!((f.rated, f.satisfied, f.dissatisfied, f.satisfaction_rate), (2, 1, 1, Some(0.5)));

    let workers: Vec<_> = summary
        .by_worker
        .iter()
        .map(|g| {
            (
                g.key.as_str(),
                g.figures.reports,
                g.figures.responded_in_target,
                g.figures.resolved,
                g.figures.breaches,
            )
        })
        .collect();
    assert_eq!(workers, [("li", 1, 0, 0, 1), ("wang", 1, 1, 1, 0), ("zhao", 1, 1, 1, 0)]);
    let compounds: Vec<_> = summary
        .by_compound
        .iter()
        .map(|g| (g.label.as_str(), g.figures.reports, g.figures.cancelled, g.figures.breaches))
        .collect();
    assert_eq!(compounds, [("C1", 2, 1, 1), ("C2", 2, 0, 1)]);
    let categories: Vec<_> =
        summary.by_category.iter().map(|g| (g.key.as_str(), g.figures.reports)).collect();
    assert_eq!(categories, [("elderly", 1), ("repair", 3)]);
    // A at 17 % of its target, E at 33 %, B at 117 %, C unanswered.
    let histogram: Vec<u64> = summary.response_histogram.iter().map(|b| b.count).collect();
    assert_eq!(histogram, [1, 1, 0, 0, 1, 0, 0, 1]);
    assert_eq!(summary.daily.len(), 1);
    assert_eq!(
        (summary.daily[0].reports, summary.daily[0].responded_in_target, summary.daily[0].resolved),
        (4, 2, 2)
    );
    assert_eq!(
        summary.daily[0].start,
        Timestamp(T0.0 - 9 * 3_600_000),
        "midnight in Asia/Shanghai"
    );

    // Filters narrow every figure.
    let c2 = AuditQuery { compound: Some(CompoundId("c2".into())), ..day.clone() };
    assert_eq!(store.audit(&c2, label).unwrap().figures.reports, 2);
    let li_only = AuditQuery { worker: Some("li".into()), ..day.clone() };
    assert_eq!(store.audit_rows(&li_only).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [b]);

    // Each figure traces back to events: C's timeline shows the breach (and the unclaimed
    // escalation, due at the same moment) recorded at the restart with the true deadline.
    let (incident, events) = store.timeline(c).await.unwrap().unwrap();
    assert!(incident.response_breached && incident.escalated_unclaimed);
    let kinds: Vec<_> = events.iter().map(|e| e.change.name()).collect();
    assert_eq!(kinds, ["reported", "breached", "escalated", "breached"]);
    assert_eq!(
        events[1].change,
        Change::Breached { timer: hongfan_shared::Timer::Response, deadline: at(150) }
    );
    assert_eq!(events[1].at, at(170), "recorded when the server came back");
}

#[tokio::test]
async fn exports_open_in_excel_and_are_for_supervisors_only() {
    use hongfan_shared::protocol::{ClientMessage, ServerMessage};
    let server = hongfan_tests::server::TestServer::start().await;
    let mut kiosk = server.kiosk("c1").await;
    kiosk
        .send(&ClientMessage::Report {
            request_id: "r".into(), report: report("c1", "楼道灯坏了")
        })
        .await;
    kiosk.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await;
    let url = server.url.clone();
    let get = |path: String, cookie: String| fetch(url.clone(), path, cookie);
    let boss = server.login("boss").await;
    let range = "from=0&to=9999999999999";
    let (status, disposition, body) =
        get(format!("/api/audit/export?{range}&format=csv&what=incidents"), boss.clone()).await;
    assert_eq!(status, 200);
    assert!(disposition.unwrap().starts_with("attachment; filename=\"hongfan-incidents-"));
    assert!(
        body.starts_with("\u{feff}受理号,小区,类别".as_bytes()),
        "UTF-8 with a BOM, Chinese headers"
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.lines().nth(1).unwrap().starts_with("0001,第一小区,设施报修,否,"), "{text}");
    let (_, _, figures) =
        get(format!("/api/audit/export?{range}&format=csv&what=figures"), boss.clone()).await;
    assert!(
        String::from_utf8(figures.to_vec()).unwrap().lines().any(|l| l.starts_with("合计,合计,1,"))
    );
    let (_, _, json) =
        get(format!("/api/audit/export?{range}&format=json&what=incidents"), boss.clone()).await;
    let rows: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(rows[0]["ticket"], "0001");
    let wang = server.login("wang").await;
    let (status, _, _) = get(format!("/api/audit/export?{range}&format=csv"), wang.clone()).await;
    assert_eq!(status, 403);
    let (status, _, _) = get(format!("/api/audit/summary?{range}"), wang).await;
    assert_eq!(status, 403);
}

async fn fetch(url: String, path: String, cookie: String) -> (u16, Option<String>, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let disposition =
        response.headers().get("content-disposition").map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), disposition, response.bytes().await.unwrap().to_vec())
}
