//! Executing a plan (`chatvault clean`) and undoing a quarantine.
//!
//! Safety rests on re-checking every `delete` entry right before acting
//! (path shape, no symlink on the way, same identity and content) and on a
//! JSON-lines journal, synced per entry, that makes runs resumable.
//! The checks are path-based, so a process racing between check and unlink
//! is not excluded (that would need `openat`/`unlinkat`).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::decide::Action;
use super::plan::{FileStamp, Plan, PlanEntry};
use super::{format_time, sha256_reader, RetentionError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanOptions {
    /// Without it nothing is touched: the report says what would happen.
    pub apply: bool,
    /// Move files to `DIR/<relative path>` instead of deleting them.
    pub quarantine: Option<PathBuf>,
    /// JSON-lines journal; `PLAN.json.journal` by default.
    pub journal: PathBuf,
    /// When given, the plan's root must be this very directory.
    pub expected_root: Option<PathBuf>,
}

impl CleanOptions {
    /// A dry run with the default journal next to the plan.
    pub fn for_plan(plan_path: &Path) -> CleanOptions {
        CleanOptions {
            apply: false,
            quarantine: None,
            journal: default_journal_path(plan_path),
            expected_root: None,
        }
    }
}

/// `PLAN.json` → `PLAN.json.journal`.
pub fn default_journal_path(plan_path: &Path) -> PathBuf {
    let mut name = plan_path.as_os_str().to_os_string();
    name.push(".journal");
    PathBuf::from(name)
}

/// Progress, one event per `delete` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanEvent {
    WouldDelete {
        path: String,
        size: u64,
    },
    WouldQuarantine {
        path: String,
        to: PathBuf,
        size: u64,
    },
    Deleted {
        path: String,
        size: u64,
    },
    Quarantined {
        path: String,
        to: PathBuf,
        size: u64,
    },
    Skipped {
        path: String,
        reason: String,
    },
    AlreadyDone {
        path: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    pub dry_run: bool,
    /// Deleted (in a dry run: would be deleted).
    pub deleted: Vec<String>,
    /// `(path, destination)`; in a dry run: would be quarantined.
    pub quarantined: Vec<(String, String)>,
    /// `(path, why)`: changed since planning, missing, or could not be acted on.
    pub skipped_changed: Vec<(String, String)>,
    /// Done by an earlier run according to the journal.
    pub already_done: Vec<String>,
    /// Bytes deleted or quarantined (or that would be).
    pub bytes: u64,
    /// `keep` and `review` entries, never touched.
    pub kept: usize,
    pub reviewed: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoReport {
    pub restored: Vec<String>,
    /// `(path, why)`.
    pub skipped: Vec<(String, String)>,
    /// Restored by an earlier undo according to the journal.
    pub already_restored: usize,
}

const JOURNAL_KIND_HEADER: &str = "header";

/// The line that starts every run in the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournalHeader {
    kind: String,
    plan_sha256: String,
    source_root: String,
    root_dev: u64,
    root_ino: u64,
    mode: String,
    quarantine: Option<String>,
    tool_version: String,
    time: String,
}

/// One action on one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournalLine {
    path: String,
    /// `deleted`, `quarantined`, `skipped` or (by undo) `restored`.
    action: String,
    reason: String,
    sha256: Option<String>,
    size: u64,
    quarantine_path: Option<String>,
    time: String,
}

impl JournalLine {
    fn is_done(&self) -> bool {
        self.action == "deleted" || self.action == "quarantined"
    }
}

#[derive(Debug, Default)]
struct JournalState {
    headers: Vec<JournalHeader>,
    /// The last deleted / quarantined / restored line per path.
    last_action: HashMap<String, JournalLine>,
}

impl JournalState {
    fn record(&mut self, line: JournalLine) {
        if line.action != "skipped" {
            self.last_action.insert(line.path.clone(), line);
        }
    }

    fn done(&self, path: &str) -> bool {
        self.last_action.get(path).is_some_and(JournalLine::is_done)
    }
}

/// Reads a journal. A last line cut short by a kill is ignored, and with
/// `repair` cut off the file so the next append starts on a clean line.
fn load_journal(path: &Path, repair: bool) -> Result<Option<JournalState>, RetentionError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RetentionError::io("read journal", path, e)),
    };
    let complete_len = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if repair && complete_len < bytes.len() {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| RetentionError::io("open journal", path, e))?;
        file.set_len(complete_len as u64)
            .and_then(|_| file.sync_all())
            .map_err(|e| RetentionError::io("repair the cut-off last line of journal", path, e))?;
    }
    let mut state = JournalState::default();
    for (index, line) in bytes[..complete_len].split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let corrupt = |message: String| RetentionError::JournalCorrupt {
            journal: path.to_path_buf(),
            line: index + 1,
            message,
        };
        let value: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| corrupt(e.to_string()))?;
        if value.get("kind").and_then(|k| k.as_str()) == Some(JOURNAL_KIND_HEADER) {
            state
                .headers
                .push(serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?);
        } else {
            state.record(serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?);
        }
    }
    Ok(Some(state))
}

struct JournalWriter {
    file: File,
    path: PathBuf,
}

impl JournalWriter {
    fn open(path: &Path) -> Result<JournalWriter, RetentionError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| RetentionError::io("open journal", path, e))?;
        Ok(JournalWriter {
            file,
            path: path.to_path_buf(),
        })
    }

    /// One line, flushed and synced before the next file is touched.
    fn append<T: Serialize>(&mut self, record: &T) -> Result<(), RetentionError> {
        let mut line = serde_json::to_vec(record).map_err(|e| RetentionError::Serialize {
            what: "journal line",
            message: e.to_string(),
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|_| self.file.flush())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| RetentionError::io("append to journal", &self.path, e))
    }
}

fn journal_line(
    path: &str,
    action: &str,
    reason: &str,
    sha256: Option<String>,
    size: u64,
    quarantine_path: Option<&Path>,
) -> JournalLine {
    JournalLine {
        path: path.to_string(),
        action: action.to_string(),
        reason: reason.to_string(),
        sha256,
        size,
        quarantine_path: quarantine_path.map(|p| p.display().to_string()),
        time: format_time(&Utc::now()),
    }
}

/// Checks the plan root is still the directory the plan recorded.
fn verify_root(plan: &Plan, expected_root: Option<&Path>) -> Result<PathBuf, RetentionError> {
    let root = PathBuf::from(&plan.header.source_root);
    let meta = fs::metadata(&root).map_err(|e| RetentionError::RootMissing {
        root: root.clone(),
        message: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Err(RetentionError::RootMissing {
            root,
            message: "not a directory".to_string(),
        });
    }
    if (meta.dev(), meta.ino()) != (plan.header.root_dev, plan.header.root_ino) {
        return Err(RetentionError::RootReplaced {
            root,
            expected_dev: plan.header.root_dev,
            expected_ino: plan.header.root_ino,
            found_dev: meta.dev(),
            found_ino: meta.ino(),
        });
    }
    if let Some(expected) = expected_root {
        let same = fs::metadata(expected)
            .map(|m| (m.dev(), m.ino()) == (meta.dev(), meta.ino()))
            .unwrap_or(false);
        if !same {
            return Err(RetentionError::RootMismatch {
                plan_root: root,
                expected_root: expected.to_path_buf(),
            });
        }
    }
    Ok(root)
}

/// The path's components, refusing absolute paths, `..` and `.`.
fn relative_components(rel: &str) -> Result<Vec<&std::ffi::OsStr>, String> {
    let mut parts = Vec::new();
    for component in Path::new(rel).components() {
        match component {
            Component::Normal(part) => parts.push(part),
            _ => {
                return Err(format!(
                    "path {rel:?} is not a plain relative path (absolute, `..` or `.`)"
                ))
            }
        }
    }
    if parts.is_empty() {
        return Err("empty path".to_string());
    }
    Ok(parts)
}

/// Why a `delete` entry cannot be acted on.
enum Refusal {
    Missing,
    Changed(String),
}

/// Walks from `root` to the parent of `rel`, refusing symlinks and non-directories;
/// with `create`, missing directories are made (for undo).
fn safe_parent(root: &Path, rel: &str, create: bool) -> Result<PathBuf, Refusal> {
    let parts = relative_components(rel).map_err(Refusal::Changed)?;
    let mut current = root.to_path_buf();
    let mut shown = PathBuf::new();
    for part in &parts[..parts.len() - 1] {
        current.push(part);
        shown.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Refusal::Changed(format!(
                    "directory {} was replaced by a symlink",
                    shown.display()
                )))
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(Refusal::Changed(format!(
                    "{} is no longer a directory",
                    shown.display()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound && create => {
                fs::create_dir(&current).map_err(|e| {
                    Refusal::Changed(format!("cannot create {}: {e}", current.display()))
                })?;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(Refusal::Missing),
            Err(e) => {
                return Err(Refusal::Changed(format!(
                    "cannot inspect {}: {e}",
                    shown.display()
                )))
            }
        }
    }
    Ok(current)
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64, FileStamp)> {
    let mut file = File::open(path)?;
    let stamp = FileStamp::from_metadata(&file.metadata()?);
    let (sha256, size) = sha256_reader(&mut file)?;
    Ok((sha256, size, stamp))
}

/// A `delete` entry that passed every re-check.
struct Verified {
    full_path: PathBuf,
    sha256: Option<String>,
}

/// Re-checks an entry against the file system right before acting on it.
fn verify_entry(root: &Path, entry: &PlanEntry, need_hash: bool) -> Result<Verified, Refusal> {
    let parent = safe_parent(root, &entry.path, false)?;
    let name = Path::new(&entry.path)
        .file_name()
        .ok_or_else(|| Refusal::Changed("path has no file name".to_string()))?;
    let full_path = parent.join(name);
    let meta = match fs::symlink_metadata(&full_path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(Refusal::Missing),
        Err(e) => return Err(Refusal::Changed(format!("cannot inspect: {e}"))),
    };
    if meta.file_type().is_symlink() {
        return Err(Refusal::Changed("replaced by a symlink".to_string()));
    }
    if !meta.is_file() {
        return Err(Refusal::Changed("no longer a regular file".to_string()));
    }
    let now = FileStamp::from_metadata(&meta);
    let planned = entry.stamp();
    if now.size != planned.size {
        return Err(Refusal::Changed(format!(
            "size changed ({} → {} bytes)",
            planned.size, now.size
        )));
    }
    if (now.dev, now.ino) != (planned.dev, planned.ino) {
        return Err(Refusal::Changed(
            "device/inode changed (file replaced)".to_string(),
        ));
    }
    if now.mtime != planned.mtime {
        return Err(Refusal::Changed(format!(
            "mtime changed ({} → {})",
            format_time(&planned.mtime),
            format_time(&now.mtime)
        )));
    }
    if now.ctime != planned.ctime {
        return Err(Refusal::Changed(format!(
            "ctime changed ({} → {})",
            format_time(&planned.ctime),
            format_time(&now.ctime)
        )));
    }
    let mut sha256 = None;
    if need_hash || entry.sha256.is_some() {
        let (digest, size, opened) = hash_file(&full_path)
            .map_err(|e| Refusal::Changed(format!("cannot read to hash: {e}")))?;
        // The file opened must be the file checked.
        if (opened.dev, opened.ino, size) != (planned.dev, planned.ino, planned.size) {
            return Err(Refusal::Changed("changed while being checked".to_string()));
        }
        if let Some(expected) = &entry.sha256 {
            if !expected.eq_ignore_ascii_case(&digest) {
                return Err(Refusal::Changed(format!(
                    "content changed (SHA-256 {digest}, planned {expected})"
                )));
            }
        }
        sha256 = Some(digest);
    }
    Ok(Verified { full_path, sha256 })
}

fn sync_dir(dir: &Path) {
    // Best effort: durability of a rename; failure does not undo the rename.
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// Moves `from` to `to` (which must not exist): a rename, or across devices a
/// copy that is synced and verified against `sha256` before `from` is removed.
fn move_verified(from: &Path, to: &Path, sha256: &str, stamp: FileStamp) -> Result<(), String> {
    let to_dir = to
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", to.display()))?;
    match fs::rename(from, to) {
        Ok(()) => {
            sync_dir(to_dir);
            return Ok(());
        }
        Err(e) if e.kind() == ErrorKind::CrossesDevices => {}
        Err(e) => return Err(format!("cannot move to {}: {e}", to.display())),
    }
    let temp = tempfile::NamedTempFile::new_in(to_dir).map_err(|e| {
        format!(
            "cannot create a temporary file in {}: {e}",
            to_dir.display()
        )
    })?;
    fs::copy(from, temp.path()).map_err(|e| format!("cannot copy to {}: {e}", to.display()))?;
    let copied = File::options().write(true).open(temp.path()).and_then(|f| {
        f.set_modified(stamp.mtime.into())?;
        f.sync_all()
    });
    copied.map_err(|e| format!("cannot sync the copy {}: {e}", temp.path().display()))?;
    let (copy_sha256, copy_size, _) =
        hash_file(temp.path()).map_err(|e| format!("cannot verify the copy: {e}"))?;
    if copy_sha256 != sha256 || copy_size != stamp.size {
        return Err("the copy does not match the original; original left in place".to_string());
    }
    temp.persist_noclobber(to)
        .map_err(|e| format!("cannot move the copy to {}: {}", to.display(), e.error))?;
    sync_dir(to_dir);
    fs::remove_file(from).map_err(|e| {
        format!(
            "copied to {} but cannot remove the original: {e}",
            to.display()
        )
    })
}

fn absolute(path: &Path) -> Result<PathBuf, RetentionError> {
    std::path::absolute(path).map_err(|e| RetentionError::io("resolve", path, e))
}

/// Executes a plan's `delete` entries (or, without `apply`, reports what would happen).
pub fn clean(
    plan: &Plan,
    opts: &CleanOptions,
    progress: &mut dyn FnMut(&CleanEvent),
) -> Result<CleanReport, RetentionError> {
    let root = verify_root(plan, opts.expected_root.as_deref())?;
    let plan_sha256 = plan.sha256()?;

    let quarantine = match &opts.quarantine {
        None => None,
        Some(dir) => {
            if opts.apply {
                fs::create_dir_all(dir)
                    .map_err(|e| RetentionError::io("create quarantine directory", dir, e))?;
            }
            let resolved = match dir.canonicalize() {
                Ok(canonical) => canonical,
                Err(_) => absolute(dir)?,
            };
            if resolved.starts_with(&root) {
                return Err(RetentionError::QuarantineInsideRoot {
                    quarantine: resolved,
                    root,
                });
            }
            Some(resolved)
        }
    };

    let mut journal_state = load_journal(&opts.journal, opts.apply)?.unwrap_or_default();
    if let Some(foreign) = journal_state
        .headers
        .iter()
        .find(|h| h.plan_sha256 != plan_sha256)
    {
        return Err(RetentionError::JournalForeign {
            journal: opts.journal.clone(),
            journal_plan_sha256: foreign.plan_sha256.clone(),
            plan_sha256,
        });
    }

    let mut writer = if opts.apply {
        let mut writer = JournalWriter::open(&opts.journal)?;
        writer.append(&JournalHeader {
            kind: JOURNAL_KIND_HEADER.to_string(),
            plan_sha256: plan_sha256.clone(),
            source_root: plan.header.source_root.clone(),
            root_dev: plan.header.root_dev,
            root_ino: plan.header.root_ino,
            mode: if quarantine.is_some() {
                "quarantine"
            } else {
                "delete"
            }
            .to_string(),
            quarantine: quarantine.as_ref().map(|q| q.display().to_string()),
            tool_version: plan.header.tool_version.clone(),
            time: format_time(&Utc::now()),
        })?;
        Some(writer)
    } else {
        None
    };

    let mut report = CleanReport {
        dry_run: !opts.apply,
        ..CleanReport::default()
    };
    for entry in &plan.entries {
        match entry.action {
            Action::Keep => report.kept += 1,
            Action::Review => report.reviewed += 1,
            Action::Delete => {
                let line = clean_entry(
                    &root,
                    entry,
                    quarantine.as_deref(),
                    opts.apply,
                    &journal_state,
                    &mut report,
                    progress,
                );
                if let (Some(writer), Some(line)) = (writer.as_mut(), line) {
                    writer.append(&line)?;
                    journal_state.record(line);
                }
            }
        }
    }
    Ok(report)
}

/// Handles one `delete` entry; returns the journal line to append, if any.
fn clean_entry(
    root: &Path,
    entry: &PlanEntry,
    quarantine: Option<&Path>,
    apply: bool,
    journal: &JournalState,
    report: &mut CleanReport,
    progress: &mut dyn FnMut(&CleanEvent),
) -> Option<JournalLine> {
    let path = entry.path.as_str();
    let skip = |report: &mut CleanReport,
                progress: &mut dyn FnMut(&CleanEvent),
                reason: String,
                sha256: Option<String>| {
        progress(&CleanEvent::Skipped {
            path: path.to_string(),
            reason: reason.clone(),
        });
        let line = journal_line(path, "skipped", &reason, sha256, entry.size, None);
        report.skipped_changed.push((path.to_string(), reason));
        Some(line)
    };
    let destination = quarantine.map(|q| q.join(path));

    let verified = match verify_entry(root, entry, quarantine.is_some()) {
        // Only a hand-edited journal gets here; acting again would log a second removal.
        Ok(_) if journal.done(path) => {
            return skip(
                report,
                progress,
                "the journal records it as done, yet the file is still there".to_string(),
                None,
            );
        }
        Ok(verified) => verified,
        Err(Refusal::Missing) if journal.done(path) => {
            progress(&CleanEvent::AlreadyDone {
                path: path.to_string(),
            });
            report.already_done.push(path.to_string());
            return None;
        }
        Err(Refusal::Missing) => {
            // A quarantine interrupted between rename and journal line: the
            // file is at its destination with the planned identity.
            if let Some(dest) = &destination {
                let moved_here = fs::symlink_metadata(dest).is_ok_and(|m| {
                    m.is_file()
                        && (m.dev(), m.ino(), m.size()) == (entry.dev, entry.ino, entry.size)
                });
                if apply && moved_here {
                    let sha256 = hash_file(dest).ok().map(|(sha, _, _)| sha);
                    if entry.sha256.is_none() || entry.sha256 == sha256 {
                        report
                            .quarantined
                            .push((path.to_string(), dest.display().to_string()));
                        report.bytes += entry.size;
                        progress(&CleanEvent::Quarantined {
                            path: path.to_string(),
                            to: dest.clone(),
                            size: entry.size,
                        });
                        return Some(journal_line(
                            path,
                            "quarantined",
                            "found at its quarantine destination after an interrupted run",
                            sha256,
                            entry.size,
                            Some(dest),
                        ));
                    }
                }
            }
            return skip(report, progress, "missing".to_string(), None);
        }
        Err(Refusal::Changed(reason)) => {
            let reason = if journal.done(path) {
                format!("a file reappeared after it was removed by an earlier run: {reason}")
            } else {
                reason
            };
            return skip(report, progress, reason, None);
        }
    };

    match (&destination, apply) {
        (None, false) => {
            progress(&CleanEvent::WouldDelete {
                path: path.to_string(),
                size: entry.size,
            });
            report.deleted.push(path.to_string());
            report.bytes += entry.size;
            None
        }
        (Some(dest), false) => {
            progress(&CleanEvent::WouldQuarantine {
                path: path.to_string(),
                to: dest.clone(),
                size: entry.size,
            });
            report
                .quarantined
                .push((path.to_string(), dest.display().to_string()));
            report.bytes += entry.size;
            None
        }
        (None, true) => match fs::remove_file(&verified.full_path) {
            Ok(()) => {
                progress(&CleanEvent::Deleted {
                    path: path.to_string(),
                    size: entry.size,
                });
                report.deleted.push(path.to_string());
                report.bytes += entry.size;
                Some(journal_line(
                    path,
                    "deleted",
                    &entry.reason,
                    verified.sha256.or_else(|| entry.sha256.clone()),
                    entry.size,
                    None,
                ))
            }
            Err(e) => skip(
                report,
                progress,
                format!("cannot delete: {e}"),
                verified.sha256,
            ),
        },
        (Some(dest), true) => {
            let Some(sha256) = verified.sha256.clone() else {
                return skip(
                    report,
                    progress,
                    "no SHA-256 to verify the move".to_string(),
                    None,
                );
            };
            if let Err(reason) = quarantine_file(quarantine, entry, &verified, dest, &sha256) {
                return skip(report, progress, reason, Some(sha256));
            }
            progress(&CleanEvent::Quarantined {
                path: path.to_string(),
                to: dest.clone(),
                size: entry.size,
            });
            report
                .quarantined
                .push((path.to_string(), dest.display().to_string()));
            report.bytes += entry.size;
            Some(journal_line(
                path,
                "quarantined",
                &entry.reason,
                Some(sha256),
                entry.size,
                Some(dest),
            ))
        }
    }
}

fn quarantine_file(
    quarantine: Option<&Path>,
    entry: &PlanEntry,
    verified: &Verified,
    dest: &Path,
    sha256: &str,
) -> Result<(), String> {
    let quarantine = quarantine.ok_or_else(|| "no quarantine directory".to_string())?;
    let dest_dir = safe_parent(quarantine, &entry.path, true).map_err(|r| match r {
        Refusal::Missing => "quarantine directory missing".to_string(),
        Refusal::Changed(why) => format!("quarantine: {why}"),
    })?;
    let dest = dest_dir.join(dest.file_name().unwrap_or_default());
    let dest = dest.as_path();
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Ok(meta) if meta.is_file() => {
            // A copy across devices interrupted before the original was
            // removed: finish it if the copy is whole, never overwrite.
            let whole =
                hash_file(dest).is_ok_and(|(sha, size, _)| sha == sha256 && size == entry.size);
            if !whole {
                return Err(format!(
                    "quarantine destination {} already exists",
                    dest.display()
                ));
            }
            return fs::remove_file(&verified.full_path)
                .map_err(|e| format!("cannot remove the original: {e}"));
        }
        Ok(_) => {
            return Err(format!(
                "quarantine destination {} exists and is not a regular file",
                dest.display()
            ))
        }
        Err(e) => return Err(format!("cannot inspect {}: {e}", dest.display())),
    }
    move_verified(&verified.full_path, dest, sha256, entry.stamp())
}

/// Moves every quarantined file of a journal back to its place, verifying
/// size and SHA-256, never overwriting; records `restored` lines in the journal.
pub fn undo(journal: &Path) -> Result<UndoReport, RetentionError> {
    let state = load_journal(journal, true)?.ok_or_else(|| RetentionError::Io {
        action: "read journal",
        path: journal.to_path_buf(),
        source: std::io::Error::new(ErrorKind::NotFound, "no such journal"),
    })?;
    let corrupt = |message: String| RetentionError::JournalCorrupt {
        journal: journal.to_path_buf(),
        line: 1,
        message,
    };
    let header = state
        .headers
        .first()
        .ok_or_else(|| corrupt("no header line".to_string()))?;
    if state
        .headers
        .iter()
        .any(|h| h.source_root != header.source_root)
    {
        return Err(corrupt("header lines name different roots".to_string()));
    }
    let root = PathBuf::from(&header.source_root);
    let meta = fs::metadata(&root).map_err(|e| RetentionError::RootMissing {
        root: root.clone(),
        message: e.to_string(),
    })?;
    if (meta.dev(), meta.ino()) != (header.root_dev, header.root_ino) {
        return Err(RetentionError::RootReplaced {
            root,
            expected_dev: header.root_dev,
            expected_ino: header.root_ino,
            found_dev: meta.dev(),
            found_ino: meta.ino(),
        });
    }

    let mut report = UndoReport::default();
    let mut writer = JournalWriter::open(journal)?;
    let mut lines: Vec<&JournalLine> = state.last_action.values().collect();
    lines.sort_by(|a, b| a.path.cmp(&b.path));
    for line in lines {
        match line.action.as_str() {
            "restored" => {
                report.already_restored += 1;
                continue;
            }
            "quarantined" => {}
            _ => continue,
        }
        match restore_one(&root, line) {
            Ok(()) => {
                writer.append(&JournalLine {
                    action: "restored".to_string(),
                    reason: "undo".to_string(),
                    time: format_time(&Utc::now()),
                    ..line.clone()
                })?;
                report.restored.push(line.path.clone());
            }
            Err(why) => report.skipped.push((line.path.clone(), why)),
        }
    }
    Ok(report)
}

fn restore_one(root: &Path, line: &JournalLine) -> Result<(), String> {
    let from = line
        .quarantine_path
        .as_ref()
        .map(PathBuf::from)
        .ok_or_else(|| "the journal line has no quarantine_path".to_string())?;
    let expected_sha256 = line
        .sha256
        .as_ref()
        .ok_or_else(|| "the journal line has no sha256 to verify".to_string())?;
    let meta = fs::symlink_metadata(&from)
        .map_err(|e| format!("quarantined file {}: {e}", from.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", from.display()));
    }
    let (sha256, size, stamp) =
        hash_file(&from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    if size != line.size || !sha256.eq_ignore_ascii_case(expected_sha256) {
        return Err(format!(
            "{} no longer matches the journal (size {size}, SHA-256 {sha256})",
            from.display()
        ));
    }
    let parent = safe_parent(root, &line.path, true).map_err(|r| match r {
        Refusal::Missing => "a parent directory is missing".to_string(),
        Refusal::Changed(why) => why,
    })?;
    let name = Path::new(&line.path)
        .file_name()
        .ok_or_else(|| "path has no file name".to_string())?;
    let to = parent.join(name);
    if fs::symlink_metadata(&to).is_ok() {
        return Err(format!("{} exists again; not overwriting it", to.display()));
    }
    move_verified(&from, &to, &sha256, stamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::plan::tests::{build, entry_for};
    use std::os::unix::fs::symlink;

    struct Fixture {
        cache: tempfile::TempDir,
        out: tempfile::TempDir,
    }

    impl Fixture {
        fn new(files: &[(&str, &[u8])]) -> Fixture {
            let cache = tempfile::tempdir().unwrap();
            for (rel, content) in files {
                let path = cache.path().join(rel);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, content).unwrap();
            }
            Fixture {
                cache,
                out: tempfile::tempdir().unwrap(),
            }
        }

        fn root(&self) -> &Path {
            self.cache.path()
        }

        fn plan(&self, entries: &[(&str, Action)], hash: bool) -> Plan {
            build(
                self.root(),
                entries
                    .iter()
                    .map(|(rel, action)| entry_for(self.root(), rel, *action, hash))
                    .collect(),
            )
        }

        fn opts(&self, apply: bool) -> CleanOptions {
            CleanOptions {
                apply,
                quarantine: None,
                journal: self.out.path().join("PLAN.json.journal"),
                expected_root: None,
            }
        }

        fn tree(&self) -> Vec<(String, Vec<u8>)> {
            fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, Vec<u8>)>) {
                for entry in fs::read_dir(dir).unwrap() {
                    let path = entry.unwrap().path();
                    let rel = path.strip_prefix(base).unwrap().display().to_string();
                    let meta = fs::symlink_metadata(&path).unwrap();
                    if meta.is_dir() {
                        walk(&path, base, out);
                    } else if meta.file_type().is_symlink() {
                        out.push((rel, b"<symlink>".to_vec()));
                    } else {
                        out.push((rel, fs::read(&path).unwrap()));
                    }
                }
            }
            let mut out = Vec::new();
            walk(self.root(), self.root(), &mut out);
            out.sort();
            out
        }
    }

    fn run(plan: &Plan, opts: &CleanOptions) -> CleanReport {
        clean(plan, opts, &mut |_| {}).unwrap()
    }

    fn journal_lines(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    const FILES: &[(&str, &[u8])] = &[
        ("Image/2025/a.jpg", b"image a"),
        ("Image/2025/b.jpg", b"image b"),
        ("Download/report.pdf", b"%PDF report"),
        ("Video/v.mp4", b"video bytes"),
        ("keep.txt", b"kept"),
        ("orphan.dat", b"orphan"),
    ];

    fn standard_plan(fx: &Fixture, hash: bool) -> Plan {
        fx.plan(
            &[
                ("Image/2025/a.jpg", Action::Delete),
                ("Image/2025/b.jpg", Action::Delete),
                ("Download/report.pdf", Action::Delete),
                ("Video/v.mp4", Action::Delete),
                ("keep.txt", Action::Keep),
                ("orphan.dat", Action::Review),
            ],
            hash,
        )
    }

    #[test]
    fn dry_run_touches_nothing() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, true);
        let before = fx.tree();
        let mut events = Vec::new();
        let report = clean(&plan, &fx.opts(false), &mut |e| events.push(e.clone())).unwrap();
        assert!(report.dry_run);
        assert_eq!(report.deleted.len(), 4);
        assert_eq!((report.kept, report.reviewed), (1, 1));
        assert_eq!(events.len(), 4);
        assert_eq!(fx.tree(), before);
        assert!(!fx.opts(false).journal.exists());
    }

    #[test]
    fn apply_deletes_exactly_the_delete_entries() {
        let fx = Fixture::new(FILES);
        fs::write(fx.root().join("unplanned.bin"), b"not in plan").unwrap();
        let plan = standard_plan(&fx, false);
        let before = fx.tree();
        let report = run(&plan, &fx.opts(true));
        let mut deleted = report.deleted.clone();
        deleted.sort();
        assert_eq!(
            deleted,
            vec![
                "Download/report.pdf",
                "Image/2025/a.jpg",
                "Image/2025/b.jpg",
                "Video/v.mp4"
            ]
        );
        assert!(
            report.skipped_changed.is_empty(),
            "{:?}",
            report.skipped_changed
        );
        let expected: Vec<(String, Vec<u8>)> = before
            .into_iter()
            .filter(|(p, _)| !deleted.contains(p))
            .collect();
        assert_eq!(fx.tree(), expected);

        let lines = journal_lines(&fx.opts(true).journal);
        assert_eq!(lines[0]["kind"], "header");
        assert_eq!(lines[0]["plan_sha256"], plan.sha256().unwrap());
        assert_eq!(lines.len(), 5);
        assert!(lines[1..].iter().all(|l| l["action"] == "deleted"));

        // A second run finds everything done and writes no second "deleted".
        let again = run(&plan, &fx.opts(true));
        assert_eq!(again.already_done.len(), 4);
        assert!(again.deleted.is_empty());
        let lines = journal_lines(&fx.opts(true).journal);
        assert_eq!(lines.iter().filter(|l| l["action"] == "deleted").count(), 4);
    }

    #[test]
    fn changed_files_are_skipped() {
        let fx = Fixture::new(FILES);
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("precious"), b"outside the root").unwrap();
        fs::create_dir_all(outside.path().join("2025")).unwrap();
        fs::write(outside.path().join("2025/b.jpg"), b"image b").unwrap();
        let plan = standard_plan(&fx, true);

        // Same size and mtime, new content: only the recorded SHA-256 notices.
        let a = fx.root().join("Image/2025/a.jpg");
        let a_meta = fs::metadata(&a).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&a)
            .and_then(|mut f| {
                f.write_all(b"IMAGE A")?;
                f.set_modified(a_meta.modified()?)
            })
            .unwrap();
        // New size.
        fs::write(
            fx.root().join("Download/report.pdf"),
            b"%PDF report, edited",
        )
        .unwrap();
        // Replaced by a symlink to a file outside the root.
        let v = fx.root().join("Video/v.mp4");
        fs::remove_file(&v).unwrap();
        symlink(outside.path().join("precious"), &v).unwrap();
        // A parent directory swapped for a symlink to outside.
        let image_dir = fx.root().join("Image");
        fs::rename(&image_dir, fx.root().join("Image.old")).unwrap();
        fs::create_dir(&image_dir).unwrap();
        symlink(outside.path().join("2025"), image_dir.join("2025")).unwrap();

        let report = run(&plan, &fx.opts(true));
        assert!(report.deleted.is_empty(), "{:?}", report.deleted);
        let reasons: HashMap<String, String> = report.skipped_changed.into_iter().collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons["Download/report.pdf"].contains("size changed"));
        assert!(reasons["Video/v.mp4"].contains("symlink"));
        assert!(reasons["Image/2025/b.jpg"].contains("Image/2025 was replaced by a symlink"));
        assert!(reasons["Image/2025/a.jpg"].contains("symlink"));
        assert_eq!(
            fs::read(outside.path().join("precious")).unwrap(),
            b"outside the root"
        );
        assert_eq!(
            fs::read(outside.path().join("2025/b.jpg")).unwrap(),
            b"image b"
        );
    }

    #[test]
    fn same_size_mtime_and_ctime_but_new_content_is_caught_by_sha256() {
        let fx = Fixture::new(FILES);
        let mut plan = standard_plan(&fx, true);
        let a = fx.root().join("Image/2025/a.jpg");
        let original = fs::metadata(&a).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&a)
            .and_then(|mut f| {
                f.write_all(b"IMAGE A")?;
                f.set_modified(original.modified()?)
            })
            .unwrap();
        // ctime cannot be set back from user space; record the new one, as a
        // file system with coarse timestamps would have shown no change.
        let index = plan
            .entries
            .iter()
            .position(|e| e.path == "Image/2025/a.jpg")
            .unwrap();
        let now = FileStamp::from_metadata(&fs::metadata(&a).unwrap());
        assert_eq!(
            (now.size, now.mtime),
            (original.len(), plan.entries[index].mtime)
        );
        plan.entries[index].ctime = now.ctime;
        let report = run(&plan, &fx.opts(true));
        let reasons: HashMap<String, String> = report.skipped_changed.into_iter().collect();
        assert!(
            reasons["Image/2025/a.jpg"].contains("content changed"),
            "{reasons:?}"
        );
        assert_eq!(fs::read(&a).unwrap(), b"IMAGE A");
        assert_eq!(report.deleted.len(), 3);
    }

    #[test]
    fn unsafe_paths_in_a_plan_are_skipped() {
        let fx = Fixture::new(FILES);
        let mut plan = standard_plan(&fx, false);
        plan.entries[0].path = "../escape.txt".to_string();
        plan.entries[1].path = "/etc/passwd".to_string();
        let report = run(&plan, &fx.opts(false));
        assert_eq!(report.skipped_changed.len(), 2);
        assert!(report
            .skipped_changed
            .iter()
            .all(|(_, why)| why.contains("not a plain relative path")));
    }

    #[test]
    fn tampered_plan_is_refused_by_read_verified() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, false);
        let json_path = fx.out.path().join("PLAN.json");
        plan.write(&json_path).unwrap();
        let text = fs::read_to_string(&json_path).unwrap();
        fs::write(&json_path, text.replacen("\"keep\"", "\"delete\"", 1)).unwrap();
        assert!(matches!(
            Plan::read_verified(&json_path),
            Err(RetentionError::SidecarMismatch { .. })
        ));
    }

    #[test]
    fn wrong_root_is_refused() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, false);
        // Another directory given as the expected root.
        let other = tempfile::tempdir().unwrap();
        let mut opts = fx.opts(true);
        opts.expected_root = Some(other.path().to_path_buf());
        assert!(matches!(
            clean(&plan, &opts, &mut |_| {}),
            Err(RetentionError::RootMismatch { .. })
        ));
        // The root replaced by another directory of the same name.
        let root = fx.root().to_path_buf();
        fs::rename(&root, fx.out.path().join("moved")).unwrap();
        fs::create_dir(&root).unwrap();
        assert!(matches!(
            clean(&plan, &fx.opts(true), &mut |_| {}),
            Err(RetentionError::RootReplaced { .. })
        ));
        fs::remove_dir(&root).unwrap();
        assert!(matches!(
            clean(&plan, &fx.opts(true), &mut |_| {}),
            Err(RetentionError::RootMissing { .. })
        ));
        // Put it back so the TempDir can clean up.
        fs::rename(fx.out.path().join("moved"), &root).unwrap();
        let mut ok = fx.opts(false);
        ok.expected_root = Some(root);
        assert!(clean(&plan, &ok, &mut |_| {}).is_ok());
    }

    #[test]
    fn resume_after_interruption_from_half_a_journal() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, true);
        let opts = fx.opts(true);
        // A run killed after two of four deletions, mid-way through a third line.
        let done = ["Download/report.pdf", "Image/2025/a.jpg"];
        let mut journal = serde_json::json!({
            "kind": "header", "plan_sha256": plan.sha256().unwrap(),
            "source_root": plan.header.source_root, "root_dev": plan.header.root_dev,
            "root_ino": plan.header.root_ino, "mode": "delete", "quarantine": null,
            "tool_version": "test", "time": "2025-10-01T00:00:00Z",
        })
        .to_string();
        journal.push('\n');
        for path in done {
            fs::remove_file(fx.root().join(path)).unwrap();
            let line = journal_line(path, "deleted", "test", None, 1, None);
            journal.push_str(&serde_json::to_string(&line).unwrap());
            journal.push('\n');
        }
        journal.push_str("{\"path\":\"Image/2025/b.j");
        fs::write(&opts.journal, journal).unwrap();

        let report = run(&plan, &opts);
        let mut already = report.already_done.clone();
        already.sort();
        assert_eq!(already, done);
        let mut deleted = report.deleted.clone();
        deleted.sort();
        assert_eq!(deleted, ["Image/2025/b.jpg", "Video/v.mp4"]);
        assert!(
            report.skipped_changed.is_empty(),
            "{:?}",
            report.skipped_changed
        );

        // Every line parses (the cut-off one was removed), one "deleted" per path.
        let lines = journal_lines(&opts.journal);
        let mut deleted: Vec<&str> = lines
            .iter()
            .filter(|l| l["action"] == "deleted")
            .map(|l| l["path"].as_str().unwrap())
            .collect();
        deleted.sort();
        assert_eq!(
            deleted,
            [
                "Download/report.pdf",
                "Image/2025/a.jpg",
                "Image/2025/b.jpg",
                "Video/v.mp4"
            ]
        );
        assert_eq!(lines.iter().filter(|l| l["kind"] == "header").count(), 2);
    }

    #[test]
    fn missing_file_without_journal_line_is_reported() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, false);
        fs::remove_file(fx.root().join("Video/v.mp4")).unwrap();
        let report = run(&plan, &fx.opts(true));
        assert_eq!(
            report.skipped_changed,
            vec![("Video/v.mp4".to_string(), "missing".to_string())]
        );
        assert_eq!(report.deleted.len(), 3);
    }

    #[test]
    fn foreign_journal_is_refused() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, false);
        run(&plan, &fx.opts(true));
        let fx2 = Fixture::new(FILES);
        let other = standard_plan(&fx2, false);
        assert!(matches!(
            clean(&other, &fx.opts(true), &mut |_| {}),
            Err(RetentionError::JournalForeign { .. })
        ));
    }

    #[test]
    fn quarantine_then_undo_restores_bit_for_bit() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, false);
        let before = fx.tree();
        let quarantine = tempfile::tempdir().unwrap();
        let mut opts = fx.opts(true);
        opts.quarantine = Some(quarantine.path().join("q"));
        let report = run(&plan, &opts);
        assert_eq!(report.quarantined.len(), 4);
        assert!(report.deleted.is_empty());
        assert_eq!(
            fs::read(quarantine.path().join("q/Image/2025/a.jpg")).unwrap(),
            b"image a"
        );
        assert!(!fx.root().join("Image/2025/a.jpg").exists());
        let lines = journal_lines(&opts.journal);
        assert!(lines[1..]
            .iter()
            .all(|l| l["action"] == "quarantined" && l["sha256"].is_string()));

        // Remove a now-empty directory to check undo recreates it.
        fs::remove_dir(fx.root().join("Video")).unwrap();
        let undone = undo(&opts.journal).unwrap();
        assert_eq!(undone.restored.len(), 4, "{:?}", undone.skipped);
        assert_eq!(fx.tree(), before);
        let again = undo(&opts.journal).unwrap();
        assert_eq!((again.restored.len(), again.already_restored), (0, 4));
    }

    #[test]
    fn quarantine_across_devices_copies_verifies_and_undoes() {
        let fx = Fixture::new(FILES);
        let shm = Path::new("/dev/shm");
        let other_device = fs::metadata(shm)
            .map(|m| m.dev() != fs::metadata(fx.root()).unwrap().dev())
            .unwrap_or(false);
        if !other_device {
            eprintln!("skipped: /dev/shm is not on another device here");
            return;
        }
        let plan = standard_plan(&fx, true);
        let before = fx.tree();
        let quarantine = tempfile::tempdir_in(shm).unwrap();
        let mut opts = fx.opts(true);
        opts.quarantine = Some(quarantine.path().to_path_buf());
        let report = run(&plan, &opts);
        assert_eq!(report.quarantined.len(), 4, "{:?}", report.skipped_changed);
        let moved = quarantine.path().join("Video/v.mp4");
        assert_eq!(fs::read(&moved).unwrap(), b"video bytes");
        let planned = plan
            .entries
            .iter()
            .find(|e| e.path == "Video/v.mp4")
            .unwrap();
        assert_eq!(
            FileStamp::from_metadata(&fs::metadata(&moved).unwrap()).mtime,
            planned.mtime
        );
        let undone = undo(&opts.journal).unwrap();
        assert_eq!(undone.restored.len(), 4, "{:?}", undone.skipped);
        assert_eq!(fx.tree(), before);
    }

    #[test]
    fn undo_refuses_a_modified_quarantined_file() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, false);
        let quarantine = tempfile::tempdir().unwrap();
        let mut opts = fx.opts(true);
        opts.quarantine = Some(quarantine.path().to_path_buf());
        run(&plan, &opts);
        fs::write(quarantine.path().join("Video/v.mp4"), b"video BYTES").unwrap();
        let undone = undo(&opts.journal).unwrap();
        assert_eq!(undone.restored.len(), 3);
        assert_eq!(undone.skipped.len(), 1);
        assert!(!fx.root().join("Video/v.mp4").exists());
    }

    #[test]
    fn quarantine_inside_root_is_refused() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, false);
        let mut opts = fx.opts(false);
        opts.quarantine = Some(fx.root().join("quarantine"));
        assert!(matches!(
            clean(&plan, &opts, &mut |_| {}),
            Err(RetentionError::QuarantineInsideRoot { .. })
        ));
    }
}
