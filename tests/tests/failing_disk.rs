//! A disk that fails: a write, a flush or an fsync refused (injected), and a really full
//! filesystem under the real binary. Nothing unwritten is ever acknowledged, the store stops
//! writing, and the server says so on /healthz and exits non-zero for its supervisor.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use hongfan::store::{FaultPoint, Faults, Mode, StoreOptions};
use hongfan::{ManualClock, StoreError};
use hongfan_shared::IncidentId;
use hongfan_shared::protocol::{ClientMessage, ErrorCode, ServerMessage};
use hongfan_tests::api::Api;
use hongfan_tests::server::{Closed, WsClient, binary, seed_accounts};
use hongfan_tests::{T0, everyone_on_duty, kiosk, open_store, open_store_with, report};

#[tokio::test]
async fn a_failed_write_or_fsync_is_never_acknowledged_and_stops_the_store() {
    for point in [FaultPoint::Write, FaultPoint::Fsync] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let faults = Arc::new(Faults::default());
        let options = StoreOptions {
            duty: everyone_on_duty(),
            faults: Some(faults.clone()),
            ..Default::default()
        };
        let store = open_store_with(dir.path(), &clock, options).await.unwrap();
        let kept = store.report(&kiosk("c1"), "kept", report("c1", "a")).await.unwrap();
        assert!(store.health().failure().is_none());

        faults.fail(point);
        let refused = store.report(&kiosk("c1"), "refused", report("c1", "b")).await;
        assert!(matches!(refused, Err(StoreError::Write(_))), "{point:?}: {refused:?}");
        let failure = store.health().failure().expect("the store knows it failed").to_owned();
        assert!(failure.contains("injected"), "{point:?}: {failure}");
        assert!(store.health().failed().is_cancelled());
        assert_eq!(store.metrics().store_failed.get(), 1);
        // The disk works again, but this store does not trust its state any more.
        faults.heal(point);
        let after = store.report(&kiosk("c1"), "after", report("c1", "c")).await;
        assert!(matches!(after, Err(StoreError::Closed)), "{point:?}: {after:?}");
        assert_eq!(store.last_seq().unwrap(), kept.event.unwrap().seq, "nothing published");
        store.close().await.unwrap();
        drop(store);

        let store = open_store(dir.path(), &clock).await.unwrap();
        let state = store.incident(kept.incident.id).await.unwrap();
        assert_eq!(state.map(|i| i.request_id), Some("kept".into()), "{point:?}");
        store.close().await.unwrap();
    }
}

/// A small ext4 filesystem of its own, mounted for one test and unmounted after.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn make(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let run = |program: &str, args: &[&str]| {
            let out = Command::new(program).args(args).output();
            let out = out.unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(
                out.status.success(),
                "cannot make a small filesystem for this test ({program} {args:?}: {}); it needs \
                 root and loop devices, as the CI machine has",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let size = format!("{megabytes}M");
        run("truncate", &["-s", &size, image.to_str().unwrap()]);
        run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]);
        run("mount", &["-o", "loop", image.to_str().unwrap(), mount.to_str().unwrap()]);
        SmallDisk { dir }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("--lazy").arg(self.path()).status();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-r").arg(from).arg(to).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_server_loudly_and_loses_no_acknowledged_report() {
    let disk = SmallDisk::make(12);
    let data = disk.path().join("data");
    let kiosks = seed_accounts(&data).await;
    let credential = kiosks.iter().find(|(c, _)| c == "c1").unwrap().1.clone();
    let log = disk.dir.path().join("server.log");
    let mut child = Command::new(binary())
        .args(["--addr", "127.0.0.1:0", "--report-burst", "1000000"])
        .args(["--reports-per-minute", "1000000", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = first.trim().strip_prefix("listening on ").expect("started").to_owned();
    let cookie = reqwest::Client::new()
        .post(format!("{url}/api/kiosk/pair"))
        .json(&serde_json::json!({ "credential": credential }))
        .send()
        .await
        .unwrap()
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let ws = format!("{}/ws?as=kiosk", url.replace("http://", "ws://"));
    let mut kiosk = WsClient::connect(&ws, Some(&cookie), None).await.expect("connect");

    // Reports with long descriptions until the disk is full and the store refuses: the kiosk
    // hears `unavailable`, or the server closes as it shuts down first.
    let mut acked: Vec<(String, IncidentId)> = Vec::new();
    loop {
        let request = format!("r{}", acked.len());
        let mut filler = report("c1", &"满".repeat(400));
        filler.room = format!("{}", acked.len() % 1000);
        kiosk.send(&ClientMessage::Report { request_id: request.clone(), report: filler }).await;
        match kiosk.try_recv().await {
            Ok(ServerMessage::Reported { incident, .. }) => acked.push((request, incident.id)),
            Ok(ServerMessage::Error(e)) => {
                assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}");
                break;
            }
            Ok(other) => panic!("{other:?}"),
            Err(closed) => {
                assert_eq!(closed, Closed::Frame(1001, "server shutting down".into()));
                break;
            }
        }
        assert!(acked.len() < 200_000, "the 12 MiB disk never filled");
    }

    // Loud: the log says so and the exit code too (/healthz is checked in process below: the
    // server closes at once).
    let exited = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + hongfan_tests::DEADLINE;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    });
    let status = exited.await.unwrap().expect("the server stops by itself once it cannot write");
    assert!(!status.success(), "the server exits non-zero when its store cannot write");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("store write failed"), "{text}");
    assert!(text.contains("stopped because the store cannot write"), "{text}");

    // Nothing acknowledged is lost: every acknowledged report is in the folder, read on a disk
    // with room again.
    let roomy = tempfile::tempdir().unwrap();
    copy_dir(&data, &roomy.path().join("data"));
    let clock = ManualClock::new(T0);
    let options = StoreOptions { mode: Mode::ReadOnly, ..Default::default() };
    let store = open_store_with(&roomy.path().join("data"), &clock, options).await.unwrap();
    for (request, id) in &acked {
        let incident = store.incident(*id).await.unwrap();
        assert_eq!(incident.map(|i| i.request_id).as_ref(), Some(request), "{request} lost");
    }
    eprintln!("full disk: {} reports acknowledged before the disk filled, all kept", acked.len());
}

#[tokio::test]
async fn a_failed_checkpoint_stops_the_store_and_the_write_ahead_log_keeps_every_ack() {
    // sled is made durable only at checkpoints; what was acknowledged before one that fails is
    // in the write-ahead log, and comes back at the next start.
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let faults = Arc::new(Faults::default());
    let options = StoreOptions {
        duty: everyone_on_duty(),
        faults: Some(faults.clone()),
        ..Default::default()
    };
    let store = open_store_with(dir.path(), &clock, options).await.unwrap();
    let mut acked = Vec::new();
    for n in 0..20 {
        let r = store.report(&kiosk("c1"), &format!("r{n}"), report("c1", "x")).await.unwrap();
        acked.push(r.incident.id);
    }
    faults.fail(FaultPoint::Flush);
    store.close().await.unwrap();
    assert!(
        store.health().failure().is_some_and(|f| f.contains("checkpoint")),
        "{:?}",
        store.health().failure()
    );
    drop(store);
    let store = open_store(dir.path(), &clock).await.unwrap();
    for id in acked {
        assert!(store.incident(id).await.unwrap().is_some(), "{id:?} acknowledged, then lost");
    }
    store.close().await.unwrap();
}

#[tokio::test]
async fn healthz_says_why_once_the_store_has_failed() {
    let faults = Arc::new(Faults::default());
    let api = Api::bare(|settings| settings.store.faults = Some(faults.clone())).await;
    let health = || async {
        let answer = api.get("/healthz", &[]).await;
        (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
    };
    assert_eq!(health().await.0, 200);
    faults.fail(FaultPoint::Fsync);
    let store = api.app().hub.store().clone();
    assert!(store.report(&kiosk("c1"), "r", report("c1", "x")).await.is_err());
    let (status, body) = health().await;
    assert_eq!(status, 503);
    assert!(
        body.starts_with("store failed: writing to ") && body.contains("injected Fsync"),
        "{body}"
    );
    let metrics = api.app().hub.render_metrics();
    assert!(metrics.contains("hongfan_store_failed 1"), "{metrics}");
    assert!(metrics.contains("hongfan_store_write_errors_total 1"), "{metrics}");
}
