//! House rules checked on every run: every Rust module starts with a `//!` line saying what it
//! is for, and no server code prints to stdout or stderr except the banner and the CLI.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_owned()
}

#[test]
fn every_module_says_what_it_is_for() {
    let mut files = Vec::new();
    for dir in ["shared/src", "server/src", "server/benches", "tests/src", "tests/tests"] {
        rust_files(&workspace().join(dir), &mut files);
    }
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap_or_default().starts_with("//!"))
        .collect();
    assert!(files.len() > 20);
    assert!(missing.is_empty(), "modules without a //! line: {missing:?}");
}

#[test]
fn server_code_logs_through_tracing() {
    let mut files = Vec::new();
    rust_files(&workspace().join("server/src"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for needle in ["println!", "eprintln!", "dbg!"] {
            assert!(!text.contains(needle), "{} uses {needle}", file.display());
        }
    }
}

/// The part of a file that is not its tests.
fn without_tests(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn files_beside_the_store_are_written_whole_through_one_helper() {
    // Each of these writes its files its own careful way, said here with the reason.
    let own_way = [
        // The write-ahead log: records written in place over zeros, fdatasynced.
        "server/src/store/wal.rs",
        // The high-water mark, written in place and fdatasynced; sled's own files.
        "server/src/store/disk/mod.rs",
        // A backup's partial file, fsynced, then moved into place by `durable::rename`.
        "server/src/cli/backup.rs",
        "server/src/cli/operator.rs",
        // A backup streamed to `hongfan backup`: a scratch file, unlinked as soon as it is open.
        "server/src/http/mod.rs",
        "server/src/durable.rs",
        // The pair's snapshot on its way into NATS: a scratch file, overwritten each time.
        "server/src/standby.rs",
    ];
    let mut files = Vec::new();
    rust_files(&workspace().join("server/src"), &mut files);
    for file in files {
        let name = file.strip_prefix(workspace()).unwrap().to_string_lossy().into_owned();
        if own_way.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for needle in ["fs::write(", "File::create(", "fs::rename(", "OpenOptions::new()"] {
            assert!(
                !without_tests(&text).contains(needle),
                "{name} writes a file with {needle}: use hongfan::durable, so a power cut \
                 cannot leave it empty"
            );
        }
    }
}

/// The codemap (docs/ARCHITECTURE.md) names every module of the server and of `shared`: a new
/// file is placed on the map when it is made.
#[test]
fn every_source_file_is_on_the_codemap() {
    let map = std::fs::read_to_string(workspace().join("docs/ARCHITECTURE.md")).expect("codemap");
    let mut files = Vec::new();
    for dir in ["shared/src", "server/src"] {
        rust_files(&workspace().join(dir), &mut files);
    }
    let unmapped: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let stem = file.file_stem()?.to_str()?;
            let dir = file.parent()?;
            // A folder's `mod.rs` is the module the folder names, within the one above it.
            let (parent, name) = match stem {
                "lib" | "main" => return None,
                "mod" => (dir.parent()?.file_name()?.to_str()?, dir.file_name()?.to_str()?),
                _ => (dir.file_name()?.to_str()?, stem),
            };
            let named = map.contains(&format!("`{name}`"))
                || map.contains(&format!("`{parent}::{name}`"))
                || map.contains(&format!("{name}.rs"));
            (!named).then(|| file.strip_prefix(workspace()).unwrap_or(file).display().to_string())
        })
        .collect();
    assert!(files.len() > 40, "{files:?}");
    assert!(unmapped.is_empty(), "not on docs/ARCHITECTURE.md's codemap: {unmapped:?}");
}

/// sled stays behind the store's boundary: only its disk module names it.
#[test]
fn only_the_stores_disk_module_names_sled() {
    let mut files = Vec::new();
    for dir in ["shared/src", "server/src"] {
        rust_files(&workspace().join(dir), &mut files);
    }
    let naming: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap_or_default().contains("sled::"))
        .map(|f| f.strip_prefix(workspace()).unwrap_or(f).display().to_string())
        .collect();
    let outside: Vec<&String> =
        naming.iter().filter(|f| !f.starts_with("server/src/store/disk/")).collect();
    assert!(outside.is_empty() && !naming.is_empty(), "{naming:?}");
}

/// Server and `shared` code outside tests never `unwrap`s, and panics (`expect`, `panic!`,
/// `unreachable!`) only where a value was checked just before or cannot fail, each listed here
/// with its reason; a new one is added with its own.
#[test]
fn no_unwrap_and_only_listed_panics_outside_tests() {
    let allowed: [(&str, &str, &str); 7] = [
        ("server/src/webhooks.rs", "expect(\"any key length\")", "HMAC takes keys of any length"),
        ("server/src/webhooks.rs", "expect(\"checked at load\")", "URLs are parsed at load"),
        ("server/src/cli/serve.rs", "expect(\"writing to a String", "a String takes any write"),
        ("server/src/store/wal.rs", "expect(\"eight bytes\")", "a slice of eight bytes"),
        ("shared/src/event.rs", "self.mediation.as_mut().expect(\"checked\")", "checked above"),
        ("shared/src/event.rs", "self.pause.take().expect(\"checked\")", "checked above"),
        ("shared/src/permissions.rs", "expect(\"a report makes", "a fixed report event"),
    ];
    let mut files = Vec::new();
    for dir in ["server/src", "shared/src"] {
        rust_files(&workspace().join(dir), &mut files);
    }
    let mut found = Vec::new();
    for file in files {
        let name = file.strip_prefix(workspace()).unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in without_tests(&text).lines().enumerate() {
            let panics = [".unwrap()", ".expect(", "panic!(", "unreachable!(", "todo!("]
                .iter()
                .any(|needle| line.contains(needle));
            let listed = allowed.iter().any(|(f, snippet, _)| *f == name && line.contains(snippet));
            if panics && (line.contains(".unwrap()") || !listed) && !line.trim().starts_with("//") {
                found.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "a panic outside tests, not on the list: {found:#?}");
}
