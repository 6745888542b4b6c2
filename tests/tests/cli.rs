//! The command line: the first start's one-time accounts, account management, bad configs.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use hongfan_tests::server::binary;

fn run(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let output = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run hongfan");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

#[tokio::test]
async fn the_first_start_prints_a_working_supervisor_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = |first: bool| {
        let mut child = Command::new(binary())
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut banner = Vec::new();
        // The banner ends with the audit URL, or on a first start with the third kiosk.
        for line in lines.by_ref() {
            let line = line.expect("line");
            let done = if first { line.contains("kiosk-3") } else { line.contains("/audit") };
            banner.push(line);
            if done {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        (child, banner)
    };
    let (mut child, banner) = start(true);
    let url = banner[0].trim_start_matches("listening on ").to_owned();
    let supervisor = banner.iter().find(|l| l.contains("supervisor")).expect("supervisor line");
    let password = supervisor.split(" / ").nth(1).expect("password").trim().to_owned();
    assert_eq!(
        banner.iter().filter(|l| l.contains("/kiosk#pair=kiosk-")).count(),
        3,
        "{banner:#?}"
    );

    let login = serde_json::json!({ "login": "admin", "password": password });
    let response =
        reqwest::Client::new().post(format!("{url}/api/login")).json(&login).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let identity: serde_json::Value = response.json().await.unwrap();
    assert_eq!(identity["role"], "supervisor");
    assert_eq!(identity["compounds"], serde_json::json!(["c1", "c2", "c3"]));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());

    let (mut child, banner) = start(false);
    assert!(
        !banner.iter().any(|l| l.contains("supervisor") || l.contains("pair=")),
        "shown once: {banner:#?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn accounts_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out, _) =
        run(&["user", "add", "wangfang", "--name", "王芳", "--compound", "c1"], &data);
    assert!(ok);
    assert!(out.contains("added wangfang (王芳, Worker)") && out.contains("password: "), "{out}");

    let mut child = Command::new(binary())
        .args(["user", "passwd", "wangfang", "--password-stdin", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a-long-new-password\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("password changed for wangfang"));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("a-long-new-password"));

    let (ok, _, err) = run(&["user", "add", "bad", "--compound", "c9"], &data);
    assert!(!ok && err.contains("unknown compound \"c9\""), "{err}");
    let (ok, out, _) = run(&["kiosk", "add", "c2"], &data);
    assert!(ok && out.contains("credential: kiosk-1."), "{out}");
    run(&["user", "disable", "wangfang"], &data);
    run(&["kiosk", "revoke", "kiosk-1"], &data);
    let (_, users, _) = run(&["user", "list"], &data);
    assert!(users.contains("wangfang\t王芳\tWorker\tc1\tdisabled"), "{users}");
    let (_, kiosks, _) = run(&["kiosk", "list"], &data);
    assert!(kiosks.contains("kiosk-1\tc2\t第二小区红帆驿站\trevoked"), "{kiosks}");
}

#[test]
fn a_bad_configuration_is_refused_at_start_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("community.toml");
    std::fs::write(&config, "name = \"x\"\nstreet_office = \"y\"\n[[compound]]\nid = \"c 1\"\n")
        .unwrap();
    let (ok, _, err) = run(
        &["--addr", "127.0.0.1:0", "--config", config.to_str().unwrap()],
        &dir.path().join("data"),
    );
    assert!(!ok);
    assert!(err.contains("community.toml, line 3"), "{err}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn the_demo_fills_an_empty_folder_with_the_same_month_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, first, _) = run(&["demo"], &dir.path().join("one"));
    assert!(ok, "{first}");
    assert!(first.contains("incidents over 30 days") && first.contains("shuji"), "{first}");
    let (_, second, _) = run(&["demo"], &dir.path().join("two"));
    assert_eq!(
        first.lines().next().map(|l| l.split(": ").nth(1)),
        second.lines().next().map(|l| l.split(": ").nth(1))
    );
    let (ok, _, err) = run(&["demo"], &dir.path().join("one"));
    assert!(!ok && err.contains("is not empty"), "{err}");
}
