//! A standby's store, fed a primary's groups through an in-memory replicated log: it ends with
//! the primary's events, incidents, office, accounts and epoch; its readers hear each group once,
//! in order; it takes no writes until it takes over, and then continues the primary's numbering.
//! A primary whose log refuses a group acknowledges nothing and writes nothing, and a group the
//! log took but the primary's disk did not comes back to that folder from the log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hongfan::store::{
    Aux, FaultPoint, Faults, Mode, Record, ReplicaError, Replicator, StoreOptions,
};
use hongfan::{ManualClock, Store, StoreError};
use hongfan_shared::{Action, Change, Event, Timer};
use hongfan_tests::{T0, everyone_on_duty, kiosk, report, seed, staff, until_released, worker};

/// The replicated log: each record as JSON, as it would cross the network.
#[derive(Debug, Default)]
struct Log {
    records: Mutex<Vec<String>>,
    /// Another process holds the lease: every append is refused.
    lost: AtomicBool,
}

impl Replicator for Log {
    fn append(&self, record: &Record<'_>) -> Result<u64, ReplicaError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(ReplicaError::LostLease);
        }
        let mut records = self.records.lock().unwrap();
        records.push(serde_json::to_string(record).unwrap());
        Ok(records.len() as u64)
    }
}

impl Log {
    fn len(&self) -> u64 {
        self.records.lock().unwrap().len() as u64
    }

    /// Applies every record after `after` to `standby`, in order.
    fn feed(&self, standby: &Store, after: u64) -> Result<(), StoreError> {
        let records = self.records.lock().unwrap().clone();
        for (i, json) in records.iter().enumerate().skip(after as usize) {
            let record: Record<'static> = serde_json::from_str(json).unwrap();
            standby.apply_replicated(i as u64 + 1, record)?;
        }
        Ok(())
    }
}

/// An attachment's bytes (the store does not look inside).
const PHOTO: &[u8] = b"\xff\xd8\xff a photo of the stairwell";

fn options(mode: Mode) -> StoreOptions {
    StoreOptions { mode, duty: everyone_on_duty(), cache_bytes: 8 << 20, ..Default::default() }
}

/// A primary on `log`: opened as a standby of nothing, then taking over at once (a new
/// deployment's first server), with a worker on duty in every compound.
async fn primary(dir: &std::path::Path, clock: &Arc<ManualClock>, log: &Arc<Log>) -> Store {
    primary_with(dir, clock, log, options(Mode::Standby { epoch: None })).await
}

async fn primary_with(
    dir: &std::path::Path,
    clock: &Arc<ManualClock>,
    log: &Arc<Log>,
    options: StoreOptions,
) -> Store {
    until_released(dir).await;
    let store = Store::open(dir, seed(), clock.clone(), options).unwrap();
    store.promote(log.clone()).unwrap();
    staff(&store).await.unwrap();
    store
}

async fn standby(dir: &std::path::Path, clock: &Arc<ManualClock>, epoch: &str) -> Store {
    until_released(dir).await;
    let mode = Mode::Standby { epoch: Some(epoch.to_owned()) };
    Store::open(dir, seed(), clock.clone(), options(mode)).unwrap()
}

fn events(store: &Store) -> Vec<Event> {
    store.events_after_blocking(0, usize::MAX).unwrap()
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}

/// Some of everything a primary writes: an attachment, reports, a claim and a resolution, a
/// breach, a session.
async fn work(store: &Store, clock: &ManualClock) {
    let attaching = store.clone();
    let photo = tokio::task::spawn_blocking(move || attaching.attach(PHOTO)).await.unwrap();
    assert!(photo.is_ok(), "{photo:?}");
    let a = store.report(&kiosk("c1"), "r1", report("c1", "楼道灯坏了")).await.unwrap().incident;
    let b = store.report(&kiosk("c2"), "r2", report("c2", "水管漏水")).await.unwrap().incident;
    store.act(&worker("duty-c1", "c1"), a.id, Action::Claim).await.unwrap();
    let done = Action::Resolve { outcome: "换了灯泡".into(), proof: None };
    store.act(&worker("duty-c1", "c1"), a.id, done).await.unwrap();
    store.put(Aux::Sessions, b"session-1", Some(b"{\"s\":1}".to_vec())).await.unwrap();
    clock.set(b.respond_by);
    assert!(store.tick().await.unwrap() > 0, "b's response target passed");
}

#[tokio::test]
async fn a_standby_applies_the_primary_log_into_the_same_store() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let log = Arc::new(Log::default());
    let primary = primary(a.path(), &clock, &log).await;
    let standby = standby(b.path(), &clock, primary.epoch()).await;
    let mut heard = standby.subscribe();
    work(&primary, &clock).await;

    // A standby shows and takes no writes.
    let refused = standby.report(&kiosk("c1"), "r9", report("c1", "x")).await.unwrap_err();
    assert!(matches!(refused, StoreError::Standby), "{refused}");
    assert!(standby.is_standby() && !primary.is_standby());
    let on_standby = standby.clone();
    let refused = tokio::task::spawn_blocking(move || on_standby.attach(PHOTO)).await.unwrap();
    assert!(matches!(refused, Err(StoreError::Standby)), "{refused:?}");

    log.feed(&standby, 0).unwrap();
    assert_eq!(standby.epoch(), primary.epoch());
    assert_eq!(standby.position().unwrap(), log.len());
    let written = events(&primary);
    assert_eq!(json(&events(&standby)), json(&written));
    assert!(
        written.iter().any(|e| matches!(e.change, Change::Breached { timer: Timer::Response, .. }))
    );
    let (p, s) = (primary.snapshot().unwrap(), standby.snapshot().unwrap());
    assert_eq!((s.seq, json(&s.incidents)), (p.seq, json(&p.incidents)));
    assert_eq!(standby.office().office, primary.office().office);
    let all = hongfan_shared::audit::AuditQuery::everything(&hongfan_shared::Scope::All);
    assert_eq!(json(&standby.audit_rows(&all).unwrap()), json(&primary.audit_rows(&all).unwrap()));
    assert_eq!(
        standby.scan_entries(Aux::Sessions).unwrap(),
        primary.scan_entries(Aux::Sessions).unwrap()
    );
    let (name, on_standby) = (primary.attachments().ids().unwrap(), standby.attachments());
    assert_eq!(on_standby.ids().unwrap(), name, "the attachment came with the log");
    assert_eq!(on_standby.get(&name[0]).unwrap().as_deref(), Some(PHOTO));
    let closed = written[0].incident;
    assert_eq!(
        json(&standby.incident(closed).await.unwrap()),
        json(&primary.incident(closed).await.unwrap())
    );
    assert_eq!(
        standby.find_ticket(&Default::default(), 2),
        primary.find_ticket(&Default::default(), 2)
    );

    // Its readers heard each event once, in order, with the office's changes.
    let mut seqs = Vec::new();
    let mut office = 0;
    while let Ok(commit) = heard.try_recv() {
        seqs.extend(commit.changes.iter().map(|c| c.event.seq));
        office += commit.office.len();
    }
    assert_eq!(seqs, written.iter().map(|e| e.seq).collect::<Vec<_>>());
    assert_eq!(office, primary.office_history().unwrap().len());

    // The log read again (a reconnect, a restart) writes nothing twice.
    log.feed(&standby, 0).unwrap();
    assert_eq!(events(&standby).len(), written.len());
    assert!(heard.try_recv().is_err());
}

#[tokio::test]
async fn a_standby_that_takes_over_continues_the_primary_numbering() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let log = Arc::new(Log::default());
    let primary = primary(a.path(), &clock, &log).await;
    let first = primary.report(&kiosk("c1"), "r1", report("c1", "一")).await.unwrap().incident;
    let open = primary.report(&kiosk("c2"), "r2", report("c2", "二")).await.unwrap().incident;
    let standby = standby(b.path(), &clock, primary.epoch()).await;
    log.feed(&standby, 0).unwrap();
    drop(primary);

    // The primary is gone; while nobody wrote, a target passed.
    clock.set(open.respond_by);
    standby.promote(log.clone()).unwrap();
    assert!(!standby.is_standby());
    let last = events(&standby);
    let breach = last.last().unwrap();
    assert_eq!(breach.incident, open.id, "what fell due is recorded on taking over");
    assert!(matches!(breach.change, Change::Breached { timer: Timer::Response, .. }));
    assert_eq!(standby.position().unwrap(), log.len(), "and went to the log first");

    // A kiosk resending its report to the new primary gets the same ticket, not a second one.
    let again = standby.report(&kiosk("c1"), "r1", report("c1", "一")).await.unwrap();
    assert!(again.event.is_none());
    assert_eq!(again.incident.id, first.id);
    let next = standby.report(&kiosk("c1"), "r3", report("c1", "三")).await.unwrap();
    assert_eq!(next.incident.ticket.0, "0003");
    assert_eq!(next.event.unwrap().seq, breach.seq + 1);
}

#[tokio::test]
async fn a_primary_that_lost_the_lease_acknowledges_and_writes_nothing() {
    let a = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = Arc::new(Log::default());
    let primary = primary(a.path(), &clock, &log).await;
    primary.report(&kiosk("c1"), "r1", report("c1", "一")).await.unwrap();
    let before = events(&primary);
    let epoch = primary.epoch().to_owned();

    log.lost.store(true, Ordering::SeqCst);
    let refused = primary.report(&kiosk("c1"), "r2", report("c1", "二")).await.unwrap_err();
    assert!(matches!(refused, StoreError::Write(_)), "{refused}");
    assert!(primary.health().failure().unwrap().contains("lease"));
    // Stopped for good: the process exits and comes back as a standby.
    let after = primary.report(&kiosk("c1"), "r3", report("c1", "三")).await;
    assert!(after.is_err());
    primary.close().await.unwrap();
    drop(primary);

    let reopened = standby(a.path(), &clock, &epoch).await;
    assert_eq!(json(&events(&reopened)), json(&before), "nothing written past the log");
}

#[tokio::test]
async fn a_group_the_log_took_but_the_disk_did_not_comes_back_from_the_log() {
    let a = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = Arc::new(Log::default());
    let faults = Arc::new(Faults::default());
    let opened =
        StoreOptions { faults: Some(faults.clone()), ..options(Mode::Standby { epoch: None }) };
    let primary = primary_with(a.path(), &clock, &log, opened).await;
    primary.report(&kiosk("c1"), "r1", report("c1", "一")).await.unwrap();
    let written = primary.position().unwrap();
    let epoch = primary.epoch().to_owned();

    faults.fail(FaultPoint::Write);
    let failed = primary.report(&kiosk("c1"), "r2", report("c1", "二")).await.unwrap_err();
    assert!(matches!(failed, StoreError::Write(_)), "{failed}");
    assert_eq!(log.len(), written + 1, "the log took the group");
    primary.close().await.unwrap();
    drop(primary);

    // Back as a standby, the folder continues from the log where its disk ends.
    {
        let reopened = standby(a.path(), &clock, &epoch).await;
        assert_eq!(reopened.position().unwrap(), written);
        assert_eq!(events(&reopened).len(), 1, "the disk has the first report only");
        log.feed(&reopened, reopened.position().unwrap()).unwrap();
        let texts: Vec<String> = reopened
            .snapshot()
            .unwrap()
            .incidents
            .iter()
            .map(|i| i.report.description.clone())
            .collect();
        assert_eq!(texts, ["一", "二"]);
        reopened.close().await.unwrap();
    }
    // And it is still there after a restart.
    let again = standby(a.path(), &clock, &epoch).await;
    assert_eq!(again.position().unwrap(), log.len());
    assert_eq!(again.snapshot().unwrap().incidents.len(), 2);
}

#[tokio::test]
async fn a_group_that_does_not_follow_the_folder_is_refused_whole() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let log = Arc::new(Log::default());
    let primary = primary(a.path(), &clock, &log).await;
    primary.report(&kiosk("c1"), "r1", report("c1", "一")).await.unwrap();
    primary.report(&kiosk("c1"), "r2", report("c1", "二")).await.unwrap();
    let standby = standby(b.path(), &clock, primary.epoch()).await;

    // The last group (event 2) without the one before it (event 1): a gap.
    let records = log.records.lock().unwrap().clone();
    let last: Record<'static> = serde_json::from_str(records.last().unwrap()).unwrap();
    let refused = standby.apply_replicated(log.len() + 1, last).unwrap_err();
    assert!(matches!(refused, StoreError::Corrupt { .. }), "{refused}");
    assert!(refused.to_string().contains("has event 2 after event 0"), "{refused}");
    assert!(events(&standby).is_empty());
    assert_eq!(standby.position().unwrap(), 0);
}

/// The largest message the replicated log's groups may be: a third of what the NATS servers
/// are configured to take (`max_payload: 4MB`, of which hongfan needs 3 MB; operations.md).
const GROUP_BYTES: usize = 1 << 20;

/// After a long outage, what fell due for thousands of open incidents (breaches, escalations)
/// goes into the log as several groups, each well under the NATS message limit, and all of it
/// is recorded.
#[tokio::test]
async fn what_falls_due_for_thousands_of_incidents_goes_out_in_bounded_groups() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let log = Arc::new(Log::default());
    let store = primary(dir.path(), &clock, &log).await;
    let open = 3000;
    let filed = (0..open).map(|n| {
        let store = store.clone();
        async move { store.report(&kiosk("c1"), &format!("r{n}"), report("c1", "灯坏了")).await }
    });
    for reported in futures::future::join_all(filed).await {
        reported.unwrap();
    }
    let before = log.len() as usize;
    // A week away: every incident is past its response and resolution targets.
    clock.advance(hongfan_shared::Millis(7 * 24 * 3_600_000));
    store.tick().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let breached = |store: &Store| {
        let ids: std::collections::BTreeSet<u64> = events(store)
            .into_iter()
            .filter(|e| matches!(e.change, Change::Breached { .. }))
            .map(|e| e.incident.0)
            .collect();
        ids.len()
    };
    while breached(&store) < open {
        assert!(std::time::Instant::now() < deadline, "only {} breached", breached(&store));
        tokio::task::yield_now().await;
    }
    let records = log.records.lock().unwrap().clone();
    let sizes: Vec<usize> = records[before..].iter().map(String::len).collect();
    eprintln!("what fell due for {open} incidents: {} groups, bytes {sizes:?}", sizes.len());
    assert!(sizes.iter().all(|&n| n <= GROUP_BYTES), "a group over {GROUP_BYTES}: {sizes:?}");
}

/// A standby pair's snapshot is read while groups go on being written, so it may hold some of
/// what follows its position: a standby seeded from it skips what it holds of those groups,
/// and ends as the primary is.
#[tokio::test]
async fn a_standby_seeded_from_a_snapshot_skips_what_it_already_holds_of_the_groups_after() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    let log = Arc::new(Log::default());
    let primary = primary(a.path(), &clock, &log).await;
    work(&primary, &clock).await;
    let mut file = Vec::new();
    let carried = primary.standby_snapshot(&mut file).unwrap();
    assert_eq!(carried.position, log.len());
    // As if the last three groups were written between reading the position and the rest.
    let text = String::from_utf8(file).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    let said = format!("\"position\":{}", carried.position);
    let earlier = carried.position - 3;
    assert!(header.contains(&said), "{header}");
    let file = format!("{}\n{rest}", header.replace(&said, &format!("\"position\":{earlier}")));
    let dir = b.path().join("standby");
    let seeded = hongfan::store::backup::seed(file.as_bytes(), &dir).unwrap();
    assert_eq!(seeded.position, earlier);
    let standby = standby(&dir, &clock, primary.epoch()).await;
    assert_eq!(standby.epoch(), primary.epoch());
    log.feed(&standby, earlier).unwrap();
    // And on from there, as it follows.
    let more = primary.report(&kiosk("c1"), "r3", report("c1", "电梯停了")).await.unwrap();
    log.feed(&standby, log.len() - 1).unwrap();
    assert_eq!(standby.position().unwrap(), log.len());
    assert_eq!(json(&events(&standby)), json(&events(&primary)));
    assert_eq!(standby.office().office, primary.office().office);
    assert_eq!(
        standby.scan_entries(Aux::Sessions).unwrap(),
        primary.scan_entries(Aux::Sessions).unwrap()
    );
    assert_eq!(standby.attachments().ids().unwrap(), primary.attachments().ids().unwrap());
    assert_eq!(
        json(&standby.incident(more.incident.id).await.unwrap()),
        json(&primary.incident(more.incident.id).await.unwrap())
    );
}
