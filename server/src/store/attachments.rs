//! Photos and voice notes attached to reports: files in the data folder's `attachments/`, each
//! named by the SHA-256 of its bytes, so that the same file is stored once and a damaged one is
//! known by its name. A file is durable before its upload is answered (written, fsynced, renamed
//! into place, the folder fsynced), and never changed or removed afterwards: a report names
//! files that already exist.
//!
//! They are files and not sled values because sled 0.34 writes a value larger than a quarter of
//! its segment (about 128 KiB) as a separate blob that it never fsyncs.

use std::path::{Path, PathBuf};

use hongfan_shared::AttachmentKind;
use sha2::{Digest, Sha256};

use super::StoreError;

/// The folder inside the data folder.
pub const FOLDER: &str = "attachments";
/// The largest file taken: a photo the kiosk has scaled down, or 60 s of speech.
pub const MAX_BYTES: usize = 1 << 20;

/// What an upload is, judged by its first bytes (never by what the client says it is).
pub fn sniff(bytes: &[u8]) -> Option<(AttachmentKind, &'static str)> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some((AttachmentKind::Photo, "image/jpeg")),
        [0x1A, 0x45, 0xDF, 0xA3, ..] => Some((AttachmentKind::Voice, "audio/webm")),
        [b'O', b'g', b'g', b'S', ..] => Some((AttachmentKind::Voice, "audio/ogg")),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some((AttachmentKind::Voice, "audio/mp4")),
        _ => None,
    }
}

/// Why an upload is not taken.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("empty, or larger than {MAX_BYTES} bytes")]
    Size,
    #[error("not a JPEG photo or a WebM, Ogg or MP4 voice note")]
    Kind,
    #[error("the photo cannot be read: {0}")]
    Photo(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A JPEG without its metadata: EXIF (location, device, time), XMP, comments and every other
/// application segment are dropped; the image itself is untouched.
pub fn strip_photo(bytes: Vec<u8>) -> Result<Vec<u8>, UploadError> {
    use img_parts::jpeg::{Jpeg, markers};
    let mut jpeg = Jpeg::from_bytes(bytes.into()).map_err(|e| UploadError::Photo(e.to_string()))?;
    jpeg.segments_mut()
        .retain(|s| !matches!(s.marker(), markers::APP1..=markers::APP15 | markers::COM));
    Ok(jpeg.encoder().bytes().to_vec())
}

/// The content-addressed files of one data folder.
#[derive(Debug)]
pub struct Attachments {
    dir: PathBuf,
}

fn io(dir: &Path, e: std::io::Error) -> StoreError {
    StoreError::Write(format!("attachments in {}: {e}", dir.display()))
}

/// Whether `id` can name a stored file (64 lower-case hex digits): nothing else reaches a path.
pub fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Attachments {
    /// The attachment folder of the data folder `data`, created (private) when missing.
    pub fn open(data: &Path) -> Result<Attachments, StoreError> {
        let dir = data.join(FOLDER);
        if !dir.is_dir() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| io(&dir, e))?;
            crate::durable::sync_dir(data).map_err(|e| io(data, e))?;
        }
        Ok(Attachments { dir })
    }

    /// Stores `bytes` durably and returns their name. Storing the same bytes again is free.
    pub fn put(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let id = hex::encode(Sha256::digest(bytes));
        let path = self.dir.join(&id);
        if path.is_file() {
            // Another upload of the same bytes may still be making its name durable: make sure
            // before answering this one.
            crate::durable::sync_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
            return Ok(id);
        }
        crate::durable::write(&path, bytes).map_err(|e| io(&self.dir, e))?;
        Ok(id)
    }

    /// The bytes of one file, or `None` when there is none by that name.
    pub fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !valid_id(id) {
            return Ok(None);
        }
        match std::fs::read(self.dir.join(id)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Read(format!("attachment {id}: {e}"))),
        }
    }

    /// What a stored file is (kind, type, size), from its first bytes; `None` when there is no
    /// such file, or it is not a kind taken.
    pub fn describe(&self, id: &str) -> Option<(AttachmentKind, &'static str, u64)> {
        use std::io::Read;
        if !valid_id(id) {
            return None;
        }
        let file = std::fs::File::open(self.dir.join(id)).ok()?;
        let size = file.metadata().ok()?.len();
        let mut head = Vec::with_capacity(16);
        file.take(16).read_to_end(&mut head).ok()?;
        sniff(&head).map(|(kind, mime)| (kind, mime, size))
    }

    /// Every stored file's name, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        for entry in entries {
            let name = entry.map_err(|e| io(&self.dir, e))?.file_name();
            if let Some(name) = name.to_str().filter(|n| valid_id(n)) {
                ids.push(name.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The names of stored files whose bytes no longer hash to their name.
    pub fn damaged(&self) -> Result<Vec<String>, StoreError> {
        let mut damaged = Vec::new();
        for id in self.ids()? {
            let bytes = self.get(&id)?.unwrap_or_default();
            if hex::encode(Sha256::digest(&bytes)) != id {
                damaged.push(id);
            }
        }
        Ok(damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_loses_its_location_and_keeps_its_picture() {
        use img_parts::jpeg::{Jpeg, JpegSegment, markers};
        // A minimal JPEG: SOI, an EXIF segment carrying a GPS tag's bytes, a comment, EOI.
        let mut jpeg = Jpeg::from_bytes(vec![0xFF, 0xD8, 0xFF, 0xD9].into()).unwrap();
        let exif =
            JpegSegment::new_with_contents(markers::APP1, b"Exif\0\0GPS 35.41N".to_vec().into());
        let comment =
            JpegSegment::new_with_contents(markers::COM, b"taken at home".to_vec().into());
        let quant = JpegSegment::new_with_contents(markers::DQT, vec![0; 65].into());
        jpeg.segments_mut().extend([exif, comment, quant]);
        let with_metadata = jpeg.encoder().bytes().to_vec();
        assert!(with_metadata.windows(3).any(|w| w == b"GPS"));
        let stripped = strip_photo(with_metadata).unwrap();
        assert!(!stripped.windows(3).any(|w| w == b"GPS"), "the location is gone");
        assert!(!stripped.windows(4).any(|w| w == b"home"), "the comment is gone");
        let kept = Jpeg::from_bytes(stripped.into()).unwrap();
        assert!(kept.segment_by_marker(markers::DQT).is_some(), "the image data stays");
    }

    #[test]
    fn files_are_named_by_their_content_and_damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Attachments::open(dir.path()).unwrap();
        let id = store.put(b"voice").unwrap();
        assert_eq!(store.put(b"voice").unwrap(), id, "the same bytes, the same file");
        assert_eq!(store.get(&id).unwrap().as_deref(), Some(&b"voice"[..]));
        assert_eq!(store.get("../../etc/passwd").unwrap(), None);
        assert!(store.damaged().unwrap().is_empty());
        std::fs::write(dir.path().join(FOLDER).join(&id), b"noise").unwrap();
        assert_eq!(store.damaged().unwrap(), vec![id]);
    }
}
