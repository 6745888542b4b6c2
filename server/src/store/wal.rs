//! The write-ahead log: the durability point of every group commit.
//!
//! sled makes a write durable with two waits on the disk (its own `sync_file_range`, once for a
//! transaction's manifest and once for its data) and the store needed a third (`fdatasync`, for
//! a power cut). Here a group's writes are appended to one file and made durable with one
//! `fdatasync`; only then are they applied to sled, which writes them out in its own time. Every
//! second or so the committer makes sled durable (a checkpoint) and empties this file. At start,
//! whatever the file still holds is applied to sled again: every record is a list of whole
//! values to put or remove, so applying one twice changes nothing.
//!
//! A record is `[length: u32][crc32 of the payload: u32][payload]`, big-endian. The payload is
//! a count and, for each write, its tree, key and value (absent for a removal), each with its
//! length. Records are only ever appended, each synced before the next, so only the last one can
//! be torn by a crash, and it was never acknowledged: it is dropped. A bad record with records
//! after it is damage, and the folder is refused.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The file's name in the data folder.
pub(super) const WAL_FILE: &str = "hongfan.wal";

/// One write to one of the store's trees: a whole value, or a removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Op {
    pub tree: u8,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// Why the log cannot be read back.
#[derive(Debug, thiserror::Error)]
pub(super) enum WalError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("record {record} at byte {offset} is damaged, and records follow it")]
    Damaged { record: usize, offset: u64 },
}

#[derive(Debug)]
pub(super) struct Wal {
    file: File,
    len: u64,
}

impl Wal {
    /// Opens (or creates) the log in `dir` and returns it with the groups it still holds, in
    /// order. A torn last record is cut off.
    pub(super) fn open(dir: &Path) -> Result<(Wal, Vec<Vec<Op>>), WalError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(WAL_FILE))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (groups, valid) = parse(&bytes)?;
        if valid < bytes.len() as u64 {
            tracing::warn!(
                dropped = bytes.len() as u64 - valid,
                "a torn last record of the write-ahead log was dropped"
            );
            file.set_len(valid)?;
            file.sync_data()?;
        }
        Ok((Wal { file, len: valid }, groups))
    }

    /// Appends one group's writes; `sync` (called once they are written) makes them durable.
    pub(super) fn write(&mut self, ops: &[Op]) -> std::io::Result<()> {
        let record = encode(ops);
        self.file.write_all_at(&record, self.len)?;
        self.len += record.len() as u64;
        Ok(())
    }

    pub(super) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Bytes held: what a start would apply again.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Empties the log, once everything in it is durable in sled.
    pub(super) fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()?;
        self.len = 0;
        Ok(())
    }
}

fn encode(ops: &[Op]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&(ops.len() as u32).to_be_bytes());
    for op in ops {
        payload.push(op.tree);
        payload.extend_from_slice(&(op.key.len() as u32).to_be_bytes());
        payload.extend_from_slice(&op.key);
        match &op.value {
            Some(value) => {
                payload.push(1);
                payload.extend_from_slice(&(value.len() as u32).to_be_bytes());
                payload.extend_from_slice(value);
            }
            None => payload.push(0),
        }
    }
    let mut record = Vec::with_capacity(8 + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    record.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    record.extend_from_slice(&payload);
    record
}

/// The groups in `bytes`, and how many bytes of it are whole records.
fn parse(bytes: &[u8]) -> Result<(Vec<Vec<Op>>, u64), WalError> {
    let mut groups = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let header = bytes.get(at..at + 8);
        let length = header.map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize);
        let payload = length.and_then(|n| bytes.get(at + 8..at + 8 + n));
        let whole = match (header, payload) {
            (Some(h), Some(payload)) => {
                let crc = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                (crc == crc32fast::hash(payload)).then(|| decode(payload)).flatten()
            }
            _ => None,
        };
        match whole {
            Some(ops) => {
                groups.push(ops);
                at += 8 + length.unwrap_or(0);
            }
            // Only the last record can be torn: anything after a bad one means damage.
            None if at + 8 + length.unwrap_or(usize::MAX - at - 8) >= bytes.len() => break,
            None => return Err(WalError::Damaged { record: groups.len(), offset: at as u64 }),
        }
    }
    Ok((groups, at as u64))
}

fn decode(mut payload: &[u8]) -> Option<Vec<Op>> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = rest;
        Some(head)
    }
    fn number(bytes: &mut &[u8]) -> Option<usize> {
        let b = take(bytes, 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    let count = number(&mut payload)?;
    let mut ops = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let tree = take(&mut payload, 1)?[0];
        let n = number(&mut payload)?;
        let key = take(&mut payload, n)?.to_vec();
        let value = match take(&mut payload, 1)?[0] {
            0 => None,
            _ => {
                let n = number(&mut payload)?;
                Some(take(&mut payload, n)?.to_vec())
            }
        };
        ops.push(Op { tree, key, value });
    }
    payload.is_empty().then_some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(tree: u8, key: &[u8], value: Option<&[u8]>) -> Op {
        Op { tree, key: key.to_vec(), value: value.map(<[u8]>::to_vec) }
    }

    #[test]
    fn groups_come_back_in_order_and_a_torn_last_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let a = vec![op(1, b"k1", Some(b"v1")), op(2, b"k2", None)];
        let b = vec![op(3, b"k3", Some(&[0; 3000]))];
        {
            let (mut wal, groups) = Wal::open(dir.path()).unwrap();
            assert!(groups.is_empty());
            wal.write(&a).unwrap();
            wal.write(&b).unwrap();
            wal.sync().unwrap();
        }
        let path = dir.path().join(WAL_FILE);
        let whole = std::fs::read(&path).unwrap();
        assert_eq!(Wal::open(dir.path()).unwrap().1, [a.clone(), b.clone()]);
        // Cut anywhere inside the last record: the first comes back, the file is trimmed.
        for cut in [whole.len() - 1, whole.len() - 100, encode(&a).len() + 3] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let (wal, groups) = Wal::open(dir.path()).unwrap();
            assert_eq!(groups, std::slice::from_ref(&a), "cut at {cut}");
            assert_eq!(wal.len(), encode(&a).len() as u64);
        }
        // A flipped byte in the first record, with the second after it: damage, refused.
        let mut damaged = whole.clone();
        damaged[10] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
        assert!(matches!(Wal::open(dir.path()), Err(WalError::Damaged { record: 0, .. })));
    }
}
