//! The README's two commands, taken from README.md itself and run on a fresh clone of HEAD, so
//! the README cannot drift from what works: `cargo run --release` must start the server and serve
//! its pages, and the test command must pass.
//!
//! The nested test command runs this file too; there (`HONGFAN_README_NESTED=1`) it stops at
//! once instead of cloning again. The clone builds into `target/readme-clone`, kept between runs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_owned()
}

/// The indented commands of the README's "Two commands" section, in order.
fn readme_commands(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Two commands"))
        .expect("README.md has a \"## Two commands\" section");
    section
        .lines()
        .filter_map(|line| line.strip_prefix("    "))
        .map(|command| command.trim().to_owned())
        .filter(|command| !command.is_empty())
        .collect()
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.ancestors().nth(3).expect("target dir").join("readme-clone")
}

fn clone_head() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(workspace())
        .arg(dir.path().join("hongfan"))
        .status()
        .expect("git clone");
    assert!(status.success(), "git clone of the workspace failed");
    dir
}

/// `sh -c <command>` in the clone, as a newcomer would type it.
fn shell(command: &str, clone: &Path) -> Command {
    let mut shell = Command::new("sh");
    shell
        .args(["-c", command])
        .current_dir(clone)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("HONGFAN_README_NESTED", "1")
        // Not part of the command: a free port, so a server already on 8080 cannot interfere.
        .env("HONGFAN_ADDR", "127.0.0.1:0")
        // Nor this: a one-off build gains nothing from incremental caches but gigabytes of disk.
        .env("CARGO_INCREMENTAL", "0")
        .env("HONGFAN_CRASH_ROUNDS", "5")
        .env("HONGFAN_FAILOVER_ROUNDS", "3")
        .env("HONGFAN_LEADER_KILLS", "2");
    shell
}

#[test]
fn the_readme_commands_work_on_a_fresh_clone() {
    if std::env::var_os("HONGFAN_README_NESTED").is_some() {
        eprintln!("inside the README's own test command: not cloning again");
        return;
    }
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let commands = readme_commands(&readme);
    let [run, test] = commands.as_slice() else {
        panic!("the Two commands section names two commands, found {commands:?}")
    };
    let clone = clone_head();
    let clone = clone.path().join("hongfan");

    // The run command: it builds, starts, says where it listens and serves the pages. `exec`, so
    // that the signal below reaches the server (cargo run replaces itself with the binary).
    let mut server = shell(&format!("exec {run}"), &clone)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{run}: {e}"));
    let mut stdout = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let first = stdout.next().and_then(Result::ok).unwrap_or_default();
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("`{run}` did not start the server: {first:?}"))
        .to_owned();
    let banner: Vec<String> = stdout.by_ref().take(4).map_while(Result::ok).collect();
    assert!(banner.iter().any(|l| l.contains("/kiosk")), "the banner says where the kiosk is");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for page in ["/", "/kiosk", "/board", "/login"] {
        let status = runtime
            .block_on(async { reqwest::get(format!("{url}{page}")).await.map(|r| r.status()) })
            .unwrap_or_else(|e| panic!("{url}{page}: {e}"));
        assert!(status.is_success(), "{page} answered {status}");
    }
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    std::thread::spawn(move || stdout.for_each(drop));
    let status = server.wait().expect("wait for the server");
    assert!(status.success(), "the server stopped with {status}");

    // The test command, on the same fresh clone.
    let status = shell(test, &clone).status().unwrap_or_else(|e| panic!("{test}: {e}"));
    assert!(status.success(), "`{test}` failed on a fresh clone of HEAD");
}

#[test]
fn the_commands_are_read_from_the_readme_section() {
    let text = "# x\n\n## Two commands\n\nRun:\n\n    cargo run --release\n\nTest:\n\n    bash tests/run.sh\n\n## Next\n\n    other\n";
    assert_eq!(readme_commands(text), ["cargo run --release", "bash tests/run.sh"]);
}
