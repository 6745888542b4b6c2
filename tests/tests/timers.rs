//! The store's timers: every first-time target that passes while an incident is open is logged
//! once, even when a command arrives before any tick; escalations are logged with the report
//! (nobody on duty) or when the unclaimed time passes, once each, across restarts.

use std::collections::BTreeSet;

use hongfan::store::StoreOptions;
use hongfan::{Clock, ManualClock, Store};
use hongfan_shared::{
    Action, Change, EscalationReason, Event, IncidentId, Millis, Timer, Timestamp,
};
use hongfan_tests::{T0, kiosk, open_store, open_store_with, report, supervisor, worker};
use proptest::prelude::*;

fn all_events(store: &Store) -> Vec<Event> {
    store.events_after_blocking(0, usize::MAX).expect("read log")
}

fn changes_of(store: &Store, id: IncidentId) -> Vec<Change> {
    all_events(store).into_iter().filter(|e| e.incident == id).map(|e| e.change).collect()
}

fn on_duty_in(compounds: &[&str]) -> StoreOptions {
    StoreOptions { duty: hongfan_tests::on_duty_in(compounds), ..Default::default() }
}

fn breach(timer: Timer, deadline: Timestamp) -> Change {
    Change::Breached { timer, deadline }
}

#[tokio::test]
async fn a_late_claim_resolve_or_cancel_still_logs_the_target_it_missed_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let w = worker("w", "c1");
    let a = store.report(&kiosk("c1"), "a", report("c1", "a")).await.unwrap().incident;
    let b = store.report(&kiosk("c1"), "b", report("c1", "b")).await.unwrap().incident;
    let c = store.report(&kiosk("c1"), "c", report("c1", "c")).await.unwrap().incident;
    store.act(&w, b.id, Action::Claim).await.unwrap();

    // No tick in between: the claim itself arrives after the response target.
    clock.set(a.respond_by.plus(Millis(1)));
    store.act(&w, a.id, Action::Claim).await.unwrap();
    let a_log = changes_of(&store, a.id);
    let claimed = a_log.iter().position(|c| *c == Change::Claimed).expect("claimed");
    let missed = a_log.iter().position(|c| *c == breach(Timer::Response, a.respond_by));
    assert!(missed.is_some_and(|m| m < claimed), "the missed target is logged first: {a_log:?}");

    // Resolved, and cancelled, after the resolution target.
    clock.set(b.resolve_by.plus(Millis(1)));
    store.act(&w, b.id, Action::Resolve { outcome: "修好了".into(), proof: None }).await.unwrap();
    let b_log = changes_of(&store, b.id);
    assert!(
        b_log.ends_with(&[
            breach(Timer::Resolution, b.resolve_by),
            Change::Resolved { outcome: "修好了".into(), proof: None }
        ]),
        "{b_log:?}"
    );
    store.act(&supervisor(), c.id, Action::Cancel { reason: "重复".into() }).await.unwrap();
    let c_log = changes_of(&store, c.id);
    assert!(
        c_log.ends_with(&[
            breach(Timer::Response, c.respond_by),
            breach(Timer::Resolution, c.resolve_by),
            Change::Cancelled { reason: "重复".into() }
        ]),
        "{c_log:?}"
    );
    // A refused command still leaves what fell due on the record.
    let d = store.report(&kiosk("c1"), "d", report("c1", "d")).await.unwrap().incident;
    clock.set(d.respond_by);
    let refused = store.act(&w, d.id, Action::Resolve { outcome: "x".into(), proof: None }).await;
    assert!(refused.is_err());
    assert!(changes_of(&store, d.id).contains(&breach(Timer::Response, d.respond_by)));
}

/// A report that commits itself (nothing else being written) brings the earliest deadline; the
/// committer's thread, asleep until a later one, must still record the breach when it falls
/// due, with nobody writing or asking. On the real clock, with a target of a quarter second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_is_recorded_on_time_with_nothing_else_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut community = hongfan_shared::Community::clone(&hongfan_tests::community());
    community.categories[0].targets.normal.respond = hongfan_shared::Millis(250);
    let (quick, slow) = (community.categories[0].id.clone(), community.categories[1].id.clone());
    let clock: hongfan::SharedClock = std::sync::Arc::new(hongfan::SystemClock);
    let store =
        Store::open(dir.path(), vec![community].into(), clock, StoreOptions::default()).unwrap();
    // A first report with a long target, then the one whose target is short: by then the
    // thread has gone back to sleep until a deadline an hour away (or its idle limit).
    let first = hongfan_shared::Report { category: slow, ..report("c1", "x") };
    store.report(&kiosk("c1"), "r1", first).await.unwrap();
    let second = hongfan_shared::Report { category: quick, ..report("c1", "y") };
    let reported = store.report(&kiosk("c1"), "r2", second).await.unwrap().incident;
    // Explicit wait with a deadline: the breach is due in 250 ms; the thread, before the fix,
    // slept until its idle limit (30 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut breached = false;
    while !breached && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        breached = changes_of(&store, reported.id)
            .iter()
            .any(|c| matches!(c, Change::Breached { timer: Timer::Response, .. }));
    }
    assert!(breached, "the response breach was not recorded within 5 s of its 250 ms target");
    store.close().await.unwrap();
}

#[tokio::test]
async fn with_nobody_on_duty_the_escalation_is_logged_with_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store_with(dir.path(), &clock, on_duty_in(&["c2"])).await.unwrap();
    let mut commits = store.subscribe();
    let reported = store.report(&kiosk("c1"), "r1", report("c1", "x")).await.unwrap();
    assert!(reported.incident.escalated, "the acknowledged state is already escalated");
    // One durable group holds both: no crash can come between them.
    // (The office's own groups, staffing the other compound, may still be on their way.)
    let commit = loop {
        let commit = commits.recv().await.unwrap();
        if !commit.changes.is_empty() {
            break commit;
        }
    };
    let kinds: Vec<_> = commit.changes.iter().map(|c| c.event.change.name()).collect();
    assert_eq!(kinds, ["reported", "escalated"]);
    assert_eq!(
        commit.changes[1].event.change,
        Change::Escalated { reason: EscalationReason::NobodyOnDuty }
    );
    // A compound with someone on duty is not escalated.
    let other = store.report(&kiosk("c2"), "r2", report("c2", "y")).await.unwrap();
    assert!(!other.incident.escalated);
    assert_eq!(changes_of(&store, other.incident.id).len(), 1);
}

#[tokio::test]
async fn an_unclaimed_report_is_escalated_once_when_its_time_passes_even_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store_with(dir.path(), &clock, on_duty_in(&["c1"])).await.unwrap();
    let a = store.report(&kiosk("c1"), "a", report("c1", "a")).await.unwrap().incident;
    let b = store.report(&kiosk("c1"), "b", report("c1", "b")).await.unwrap().incident;
    let escalate_by = a.escalate_by.expect("an escalation time");
    assert_eq!(escalate_by, T0.plus(Millis::from_mins(30)));
    clock.set(escalate_by);
    assert_eq!(store.tick().await.unwrap(), 2);
    assert_eq!(store.tick().await.unwrap(), 0, "never twice");
    let unclaimed = Change::Escalated { reason: EscalationReason::Unclaimed };
    assert_eq!(changes_of(&store, a.id).last(), Some(&unclaimed));
    // Claimed before its time: no escalation for the next one.
    let c = store.report(&kiosk("c1"), "c", report("c1", "c")).await.unwrap().incident;
    store.act(&worker("w", "c1"), c.id, Action::Claim).await.unwrap();
    let d = store.report(&kiosk("c1"), "d", report("c1", "d")).await.unwrap().incident;
    store.close().await.unwrap();
    drop(store);

    // Down past d's time: logged at start, once, and not again on the next start.
    clock.advance(Millis::from_hours(1));
    for _ in 0..2 {
        let store = open_store_with(dir.path(), &clock, on_duty_in(&["c1"])).await.unwrap();
        let count = |id| changes_of(&store, id).iter().filter(|c| **c == unclaimed).count();
        assert_eq!((count(a.id), count(b.id), count(c.id), count(d.id)), (1, 1, 0, 1));
        store.close().await.unwrap();
    }
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Report,
    Claim(usize),
    Resolve(usize),
    Cancel(usize),
    Reopen(usize),
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // From seconds to days: targets range from minutes to days.
        3 => (1u64..4_000_000).prop_map(|s| Op::Advance(s * 1000 / 40)),
        2 => Just(Op::Report),
        2 => (0usize..4).prop_map(Op::Claim),
        2 => (0usize..4).prop_map(Op::Resolve),
        1 => (0usize..4).prop_map(Op::Cancel),
        1 => (0usize..4).prop_map(Op::Reopen),
        1 => Just(Op::Tick),
    ]
}

/// The deadlines each incident's timers had, and whether the incident was still in the state
/// the timer watches at some moment at or after the deadline at which the store was asked
/// anything: those are exactly the breaches that must be logged.
#[derive(Debug, Default)]
struct Model {
    /// Per incident: its status, response deadline and (current) resolution deadline.
    incidents: Vec<(hongfan_shared::Status, Timestamp, Timestamp)>,
    expected: BTreeSet<(u64, Timer, Timestamp)>,
}

impl Model {
    /// The store looks at every incident's timers whenever it handles a command.
    fn observe(&mut self, now: Timestamp) {
        use hongfan_shared::Status::*;
        for (n, (status, respond_by, resolve_by)) in self.incidents.iter().enumerate() {
            let id = n as u64 + 1;
            if *status == Reported && *respond_by <= now {
                self.expected.insert((id, Timer::Response, *respond_by));
            }
            if matches!(status, Reported | Claimed | HandedOver) && *resolve_by <= now {
                self.expected.insert((id, Timer::Resolution, *resolve_by));
            }
        }
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open_store(dir.path(), &clock).await.unwrap();
    let mut model = Model::default();
    let who = supervisor();
    for (n, op) in ops.into_iter().enumerate() {
        let now = clock.now();
        let count = model.incidents.len().max(1);
        let target = |i: usize| IncidentId((i % count) as u64 + 1);
        if !matches!(op, Op::Advance(_)) {
            model.observe(now);
        }
        let acted = match op {
            Op::Advance(ms) => {
                clock.advance(Millis(ms));
                continue;
            }
            Op::Tick => {
                store.tick().await.unwrap();
                continue;
            }
            Op::Report => {
                let i = store
                    .report(&kiosk("c1"), &format!("r{n}"), report("c1", "x"))
                    .await
                    .unwrap()
                    .incident;
                model.incidents.push((i.status, i.respond_by, i.resolve_by));
                continue;
            }
            _ if model.incidents.is_empty() => continue,
            Op::Claim(i) => store.act(&who, target(i), Action::Claim).await,
            Op::Resolve(i) => {
                store
                    .act(&who, target(i), Action::Resolve { outcome: "好了".into(), proof: None })
                    .await
            }
            Op::Cancel(i) => {
                store.act(&who, target(i), Action::Cancel { reason: "重复".into() }).await
            }
            Op::Reopen(i) => {
                store.act(&who, target(i), Action::Reopen { reason: "没好".into() }).await
            }
        };
        if let Ok((_, incident)) = acted {
            model.incidents[incident.id.0 as usize - 1] =
                (incident.status, incident.respond_by, incident.resolve_by);
        }
    }
    // The committer may also look by itself between commands; a last look on both sides.
    store.tick().await.unwrap();
    model.observe(clock.now());
    let logged: Vec<(u64, Timer, Timestamp)> = all_events(&store)
        .into_iter()
        .filter_map(|e| match e.change {
            Change::Breached { timer, deadline } => Some((e.incident.0, timer, deadline)),
            _ => None,
        })
        .collect();
    let unique: BTreeSet<_> = logged.iter().cloned().collect();
    prop_assert_eq!(unique.len(), logged.len(), "a breach logged twice: {:?}", logged);
    prop_assert_eq!(unique, model.expected);
    store.close().await.unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn the_breaches_logged_are_the_deadlines_that_passed_while_open(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
