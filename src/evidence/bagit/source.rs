//! Where a bag's files come from: a directory, or a zip read from its central directory
//! without extracting anything. Paths that could escape the bag (symlinks, special
//! files, unsafe or duplicate zip entry names) are reported and never opened.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::algorithm::{self, Algorithm};
use crate::evidence::{io_err, tee, unsafe_path_reason, zipread, EvidenceError};

pub const BAGIT_TXT: &str = "bagit.txt";

/// Result of hashing (or looking up) one listed file.
pub enum Hashed {
    /// Every requested digest, and the size.
    Digests(Vec<(Algorithm, Vec<u8>)>, u64),
    Missing,
    /// Present but unreadable or corrupt (zip CRC/inflate failure …).
    Unreadable(String),
    /// Never opened: a symlink on the way, a special file, a duplicated zip entry.
    Unsafe(&'static str),
    /// A directory where a file is listed.
    Directory,
}

/// What a walk of the bag's files finds.
pub enum Found<'a> {
    /// A regular file, relative to the bag root, with its size.
    File(&'a str, u64),
    /// Something never opened (a symlink, special file, unsafe or duplicate name).
    Unsafe(String, String),
}

/// What the validator needs from a bag, whether a directory or a zip. Nothing here holds
/// the bag's file list: files are walked once, streaming.
pub trait BagSource: Sync {
    /// Calls `visit` for every file in the bag; a failure to list is returned.
    fn walk(&self, visit: &mut dyn FnMut(Found)) -> Result<(), String>;
    /// A streaming reader of a file; `None` if absent.
    fn open(&self, rel: &str) -> Result<Option<Box<dyn Read + Send + '_>>, String>;
    /// Every digest in `algorithms` of a file, in one read; with no algorithms, only
    /// whether it is there.
    fn hash(&self, rel: &str, algorithms: &[Algorithm]) -> Hashed;
    /// Names of the regular files directly in the base directory.
    fn top_files(&self) -> Result<Vec<String>, String>;
    /// Names of the entries (files and directories) directly in directory `dir` ("" for
    /// the base directory); `None` if there is no such directory.
    fn list_dir(&self, dir: &str) -> Option<Vec<String>>;
    /// Whether `data/` exists.
    fn has_payload_dir(&self) -> bool;

    /// A small tag file's bytes (capped, so a forged size cannot exhaust memory).
    fn read_tag(&self, rel: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(reader) = self.open(rel)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        reader
            .take(MAX_TAG_FILE)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        Ok(Some(bytes))
    }
}

/// Tag files read whole (bagit.txt, bag-info.txt, evidence.json for `--source`).
pub const MAX_TAG_FILE: u64 = 64 << 20;

/// A 128-bit digest of a bag-relative path: what is kept of every listed path, so
/// that memory is 16 bytes per file rather than its name. Truncated SHA-256: no one
/// can make two paths collide.
pub fn path_key(rel: &str) -> u128 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(rel.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(bytes)
}

/// The keys are already uniform: hash them by their low bits.
#[derive(Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

pub type KeyBuild = std::hash::BuildHasherDefault<KeyHasher>;
pub type PathSet = HashSet<u128, KeyBuild>;
pub type PathMap<V> = HashMap<u128, V, KeyBuild>;

fn hash_stream(reader: &mut dyn Read, algorithms: &[Algorithm]) -> io::Result<Hashed> {
    tee::with_buffer(|buf| algorithm::hash_reader(reader, algorithms, buf))
        .map(|(digests, size)| Hashed::Digests(digests, size))
}

/// A bag on disk.
pub struct DirBag {
    root: PathBuf,
}

impl DirBag {
    pub fn open(root: &Path) -> Result<DirBag, EvidenceError> {
        if !root.join(BAGIT_TXT).is_file() {
            return Err(EvidenceError::NotABundle {
                path: root.to_path_buf(),
                reason: format!("the directory has no {BAGIT_TXT}"),
            });
        }
        Ok(DirBag {
            root: root.to_path_buf(),
        })
    }

    /// The path, if every component of it is a real directory or regular file.
    fn resolve(&self, rel: &str) -> Result<Option<PathBuf>, Hashed> {
        let mut path = self.root.clone();
        let components: Vec<&str> = rel.split('/').collect();
        for (index, component) in components.iter().enumerate() {
            path.push(component);
            match path.symlink_metadata() {
                Err(_) => return Ok(None),
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Hashed::Unsafe("a symlink on the way, not followed"))
                }
                Ok(meta) if index + 1 == components.len() && meta.is_dir() => {
                    return Err(Hashed::Directory)
                }
                Ok(meta) if index + 1 == components.len() && !meta.is_file() => {
                    return Err(Hashed::Unsafe("not a regular file"))
                }
                Ok(meta) if index + 1 < components.len() && !meta.is_dir() => return Ok(None),
                Ok(_) => {}
            }
        }
        Ok(Some(path))
    }
}

impl BagSource for DirBag {
    fn walk(&self, visit: &mut dyn FnMut(Found)) -> Result<(), String> {
        // Sorted per directory, so a report lists paths in a stable order; walkdir
        // holds one directory's entries at a time.
        for entry in walkdir::WalkDir::new(&self.root)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| e.to_string())?;
            if entry.depth() == 0 || entry.file_type().is_dir() {
                continue;
            }
            let rel_path = entry
                .path()
                .strip_prefix(&self.root)
                .unwrap_or(entry.path());
            let Some(rel) = rel_path.to_str() else {
                let shown = rel_path.to_string_lossy().into_owned();
                visit(Found::Unsafe(shown, "name is not UTF-8".into()));
                continue;
            };
            if entry.file_type().is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                visit(Found::File(rel, size));
            } else {
                visit(Found::Unsafe(
                    rel.to_string(),
                    "a symlink or special file, not followed".into(),
                ));
            }
        }
        Ok(())
    }

    fn open(&self, rel: &str) -> Result<Option<Box<dyn Read + Send + '_>>, String> {
        match self.resolve(rel) {
            Ok(Some(path)) => tee::open_regular(&path)
                .map(|f| Some(Box::new(f) as Box<dyn Read + Send>))
                .map_err(|e| e.to_string()),
            Ok(None) => Ok(None),
            Err(Hashed::Directory) => Err("a directory, not a file".to_string()),
            Err(Hashed::Unsafe(why)) => Err(why.to_string()),
            Err(_) => Err("cannot be read".to_string()),
        }
    }

    fn hash(&self, rel: &str, algorithms: &[Algorithm]) -> Hashed {
        match self.resolve(rel) {
            Ok(Some(path)) => {
                let opened = tee::open_regular(&path).and_then(|mut file| {
                    if algorithms.is_empty() {
                        let size = file.metadata()?.len();
                        return Ok(Hashed::Digests(Vec::new(), size));
                    }
                    hash_stream(&mut file, algorithms)
                });
                match opened {
                    Ok(hashed) => hashed,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Hashed::Missing,
                    Err(e) => Hashed::Unreadable(e.to_string()),
                }
            }
            Ok(None) => Hashed::Missing,
            Err(outcome) => outcome,
        }
    }

    fn top_files(&self) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn list_dir(&self, dir: &str) -> Option<Vec<String>> {
        let path = if dir.is_empty() {
            self.root.clone()
        } else {
            match self.resolve(dir) {
                Err(Hashed::Directory) => self.root.join(dir),
                _ => return None,
            }
        };
        let entries = std::fs::read_dir(path).ok()?;
        Some(
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect(),
        )
    }

    fn has_payload_dir(&self) -> bool {
        matches!(self.resolve("data"), Err(Hashed::Directory))
    }
}

/// A zip entry of the bag, as verify keeps it.
#[derive(Clone, Copy)]
struct Indexed {
    entry: zipread::Entry,
    /// Several entries have this name: other tools may extract any of them.
    duplicated: bool,
}

/// Something found while indexing a zip: a name never opened, or an entry outside the
/// bag's directory.
pub enum ZipFinding {
    Unsafe { name: String, why: String },
    Extra { name: String },
}

/// A zipped bag: entries under one top-level directory, read from the central
/// directory without extracting anything.
pub struct ZipBag {
    zip: zipread::ZipReader,
    /// "NAME/"
    prefix: String,
    /// Bag-relative path (as a key) → entry, for regular-file entries in the bag.
    index: PathMap<Indexed>,
    /// Findings kept while indexing (at most this many).
    findings: Vec<ZipFinding>,
}

/// Entries refused or foreign to the bag that are kept word for word (the rest counted).
const MAX_ZIP_FINDINGS: usize = 40_000;

impl ZipBag {
    /// `Ok(Err(why))`: a zip too damaged to read.
    pub fn open(path: &Path) -> Result<Result<ZipBag, String>, EvidenceError> {
        let not_a_bundle = |reason: String| EvidenceError::NotABundle {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = tee::open_regular(path).map_err(io_err("open", path))?;
        let mut magic = [0u8; 4];
        let got = tee::read_up_to(&mut file, &mut magic).map_err(io_err("read", path))?;
        if got < 4 || &magic[..2] != b"PK" {
            return Err(not_a_bundle("neither a directory nor a zip file".into()));
        }
        let zip = match zipread::ZipReader::open(file) {
            Ok(zip) => zip,
            Err(e) => {
                return Ok(Err(format!(
                    "the zip's central directory cannot be read: {e}"
                )))
            }
        };
        // First pass: the bag's top-level directory, the one holding bagit.txt.
        let mut tops: BTreeSet<String> = BTreeSet::new();
        let first = zip.for_each(|record| {
            let name = String::from_utf8_lossy(record.name);
            if let Some((top, rest)) = name.split_once('/') {
                if rest == BAGIT_TXT && unsafe_path_reason(&name).is_none() && tops.len() < 16 {
                    tops.insert(top.to_string());
                }
            }
            Ok(())
        });
        if let Err(e) = first {
            return Ok(Err(format!("the zip's central directory is damaged: {e}")));
        }
        let top = match tops.len() {
            1 => tops.into_iter().next().unwrap_or_default(),
            0 => {
                return Err(not_a_bundle(format!(
                    "the zip has no top-level directory holding {BAGIT_TXT}"
                )))
            }
            _ => {
                return Err(not_a_bundle(format!(
                    "the zip holds several bags: {}",
                    tops.into_iter().collect::<Vec<_>>().join(", ")
                )))
            }
        };
        let mut bag = ZipBag {
            zip,
            prefix: format!("{top}/"),
            index: HashMap::default(),
            findings: Vec::new(),
        };
        // Second pass: index the bag's files; note what is never opened.
        let prefix = bag.prefix.clone();
        let index = &mut bag.index;
        let findings = &mut bag.findings;
        let mut note = |finding| {
            if findings.len() < MAX_ZIP_FINDINGS {
                findings.push(finding);
            }
        };
        let second = bag.zip.for_each(|record| {
            let name = String::from_utf8_lossy(record.name).into_owned();
            if let Some(why) = unsafe_path_reason(name.trim_end_matches('/')) {
                let why = format!("{name:?}: {why}");
                note(ZipFinding::Unsafe { name, why });
                return Ok(());
            }
            if record.is_symlink {
                let why = format!("{name}: a symlink entry");
                note(ZipFinding::Unsafe { name, why });
                return Ok(());
            }
            let Some(rel) = name.strip_prefix(&prefix) else {
                if !record.is_dir {
                    note(ZipFinding::Extra { name });
                }
                return Ok(());
            };
            if record.is_dir {
                return Ok(());
            }
            match index.entry(path_key(rel)) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Indexed {
                        entry: record.entry,
                        duplicated: false,
                    });
                }
                std::collections::hash_map::Entry::Occupied(mut slot) => {
                    slot.get_mut().duplicated = true;
                    let why = format!("{name}: several zip entries have this name");
                    note(ZipFinding::Unsafe { name, why });
                }
            }
            Ok(())
        });
        if let Err(e) = second {
            return Ok(Err(format!("the zip's central directory is damaged: {e}")));
        }
        Ok(Ok(bag))
    }

    /// What indexing found (refused names, entries outside the bag), handed over once.
    pub fn take_findings(&mut self) -> Vec<ZipFinding> {
        std::mem::take(&mut self.findings)
    }

    /// Names of entries under the bag's directory that pass `keep`, relative to it.
    fn names_where(&self, mut keep: impl FnMut(&str) -> bool) -> Vec<String> {
        let mut names = Vec::new();
        let _ = self.zip.for_each(|record| {
            let name = String::from_utf8_lossy(record.name);
            if let Some(rel) = name.strip_prefix(&self.prefix) {
                if !record.is_symlink
                    && unsafe_path_reason(rel.trim_end_matches('/')).is_none()
                    && keep(rel)
                {
                    names.push(rel.to_string());
                }
            }
            Ok(())
        });
        names
    }
}

impl BagSource for ZipBag {
    fn walk(&self, visit: &mut dyn FnMut(Found)) -> Result<(), String> {
        let mut reported: PathSet = HashSet::default();
        self.zip
            .for_each(|record| {
                let name = String::from_utf8_lossy(record.name);
                let Some(rel) = name.strip_prefix(&self.prefix) else {
                    return Ok(());
                };
                if record.is_dir || record.is_symlink || unsafe_path_reason(rel).is_some() {
                    return Ok(()); // reported when the zip was opened
                }
                let key = path_key(rel);
                match self.index.get(&key) {
                    // Reported when the zip was opened; once here is enough.
                    Some(indexed) if indexed.duplicated && reported.insert(key) => {
                        visit(Found::Unsafe(
                            format!("{}{rel}", self.prefix),
                            "several zip entries have this name".into(),
                        ));
                    }
                    Some(indexed) if indexed.duplicated => {}
                    Some(_) => visit(Found::File(rel, record.entry.size)),
                    None => {}
                }
                Ok(())
            })
            .map_err(|e| e.to_string())
    }

    fn open(&self, rel: &str) -> Result<Option<Box<dyn Read + Send + '_>>, String> {
        match self.index.get(&path_key(rel)) {
            None => Ok(None),
            Some(indexed) if indexed.duplicated => {
                Err("several zip entries have this name".to_string())
            }
            Some(indexed) => self
                .zip
                .open_entry(&indexed.entry)
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }

    fn hash(&self, rel: &str, algorithms: &[Algorithm]) -> Hashed {
        let Some(indexed) = self.index.get(&path_key(rel)) else {
            return Hashed::Missing;
        };
        if indexed.duplicated {
            return Hashed::Unsafe("several zip entries have this name");
        }
        if algorithms.is_empty() {
            return Hashed::Digests(Vec::new(), indexed.entry.size);
        }
        let mut entry = match self.zip.open_entry(&indexed.entry) {
            Ok(entry) => entry,
            Err(e) => return Hashed::Unreadable(format!("{}{rel} ({e})", self.prefix)),
        };
        // Reading to the end checks the size and CRC; a damaged deflate stream or a
        // CRC mismatch surfaces here as an error, not a panic.
        match hash_stream(&mut entry, algorithms) {
            Ok(hashed) => hashed,
            Err(e) => Hashed::Unreadable(format!("{}{rel} ({e})", self.prefix)),
        }
    }

    fn top_files(&self) -> Result<Vec<String>, String> {
        let mut names = self.names_where(|rel| !rel.contains('/'));
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn list_dir(&self, dir: &str) -> Option<Vec<String>> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut names: Vec<String> = self
            .names_where(|rel| rel.starts_with(&prefix))
            .into_iter()
            .filter_map(|rel| {
                let rest = &rel[prefix.len()..];
                let child = rest.split('/').next().unwrap_or_default();
                (!child.is_empty()).then(|| child.to_string())
            })
            .collect();
        if names.is_empty() && !dir.is_empty() {
            return None;
        }
        names.sort();
        names.dedup();
        Some(names)
    }

    fn has_payload_dir(&self) -> bool {
        !self.names_where(|rel| rel.starts_with("data/")).is_empty()
    }
}
