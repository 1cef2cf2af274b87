//! Executing a plan (`chatvault clean`) and undoing a quarantine.
//!
//! A plan is a request, not an authority: the root must be confirmed by the caller
//! (`expected_root`), it must still be the directory planned (device and inode) holding
//! the platform planned, and every `delete` entry is re-decided against the invariants of
//! [`guard`](super::guard) before anything is touched.
//!
//! Every action goes through directory handles ([`handles`](super::handles)): the root is
//! opened once, each parent reached with `openat(O_NOFOLLOW | O_DIRECTORY)`, the file
//! re-checked with `fstatat` on that handle (size, mtime, ctime, device, inode, and the
//! SHA-256 and content type from the opened file) and removed with `unlinkat` or moved with
//! `renameat(RENAME_NOREPLACE)`. One writer at a time: `clean --apply` locks the plan
//! (`PLAN.json.lock`) and the journal (`JOURNAL.lock`), `undo` the journal.
//!
//! The journal (JSON lines, each synced) records an `intent` before each removal or move and
//! the completion (`deleted`, `quarantined`) after it, so a run killed at any instant is
//! finished by the next run and undone by `undo`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use chrono::Utc;
use rustix::fs::{AtFlags, FileType};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use super::approval::ApprovalRecord;
use super::decide::Action;
use super::guard;
use super::handles::{self, Refusal};
use super::plan::{FileStamp, PlanEntries, PlanEntry, PlanHeader};
use super::{format_time, RetentionError};
use crate::failpoint;
use crate::lockfile::{self, LockGuard};
use crate::platform::{self, PlatformRef};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanOptions {
    /// Without it nothing is touched: the report says what would happen.
    pub apply: bool,
    /// Move files to `DIR/<relative path>` instead of deleting them.
    pub quarantine: Option<PathBuf>,
    /// JSON-lines journal; `PLAN.json.journal` by default.
    pub journal: PathBuf,
    /// The root the user confirmed (`--root`, or the interactive confirmation): the plan's
    /// root must be this very directory. Required with `apply`.
    pub expected_root: Option<PathBuf>,
    /// The plan file, locked (`PLAN.json.lock`) while applying so that two runs of one plan
    /// exclude each other whatever their journals.
    pub plan_path: Option<PathBuf>,
    /// The approvals checked before the run ([`super::approval`]), recorded in the journal.
    pub approvals: Option<ApprovalRecord>,
    /// Keep each path in the report's lists; without, only [`CleanReport::counts`] (a plan
    /// of 1,000,000 deletions would keep 100 MB of paths).
    pub list_paths: bool,
}

impl CleanOptions {
    /// A dry run with the default journal next to the plan.
    pub fn for_plan(plan_path: &Path) -> CleanOptions {
        CleanOptions {
            apply: false,
            quarantine: None,
            journal: default_journal_path(plan_path),
            expected_root: None,
            plan_path: Some(plan_path.to_path_buf()),
            approvals: None,
            list_paths: true,
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

/// How many entries went each way, whether or not the report lists their paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanCounts {
    /// Deleted or quarantined (in a dry run: would be).
    pub removed: usize,
    pub skipped_changed: usize,
    pub already_done: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    pub dry_run: bool,
    pub counts: CleanCounts,
    // The lists below are kept only with `CleanOptions::list_paths`.
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
    /// How many were restored and skipped, whether or not the lists below are kept.
    pub restored_count: usize,
    pub skipped_count: usize,
    // The lists are kept only when asked ([`undo_with`]).
    pub restored: Vec<String>,
    /// `(path, why)`.
    pub skipped: Vec<(String, String)>,
    /// Restored by an earlier undo according to the journal.
    pub already_restored: usize,
    /// Journaled intents of an interrupted clean whose file was never moved: nothing to do.
    pub never_moved: usize,
}

/// Progress of [`undo_with`], one event per file restored or skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoEvent<'a> {
    Restored { path: &'a str },
    Skipped { path: &'a str, why: &'a str },
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
    /// Who approved the run (signers, keys, signature files' SHA-256); absent without
    /// `--trusted-keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approvals: Option<ApprovalRecord>,
}

/// One action on one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournalLine {
    path: String,
    /// `intent` (before a removal or move), `deleted`, `quarantined`, `skipped`; by undo
    /// `restoring` (before a move back) and `restored`.
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

/// A journal as read: its headers (one per run, kept in memory) and, on disk, its lines
/// other than `skipped`, sorted by path (a journal of 1,000,000 actions is 100s of MB).
struct JournalState {
    headers: Vec<JournalHeader>,
    lines: LastLines,
}

/// A sort record for a journal line: the path with each `\0` written as `\0\1` and ended
/// by `\0\0` (so that byte order is the paths' order whatever they hold), the line's
/// number (so that the last of a path comes last), then the line as JSON.
fn journal_record(line: &JournalLine, number: u64) -> Result<Vec<u8>, RetentionError> {
    let json = serde_json::to_vec(line).map_err(|e| RetentionError::Serialize {
        what: "journal line",
        message: e.to_string(),
    })?;
    let mut record = Vec::with_capacity(line.path.len() + 10 + json.len());
    for &b in line.path.as_bytes() {
        record.push(b);
        if b == 0 {
            record.push(1);
        }
    }
    record.extend_from_slice(&[0, 0]);
    record.extend_from_slice(&number.to_be_bytes());
    record.extend_from_slice(&json);
    Ok(record)
}

/// The key of a [`journal_record`] (up to and including its `\0\0`) and its JSON.
fn split_journal_record(record: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 0;
    while i + 1 < record.len() {
        if record[i] == 0 {
            if record[i + 1] == 0 {
                let key_end = i + 2;
                return record
                    .get(key_end + 8..)
                    .map(|json| (&record[..key_end], json));
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    None
}

/// The last line other than `skipped` of each path of a journal, in path order.
struct LastLines {
    journal: PathBuf,
    sorted: Option<crate::spill::Sorted>,
    /// The next record, read ahead to see where a path's lines end.
    ahead: Option<Vec<u8>>,
}

impl LastLines {
    fn empty(journal: &Path) -> LastLines {
        LastLines {
            journal: journal.to_path_buf(),
            sorted: None,
            ahead: None,
        }
    }

    fn read_record(&mut self) -> Result<Option<Vec<u8>>, RetentionError> {
        match self.sorted.as_mut().and_then(Iterator::next) {
            None => Ok(None),
            Some(Ok(record)) => Ok(Some(record)),
            Some(Err(e)) => Err(RetentionError::io(
                "read back the sorted lines of journal",
                &self.journal,
                e,
            )),
        }
    }

    fn corrupt(&self) -> RetentionError {
        RetentionError::io(
            "read back the sorted lines of journal",
            &self.journal,
            std::io::Error::new(ErrorKind::InvalidData, "a sorted record is malformed"),
        )
    }

    /// The next path's last line.
    fn next_line(&mut self) -> Result<Option<JournalLine>, RetentionError> {
        let mut last = match self.ahead.take() {
            Some(record) => record,
            None => match self.read_record()? {
                Some(record) => record,
                None => return Ok(None),
            },
        };
        while let Some(record) = self.read_record()? {
            let same = match (split_journal_record(&last), split_journal_record(&record)) {
                (Some((a, _)), Some((b, _))) => a == b,
                _ => return Err(self.corrupt()),
            };
            if !same {
                self.ahead = Some(record);
                break;
            }
            last = record;
        }
        let (_, json) = split_journal_record(&last).ok_or_else(|| self.corrupt())?;
        serde_json::from_slice(json)
            .map_err(|_| self.corrupt())
            .map(Some)
    }
}

/// Reads a journal, a line at a time. A last line cut short by a kill is ignored, and with
/// `repair` cut off the file so the next append starts on a clean line. The sorted lines
/// are kept in `spill_dir`.
fn load_journal(
    path: &Path,
    repair: bool,
    spill_dir: &Path,
) -> Result<Option<JournalState>, RetentionError> {
    use std::io::BufRead;
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RetentionError::io("read journal", path, e)),
    };
    let mut reader = std::io::BufReader::with_capacity(64 << 10, file);
    let mut headers = Vec::new();
    let mut runs = journal_runs(spill_dir);
    let mut line = Vec::new();
    let mut complete_len: u64 = 0;
    let mut cut_off = false;
    let mut index = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| RetentionError::io("read journal", path, e))?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            cut_off = true;
            break;
        }
        complete_len += n as u64;
        index += 1;
        let text = &line[..line.len() - 1];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let corrupt = |message: String| RetentionError::JournalCorrupt {
            journal: path.to_path_buf(),
            line: index,
            message,
        };
        let value: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| corrupt(e.to_string()))?;
        if value.get("kind").and_then(|k| k.as_str()) == Some(JOURNAL_KIND_HEADER) {
            headers.push(serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?);
        } else {
            let parsed: JournalLine =
                serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
            if parsed.action != "skipped" {
                runs.push(&journal_record(&parsed, index as u64)?)
                    .map_err(|e| {
                        RetentionError::io("sort the lines of journal in", spill_dir, e)
                    })?;
            }
        }
    }
    if repair && cut_off {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| RetentionError::io("open journal", path, e))?;
        file.set_len(complete_len)
            .and_then(|_| file.sync_all())
            .map_err(|e| RetentionError::io("repair the cut-off last line of journal", path, e))?;
    }
    let sorted = runs
        .into_sorted()
        .map_err(|e| RetentionError::io("sort the lines of journal in", spill_dir, e))?;
    Ok(Some(JournalState {
        headers,
        lines: LastLines {
            journal: path.to_path_buf(),
            sorted: Some(sorted),
            ahead: None,
        },
    }))
}

#[cfg(test)]
thread_local! {
    /// Run size for the journal's sort in this test's thread (tiny: every merge on disk).
    static RUN_BUDGET: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

fn journal_runs(dir: &Path) -> crate::spill::SortedRuns {
    #[cfg(test)]
    if let Some(budget) = RUN_BUDGET.with(std::cell::Cell::get) {
        return crate::spill::SortedRuns::with_budget(dir, budget);
    }
    crate::spill::SortedRuns::new(dir)
}

/// Where the sorted lines of `journal` go: beside it (the temporary directory is often
/// RAM), or the temporary directory when that cannot be written (a dry run on read-only
/// media).
pub(crate) fn spill_dir_for(journal: &Path) -> PathBuf {
    let dir = match journal.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if tempfile::tempfile_in(&dir).is_ok() {
        dir
    } else {
        std::env::temp_dir()
    }
}

/// The journal's last line for each `delete` entry of a run, looked up in plan order.
// One per run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Lookup {
    /// The plan's `delete` entries are in path order (as every plan written is): the
    /// journal's sorted lines are read alongside, one path at a time.
    Merge {
        lines: LastLines,
        /// The next path's line, read ahead.
        ahead: Option<JournalLine>,
        /// The entry being acted on and its last line, this run's included.
        current: Option<(String, Option<JournalLine>)>,
    },
    /// A plan out of path order (edited by hand): every path's line in memory.
    Map(HashMap<String, JournalLine>),
}

impl Lookup {
    fn new(mut lines: LastLines, in_order: bool) -> Result<Lookup, RetentionError> {
        if in_order {
            return Ok(Lookup::Merge {
                lines,
                ahead: None,
                current: None,
            });
        }
        let mut map = HashMap::new();
        while let Some(line) = lines.next_line()? {
            map.insert(line.path.clone(), line);
        }
        Ok(Lookup::Map(map))
    }

    /// The last line other than `skipped` for `path`, the next entry acted on.
    fn last(&mut self, path: &str) -> Result<Option<JournalLine>, RetentionError> {
        match self {
            Lookup::Map(map) => Ok(map.get(path).cloned()),
            Lookup::Merge {
                lines,
                ahead,
                current,
            } => {
                if let Some((at, line)) = current.as_ref() {
                    if at == path {
                        return Ok(line.clone());
                    }
                }
                let mut found = None;
                loop {
                    if ahead.is_none() {
                        *ahead = lines.next_line()?;
                    }
                    match ahead.take() {
                        Some(line) if line.path.as_str() < path => {}
                        Some(line) if line.path == path => {
                            found = Some(line);
                            break;
                        }
                        other => {
                            *ahead = other;
                            break;
                        }
                    }
                }
                *current = Some((path.to_string(), found.clone()));
                Ok(found)
            }
        }
    }

    /// A line this run appended.
    fn record(&mut self, line: JournalLine) {
        if line.action == "skipped" {
            return;
        }
        match self {
            Lookup::Map(map) => {
                map.insert(line.path.clone(), line);
            }
            Lookup::Merge { current, .. } => match current {
                Some((at, last)) if *at == line.path => *last = Some(line),
                _ => *current = Some((line.path.clone(), Some(line))),
            },
        }
    }
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

/// Opens the root the plan names, checks it is the directory planned and the one the user
/// confirmed.
fn open_root(
    header: &PlanHeader,
    expected_root: Option<&Path>,
) -> Result<(PathBuf, OwnedFd), RetentionError> {
    let root = PathBuf::from(&header.source_root);
    if !root.is_absolute() {
        return Err(RetentionError::RootMissing {
            root,
            message: "the plan's root is not an absolute path".to_string(),
        });
    }
    let fd = handles::open_dir_path(&root).map_err(|e| RetentionError::RootMissing {
        root: root.clone(),
        message: e.to_string(),
    })?;
    let stat = handles::stat_fd(&fd).map_err(|e| RetentionError::RootMissing {
        root: root.clone(),
        message: e.to_string(),
    })?;
    let found = handles::dev_ino(&stat);
    if found != (header.root_dev, header.root_ino) {
        return Err(RetentionError::RootReplaced {
            root,
            expected_dev: header.root_dev,
            expected_ino: header.root_ino,
            found_dev: found.0,
            found_ino: found.1,
        });
    }
    if let Some(expected) = expected_root {
        let same = handles::open_dir_path_following(expected)
            .and_then(handles::stat_fd)
            .is_ok_and(|st| handles::dev_ino(&st) == found);
        if !same {
            return Err(RetentionError::RootMismatch {
                plan_root: root,
                expected_root: expected.to_path_buf(),
            });
        }
    }
    Ok((root, fd))
}

/// The plan's platform, which the root must still hold.
fn check_platform(header: &PlanHeader, root: &Path) -> Result<PlatformRef, RetentionError> {
    // The name exactly as plans record it.
    let planned = platform::all()
        .into_iter()
        .find(|p| p.name() == header.platform);
    let planned = planned.ok_or_else(|| RetentionError::PlatformMismatch {
        root: root.to_path_buf(),
        plan_platform: header.platform.clone(),
        found: "a platform this tool does not know".to_string(),
    })?;
    match crate::source::detect(root) {
        Ok(found) if found == planned => Ok(planned),
        Ok(found) => Err(RetentionError::PlatformMismatch {
            root: root.to_path_buf(),
            plan_platform: header.platform.clone(),
            found: found.name().to_string(),
        }),
        Err(e) => Err(RetentionError::PlatformMismatch {
            root: root.to_path_buf(),
            plan_platform: header.platform.clone(),
            found: e.to_string(),
        }),
    }
}

/// Refuses a plan any of whose `delete` entries breaks an invariant of [`guard`]. Tells
/// whether the `delete` entries are in path order.
fn check_entries(plan: &dyn PlanEntries, platform: PlatformRef) -> Result<bool, RetentionError> {
    let mut refused: Vec<(String, String)> = Vec::new();
    let mut previous: Option<String> = None;
    let mut in_order = true;
    plan.for_each_entry(&mut |e| {
        if e.action == Action::Delete {
            if let Some(why) = guard::never_delete(platform, &e.path) {
                refused.push((e.path.clone(), why));
            }
            if in_order {
                if previous.as_deref().is_some_and(|p| p > e.path.as_str()) {
                    in_order = false;
                }
                previous = Some(e.path.clone());
            }
        }
        Ok(())
    })?;
    if refused.is_empty() {
        return Ok(in_order);
    }
    Err(RetentionError::PlanUnsafe {
        count: refused.len(),
        entries: refused,
    })
}

/// The quarantine directory: resolved (symlinks and `..` included) and refused when it is
/// the root or inside it; with `apply`, created through handles and opened.
fn resolve_quarantine(
    dir: &Path,
    root: &Path,
    root_id: (u64, u64),
    apply: bool,
) -> Result<(PathBuf, Option<OwnedFd>), RetentionError> {
    let absolute = std::path::absolute(dir).map_err(|e| RetentionError::io("resolve", dir, e))?;
    let components: Vec<Component> = absolute.components().collect();
    // The longest part of the path that exists.
    let mut existing_len = components.len();
    while existing_len > 1 {
        let prefix: PathBuf = components[..existing_len].iter().collect();
        if fs::metadata(&prefix).is_ok() {
            break;
        }
        existing_len -= 1;
    }
    let existing: PathBuf = components[..existing_len].iter().collect();
    let mut tail = Vec::new();
    for component in &components[existing_len..] {
        match component {
            Component::Normal(part) => tail.push(*part),
            _ => {
                return Err(RetentionError::InvalidArgument {
                    what: "quarantine directory",
                    value: dir.display().to_string(),
                    hint: "give a path without `..` in its part that does not exist yet"
                        .to_string(),
                })
            }
        }
    }
    let fd = handles::open_dir_path_following(&existing)
        .map_err(|e| RetentionError::io("open quarantine directory", &existing, e))?;
    let canonical = existing
        .canonicalize()
        .map_err(|e| RetentionError::io("resolve", &existing, e))?;
    let resolved: PathBuf = canonical.join(tail.iter().collect::<PathBuf>());
    let inside = handles::is_within(&fd, root_id)
        .map_err(|e| RetentionError::io("inspect quarantine directory", &existing, e))?;
    if inside || resolved.starts_with(root) {
        return Err(RetentionError::QuarantineInsideRoot {
            quarantine: resolved,
            root: root.to_path_buf(),
        });
    }
    if !apply {
        return Ok((resolved, None));
    }
    let fd = handles::walk_dirs(&fd, &tail, true).map_err(|r| {
        let why = match r {
            Refusal::Missing => "a directory vanished while it was created".to_string(),
            Refusal::Changed(why) => why,
        };
        RetentionError::io(
            "create quarantine directory",
            &resolved,
            std::io::Error::other(why),
        )
    })?;
    Ok((resolved, Some(fd)))
}

/// A `delete` entry that passed every re-check: its parent's handle, and the SHA-256 of
/// the file opened (when hashed).
struct Verified {
    parent: OwnedFd,
    sha256: Option<String>,
}

fn split_parts(rel: &str) -> Result<(Vec<&OsStr>, &OsStr), Refusal> {
    let mut parts = handles::relative_components(rel).map_err(Refusal::Changed)?;
    let name = parts
        .pop()
        .ok_or_else(|| Refusal::Changed("empty path".to_string()))?;
    Ok((parts, name))
}

/// Compares what is there now with the plan's record of it.
fn compare_stamp(now: FileStamp, planned: FileStamp) -> Result<(), Refusal> {
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
    Ok(())
}

/// `fstatat` of `name` under `parent`, required to be a regular file.
fn stat_regular(parent: &OwnedFd, name: &OsStr) -> Result<FileStamp, Refusal> {
    let st = match handles::stat_at(parent, name) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Err(Refusal::Missing),
        Err(e) => return Err(Refusal::Changed(format!("cannot inspect: {e}"))),
    };
    match handles::file_type(&st) {
        FileType::RegularFile => Ok(handles::stamp_of(&st)),
        FileType::Symlink => Err(Refusal::Changed("replaced by a symlink".to_string())),
        _ => Err(Refusal::Changed("no longer a regular file".to_string())),
    }
}

/// Re-checks an entry through handles right before acting on it.
fn verify_entry(root: &OwnedFd, entry: &PlanEntry, need_hash: bool) -> Result<Verified, Refusal> {
    let (parents, name) = split_parts(&entry.path)?;
    let parent = handles::walk_dirs(root, &parents, false)?;
    let planned = entry.stamp();
    compare_stamp(stat_regular(&parent, name)?, planned)?;
    let mut file = handles::open_file_at(&parent, name)
        .map_err(|e| Refusal::Changed(format!("cannot open to check it: {e}")))?;
    let opened = handles::stat_fd(&file)
        .map(|st| handles::stamp_of(&st))
        .map_err(|e| Refusal::Changed(format!("cannot inspect: {e}")))?;
    // The file opened must be the file checked.
    if (opened.dev, opened.ino, opened.size) != (planned.dev, planned.ino, planned.size) {
        return Err(Refusal::Changed("changed while being checked".to_string()));
    }
    let mut sha256 = None;
    let head = if need_hash || entry.sha256.is_some() {
        let (digest, size, head) = handles::hash_open(&mut file)
            .map_err(|e| Refusal::Changed(format!("cannot read to hash: {e}")))?;
        if size != planned.size {
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
        head
    } else {
        handles::head_of(&mut file).map_err(|e| Refusal::Changed(format!("cannot read: {e}")))?
    };
    if handles::looks_like_database(&head) {
        return Err(Refusal::Changed(
            "refused: the file is an SQLite database or write-ahead log; databases are never deleted"
                .to_string(),
        ));
    }
    Ok(Verified { parent, sha256 })
}

/// Takes the locks of an applying run: the plan's, then the journal's.
fn lock_run(opts: &CleanOptions) -> Result<Vec<LockGuard>, RetentionError> {
    let mut guards = Vec::new();
    if let Some(plan_path) = &opts.plan_path {
        guards.push(lockfile::acquire(plan_path)?);
    }
    guards.push(lockfile::acquire(&opts.journal)?);
    Ok(guards)
}

struct Quarantine {
    path: PathBuf,
    fd: Option<OwnedFd>,
}

/// What one run works with.
struct Run<'a> {
    root: OwnedFd,
    quarantine: Option<Quarantine>,
    apply: bool,
    journal: Lookup,
    writer: Option<JournalWriter>,
    list_paths: bool,
    report: CleanReport,
    progress: &'a mut dyn FnMut(&CleanEvent),
}

/// Executes a plan's `delete` entries (or, without `apply`, reports what would happen).
pub fn clean(
    plan: &dyn PlanEntries,
    opts: &CleanOptions,
    progress: &mut dyn FnMut(&CleanEvent),
) -> Result<CleanReport, RetentionError> {
    let header = plan.header();
    if opts.apply && opts.expected_root.is_none() {
        return Err(RetentionError::RootNotConfirmed {
            plan_root: PathBuf::from(&header.source_root),
        });
    }
    let (root_path, root) = open_root(header, opts.expected_root.as_deref())?;
    let platform = check_platform(header, &root_path)?;
    let in_order = check_entries(plan, platform)?;
    let plan_sha256 = plan.sha256()?;

    let quarantine = match &opts.quarantine {
        None => None,
        Some(dir) => {
            let (path, fd) = resolve_quarantine(
                dir,
                &root_path,
                (header.root_dev, header.root_ino),
                opts.apply,
            )?;
            Some(Quarantine { path, fd })
        }
    };

    let _locks = if opts.apply {
        let locks = lock_run(opts)?;
        failpoint::hit("clean.locked");
        locks
    } else {
        Vec::new()
    };

    let journal = load_journal(&opts.journal, opts.apply, &spill_dir_for(&opts.journal))?
        .unwrap_or_else(|| JournalState {
            headers: Vec::new(),
            lines: LastLines::empty(&opts.journal),
        });
    if let Some(foreign) = journal
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

    let writer = if opts.apply {
        let mut writer = JournalWriter::open(&opts.journal)?;
        failpoint::hit("clean.header.before");
        writer.append(&JournalHeader {
            kind: JOURNAL_KIND_HEADER.to_string(),
            plan_sha256: plan_sha256.clone(),
            source_root: header.source_root.clone(),
            root_dev: header.root_dev,
            root_ino: header.root_ino,
            mode: if quarantine.is_some() {
                "quarantine"
            } else {
                "delete"
            }
            .to_string(),
            quarantine: quarantine.as_ref().map(|q| q.path.display().to_string()),
            tool_version: header.tool_version.clone(),
            time: format_time(&Utc::now()),
            approvals: opts.approvals.clone(),
        })?;
        failpoint::hit("clean.header.after");
        Some(writer)
    } else {
        None
    };

    let mut run = Run {
        root,
        quarantine,
        apply: opts.apply,
        journal: Lookup::new(journal.lines, in_order)?,
        writer,
        list_paths: opts.list_paths,
        report: CleanReport {
            dry_run: !opts.apply,
            ..CleanReport::default()
        },
        progress,
    };
    plan.for_each_entry(&mut |entry| {
        match entry.action {
            Action::Keep => run.report.kept += 1,
            Action::Review => run.report.reviewed += 1,
            Action::Delete => run.entry(entry)?,
        }
        Ok(())
    })?;
    Ok(run.report)
}

impl Run<'_> {
    fn note_already_done(&mut self, path: &str) {
        self.report.counts.already_done += 1;
        if self.list_paths {
            self.report.already_done.push(path.to_string());
        }
    }

    fn append(&mut self, line: JournalLine) -> Result<(), RetentionError> {
        if let Some(writer) = self.writer.as_mut() {
            writer.append(&line)?;
        }
        self.journal.record(line);
        Ok(())
    }

    fn skip(&mut self, entry: &PlanEntry, reason: String) -> Result<(), RetentionError> {
        (self.progress)(&CleanEvent::Skipped {
            path: entry.path.clone(),
            reason: reason.clone(),
        });
        self.report.counts.skipped_changed += 1;
        if self.list_paths {
            self.report
                .skipped_changed
                .push((entry.path.clone(), reason.clone()));
        }
        if self.apply {
            self.append(journal_line(
                &entry.path,
                "skipped",
                &reason,
                None,
                entry.size,
                None,
            ))?;
        }
        Ok(())
    }

    fn completed(
        &mut self,
        entry: &PlanEntry,
        to: Option<PathBuf>,
        reason: &str,
        sha256: Option<String>,
    ) -> Result<(), RetentionError> {
        let path = entry.path.clone();
        self.report.bytes += entry.size;
        match &to {
            Some(dest) => {
                (self.progress)(&CleanEvent::Quarantined {
                    path: path.clone(),
                    to: dest.clone(),
                    size: entry.size,
                });
                self.report.counts.removed += 1;
                if self.list_paths {
                    self.report
                        .quarantined
                        .push((path.clone(), dest.display().to_string()));
                }
            }
            None => {
                (self.progress)(&CleanEvent::Deleted {
                    path: path.clone(),
                    size: entry.size,
                });
                self.report.counts.removed += 1;
                if self.list_paths {
                    self.report.deleted.push(path.clone());
                }
            }
        }
        let action = if to.is_some() {
            "quarantined"
        } else {
            "deleted"
        };
        failpoint::hit("clean.done.before");
        self.append(journal_line(
            &path,
            action,
            reason,
            sha256,
            entry.size,
            to.as_deref(),
        ))?;
        failpoint::hit("clean.done.after");
        Ok(())
    }

    fn entry(&mut self, entry: &PlanEntry) -> Result<(), RetentionError> {
        let path = entry.path.as_str();
        let destination = self.quarantine.as_ref().map(|q| q.path.join(path));
        let last = self.journal.last(path)?;
        let done = last.as_ref().is_some_and(JournalLine::is_done);
        let verified = match verify_entry(&self.root, entry, self.quarantine.is_some()) {
            // Only a hand-edited journal gets here; acting again would log a second removal.
            Ok(_) if done => {
                return self.skip(
                    entry,
                    "the journal records it as done, yet the file is still there".to_string(),
                );
            }
            Ok(verified) => verified,
            Err(Refusal::Missing) => return self.missing(entry, last, destination),
            Err(Refusal::Changed(reason)) => {
                let reason = if done {
                    format!("a file reappeared after it was removed by an earlier run: {reason}")
                } else {
                    reason
                };
                return self.skip(entry, reason);
            }
        };

        match (destination, self.apply) {
            (None, false) => {
                (self.progress)(&CleanEvent::WouldDelete {
                    path: path.to_string(),
                    size: entry.size,
                });
                self.report.counts.removed += 1;
                if self.list_paths {
                    self.report.deleted.push(path.to_string());
                }
                self.report.bytes += entry.size;
                Ok(())
            }
            (Some(dest), false) => {
                (self.progress)(&CleanEvent::WouldQuarantine {
                    path: path.to_string(),
                    to: dest.clone(),
                    size: entry.size,
                });
                self.report.counts.removed += 1;
                if self.list_paths {
                    self.report
                        .quarantined
                        .push((path.to_string(), dest.display().to_string()));
                }
                self.report.bytes += entry.size;
                Ok(())
            }
            (None, true) => self.delete(entry, verified),
            (Some(dest), true) => self.move_to_quarantine(entry, verified, dest),
        }
    }

    /// Journals the intent (synced) before the file is touched.
    fn intent(
        &mut self,
        entry: &PlanEntry,
        sha256: Option<String>,
        to: Option<&Path>,
    ) -> Result<(), RetentionError> {
        failpoint::hit("clean.intent.before");
        self.append(journal_line(
            &entry.path,
            "intent",
            &entry.reason,
            sha256,
            entry.size,
            to,
        ))?;
        failpoint::hit("clean.intent.after");
        Ok(())
    }

    fn delete(&mut self, entry: &PlanEntry, verified: Verified) -> Result<(), RetentionError> {
        let Ok((_, name)) = split_parts(&entry.path) else {
            return self.skip(entry, "not a plain relative path".to_string());
        };
        let sha256 = verified.sha256.clone().or_else(|| entry.sha256.clone());
        self.intent(entry, sha256.clone(), None)?;
        // The last look, on the same handle, right before the unlink.
        if let Err(r) =
            stat_regular(&verified.parent, name).and_then(|now| compare_stamp(now, entry.stamp()))
        {
            let why = match r {
                Refusal::Missing => "vanished while being removed".to_string(),
                Refusal::Changed(why) => format!("changed while being removed: {why}"),
            };
            return self.skip(entry, why);
        }
        failpoint::hit("clean.unlink.before");
        if let Err(e) = rustix::fs::unlinkat(&verified.parent, name, AtFlags::empty()) {
            return self.skip(entry, format!("cannot delete: {e}"));
        }
        failpoint::hit("clean.unlink.after");
        let _ = handles::sync_dir(&verified.parent);
        failpoint::hit("clean.unlink.synced");
        self.completed(entry, None, &entry.reason, sha256)
    }

    fn move_to_quarantine(
        &mut self,
        entry: &PlanEntry,
        verified: Verified,
        dest: PathBuf,
    ) -> Result<(), RetentionError> {
        let Some(sha256) = verified.sha256.clone() else {
            return self.skip(entry, "no SHA-256 to verify the move".to_string());
        };
        let Ok((parents, name)) = split_parts(&entry.path) else {
            return self.skip(entry, "not a plain relative path".to_string());
        };
        let Some(qfd) = self.quarantine.as_ref().and_then(|q| q.fd.as_ref()) else {
            return self.skip(entry, "no quarantine directory".to_string());
        };
        let qparent = match handles::walk_dirs(qfd, &parents, true) {
            Ok(fd) => fd,
            Err(Refusal::Missing) => {
                return self.skip(entry, "quarantine directory missing".to_string())
            }
            Err(Refusal::Changed(why)) => return self.skip(entry, format!("quarantine: {why}")),
        };
        match handles::stat_at(&qparent, name) {
            Err(Errno::NOENT) => {}
            Ok(st) if handles::file_type(&st) == FileType::RegularFile => {
                // A copy across devices interrupted before the original was removed:
                // finish it if the copy is whole, never overwrite.
                let whole = handles::open_file_at(&qparent, name)
                    .ok()
                    .and_then(|mut f| handles::hash_open(&mut f).ok())
                    .is_some_and(|(sha, size, _)| sha == sha256 && size == entry.size);
                if !whole {
                    return self.skip(
                        entry,
                        format!("quarantine destination {} already exists", dest.display()),
                    );
                }
                self.intent(entry, Some(sha256.clone()), Some(&dest))?;
                failpoint::hit("clean.unlink.before");
                if let Err(e) = rustix::fs::unlinkat(&verified.parent, name, AtFlags::empty()) {
                    return self.skip(entry, format!("cannot remove the original: {e}"));
                }
                failpoint::hit("clean.unlink.after");
                let _ = handles::sync_dir(&verified.parent);
                return self.completed(entry, Some(dest), &entry.reason, Some(sha256));
            }
            Ok(_) => {
                return self.skip(
                    entry,
                    format!(
                        "quarantine destination {} exists and is not a regular file",
                        dest.display()
                    ),
                )
            }
            Err(e) => return self.skip(entry, format!("cannot inspect {}: {e}", dest.display())),
        }
        self.intent(entry, Some(sha256.clone()), Some(&dest))?;
        if let Err(r) =
            stat_regular(&verified.parent, name).and_then(|now| compare_stamp(now, entry.stamp()))
        {
            let why = match r {
                Refusal::Missing => "vanished while being moved".to_string(),
                Refusal::Changed(why) => format!("changed while being moved: {why}"),
            };
            return self.skip(entry, why);
        }
        failpoint::hit("clean.rename.before");
        match handles::rename_noreplace(&verified.parent, &qparent, name) {
            Ok(()) => {
                failpoint::hit("clean.rename.after");
                let _ = handles::sync_dir(&qparent);
                let _ = handles::sync_dir(&verified.parent);
                failpoint::hit("clean.rename.synced");
            }
            Err(Errno::XDEV) => {
                if let Err(why) = handles::copy_across(
                    &verified.parent,
                    &qparent,
                    name,
                    &sha256,
                    entry.stamp(),
                    "clean",
                ) {
                    return self.skip(entry, why);
                }
            }
            Err(e) => return self.skip(entry, format!("cannot move to {}: {e}", dest.display())),
        }
        self.completed(entry, Some(dest), &entry.reason, Some(sha256))
    }

    /// A `delete` entry whose file is not there: done by an earlier run (journaled, or
    /// interrupted after its intent), or gone for another reason.
    fn missing(
        &mut self,
        entry: &PlanEntry,
        last: Option<JournalLine>,
        destination: Option<PathBuf>,
    ) -> Result<(), RetentionError> {
        let path = entry.path.as_str();
        if last.as_ref().is_some_and(JournalLine::is_done) {
            (self.progress)(&CleanEvent::AlreadyDone {
                path: path.to_string(),
            });
            self.note_already_done(path);
            return Ok(());
        }
        let intent = last.filter(|l| l.action == "intent");
        // Delete mode: an interrupted run unlinked it after journaling its intent.
        if let Some(line) = intent.as_ref().filter(|l| l.quarantine_path.is_none()) {
            if !self.apply {
                (self.progress)(&CleanEvent::AlreadyDone {
                    path: path.to_string(),
                });
                self.note_already_done(path);
                return Ok(());
            }
            return self.completed(
                entry,
                None,
                "removed by an interrupted run after its intent was journaled",
                line.sha256.clone(),
            );
        }
        // Quarantine: is it at its destination, with the planned identity?
        let moved_to = intent
            .as_ref()
            .and_then(|l| l.quarantine_path.clone())
            .map(PathBuf::from)
            .or(destination.clone());
        if let (Some(dest), true) = (moved_to, self.apply) {
            if destination.as_ref() != Some(&dest) {
                return self.skip(
                    entry,
                    format!(
                        "an interrupted run moved it to {}, another quarantine directory; run `chatvault undo` on the journal, or clean again with that --quarantine",
                        dest.display()
                    ),
                );
            }
            if let Some(sha256) = self.found_in_quarantine(entry) {
                return self.completed(
                    entry,
                    Some(dest),
                    "found at its quarantine destination after an interrupted run",
                    Some(sha256),
                );
            }
        }
        self.skip(entry, "missing".to_string())
    }

    /// The SHA-256 of the entry's file at its quarantine destination, when it is there
    /// with the planned device, inode, size (and SHA-256 if planned).
    fn found_in_quarantine(&self, entry: &PlanEntry) -> Option<String> {
        let qfd = self.quarantine.as_ref()?.fd.as_ref()?;
        let (parents, name) = split_parts(&entry.path).ok()?;
        let qparent = handles::walk_dirs(qfd, &parents, false).ok()?;
        let stamp = stat_regular(&qparent, name).ok()?;
        let mut file = handles::open_file_at(&qparent, name).ok()?;
        let (sha256, size, _) = handles::hash_open(&mut file).ok()?;
        let same_file = (stamp.dev, stamp.ino) == (entry.dev, entry.ino);
        let same_content = entry
            .sha256
            .as_ref()
            .is_some_and(|s| s.eq_ignore_ascii_case(&sha256));
        let planned_content = entry
            .sha256
            .as_ref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&sha256));
        (size == entry.size && planned_content && (same_file || same_content)).then_some(sha256)
    }
}

/// Moves every quarantined file of a journal back to its place, verifying size and
/// SHA-256, never overwriting; records `restoring` and `restored` lines in the journal.
///
/// Only quarantine paths inside a quarantine directory recorded in the journal's headers
/// are accepted (exactly that directory joined with the file's relative path), and files
/// are restored only under the recorded root (by handles, never through a symlink). An
/// `intent` of an interrupted clean is reconciled: its file is restored if it reached the
/// quarantine, and nothing is to be done if it is still in place.
pub fn undo(journal: &Path) -> Result<UndoReport, RetentionError> {
    undo_with(journal, true, &mut |_| {})
}

/// Counts and reports what happened to each file to [`UndoEvent`]s, as [`undo`] does;
/// without `list_paths` the report keeps no paths (100s of MB for 1,000,000 files).
pub fn undo_with(
    journal: &Path,
    list_paths: bool,
    progress: &mut dyn FnMut(&UndoEvent),
) -> Result<UndoReport, RetentionError> {
    let _lock = lockfile::acquire(journal)?;
    failpoint::hit("undo.locked");
    let state = load_journal(journal, true, &spill_dir_for(journal))?.ok_or_else(|| {
        RetentionError::Io {
            action: "read journal",
            path: journal.to_path_buf(),
            source: std::io::Error::new(ErrorKind::NotFound, "no such journal"),
        }
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
    let root_fd = handles::open_dir_path(&root).map_err(|e| RetentionError::RootMissing {
        root: root.clone(),
        message: e.to_string(),
    })?;
    let found = handles::stat_fd(&root_fd)
        .map(|st| handles::dev_ino(&st))
        .map_err(|e| RetentionError::RootMissing {
            root: root.clone(),
            message: e.to_string(),
        })?;
    if found != (header.root_dev, header.root_ino) {
        return Err(RetentionError::RootReplaced {
            root,
            expected_dev: header.root_dev,
            expected_ino: header.root_ino,
            found_dev: found.0,
            found_ino: found.1,
        });
    }
    let quarantines: Vec<String> = state
        .headers
        .iter()
        .filter_map(|h| h.quarantine.clone())
        .collect();

    let mut out = UndoOut {
        report: UndoReport::default(),
        list_paths,
        progress,
    };
    let mut writer = JournalWriter::open(journal)?;
    let mut handles_by_dir: HashMap<String, Result<OwnedFd, String>> = HashMap::new();
    // In path order, as the sorted lines come.
    let mut lines = state.lines;
    while let Some(line) = lines.next_line()? {
        let line = &line;
        match line.action.as_str() {
            "restored" => {
                out.report.already_restored += 1;
                continue;
            }
            "quarantined" | "restoring" => {}
            "intent" if line.quarantine_path.is_some() => {}
            _ => continue,
        }
        if let Err(why) = handles::relative_components(&line.path) {
            out.skipped(
                &line.path,
                format!("refused: restore target outside the root: {why}"),
            );
            continue;
        }
        let Some(qdir) = quarantines.iter().find(|q| {
            line.quarantine_path.as_deref()
                == Some(
                    Path::new(q.as_str())
                        .join(&line.path)
                        .display()
                        .to_string()
                        .as_str(),
                )
        }) else {
            out.skipped(
                &line.path,
                format!(
                    "refused: quarantine path {} is not the file's place inside the recorded quarantine directory ({})",
                    line.quarantine_path.as_deref().unwrap_or("(none)"),
                    if quarantines.is_empty() { "none recorded".to_string() } else { quarantines.join(", ") }
                ),
            );
            continue;
        };
        let qfd = handles_by_dir.entry(qdir.clone()).or_insert_with(|| {
            handles::open_dir_path(Path::new(qdir))
                .map_err(|e| format!("quarantine directory {qdir}: {e}"))
        });
        let qfd = match qfd {
            Ok(fd) => &*fd,
            Err(why) => {
                out.skipped(&line.path, why.clone());
                continue;
            }
        };
        match restore_one(&root_fd, qfd, line, &mut writer) {
            Ok(Restore::Restored) => {
                failpoint::hit("undo.done.before");
                writer.append(&JournalLine {
                    action: "restored".to_string(),
                    reason: "undo".to_string(),
                    time: format_time(&Utc::now()),
                    ..line.clone()
                })?;
                failpoint::hit("undo.done.after");
                out.restored(&line.path);
            }
            Ok(Restore::NeverMoved) => out.report.never_moved += 1,
            Err(RestoreError::Skip(why)) => out.skipped(&line.path, why),
            Err(RestoreError::Journal(e)) => return Err(e),
        }
    }
    Ok(out.report)
}

/// What [`undo_with`] reports, as it goes.
struct UndoOut<'a> {
    report: UndoReport,
    list_paths: bool,
    progress: &'a mut dyn FnMut(&UndoEvent),
}

impl UndoOut<'_> {
    fn restored(&mut self, path: &str) {
        (self.progress)(&UndoEvent::Restored { path });
        self.report.restored_count += 1;
        if self.list_paths {
            self.report.restored.push(path.to_string());
        }
    }

    fn skipped(&mut self, path: &str, why: String) {
        (self.progress)(&UndoEvent::Skipped { path, why: &why });
        self.report.skipped_count += 1;
        if self.list_paths {
            self.report.skipped.push((path.to_string(), why));
        }
    }
}

enum Restore {
    Restored,
    NeverMoved,
}

enum RestoreError {
    Skip(String),
    Journal(RetentionError),
}

impl From<String> for RestoreError {
    fn from(why: String) -> Self {
        RestoreError::Skip(why)
    }
}

fn restore_one(
    root: &OwnedFd,
    quarantine: &OwnedFd,
    line: &JournalLine,
    writer: &mut JournalWriter,
) -> Result<Restore, RestoreError> {
    let shown = line.quarantine_path.clone().unwrap_or_default();
    let expected_sha256 = line
        .sha256
        .as_ref()
        .ok_or_else(|| "the journal line has no sha256 to verify".to_string())?;
    let (parents, name) = split_parts(&line.path).map_err(|r| match r {
        Refusal::Missing => "empty path".to_string(),
        Refusal::Changed(why) => why,
    })?;
    let matches = |file: &mut File| -> Result<bool, String> {
        let (sha256, size, _) =
            handles::hash_open(file).map_err(|e| format!("cannot read: {e}"))?;
        Ok(size == line.size && sha256.eq_ignore_ascii_case(expected_sha256))
    };
    // The quarantined file, walked to from the quarantine directory's handle.
    let in_quarantine = match handles::walk_dirs(quarantine, &parents, false) {
        Ok(qparent) => match handles::stat_at(&qparent, name) {
            Ok(st) if handles::file_type(&st) == FileType::RegularFile => {
                let mut file = handles::open_file_at(&qparent, name)
                    .map_err(|e| format!("cannot open {shown}: {e}"))?;
                if !matches(&mut file)? {
                    return Err(
                        format!("{shown} no longer matches the journal (size or SHA-256)").into(),
                    );
                }
                Some((qparent, handles::stamp_of(&st)))
            }
            Ok(_) => return Err(format!("{shown} is not a regular file").into()),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(format!("cannot inspect {shown}: {e}").into()),
        },
        Err(Refusal::Missing) => None,
        Err(Refusal::Changed(why)) => return Err(format!("quarantine: {why}").into()),
    };
    let rparent = match handles::walk_dirs(root, &parents, in_quarantine.is_some()) {
        Ok(fd) => Some(fd),
        Err(Refusal::Missing) => None,
        Err(Refusal::Changed(why)) => return Err(why.into()),
    };
    // What is at the original place now.
    let in_place = match &rparent {
        None => None,
        Some(rparent) => match handles::stat_at(rparent, name) {
            Err(Errno::NOENT) => None,
            Ok(st) if handles::file_type(&st) == FileType::RegularFile => {
                let mut file = handles::open_file_at(rparent, name)
                    .map_err(|e| format!("cannot open {}: {e}", line.path))?;
                Some(matches(&mut file)?)
            }
            Ok(_) => Some(false),
            Err(e) => return Err(format!("cannot inspect {}: {e}", line.path).into()),
        },
    };
    match (in_quarantine, in_place) {
        // Never moved: the clean was interrupted between its intent and the move.
        (None, Some(true)) if line.action == "intent" => Ok(Restore::NeverMoved),
        // Moved back by an interrupted undo.
        (None, Some(true)) => Ok(Restore::Restored),
        (None, _) => Err(format!("quarantined file {shown} is missing").into()),
        (Some(_), Some(false)) => {
            Err(format!("{} exists again; not overwriting it", line.path).into())
        }
        (Some((qparent, _)), Some(true)) => {
            // Both copies whole (an interrupted copy across devices): drop the quarantined one.
            rustix::fs::unlinkat(&qparent, name, AtFlags::empty())
                .map_err(|e| format!("restored, but cannot remove {shown}: {e}"))?;
            Ok(Restore::Restored)
        }
        (Some((qparent, stamp)), None) => {
            let rparent = rparent.ok_or_else(|| "a parent directory is missing".to_string())?;
            failpoint::hit("undo.intent.before");
            writer
                .append(&JournalLine {
                    action: "restoring".to_string(),
                    reason: "undo".to_string(),
                    time: format_time(&Utc::now()),
                    ..line.clone()
                })
                .map_err(RestoreError::Journal)?;
            failpoint::hit("undo.intent.after");
            failpoint::hit("undo.rename.before");
            match handles::rename_noreplace(&qparent, &rparent, name) {
                Ok(()) => {
                    failpoint::hit("undo.rename.after");
                    let _ = handles::sync_dir(&rparent);
                    let _ = handles::sync_dir(&qparent);
                    failpoint::hit("undo.rename.synced");
                }
                Err(Errno::XDEV) => {
                    handles::copy_across(&qparent, &rparent, name, expected_sha256, stamp, "undo")?
                }
                Err(e) => return Err(format!("cannot move back: {e}").into()),
            }
            Ok(Restore::Restored)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::plan::tests::{build, entry_for};
    use crate::retention::plan::Plan;
    use std::os::unix::fs::{symlink, MetadataExt};

    struct Fixture {
        cache: tempfile::TempDir,
        out: tempfile::TempDir,
    }

    impl Fixture {
        fn new(files: &[(&str, &[u8])]) -> Fixture {
            let cache = tempfile::tempdir().unwrap();
            // What makes the root a WeChat source, which clean checks.
            let mut db = b"SQLite format 3\0".to_vec();
            db.resize(4096, 0);
            fs::write(cache.path().join("EnMicroMsg.db"), db).unwrap();
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
                expected_root: Some(self.root().to_path_buf()),
                plan_path: None,
                approvals: None,
                list_paths: true,
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
        ("image2/2025/a.jpg", b"image a"),
        ("image2/2025/b.jpg", b"image b"),
        ("Download/report.pdf", b"%PDF report"),
        ("video/v.mp4", b"video bytes"),
        ("keep.txt", b"kept"),
        ("orphan.dat", b"orphan"),
    ];

    fn standard_plan(fx: &Fixture, hash: bool) -> Plan {
        fx.plan(
            &[
                ("image2/2025/a.jpg", Action::Delete),
                ("image2/2025/b.jpg", Action::Delete),
                ("Download/report.pdf", Action::Delete),
                ("video/v.mp4", Action::Delete),
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
    fn a_plan_streamed_from_its_file_cleans_as_the_plan_in_memory() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, true);
        let json_path = fx.out.path().join("PLAN.json");
        plan.write(&json_path).unwrap();
        let file = crate::retention::PlanFile::open_verified(&json_path).unwrap();
        let in_memory = run(&plan, &fx.opts(false));
        let streamed = clean(&file, &fx.opts(false), &mut |_| {}).unwrap();
        assert_eq!(streamed, in_memory);
        assert_eq!(streamed.counts.removed, 4);

        // Without the lists, the counts and totals are the same.
        let mut opts = fx.opts(true);
        opts.list_paths = false;
        let applied = clean(&file, &opts, &mut |_| {}).unwrap();
        assert!(applied.deleted.is_empty());
        assert_eq!(applied.counts, in_memory.counts);
        assert_eq!(
            (applied.bytes, applied.kept, applied.reviewed),
            (in_memory.bytes, in_memory.kept, in_memory.reviewed)
        );
        let again = clean(&file, &opts, &mut |_| {}).unwrap();
        assert_eq!(again.counts.already_done, 4);
        assert!(again.already_done.is_empty());
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
                "image2/2025/a.jpg",
                "image2/2025/b.jpg",
                "video/v.mp4"
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
        // An intent (synced) before each unlink, the completion after it.
        assert_eq!(lines.len(), 9);
        for pair in lines[1..].chunks(2) {
            assert_eq!(pair[0]["action"], "intent");
            assert_eq!(pair[1]["action"], "deleted");
            assert_eq!(pair[0]["path"], pair[1]["path"]);
        }

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
        let a = fx.root().join("image2/2025/a.jpg");
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
        let v = fx.root().join("video/v.mp4");
        fs::remove_file(&v).unwrap();
        symlink(outside.path().join("precious"), &v).unwrap();
        // A parent directory swapped for a symlink to outside.
        let image_dir = fx.root().join("image2");
        fs::rename(&image_dir, fx.root().join("image2.old")).unwrap();
        fs::create_dir(&image_dir).unwrap();
        symlink(outside.path().join("2025"), image_dir.join("2025")).unwrap();

        let report = run(&plan, &fx.opts(true));
        assert!(report.deleted.is_empty(), "{:?}", report.deleted);
        let reasons: HashMap<String, String> = report.skipped_changed.into_iter().collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons["Download/report.pdf"].contains("size changed"));
        assert!(reasons["video/v.mp4"].contains("symlink"));
        assert!(reasons["image2/2025/b.jpg"].contains("image2/2025 was replaced by a symlink"));
        assert!(reasons["image2/2025/a.jpg"].contains("symlink"));
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
        let a = fx.root().join("image2/2025/a.jpg");
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
            .position(|e| e.path == "image2/2025/a.jpg")
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
            reasons["image2/2025/a.jpg"].contains("content changed"),
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
        let before = fx.tree();
        for apply in [false, true] {
            match clean(&plan, &fx.opts(apply), &mut |_| {}) {
                Err(RetentionError::PlanUnsafe { count, entries }) => {
                    assert_eq!(count, 2);
                    assert!(entries
                        .iter()
                        .all(|(_, why)| why.contains("not a plain relative path")));
                }
                other => panic!("expected PlanUnsafe, got {other:?}"),
            }
        }
        assert_eq!(fx.tree(), before);
        assert!(!fx.opts(true).journal.exists());
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
        let done = ["Download/report.pdf", "image2/2025/a.jpg"];
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
        journal.push_str("{\"path\":\"image2/2025/b.j");
        fs::write(&opts.journal, journal).unwrap();

        let report = run(&plan, &opts);
        let mut already = report.already_done.clone();
        already.sort();
        assert_eq!(already, done);
        let mut deleted = report.deleted.clone();
        deleted.sort();
        assert_eq!(deleted, ["image2/2025/b.jpg", "video/v.mp4"]);
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
                "image2/2025/a.jpg",
                "image2/2025/b.jpg",
                "video/v.mp4"
            ]
        );
        assert_eq!(lines.iter().filter(|l| l["kind"] == "header").count(), 2);
    }

    #[test]
    fn missing_file_without_journal_line_is_reported() {
        let fx = Fixture::new(FILES);
        let plan = standard_plan(&fx, false);
        fs::remove_file(fx.root().join("video/v.mp4")).unwrap();
        let report = run(&plan, &fx.opts(true));
        assert_eq!(
            report.skipped_changed,
            vec![("video/v.mp4".to_string(), "missing".to_string())]
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
        let mut opts = fx.opts(true);
        opts.expected_root = Some(fx2.root().to_path_buf());
        assert!(matches!(
            clean(&other, &opts, &mut |_| {}),
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
            fs::read(quarantine.path().join("q/image2/2025/a.jpg")).unwrap(),
            b"image a"
        );
        assert!(!fx.root().join("image2/2025/a.jpg").exists());
        let lines = journal_lines(&opts.journal);
        assert!(lines[1..].iter().all(|l| (l["action"] == "quarantined"
            || l["action"] == "intent")
            && l["sha256"].is_string()));
        assert_eq!(
            lines
                .iter()
                .filter(|l| l["action"] == "quarantined")
                .count(),
            4
        );

        // Remove a now-empty directory to check undo recreates it.
        fs::remove_dir(fx.root().join("video")).unwrap();
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
        let moved = quarantine.path().join("video/v.mp4");
        assert_eq!(fs::read(&moved).unwrap(), b"video bytes");
        let planned = plan
            .entries
            .iter()
            .find(|e| e.path == "video/v.mp4")
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
        fs::write(quarantine.path().join("video/v.mp4"), b"video BYTES").unwrap();
        let undone = undo(&opts.journal).unwrap();
        assert_eq!(undone.restored.len(), 3);
        assert_eq!(undone.skipped.len(), 1);
        assert!(!fx.root().join("video/v.mp4").exists());
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

    /// A fixture of many files, named so that byte order differs from a naive one.
    /// A fixture holding `files` and a plan's entries deleting each of them.
    fn deleting_all(files: &[(String, Vec<u8>)]) -> (Fixture, Vec<(&str, Action)>) {
        let borrowed: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_slice()))
            .collect();
        let entries = files
            .iter()
            .map(|(p, _)| (p.as_str(), Action::Delete))
            .collect();
        (Fixture::new(&borrowed), entries)
    }

    fn many_files() -> Vec<(String, Vec<u8>)> {
        (0..40)
            .map(|i| {
                let dir = [
                    "image2/a",
                    "image2/a b",
                    "image2/a/b",
                    "image2/a-b",
                    "video",
                    "Download/é",
                ][i % 6];
                (
                    format!("{dir}/f{i:02}.bin"),
                    format!("content {i}").into_bytes(),
                )
            })
            .collect()
    }

    /// What a run leaves: the report's lists (sorted), the tree, and the journal's lines
    /// without their times.
    type Outcome = (
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<(String, Vec<u8>)>,
        Vec<String>,
    );

    fn outcome(report: &CleanReport, fx: &Fixture, journal: &Path) -> Outcome {
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        // Sorted: a plan out of order appends them in another order.
        let lines = sorted(
            journal_lines(journal)
                .into_iter()
                .filter(|l| l["kind"] != "header")
                .map(|l| {
                    format!(
                        "{} {} {} {}",
                        l["action"], l["path"], l["reason"], l["sha256"]
                    )
                })
                .collect(),
        );
        (
            sorted(report.deleted.clone()),
            sorted(report.already_done.clone()),
            sorted(
                report
                    .skipped_changed
                    .iter()
                    .map(|(p, w)| format!("{p}: {w}"))
                    .collect(),
            ),
            fx.tree(),
            lines,
        )
    }

    /// A clean killed part-way through: ten files deleted and journaled, one deleted after
    /// its intent, one with only its intent, one skipped; then resumed.
    fn resume_half_done(budget: Option<usize>, out_of_order: bool) -> Outcome {
        RUN_BUDGET.with(|b| b.set(budget));
        let files = many_files();
        let (fx, entries) = deleting_all(&files);
        let mut plan = fx.plan(&entries, true);
        if out_of_order {
            plan.entries.swap(3, 30);
            plan.entries.reverse();
        }
        let opts = fx.opts(true);
        let mut journal = serde_json::json!({
            "kind": "header", "plan_sha256": plan.sha256().unwrap(),
            "source_root": plan.header.source_root, "root_dev": plan.header.root_dev,
            "root_ino": plan.header.root_ino, "mode": "delete", "quarantine": null,
            "tool_version": "test", "time": "2025-10-01T00:00:00Z",
        })
        .to_string();
        journal.push('\n');
        let mut push = |path: &str, action: &str| {
            let line = journal_line(path, action, "test", None, 1, None);
            journal.push_str(&serde_json::to_string(&line).unwrap());
            journal.push('\n');
        };
        // In the order of a sorted plan, whatever order this one is in.
        let mut paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        paths.sort();
        for (i, path) in paths.iter().enumerate().take(13) {
            match i {
                0..=9 => {
                    fs::remove_file(fx.root().join(path)).unwrap();
                    push(path, "intent");
                    push(path, "deleted");
                }
                10 => {
                    fs::remove_file(fx.root().join(path)).unwrap();
                    push(path, "intent");
                }
                11 => push(path, "intent"),
                _ => push(path, "skipped"),
            }
        }
        fs::write(&opts.journal, journal).unwrap();
        let report = run(&plan, &opts);
        assert_eq!(report.counts.already_done, 10);
        assert_eq!(report.counts.removed, 30);
        assert!(
            report.skipped_changed.is_empty(),
            "{:?}",
            report.skipped_changed
        );
        assert_eq!(fx.tree().len(), 1, "only the database is left");
        let result = outcome(&report, &fx, &opts.journal);
        RUN_BUDGET.with(|b| b.set(None));
        result
    }

    #[test]
    fn a_resumed_clean_merges_the_journal_sorted_on_disk() {
        let in_memory = resume_half_done(None, false);
        assert_eq!(resume_half_done(Some(64), false), in_memory);
        // A plan out of path order looks the journal up in memory, to the same effect.
        assert_eq!(resume_half_done(Some(64), true), in_memory);
    }

    #[test]
    fn undo_reads_the_journal_sorted_on_disk() {
        RUN_BUDGET.with(|b| b.set(Some(64)));
        let files = many_files();
        let (fx, entries) = deleting_all(&files);
        let plan = fx.plan(&entries, false);
        let before = fx.tree();
        let quarantine = tempfile::tempdir().unwrap();
        let mut opts = fx.opts(true);
        opts.quarantine = Some(quarantine.path().join("q"));
        assert_eq!(run(&plan, &opts).quarantined.len(), 40);
        let again = run(&plan, &opts);
        assert_eq!((again.counts.already_done, again.counts.removed), (40, 0));

        // Without the lists: counts and events only.
        let mut restored = Vec::new();
        let undone = undo_with(&opts.journal, false, &mut |e| match e {
            UndoEvent::Restored { path } => restored.push(path.to_string()),
            UndoEvent::Skipped { path, why } => panic!("{path}: {why}"),
        })
        .unwrap();
        assert_eq!((undone.restored_count, undone.skipped_count), (40, 0));
        assert!(undone.restored.is_empty());
        let mut sorted = restored.clone();
        sorted.sort();
        assert_eq!(restored, sorted, "restored in path order");
        assert_eq!(fx.tree(), before);
        let again = undo(&opts.journal).unwrap();
        assert_eq!((again.restored.len(), again.already_restored), (0, 40));
        RUN_BUDGET.with(|b| b.set(None));
    }
}
