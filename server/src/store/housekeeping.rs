//! What whoever writes the store (the committer, or a standby applying the primary's groups)
//! does now and then: sled made durable by itself, the write-ahead log retired into the event log once large, the high-water
//! mark written.

use std::time::Duration;

use hongfan_shared::Seq;

use super::{Shared, StoreError};

/// How often the high-water mark is brought up to date.
const MARK_EVERY: Duration = Duration::from_secs(1);
/// How often sled is made durable (a checkpoint), at most, and how large the
/// log may grow before that happens sooner.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
const CHECKPOINT_BYTES: u64 = 64 << 20;

/// Now and then, and at the end: sled durable by itself (a checkpoint), the
/// high-water mark written. The groups before are durable in the log: their answers stand
/// whatever this returns. Whoever writes the store (the committer, or a standby applying the
/// primary's groups) keeps one.
#[derive(Debug)]
pub(super) struct Housekeeping {
    /// When the high-water mark was last written.
    marked_at: std::time::Instant,
    /// When sled was last made durable.
    checkpointed_at: std::time::Instant,
}

impl Default for Housekeeping {
    fn default() -> Self {
        let now = std::time::Instant::now();
        Housekeeping { marked_at: now, checkpointed_at: now }
    }
}

impl Housekeeping {
    pub(super) fn run(&mut self, shared: &Shared, seq: Seq, shutdown: bool) -> Option<StoreError> {
        let mut failed = None;
        let due = self.checkpointed_at.elapsed() >= CHECKPOINT_EVERY
            || shared.disk.wal_len() > CHECKPOINT_BYTES;
        if due || shutdown {
            if let Err(e) = shared.disk.checkpoint() {
                let e = StoreError::Write(format!("checkpoint: {e}"));
                shared.fail_write(&e);
                failed = Some(e);
            }
            self.checkpointed_at = std::time::Instant::now();
        }
        // At most once a second: a sync of its own per group would halve throughput.
        if self.marked_at.elapsed() >= MARK_EVERY || shutdown {
            if let Err(e) = shared.disk.write_mark(seq) {
                tracing::warn!(error = %e, "cannot write the high-water mark");
            }
            self.marked_at = std::time::Instant::now();
        }
        failed
    }
}
