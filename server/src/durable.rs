//! Files written whole and durably: a power cut the instant after leaves the old file or the new
//! one, never an empty or half-written one. Every small file hongfan writes beside its store
//! (the running server's address and token, a backup, an attachment) goes through here.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` as the file `path`: into a new file beside it (mode `0o600`: the data folder's
/// files are the server account's alone), fsynced, renamed over `path`, and the folder's entry
/// fsynced.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// As `write`, with the file's contents written by `fill`.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = parent(path);
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{:08x}.tmp", rand::random::<u32>()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        fill(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Moves a complete file into place (`from`, already fsynced, to `to` in the same folder) and
/// makes the new name durable.
pub fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    sync_dir(parent(to))
}

/// Makes the names of a folder's entries durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A small file's text, or `None` when it is missing or empty (what a power cut can leave of a
/// file written without `write`, by an older version).
pub fn read_text(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.url");
        write(&path, b"http://127.0.0.1:1").unwrap();
        write(&path, b"http://127.0.0.1:2").unwrap();
        assert_eq!(read_text(&path).unwrap().as_deref(), Some("http://127.0.0.1:2"));
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["server.url"]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn an_empty_or_missing_file_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.token");
        assert_eq!(read_text(&path).unwrap(), None);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read_text(&path).unwrap(), None);
    }
}
