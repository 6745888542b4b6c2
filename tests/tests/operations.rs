//! Operations: backup of a running server while reports arrive, restore, verify.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use hongfan_shared::protocol::{ClientMessage, ServerMessage};
use hongfan_tests::report;
use hongfan_tests::server::{TestServer, binary, hongfan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_reports_arrive_restores_every_report_acknowledged_before_it() {
    let server =
        TestServer::start_with(&["--report-burst", "100000", "--reports-per-minute", "100000"])
            .await;
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Rung at every acknowledgement (a stored permit, so none is missed while nobody waits).
    let landed = Arc::new(tokio::sync::Notify::new());
    let mut writers = Vec::new();
    for compound in ["c1", "c2"] {
        let mut kiosk = server.kiosk(compound).await;
        let (acked, stop, landed) = (acked.clone(), stop.clone(), landed.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let id = format!("{compound}-{n}");
                kiosk
                    .send(&ClientMessage::Report {
                        request_id: id.clone(),
                        report: report(compound, &id),
                    })
                    .await;
                let (answer, _) =
                    kiosk.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await;
                if let ServerMessage::Reported { incident, .. } = answer {
                    acked.lock().unwrap().insert(id, incident.id.0);
                    landed.notify_one();
                }
                n += 1;
            }
        }));
    }
    // Let some reports land, then back up while the writers keep going.
    hongfan_tests::within("50 acknowledged reports", async {
        while acked.lock().unwrap().len() < 50 {
            landed.notified().await;
        }
    })
    .await;
    let before_backup = acked.lock().unwrap().clone();
    let file = server.dir.path().join("backup.jsonl");
    let data = server.data_dir();
    let (ok, out) = tokio::task::spawn_blocking({
        let file = file.clone();
        move || hongfan(&["backup", file.to_str().unwrap()], &data)
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("backed up the running server"), "{out}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        acked.lock().unwrap().len() > before_backup.len(),
        "reports kept arriving during the backup"
    );

    let restored = server.dir.path().join("restored");
    let (ok, out) = hongfan(&["restore", file.to_str().unwrap()], &restored);
    assert!(ok, "{out}");
    let (ok, out) = hongfan(&["verify"], &restored);
    assert!(ok && out.contains("ok: the logs have no gap"), "{out}");
    let (ok, out) = hongfan(&["restore", file.to_str().unwrap()], &restored);
    assert!(!ok && out.contains("not empty"), "never restores over data: {out}");

    let copy = TestServer::start_on(restored, &[]);
    let mut boss = copy.user("boss").await;
    let (snapshot, _) = boss.subscribe(None).await;
    let ServerMessage::Snapshot { incidents, .. } = snapshot else { panic!("{snapshot:?}") };
    let present: HashMap<String, u64> =
        incidents.iter().map(|i| (i.request_id.clone(), i.id.0)).collect();
    for (request, id) in &before_backup {
        assert_eq!(
            present.get(request),
            Some(id),
            "report {request}, acknowledged before the backup, was restored"
        );
    }
}

/// sled's files damaged — one missing, the file cut in half, an old event's bytes flipped —
/// never cost the folder: `verify` checks it as rebuilt from the event log and says so, writing
/// nothing; the server rebuilds it at start (the damaged files set aside), `hongfan repair` too,
/// and every event is there after. A folder without its event log is refused, as before.
#[test]
fn a_damaged_store_is_rebuilt_from_the_event_log_and_verify_leaves_it_alone() {
    // A month of demo history: enough that damage lands on live data.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out) = hongfan(&["demo"], &data);
    assert!(ok, "{out}");
    let (ok, out) = hongfan(&["verify"], &data);
    assert!(ok && out.contains("ok: the logs have no gap"), "{out}");
    let counts = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("checked"))
            .map(|l| l.split(" in ").next().unwrap_or_default().to_owned())
    };
    let whole = counts(&out).unwrap();

    let copy = |name: &str| {
        let target = dir.path().join(name);
        let status = Command::new("cp").arg("-r").arg(&data).arg(&target).status().unwrap();
        assert!(status.success());
        target
    };
    let listing = |dir: &std::path::Path| {
        let mut names: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };
    let damage = |name: &str| {
        let dir = copy(name);
        let db = dir.join("db");
        match name {
            "missing" | "bare" => std::fs::remove_file(dir.join("conf")).unwrap(),
            "truncated" => {
                let bytes = std::fs::read(&db).unwrap();
                std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
            }
            _ => {
                // An old event's bytes, wherever sled keeps a copy of them.
                let mut bytes = std::fs::read(&db).unwrap();
                let needle = b"\"seq\":100,";
                let found: Vec<usize> = (0..bytes.len() - needle.len())
                    .filter(|&i| &bytes[i..i + needle.len()] == needle)
                    .collect();
                assert!(!found.is_empty(), "event 100 is in the file");
                for at in found {
                    for b in &mut bytes[at..at + 32] {
                        *b ^= 0xff;
                    }
                }
                std::fs::write(&db, &bytes).unwrap();
            }
        }
        dir
    };
    // Without its event log (a folder of before): refused, naming the folder, left alone.
    let bare = damage("bare");
    std::fs::remove_dir_all(bare.join("log")).unwrap();
    let (ok, out) = hongfan(&["--addr", "127.0.0.1:0"], &bare);
    assert!(!ok && out.contains("is damaged") && out.contains(bare.to_str().unwrap()), "{out}");
    assert!(!bare.join("conf").exists(), "nothing was recreated");

    for name in ["missing", "truncated", "flipped"] {
        let dir = damage(name);
        let before = listing(&dir);
        let db = std::fs::read(dir.join("db")).unwrap();
        let (ok, out) = hongfan(&["verify"], &dir);
        assert!(ok && counts(&out).as_deref() == Some(whole.as_str()), "{name}: {out}");
        assert_eq!(listing(&dir), before, "{name}: verify creates no file");
        assert!(std::fs::read(dir.join("db")).unwrap() == db, "{name}: verify writes nothing");
        if name == "missing" {
            assert!(
                out.contains("note: sled's files cannot be read") && out.contains("missing"),
                "{out}"
            );
        }
        // The server rebuilds what it cannot read, and serves.
        let mut server = TestServer::start_on(dir.clone(), &[]);
        server.stop();
        let (ok, out) = hongfan(&["verify"], &dir);
        assert!(
            ok && !out.contains("note:") && counts(&out).as_deref() == Some(whole.as_str()),
            "{name}: {out}"
        );
        // `repair` rebuilds whatever the files' state.
        let (ok, out) = hongfan(&["repair"], &dir);
        assert!(ok && out.contains("rebuilt the store"), "{name}: {out}");
        let aside = listing(&dir)
            .into_iter()
            .filter(|n| n.to_string_lossy().starts_with("damaged-"))
            .count();
        assert!(aside >= 1, "{name}: the old files are kept aside");
        let (ok, out) = hongfan(&["verify"], &dir);
        assert!(ok && counts(&out).as_deref() == Some(whole.as_str()), "{name}: {out}");
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn metrics_count_what_a_scripted_run_did() {
    let server = TestServer::start().await;
    let mut wang = server.user("wang").await;
    let (snapshot, _) = wang.subscribe(None).await;
    let ServerMessage::Snapshot { epoch, .. } = snapshot else { panic!("{snapshot:?}") };
    wang.send(&ClientMessage::Duty { id: 1, on: true }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Roster { on_duty } if !on_duty.is_empty()))
        .await;
    let mut kiosk = server.kiosk("c1").await;
    let mut first = None;
    for request in ["a", "b", "c", "a"] {
        kiosk
            .send(&ClientMessage::Report {
                request_id: request.into(),
                report: report("c1", request),
            })
            .await;
        let (answer, _) = kiosk.recv_until(|m| matches!(m, ServerMessage::Reported { .. })).await;
        if let ServerMessage::Reported { incident, .. } = answer {
            first.get_or_insert(incident.id);
        }
    }
    wang.send(&ClientMessage::Claim { id: 1, incident: first.unwrap() }).await;
    wang.recv_until(|m| matches!(m, ServerMessage::Done { .. })).await;
    let mut boss = server.user("boss").await;
    boss.subscribe(Some(hongfan_shared::protocol::Position { epoch, seq: 2 })).await;

    // Beside the pages, /metrics is for supervisors (and the operator's token).
    let anonymous = reqwest::get(format!("{}/metrics", server.url)).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "it tells who is online: not for anyone");
    let boss_cookie = server.login("boss").await;
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .header("cookie", boss_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&text, "hongfan_reports_received_total"),
        4.0,
        "three reports and one resend"
    );
    assert_eq!(metric(&text, "hongfan_events_appended_total"), 4.0, "three reported, one claimed");
    assert_eq!(metric(&text, "hongfan_snapshots_total"), 1.0);
    assert_eq!(metric(&text, "hongfan_resumes_total"), 1.0);
    assert_eq!(metric(&text, "hongfan_breaches_total"), 0.0);
    assert_eq!(metric(&text, "hongfan_slow_consumers_total"), 0.0);
    assert_eq!(metric(&text, "hongfan_connections{role=\"worker\"}"), 1.0);
    assert_eq!(metric(&text, "hongfan_connections{role=\"kiosk\"}"), 1.0);
    assert_eq!(metric(&text, "hongfan_connections{role=\"supervisor\"}"), 1.0);
    assert_eq!(metric(&text, "hongfan_open_incidents{compound=\"c1\"}"), 3.0);
    assert_eq!(metric(&text, "hongfan_open_incidents{compound=\"c2\"}"), 0.0);
    assert!(metric(&text, "hongfan_commit_batch_size_count") >= 4.0);
    assert!(metric(&text, "hongfan_flush_seconds_count") >= 4.0);
}

#[tokio::test]
async fn metrics_can_live_on_their_own_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let server = TestServer::start_with(&["--metrics-addr", &addr]).await;
    let public = reqwest::get(format!("{}/metrics", server.url)).await.unwrap();
    assert_eq!(public.status().as_u16(), 404, "not beside the pages");
    let private = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(private.status().as_u16(), 200);
    assert!(private.text().await.unwrap().contains("hongfan_events_appended_total"));
}

#[test]
fn a_new_data_folder_and_its_files_are_fsynced_before_use() {
    // Watched with strace: the folder's own entries (sled's files, the mark) and the folder's
    // name in its parent must be synced, or a power cut can lose the files of a new store.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trace = dir.path().join("trace.txt");
    let status = Command::new("strace")
        // The main thread only (no -f): it opens the store, and its lines are never split by
        // another thread's.
        .args(["-e", "trace=openat,fsync,fdatasync", "-o"])
        .arg(&trace)
        .arg(binary())
        .args(["user", "list", "--data-dir"])
        .arg(&data)
        .status()
        .expect("strace (bash tests/run.sh installs it)");
    assert!(status.success());
    let trace = std::fs::read_to_string(&trace).unwrap();
    let synced = |path: &std::path::Path| {
        let opened = format!("\"{}\", O_RDONLY", path.display());
        // Each line: `openat(AT_FDCWD, "<path>", O_RDONLY|O_CLOEXEC) = <fd>`.
        trace.lines().filter(|l| l.contains(&opened) && !l.contains("O_DIRECTORY|O_NONBLOCK")).any(
            |line| {
                let fd = line.rsplit("= ").next().unwrap_or("").trim().to_owned();
                let after = &trace[trace.find(line).unwrap() + line.len()..];
                after.contains(&format!("fsync({fd})"))
            },
        )
    };
    assert!(synced(&data), "the new data folder is fsynced:\n{trace}");
    assert!(synced(&data.join("conf")), "sled's conf, which sled writes unsynced:\n{trace}");
    assert!(synced(dir.path()), "its name in the parent folder is fsynced:\n{trace}");
}

#[test]
fn an_empty_server_url_left_by_a_power_cut_means_no_server_and_backup_reads_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (made, text) = hongfan(&["user", "list"], &data);
    assert!(made, "{text}");
    // What a power cut left of an older version's files: both empty.
    std::fs::write(data.join("server.url"), b"").unwrap();
    std::fs::write(data.join("operator.token"), b"").unwrap();
    let file = dir.path().join("folder.backup");
    let (ok, text) = hongfan(&["backup", file.to_str().unwrap()], &data);
    assert!(ok, "{text}");
    assert!(text.contains("backed up") && !text.contains("running server"), "{text}");
    assert!(file.is_file());
}
