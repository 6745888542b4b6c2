//! The event log, the truth of a data folder: the write-ahead log's records are never thrown
//! away but kept, in order, in the folder `log/`. sled holds nothing else: when its files are
//! missing, older than the log, or damaged in any way, it is rebuilt from the log.
//!
//! `log/` holds a *base* and *segments*, each in the write-ahead log's own format (a header,
//! then whole, checksummed records; `wal::read_segment`). The base `base-<n>` is sled's trees as
//! they were when the log began for this folder (a new folder's first writes, or an older
//! folder's whole store, or a restored backup), and covers every segment numbered below `n`;
//! segment `<n>.seg` is a write-ahead log retired once it had grown large, after everything in
//! it was durable in sled. Applying the base, then the segments in order, then the write-ahead
//! log, gives sled's trees as they are: every record is whole values to put or remove, so
//! applying a record again, or a segment whose writes sled already has, changes nothing.

use std::path::{Path, PathBuf};

use super::super::wal::{self, Op, WalError};

/// The log's folder in the data folder.
pub(in crate::store) const LOG_DIR: &str = "log";
/// In the log's folder while sled is being rebuilt: a start that finds it rebuilds again.
pub(super) const REBUILDING: &str = "rebuilding";
/// In the log's folder: the generation of the write-ahead log the event log goes on into.
const GENERATION: &str = "wal";

/// The log's files as found: the newest base and the segments it does not cover, in order.
#[derive(Debug, Default)]
pub(in crate::store) struct Log {
    pub base: Option<(u64, PathBuf)>,
    pub segments: Vec<(u64, PathBuf)>,
}

impl Log {
    /// Lists the log of the data folder `dir`, removing what a crash left half done (a file
    /// being written) and what a newer base covers.
    pub fn read(dir: &Path) -> std::io::Result<Log> {
        let folder = dir.join(LOG_DIR);
        let mut bases = Vec::new();
        let mut segments = Vec::new();
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Log::default()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if let Some(n) = name.strip_prefix("base-").and_then(|n| n.parse().ok()) {
                bases.push((n, path));
            } else if let Some(n) = name.strip_suffix(".seg").and_then(|n| n.parse().ok()) {
                segments.push((n, path));
            } else if name.ends_with(".new") {
                // Written and not yet named: never part of the log.
                std::fs::remove_file(&path)?;
            }
        }
        bases.sort_unstable();
        segments.sort_unstable();
        let base = bases.pop();
        let covered = base.as_ref().map_or(0, |(n, _)| *n);
        for (_, old) in bases {
            std::fs::remove_file(old)?;
        }
        let (old, segments): (Vec<_>, Vec<_>) =
            segments.into_iter().partition(|(n, _)| *n < covered);
        for (_, path) in old {
            std::fs::remove_file(path)?;
        }
        Ok(Log { base, segments })
    }

    /// The number the next segment (or base) takes.
    pub fn next(&self) -> u64 {
        let base = self.base.as_ref().map_or(0, |(n, _)| *n);
        let segment = self.segments.last().map_or(0, |(n, _)| n + 1);
        base.max(segment).max(1)
    }

    /// Every group of the base and the segments, oldest first, one file at a time (`each`
    /// is told which file it reads).
    pub fn replay(
        &self,
        mut each: impl FnMut(&Path, Vec<Vec<Op>>) -> Result<(), String>,
    ) -> Result<(), String> {
        for (_, path) in self.base.iter().chain(&self.segments) {
            let groups = wal::read_segment(path).map_err(|e| describe(path, &e))?;
            each(path, groups)?;
        }
        Ok(())
    }
}

/// The path of segment `n` of the data folder `dir`.
pub(in crate::store) fn segment(dir: &Path, n: u64) -> PathBuf {
    dir.join(LOG_DIR).join(format!("{n:010}.seg"))
}

/// Writes `groups` as the base `n` of the data folder `dir`, whole, then removes what it
/// covers (the older base, the segments below `n`).
pub(super) fn write_base(
    dir: &Path,
    n: u64,
    groups: impl IntoIterator<Item = std::io::Result<Vec<Op>>>,
) -> std::io::Result<()> {
    let folder = dir.join(LOG_DIR);
    if !folder.is_dir() {
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&folder)?;
        crate::durable::sync_dir(dir)?;
    }
    wal::write_segment(&folder.join(format!("base-{n:010}")), groups)?;
    Log::read(dir)?;
    Ok(())
}

/// Notes that the event log goes on into the write-ahead log of `generation` (written whole).
pub(super) fn note_generation(dir: &Path, generation: u64) -> std::io::Result<()> {
    let folder = dir.join(LOG_DIR);
    if !folder.is_dir() {
        return Ok(());
    }
    crate::durable::write(&folder.join(GENERATION), generation.to_string().as_bytes())
}

/// The generation last noted (`None` when none was, or the file is unreadable).
pub(super) fn noted_generation(dir: &Path) -> Option<u64> {
    let text = crate::durable::read_text(&dir.join(LOG_DIR).join(GENERATION)).ok()??;
    text.trim().parse().ok()
}

fn describe(path: &Path, e: &WalError) -> String {
    format!("the log's file {} cannot be read: {e}", path.display())
}
