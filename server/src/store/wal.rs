//! The write-ahead log: the durability point of every group commit.
//!
//! sled makes a write durable with two waits on the disk (its own `sync_file_range`, once for a
//! transaction's manifest and once for its data) and the store needed a third (`fdatasync`, for
//! a power cut). Here a group's writes go into one file and are made durable with one
//! `fdatasync`; only then are they applied to sled, which writes them out in its own time. Every
//! second or so the committer makes sled durable (a checkpoint); once the file has grown large it
//! becomes a segment of the event log (`retire`, `disk::log`) and a new one begins. At start,
//! whatever the file still holds is applied to sled again: every record is a list of whole
//! values to put or remove, so applying one twice changes nothing.
//!
//! The file is written in place, never grown by a record: it is filled with zeros ahead of use
//! (doubling when a record would not fit), so that an `fdatasync` writes the record's blocks and
//! nothing of the file system's own (no new size, no new extent: on ext4 that saves a journal
//! commit, about a quarter of the sync, on every group). Emptying it is a new *generation*: a
//! random number written in the header at byte 0 and synced; records of earlier generations
//! left behind in the file are not read back.
//!
//! The header is `[magic: 8 bytes][generation: u64][crc32 of both: u32]`, records start at
//! byte 4096 and are `[length: u32][crc32: u32][generation: u64][payload]`, big-endian, the crc
//! over the generation and the payload. The payload is a count and, for each write, its tree,
//! key and value (absent for a removal), each with its length. Records follow one another, each
//! synced before the next is written, so only the last can be torn by a crash, and it was never
//! acknowledged: it is dropped. A bad record with a good one of the same generation anywhere
//! after it is damage, and the folder is refused. A log in the first format (records appended
//! from byte 0, no generation) is read back as it was and rewritten in this one when emptied.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The file's name in the data folder.
pub(super) const WAL_FILE: &str = "hongfan.wal";

const MAGIC: &[u8; 8] = b"HFWAL\x002\n";
/// Where records start: the header has a block of its own.
const RECORDS: u64 = 4096;
/// A new log's room for records; it doubles when a record would not fit, and is kept.
const FIRST_ROOM: u64 = 1 << 20;
/// A record's frame: length, crc, generation.
const FRAME: usize = 16;

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
    #[error("its header is damaged")]
    Header,
}

#[derive(Debug)]
pub(super) struct Wal {
    file: File,
    /// The data folder: a new log is built beside the file and renamed over it.
    dir: std::path::PathBuf,
    /// Zero for a log of the first format until it is emptied, and after a failed emptying:
    /// nothing is written then.
    generation: u64,
    /// Where records start: byte 0 in the first format.
    start: u64,
    /// Where the next record goes.
    end: u64,
    /// The file's size: zeros written ahead of `end`.
    size: u64,
    /// Where the records durable in sled end (`checkpointed`).
    checkpointed: u64,
}

impl Wal {
    /// Opens (or creates) the log in `dir` and returns it with the groups it still holds, in
    /// order. A torn last record is left behind (the next one overwrites it).
    pub(super) fn open(dir: &Path) -> Result<(Wal, Vec<Vec<Op>>), WalError> {
        let path = dir.join(WAL_FILE);
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let size = bytes.len() as u64;
        if bytes.starts_with(MAGIC) {
            let generation = header(&bytes).ok_or(WalError::Header)?;
            let (groups, end) = parse(&bytes, generation)?;
            let dir = dir.to_owned();
            let wal =
                Wal { file, dir, generation, start: RECORDS, end, size, checkpointed: RECORDS };
            return Ok((wal, groups));
        }
        // The first format, or nothing yet. Its records stand until the store's first checkpoint
        // (right after it applies them), which writes this format's header.
        let (groups, valid) = parse_first_format(&bytes)?;
        let mut wal = Wal {
            file,
            dir: dir.to_owned(),
            generation: 0,
            start: 0,
            end: valid,
            size,
            checkpointed: 0,
        };
        if groups.is_empty() {
            wal.clear()?;
        }
        Ok((wal, groups))
    }

    /// Writes one group's writes; `sync` (called once they are written) makes them durable.
    pub(super) fn write(&mut self, ops: &[Op]) -> std::io::Result<()> {
        if self.generation == 0 {
            return Err(std::io::Error::other("a log of the first format is emptied before use"));
        }
        let record = encode(ops, self.generation);
        let end = self.end + record.len() as u64;
        if end > self.size {
            // Zeros first, so that the records after this one overwrite rather than grow.
            let room = end.max(self.size * 2);
            let zeros = vec![0u8; (room - self.size) as usize];
            self.file.write_all_at(&zeros, self.size)?;
            self.size = room;
        }
        self.file.write_all_at(&record, self.end)?;
        self.end = end;
        Ok(())
    }

    pub(super) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Bytes of records held: what a start would apply again.
    pub(super) fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Bytes of records not yet known durable in sled: what the next checkpoint makes so.
    pub(super) fn pending(&self) -> u64 {
        self.end - self.checkpointed
    }

    /// Everything written so far is durable in sled.
    pub(super) fn checkpointed(&mut self) {
        self.checkpointed = self.end;
    }

    /// The generation its records are written with (0: a log of the first format, which is
    /// emptied before use).
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Makes the records held a segment of the event log (`segment`, a path in the log's
    /// folder) and starts an empty log of a new generation. Called only once everything in it
    /// is durable in sled, so a crash at any point leaves the records in one file or the other
    /// (or both: applying a group twice changes nothing).
    pub(super) fn retire(&mut self, segment: &Path) -> std::io::Result<()> {
        if self.generation == 0 {
            return self.clear();
        }
        // The zeros ahead of use are not part of it.
        self.file.set_len(self.end)?;
        self.file.sync_all()?;
        if let Some(folder) = segment.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::rename(self.dir.join(WAL_FILE), segment)?;
        // From here the file is the segment's: a new one is made whatever else fails, so that
        // nothing more is written into the segment. (`clear` builds it beside where the log was
        // and renames it into place.)
        self.size = 0;
        let synced = segment
            .parent()
            .map_or(Ok(()), crate::durable::sync_dir)
            .and_then(|()| crate::durable::sync_dir(&self.dir));
        self.clear()?;
        synced
    }

    /// Empties the log, once everything in it is durable in sled: a new generation.
    pub(super) fn clear(&mut self) -> std::io::Result<()> {
        // Until this succeeds, the generation in the file is not known: nothing is written.
        let old = std::mem::take(&mut self.generation);
        let generation = loop {
            let g = rand::random::<u64>();
            if g != old && g != 0 {
                break g;
            }
        };
        let mut block = Vec::with_capacity(20);
        block.extend_from_slice(MAGIC);
        block.extend_from_slice(&generation.to_be_bytes());
        block.extend_from_slice(&crc32fast::hash(&block).to_be_bytes());
        if self.size < RECORDS + FIRST_ROOM {
            // A new log, or one in the first format: built whole beside it (zeros throughout,
            // the header in front), synced and renamed over it, so that a crash leaves one or
            // the other, never a file half made.
            let room = RECORDS + FIRST_ROOM;
            let building = self.dir.join(format!("{WAL_FILE}.new"));
            let file = std::os::unix::fs::OpenOptionsExt::mode(
                OpenOptions::new().read(true).write(true).create(true).truncate(true),
                0o600,
            )
            .open(&building)?;
            let mut bytes = vec![0u8; room as usize];
            bytes[..block.len()].copy_from_slice(&block);
            file.write_all_at(&bytes, 0)?;
            file.sync_all()?;
            std::fs::rename(&building, self.dir.join(WAL_FILE))?;
            crate::durable::sync_dir(&self.dir)?;
            (self.file, self.size) = (file, room);
        } else {
            self.file.write_all_at(&block, 0)?;
            self.file.sync_data()?;
        }
        self.generation = generation;
        (self.start, self.end, self.checkpointed) = (RECORDS, RECORDS, RECORDS);
        Ok(())
    }
}

/// The groups of a segment of the event log (a retired log, or a base written whole): every
/// record is whole, synced before the file was named, so anything else is damage.
pub(super) fn read_segment(path: &Path) -> Result<Vec<Vec<Op>>, WalError> {
    let bytes = std::fs::read(path)?;
    let generation = header(&bytes).ok_or(WalError::Header)?;
    let (groups, end) = parse(&bytes, generation)?;
    if end != bytes.len() as u64 {
        return Err(WalError::Damaged { record: groups.len(), offset: end });
    }
    Ok(groups)
}

/// Writes `groups` as a segment at `path`, whole: into a file beside it, synced, then renamed
/// into place and the folder synced.
pub(super) fn write_segment(
    path: &Path,
    groups: impl IntoIterator<Item = std::io::Result<Vec<Op>>>,
) -> std::io::Result<()> {
    let generation = loop {
        let g = rand::random::<u64>();
        if g != 0 {
            break g;
        }
    };
    let building = path.with_extension("new");
    let mut file = std::io::BufWriter::new(
        std::os::unix::fs::OpenOptionsExt::mode(
            OpenOptions::new().write(true).create(true).truncate(true),
            0o600,
        )
        .open(&building)?,
    );
    let mut head = vec![0u8; RECORDS as usize];
    head[..8].copy_from_slice(MAGIC);
    head[8..16].copy_from_slice(&generation.to_be_bytes());
    let crc = crc32fast::hash(&head[..16]);
    head[16..20].copy_from_slice(&crc.to_be_bytes());
    std::io::Write::write_all(&mut file, &head)?;
    for ops in groups {
        std::io::Write::write_all(&mut file, &encode(&ops?, generation))?;
    }
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&building, path)?;
    if let Some(folder) = path.parent() {
        crate::durable::sync_dir(folder)?;
    }
    Ok(())
}

fn header(bytes: &[u8]) -> Option<u64> {
    let block = bytes.get(..20)?;
    let crc = u32::from_be_bytes(block[16..20].try_into().ok()?);
    (crc == crc32fast::hash(&block[..16]))
        .then(|| u64::from_be_bytes(block[8..16].try_into().expect("eight bytes")))
}

fn encode(ops: &[Op], generation: u64) -> Vec<u8> {
    let mut record = vec![0u8; FRAME];
    record[8..16].copy_from_slice(&generation.to_be_bytes());
    record.extend_from_slice(&(ops.len() as u32).to_be_bytes());
    for op in ops {
        record.push(op.tree);
        record.extend_from_slice(&(op.key.len() as u32).to_be_bytes());
        record.extend_from_slice(&op.key);
        match &op.value {
            Some(value) => {
                record.push(1);
                record.extend_from_slice(&(value.len() as u32).to_be_bytes());
                record.extend_from_slice(value);
            }
            None => record.push(0),
        }
    }
    let length = (record.len() - FRAME) as u32;
    let crc = crc32fast::hash(&record[8..]);
    record[..4].copy_from_slice(&length.to_be_bytes());
    record[4..8].copy_from_slice(&crc.to_be_bytes());
    record
}

/// The record of `generation` at `at`, whole, and where the next one starts.
fn record_at(bytes: &[u8], at: usize, generation: u64) -> Option<(Vec<Op>, usize)> {
    let frame = bytes.get(at..at.checked_add(FRAME)?)?;
    let length = u32::from_be_bytes(frame[..4].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(frame[4..8].try_into().ok()?);
    if u64::from_be_bytes(frame[8..16].try_into().ok()?) != generation {
        return None;
    }
    let next = at.checked_add(FRAME)?.checked_add(length)?;
    let covered = bytes.get(at + 8..next)?;
    if crc != crc32fast::hash(covered) {
        return None;
    }
    Some((decode(&covered[8..])?, next))
}

/// The groups of `generation` in `bytes`, and where the next record goes.
fn parse(bytes: &[u8], generation: u64) -> Result<(Vec<Vec<Op>>, u64), WalError> {
    let mut groups = Vec::new();
    let mut at = RECORDS as usize;
    while let Some((ops, next)) = record_at(bytes, at, generation) {
        groups.push(ops);
        at = next;
    }
    // Past the last good record: zeros, a torn record, or records of earlier generations. A
    // good record of this one further on means one in between was damaged.
    let tag = generation.to_be_bytes();
    let rest = bytes.get(at + 1..).unwrap_or_default();
    for found in memchr::memmem::find_iter(rest, &tag) {
        let start = (at + 1 + found).checked_sub(8);
        if start.is_some_and(|start| record_at(bytes, start, generation).is_some()) {
            return Err(WalError::Damaged { record: groups.len(), offset: at as u64 });
        }
    }
    Ok((groups, at as u64))
}

/// The groups in a log of the first format (`[length][crc32][payload]` from byte 0), and how
/// many bytes of it are whole records.
fn parse_first_format(bytes: &[u8]) -> Result<(Vec<Vec<Op>>, u64), WalError> {
    // Zeros where a record would start (a record's length is never 0): nothing was ever written
    // (a log begun and not finished when this was the way a new log was made).
    if bytes.get(..4).is_none_or(|length| length == [0; 4]) {
        return Ok((Vec::new(), 0));
    }
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

    fn read(dir: &Path) -> Vec<Vec<Op>> {
        Wal::open(dir).unwrap().1
    }

    #[test]
    fn groups_come_back_in_order_and_a_torn_last_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let a = vec![op(1, b"k1", Some(b"v1")), op(2, b"k2", None)];
        let b = vec![op(3, b"k3", Some(&[7; 3000]))];
        let c = vec![op(4, b"k4", Some(b"v4"))];
        {
            let (mut wal, groups) = Wal::open(dir.path()).unwrap();
            assert!(groups.is_empty());
            wal.write(&a).unwrap();
            wal.write(&b).unwrap();
            wal.sync().unwrap();
        }
        let path = dir.path().join(WAL_FILE);
        let whole = std::fs::read(&path).unwrap();
        assert_eq!(read(dir.path()), [a.clone(), b.clone()]);
        // A crash in the middle of writing the last record: the first comes back, and the next
        // record takes the torn one's place.
        let b_at = RECORDS as usize + encode(&a, 1).len();
        for torn in [b_at + 3, b_at + 20, b_at + 2000] {
            let mut bytes = whole.clone();
            bytes[torn..b_at + encode(&b, 1).len()].fill(0);
            std::fs::write(&path, &bytes).unwrap();
            let (mut wal, groups) = Wal::open(dir.path()).unwrap();
            assert_eq!(groups, std::slice::from_ref(&a), "torn at {torn}");
            assert_eq!(wal.len(), encode(&a, 1).len() as u64);
            wal.write(&c).unwrap();
            wal.sync().unwrap();
            assert_eq!(read(dir.path()), [a.clone(), c.clone()], "torn at {torn}");
        }
        // A flipped byte in the first record, with a good one after it: damage, refused.
        let mut damaged = whole.clone();
        damaged[b_at - 5] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
        assert!(matches!(Wal::open(dir.path()), Err(WalError::Damaged { record: 0, .. })));
        // Its length flipped too, so that nothing says where the next record starts.
        damaged[RECORDS as usize + 1] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        assert!(matches!(Wal::open(dir.path()), Err(WalError::Damaged { record: 0, .. })));
        // A damaged header: nothing can tell this generation's records from older ones.
        let mut damaged = whole;
        damaged[9] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        assert!(matches!(Wal::open(dir.path()), Err(WalError::Header)));
    }

    #[test]
    fn records_are_written_in_place_and_an_emptied_log_reads_back_nothing_of_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let long = |n: u8| vec![op(n, &[n; 8], Some(&[n; 500]))];
        let short = vec![op(9, b"s", Some(b"short"))];
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        for n in 1..=5 {
            wal.write(&long(n)).unwrap();
        }
        wal.sync().unwrap();
        // The file did not grow: every record went over zeros written before.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        wal.clear().unwrap();
        assert_eq!(wal.len(), 0);
        assert!(read(dir.path()).is_empty(), "an emptied log holds nothing");
        // A shorter record over the old ones: only it comes back, not what follows it.
        wal.write(&short).unwrap();
        wal.sync().unwrap();
        assert_eq!(read(dir.path()), std::slice::from_ref(&short));
        // More than the room: the file grows once, and everything comes back in order.
        let big: Vec<Vec<Op>> = (0..40u8).map(|n| vec![op(n, &[n], Some(&[n; 40_000]))]).collect();
        for group in &big {
            wal.write(group).unwrap();
        }
        wal.sync().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > size);
        let groups = read(dir.path());
        assert_eq!(groups[0], short);
        assert_eq!(groups[1..], big[..]);
    }

    #[test]
    fn a_log_left_half_made_by_a_crash_opens_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        // What a crash while a new log was zero-filled in place left: zeros, no header.
        std::fs::write(&path, vec![0u8; 300_000]).unwrap();
        let (mut wal, groups) = Wal::open(dir.path()).unwrap();
        assert!(groups.is_empty());
        let a = vec![op(1, b"k", Some(b"v"))];
        wal.write(&a).unwrap();
        wal.sync().unwrap();
        assert_eq!(read(dir.path()), std::slice::from_ref(&a));
        // A crash while one is built beside it: the one in place stands.
        std::fs::write(dir.path().join(format!("{WAL_FILE}.new")), [0u8; 100]).unwrap();
        assert_eq!(read(dir.path()), [a]);
    }

    #[test]
    fn a_log_of_the_first_format_is_read_back_and_emptied_into_this_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let a = vec![op(1, b"k1", Some(b"v1"))];
        let b = vec![op(2, b"k2", None)];
        let first_format = |ops: &[Op]| {
            let record = encode(ops, 0);
            let payload = &record[FRAME..];
            let mut old = (payload.len() as u32).to_be_bytes().to_vec();
            old.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
            old.extend_from_slice(payload);
            old
        };
        std::fs::write(&path, [first_format(&a), first_format(&b)].concat()).unwrap();
        let (mut wal, groups) = Wal::open(dir.path()).unwrap();
        assert_eq!(groups, [a.clone(), b]);
        assert!(wal.len() > 0);
        assert!(wal.write(&a).is_err(), "nothing is written before the old records are applied");
        wal.clear().unwrap();
        wal.write(&a).unwrap();
        wal.sync().unwrap();
        assert!(std::fs::read(&path).unwrap().starts_with(MAGIC));
        assert_eq!(read(dir.path()), [a]);
    }
}
