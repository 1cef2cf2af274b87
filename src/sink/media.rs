//! Media in the bundle: copying what messages reference (never from outside the source
//! root), and naming it readably, collision-free, never needing escapes.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{MediaRow, MediaStatus};
use crate::evidence::unchanged::ReadStamp;
use crate::evidence::BagWriter;
use crate::export::ExportError;
use crate::pathsafe::{self, sanitize_component, Resolved};
use crate::records::{MediaLocation, MediaRef, Message};
use crate::spill::{Fields, RecordBuf, SortedRuns};

/// Extensions whose content is already compressed: stored, not deflated, in a zip.
const COMPRESSED: [&str; 22] = [
    "jpg", "jpeg", "png", "gif", "webp", "heic", "mp4", "mov", "m4a", "mp3", "amr", "silk", "aac",
    "zip", "7z", "rar", "gz", "docx", "xlsx", "pptx", "pdf", "apk",
];

pub fn is_compressed(name: &str) -> bool {
    match name.rsplit_once('.') {
        Some((_, ext)) => COMPRESSED.iter().any(|c| ext.eq_ignore_ascii_case(c)),
        None => false,
    }
}

/// The directory of a group's media: the sanitized id, plus a short hash of the id when
/// sanitizing changed it (so `a/b` and `a_b` never share a directory).
pub fn group_dir(group_id: &str) -> String {
    let clean = sanitize_component(group_id, 80);
    if clean == group_id {
        clean
    } else {
        format!("{clean}-{}", short_hash(group_id))
    }
}

/// A conversation's own file or directory name for the transcripts (`txt/`, `html/`):
/// [`group_dir`], plus a short hash of the id when it holds capitals, so that ids differing
/// only in case never share a name on a case-insensitive filesystem.
pub fn group_file_stem(group_id: &str) -> String {
    let dir = group_dir(group_id);
    let hash = short_hash(group_id);
    if group_id.bytes().any(|b| b.is_ascii_uppercase()) && !dir.ends_with(&hash) {
        format!("{dir}-{hash}")
    } else {
        dir
    }
}

fn short_hash(id: &str) -> String {
    crate::digest::hex(&Sha256::digest(id.as_bytes())[..4])
}

/// The file's own name as the source gives it (last path component).
pub fn source_file_name(media: &MediaRef) -> &str {
    if let Some(name) = media.original_name.as_deref().filter(|n| !n.is_empty()) {
        return name;
    }
    match &media.location {
        MediaLocation::Path(p) | MediaLocation::NotDownloaded(p) => {
            p.rsplit('/').next().unwrap_or_default()
        }
    }
}

/// `media/<group>/<message id>_<name>`, or with `names_allowed == false` (anonymized
/// exports) `media/<group>/<message id>_<n>.<ext>` so no original name survives.
pub fn bundle_path(
    group_dir: &str,
    message_id: &str,
    index: usize,
    media: &MediaRef,
    names_allowed: bool,
) -> String {
    let id = sanitize_component(message_id, 40);
    let name = source_file_name(media);
    let file = if names_allowed {
        sanitize_component(&format!("{id}_{name}"), 120)
    } else {
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e)
            .filter(|e| e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(|e| format!(".{}", e.to_ascii_lowercase()))
            .unwrap_or_default();
        format!("{id}_{index}{ext}")
    };
    format!("media/{group_dir}/{file}")
}

/// How many media files ended how, for the summary.
#[derive(Debug, Clone, Default)]
pub struct MediaCounts {
    pub copied: u64,
    pub missing: u64,
    pub not_downloaded: u64,
    pub outside_root: u64,
    pub excluded: u64,
    pub copied_bytes: u64,
}

/// A source media file copied into the bundle, hashed as it was read.
#[derive(Debug, Clone)]
pub struct CopiedFile {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Its identity when the copy began: the "after" check needs no second read when it
    /// proves the file unchanged.
    pub read_stamp: Option<ReadStamp>,
}

impl CopiedFile {
    /// A spilled record keyed by the path relative to the root, then by `seq`, so that
    /// the first copy of a file read twice sorts first.
    fn record(&self, rel: &str, seq: u64) -> RecordBuf {
        use std::os::unix::ffi::OsStrExt;
        let mut record = RecordBuf::keyed(rel);
        record
            .u64(seq)
            .bytes(self.path.as_os_str().as_bytes())
            .u64(self.size)
            .str(&self.sha256);
        match &self.read_stamp {
            Some(stamp) => {
                record.u64(1);
                stamp.encode(&mut record);
            }
            None => {
                record.u64(0);
            }
        }
        record
    }

    /// Reads back a record of [`MediaCopier::into_copied`]'s runs: the relative path and
    /// the file.
    pub fn from_record(record: &[u8]) -> std::io::Result<(&str, CopiedFile)> {
        use std::os::unix::ffi::OsStrExt;
        let (rel, mut fields) = Fields::keyed(record)?;
        let _seq = fields.u64()?;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(fields.bytes()?));
        let size = fields.u64()?;
        let sha256 = fields.str()?.to_string();
        let read_stamp = match fields.u64()? {
            0 => None,
            _ => Some(ReadStamp::decode(&mut fields)?),
        };
        Ok((
            rel,
            CopiedFile {
                path,
                size,
                sha256,
                read_stamp,
            },
        ))
    }
}

/// Copies the media files messages reference into `data/media/<group>/`, refusing paths
/// that leave the source root, and says what became of each (the rows every sink gets).
pub struct MediaCopier {
    copy: bool,
    names_allowed: bool,
    group_dir: String,
    /// Fingerprints of the case-folded bundle names taken in this conversation: 8 bytes a
    /// name rather than the name. A false match (odds about n²/2⁶⁵) only costs a `-n`
    /// suffix; names differing only in case get one too, as a case-insensitive file
    /// system would otherwise merge them.
    used_names: HashSet<u64>,
    pub counts: MediaCounts,
    /// Every source file copied, by its path relative to the root, for the check that it
    /// still hashes the same at the end: on disk, in sorted runs.
    copied: SortedRuns,
    copies: u64,
}

fn name_fingerprint(name: &str) -> u64 {
    // SipHash with fixed keys: the same names get the same suffixes on every run.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.to_lowercase().hash(&mut hasher);
    hasher.finish()
}

impl MediaCopier {
    /// `copy == false`: files are not read and are listed as excluded. `names_allowed ==
    /// false` (anonymized): bundle names hold the message id and extension only, and a
    /// source path is shown only as the copied file's hash.
    /// Spilled records go to `spill_dir`.
    pub fn new(copy: bool, names_allowed: bool, spill_dir: &Path) -> MediaCopier {
        MediaCopier {
            copy,
            names_allowed,
            group_dir: String::new(),
            used_names: HashSet::new(),
            counts: MediaCounts::default(),
            copied: SortedRuns::new(spill_dir),
            copies: 0,
        }
    }

    /// The counts, and every source file copied: records in path order (a file read
    /// twice, first copy first) for [`CopiedFile::from_record`].
    pub fn into_copied(self) -> (MediaCounts, SortedRuns) {
        (self.counts, self.copied)
    }

    /// The conversation whose messages come next, under its id as written.
    pub fn start_group(&mut self, chat_id: &str) {
        self.group_dir = group_dir(chat_id);
        self.used_names.clear();
    }

    /// Copies `message`'s media; `warn` gets a sentence for each file missing or refused.
    pub fn copy(
        &mut self,
        bag: &mut BagWriter,
        root: &Path,
        message: &Message,
        warn: &mut dyn FnMut(String),
    ) -> Result<Vec<MediaRow>, ExportError> {
        let mut rows = Vec::with_capacity(message.media.len());
        for (index, media_ref) in message.media.iter().enumerate() {
            let named = match &media_ref.location {
                MediaLocation::Path(p) | MediaLocation::NotDownloaded(p) => p.as_str(),
            };
            let mut row = MediaRow {
                kind: media_ref.kind,
                source_path: named.to_string(),
                bundle_path: String::new(),
                size: None,
                sha256: String::new(),
                status: MediaStatus::Excluded,
            };
            row.status = match &media_ref.location {
                MediaLocation::NotDownloaded(_) => {
                    self.counts.not_downloaded += 1;
                    MediaStatus::NotDownloaded
                }
                MediaLocation::Path(_) if !self.copy => {
                    // Excluded media are not read; only a path that names its way out is flagged.
                    if escapes_by_name(named) {
                        self.counts.outside_root += 1;
                        MediaStatus::OutsideRoot
                    } else {
                        self.counts.excluded += 1;
                        MediaStatus::Excluded
                    }
                }
                MediaLocation::Path(_) => match pathsafe::resolve(root, named) {
                    Resolved::Outside => {
                        self.counts.outside_root += 1;
                        warn(if self.names_allowed {
                            format!("media path outside the source root refused: {named}")
                        } else {
                            "media path outside the source root refused".to_string()
                        });
                        MediaStatus::OutsideRoot
                    }
                    Resolved::Missing { rel } => {
                        self.counts.missing += 1;
                        warn(if self.names_allowed {
                            format!("media file missing: {rel}")
                        } else {
                            "media file missing".to_string()
                        });
                        row.source_path = rel;
                        MediaStatus::Missing
                    }
                    Resolved::Inside { path, rel } => {
                        self.copy_one(bag, message, index, media_ref, path, rel, &mut row)?;
                        MediaStatus::Copied
                    }
                },
            };
            // Anonymized: a path is shown only as the copied file's hash.
            if !self.names_allowed && row.status != MediaStatus::Copied {
                row.source_path.clear();
            }
            rows.push(row);
        }
        Ok(rows)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_one(
        &mut self,
        bag: &mut BagWriter,
        message: &Message,
        index: usize,
        media_ref: &MediaRef,
        path: PathBuf,
        rel: String,
        row: &mut MediaRow,
    ) -> Result<(), ExportError> {
        // Anonymized: the message id and extension only (a file's own name can carry a
        // person's, `张伟的简历.pdf`).
        let mut name = bundle_path(
            &self.group_dir,
            &message.message_id,
            index,
            media_ref,
            self.names_allowed,
        );
        let mut n = 1;
        while self.used_names.contains(&name_fingerprint(&name)) {
            name = bundle_path(
                &self.group_dir,
                &format!("{}-{n}", message.message_id),
                index,
                media_ref,
                self.names_allowed,
            );
            n += 1;
        }
        let taken = chrono::Utc::now();
        let mut file = std::fs::File::open(&path).map_err(|source| ExportError::ReadSource {
            path: rel.clone(),
            source,
        })?;
        let read_stamp = file
            .metadata()
            .ok()
            .map(|meta| ReadStamp::new(taken, &meta));
        let digest = bag.copy_file(&name, &mut file, is_compressed(&name))?;
        self.used_names.insert(name_fingerprint(&name));
        crate::failpoint::hit("export.media.copied");
        self.counts.copied += 1;
        self.counts.copied_bytes += digest.size;
        let copied = CopiedFile {
            path,
            size: digest.size,
            sha256: digest.sha256.clone(),
            read_stamp,
        };
        self.copied
            .push(copied.record(&rel, self.copies).as_slice())
            .map_err(|source| ExportError::Write {
                path: format!("a temporary file in {}", bag.spill_dir().display()),
                source,
            })?;
        self.copies += 1;
        row.bundle_path = format!("data/{name}");
        row.size = Some(digest.size);
        row.source_path = if self.names_allowed {
            rel
        } else {
            digest.sha256.clone()
        };
        row.sha256 = digest.sha256;
        Ok(())
    }
}

fn escapes_by_name(named: &str) -> bool {
    named.starts_with('/') || named.split('/').any(|part| part == "..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MediaKind;

    #[test]
    fn group_dirs_do_not_collide() {
        assert_eq!(group_dir("123@chatroom"), "123@chatroom");
        assert_ne!(group_dir("cid7Jx2/Qm0e9A=="), group_dir("cid7Jx2_Qm0e9A=="));
        assert!(!group_dir("a/b%c").contains(['/', '%']));
    }

    #[test]
    fn anonymized_names_keep_only_the_extension() {
        let media = MediaRef {
            kind: MediaKind::File,
            location: MediaLocation::Path("Download/张伟的简历.pdf".into()),
            original_name: Some("张伟的简历.pdf".into()),
            declared_size: None,
        };
        assert_eq!(
            bundle_path("g", "42", 0, &media, true),
            "media/g/42_张伟的简历.pdf"
        );
        assert_eq!(bundle_path("g", "42", 0, &media, false), "media/g/42_0.pdf");
        assert!(is_compressed("a.PDF"));
        assert!(!is_compressed("th_abc"));
    }
}
