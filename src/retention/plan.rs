//! The cleanup plan: `PLAN.json` (the contract), `PLAN.csv` (the same entries
//! for people) and `PLAN.json.sha256` (a `sha256sum -c` sidecar that `clean`
//! insists on).

use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io::{BufWriter, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decide::{Action, Category, Decision, GroupFacts};
use super::policy::{ApprovalPolicy, Policy};
use super::{
    format_time, human_time, serde_opt_time, serde_time, sha256_hex, sha256_reader, RetentionError,
};
use crate::failpoint;
pub use crate::sink::csv::CsvStyle;
use crate::sink::csv::CsvTable;

/// Version of the plan file shape.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// The identity of a file at planning time; `clean` re-checks all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub size: u64,
    pub mtime: DateTime<Utc>,
    pub ctime: DateTime<Utc>,
    pub dev: u64,
    pub ino: u64,
}

impl FileStamp {
    /// From `symlink_metadata` / `metadata`, with nanosecond times.
    pub fn from_metadata(meta: &Metadata) -> FileStamp {
        FileStamp {
            size: meta.size(),
            mtime: unix_time(meta.mtime(), meta.mtime_nsec()),
            ctime: unix_time(meta.ctime(), meta.ctime_nsec()),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

// Out-of-range times map to the epoch; both planning and re-checking go
// through this function, so a comparison is still exact.
pub(crate) fn unix_time(seconds: i64, nanos: i64) -> DateTime<Utc> {
    u32::try_from(nanos)
        .ok()
        .and_then(|n| DateTime::from_timestamp(seconds, n))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// Relative to the plan root, `/`-separated.
    pub path: String,
    pub size: u64,
    #[serde(with = "serde_time")]
    pub mtime: DateTime<Utc>,
    #[serde(with = "serde_time")]
    pub ctime: DateTime<Utc>,
    pub dev: u64,
    pub ino: u64,
    /// Lower-case hex, when the plan was made with `--hash`.
    pub sha256: Option<String>,
    pub category: Category,
    pub group_id: Option<String>,
    pub message_id: Option<String>,
    pub rule: String,
    pub action: Action,
    #[serde(with = "serde_opt_time")]
    pub deletable_from: Option<DateTime<Utc>>,
    pub reason: String,
}

impl PlanEntry {
    pub fn new(
        rel_path: &str,
        stamp: FileStamp,
        sha256: Option<String>,
        category: Category,
        group_id: Option<String>,
        message_id: Option<String>,
        decision: Decision,
    ) -> PlanEntry {
        PlanEntry {
            path: rel_path.to_string(),
            size: stamp.size,
            mtime: stamp.mtime,
            ctime: stamp.ctime,
            dev: stamp.dev,
            ino: stamp.ino,
            sha256,
            category,
            group_id,
            message_id,
            rule: decision.rule,
            action: decision.action,
            deletable_from: decision.deletable_from,
            reason: decision.reason,
        }
    }

    pub fn stamp(&self) -> FileStamp {
        FileStamp {
            size: self.size,
            mtime: self.mtime,
            ctime: self.ctime,
            dev: self.dev,
            ino: self.ino,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalCount {
    pub files: u64,
    pub bytes: u64,
}

impl TotalCount {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }

    fn merge(&mut self, other: TotalCount) {
        self.files += other.files;
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTotals {
    pub all: TotalCount,
    /// Every action, zero counts included.
    pub by_action: BTreeMap<String, TotalCount>,
    /// Categories that occur.
    pub by_category: BTreeMap<String, TotalCount>,
}

impl Default for PlanTotals {
    /// Every action at zero.
    fn default() -> Self {
        Tally::default().totals()
    }
}

impl PlanTotals {
    pub fn of(entries: &[PlanEntry]) -> PlanTotals {
        let mut tally = Tally::default();
        for entry in entries {
            tally.add(entry);
        }
        tally.totals()
    }

    /// The largest totals a plan can have: every category, every count at its maximum.
    /// Their JSON is the longest the header's totals can be.
    fn widest() -> PlanTotals {
        let max = TotalCount {
            files: u64::MAX,
            bytes: u64::MAX,
        };
        Tally {
            all: max,
            by_action: [max; Action::ALL.len()],
            by_category: [max; Category::ALL.len()],
        }
        .totals()
    }
}

/// [`PlanTotals`] as they are counted: indexed by action and category, not by name.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    all: TotalCount,
    by_action: [TotalCount; Action::ALL.len()],
    by_category: [TotalCount; Category::ALL.len()],
}

impl Tally {
    fn add(&mut self, entry: &PlanEntry) {
        self.all.add(entry.size);
        // The enums' declaration order is their order in `ALL`.
        self.by_action[entry.action as usize].add(entry.size);
        self.by_category[entry.category as usize].add(entry.size);
    }

    fn merge(&mut self, other: &Tally) {
        self.all.merge(other.all);
        for (mine, theirs) in self.by_action.iter_mut().zip(other.by_action) {
            mine.merge(theirs);
        }
        for (mine, theirs) in self.by_category.iter_mut().zip(other.by_category) {
            mine.merge(theirs);
        }
    }

    /// Every action, and the categories that occur.
    fn totals(&self) -> PlanTotals {
        PlanTotals {
            all: self.all,
            by_action: Action::ALL
                .iter()
                .zip(self.by_action)
                .map(|(action, count)| (action.as_str().to_string(), count))
                .collect(),
            by_category: Category::ALL
                .iter()
                .zip(self.by_category)
                .filter(|(_, count)| count.files > 0)
                .map(|(category, count)| (category.as_str().to_string(), count))
                .collect(),
        }
    }
}

/// What the summary needs of a plan's entries, gathered as they are written: the totals,
/// and the next time after the reference time at which more files become deletable.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanStats {
    reference_time: DateTime<Utc>,
    tally: Tally,
    /// That next time, with the files and bytes that become deletable then.
    pub next_deletable: Option<(DateTime<Utc>, TotalCount)>,
}

impl PlanStats {
    pub fn new(reference_time: DateTime<Utc>) -> PlanStats {
        PlanStats {
            reference_time,
            tally: Tally::default(),
            next_deletable: None,
        }
    }

    pub fn of(reference_time: DateTime<Utc>, entries: &[PlanEntry]) -> PlanStats {
        let mut stats = PlanStats::new(reference_time);
        for entry in entries {
            stats.add(entry);
        }
        stats
    }

    pub fn totals(&self) -> PlanTotals {
        self.tally.totals()
    }

    /// Files counted so far.
    pub fn files(&self) -> u64 {
        self.tally.all.files
    }

    pub fn add(&mut self, entry: &PlanEntry) {
        self.tally.add(entry);
        if entry.action != Action::Keep {
            return;
        }
        if let Some(at) = entry.deletable_from.filter(|t| *t > self.reference_time) {
            let mut count = TotalCount::default();
            count.add(entry.size);
            self.add_next(at, count);
        }
    }

    pub fn merge(&mut self, other: &PlanStats) {
        self.tally.merge(&other.tally);
        if let Some((at, count)) = other.next_deletable {
            self.add_next(at, count);
        }
    }

    fn add_next(&mut self, at: DateTime<Utc>, count: TotalCount) {
        match &mut self.next_deletable {
            Some((next, total)) if *next == at => total.merge(count),
            Some((next, _)) if *next < at => {}
            _ => self.next_deletable = Some((at, count)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanHeader {
    pub format_version: u32,
    /// Absolute, canonical.
    pub source_root: String,
    /// Device and inode of the root at planning time, so `clean` can tell a
    /// different directory that now has the same name.
    pub root_dev: u64,
    pub root_ino: u64,
    pub platform: String,
    #[serde(with = "serde_time")]
    pub reference_time: DateTime<Utc>,
    /// `builtin` or the policy file path.
    pub policy_source: String,
    pub policy_rule_ids: Vec<String>,
    pub policy_sha256: String,
    pub tool_version: String,
    /// Group types (and how they were inferred), dissolution times and their source.
    pub groups: Vec<GroupFacts>,
    /// The policy's `[approvals]`, which `clean --apply` applies to the groups this plan
    /// deletes files of; absent when the policy requires none.
    #[serde(default, skip_serializing_if = "ApprovalPolicy::is_empty")]
    pub approvals: ApprovalPolicy,
    pub totals: PlanTotals,
}

impl PlanHeader {
    /// A header with no totals yet: canonicalizes the root and records its device and
    /// inode, and records the policy.
    pub fn new(
        root: &Path,
        platform: &str,
        reference_time: DateTime<Utc>,
        policy: &Policy,
        tool_version: &str,
        groups: Vec<GroupFacts>,
    ) -> Result<PlanHeader, RetentionError> {
        let canonical = root
            .canonicalize()
            .map_err(|e| RetentionError::RootMissing {
                root: root.to_path_buf(),
                message: e.to_string(),
            })?;
        let meta = fs::metadata(&canonical).map_err(|e| RetentionError::RootMissing {
            root: canonical.clone(),
            message: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(RetentionError::RootMissing {
                root: canonical,
                message: "not a directory".to_string(),
            });
        }
        let source_root = canonical
            .to_str()
            .ok_or_else(|| RetentionError::RootMissing {
                root: canonical.clone(),
                message: "the path is not valid UTF-8".to_string(),
            })?
            .to_string();
        Ok(PlanHeader {
            format_version: PLAN_FORMAT_VERSION,
            source_root,
            root_dev: meta.dev(),
            root_ino: meta.ino(),
            platform: platform.to_string(),
            reference_time,
            policy_source: policy.source.clone(),
            policy_rule_ids: policy.rule_ids(),
            policy_sha256: policy.sha256()?,
            tool_version: tool_version.to_string(),
            groups,
            approvals: policy.approvals.clone(),
            totals: PlanTotals::default(),
        })
    }

    /// The start of `PLAN.json` up to the opening `[` of the entries: the header
    /// pretty-printed, then spaces up to the length it has with the widest totals.
    ///
    /// The totals are known only once every entry is written, and the entries are written
    /// as they are decided, so the header is written twice: first into its room at the
    /// start of the file, then over it with the totals. Whitespace between JSON tokens is
    /// insignificant, so the padding leaves the JSON as it would be without it.
    fn json_start(&self) -> Result<Vec<u8>, RetentionError> {
        let pretty = |header: &PlanHeader| {
            serde_json::to_vec_pretty(header).map_err(|e| RetentionError::Serialize {
                what: "plan header as JSON",
                message: e.to_string(),
            })
        };
        let widest = pretty(&PlanHeader {
            totals: PlanTotals::widest(),
            ..self.clone()
        })?;
        let header = pretty(self)?;
        let mut out = Vec::with_capacity(widest.len() + 32);
        out.extend_from_slice(b"{\"header\": ");
        out.extend_from_slice(&header);
        out.resize(out.len() + widest.len().saturating_sub(header.len()), b' ');
        out.extend_from_slice(b",\n\"entries\": [");
        Ok(out)
    }
}

/// What follows the last entry in `PLAN.json`.
const JSON_END: &[u8] = b"\n]}\n";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub header: PlanHeader,
    pub entries: Vec<PlanEntry>,
}

/// The files [`Plan::write`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFiles {
    pub json: PathBuf,
    pub csv: PathBuf,
    pub sha256_sidecar: PathBuf,
    /// SHA-256 of the JSON file.
    pub sha256: String,
}

const CSV_COLUMNS: [&str; 14] = [
    "path",
    "size",
    "mtime",
    "ctime",
    "dev",
    "ino",
    "sha256",
    "category",
    "group_id",
    "message_id",
    "rule",
    "action",
    "deletable_from",
    "reason",
];

/// `PLAN.json` → `PLAN.json.sha256`.
pub fn sidecar_path(json_path: &Path) -> PathBuf {
    let mut name = json_path.as_os_str().to_os_string();
    name.push(".sha256");
    PathBuf::from(name)
}

/// `PLAN.json` → `PLAN.csv`; other names get `.csv` appended.
pub fn csv_path(json_path: &Path) -> PathBuf {
    if json_path.extension().is_some_and(|e| e == "json") {
        json_path.with_extension("csv")
    } else {
        let mut name = json_path.as_os_str().to_os_string();
        name.push(".csv");
        PathBuf::from(name)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// synced before the rename, so readers see the old file or the whole new one.
pub(crate) fn write_atomically(
    path: &Path,
    bytes: &[u8],
    points: [&'static str; 2],
) -> Result<(), RetentionError> {
    let mut temp = temp_beside(path)?;
    temp.write_all(bytes)
        .map_err(|e| RetentionError::io("write", path, e))?;
    persist_synced(temp, path, points)
}

/// A temporary file in `path`'s directory, to be renamed over it by [`persist_synced`].
fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile, RetentionError> {
    let dir = parent_dir(path);
    tempfile::NamedTempFile::new_in(&dir)
        .map_err(|e| RetentionError::io("create a temporary file in", &dir, e))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Syncs a temporary file and renames it to `path`, then syncs the directory so the rename
/// itself is durable. `points` name the crash points after the sync and after the rename.
fn persist_synced(
    temp: tempfile::NamedTempFile,
    path: &Path,
    points: [&'static str; 2],
) -> Result<(), RetentionError> {
    temp.as_file()
        .sync_all()
        .map_err(|e| RetentionError::io("write", temp.path(), e))?;
    failpoint::hit(points[0]);
    temp.persist(path)
        .map_err(|e| RetentionError::io("rename into place", path, e.error))?;
    failpoint::hit(points[1]);
    let _ = crate::durable::sync_dir(&parent_dir(path));
    Ok(())
}

/// Appends an entry to `PLAN.json`'s entries as `,\n{…}`.
fn push_json_line(json: &mut Vec<u8>, entry: &PlanEntry) -> Result<(), RetentionError> {
    json.extend_from_slice(b",\n");
    serde_json::to_writer(json, entry).map_err(|e| RetentionError::Serialize {
        what: "plan entry as JSON",
        message: e.to_string(),
    })
}

fn push_csv_row(csv: &mut CsvTable<Vec<u8>>, entry: &PlanEntry) -> Result<(), RetentionError> {
    let number = |n: u64| n.to_string();
    let (size, dev, ino) = (number(entry.size), number(entry.dev), number(entry.ino));
    let mtime = format_time(&entry.mtime);
    let ctime = format_time(&entry.ctime);
    let deletable_from = entry.deletable_from.map(|t| format_time(&t));
    csv.row(&[
        &entry.path,
        &size,
        &mtime,
        &ctime,
        &dev,
        &ino,
        entry.sha256.as_deref().unwrap_or_default(),
        entry.category.as_str(),
        entry.group_id.as_deref().unwrap_or_default(),
        entry.message_id.as_deref().unwrap_or_default(),
        &entry.rule,
        entry.action.as_str(),
        deletable_from.as_deref().unwrap_or_default(),
        &entry.reason,
    ])
    .map_err(|e| RetentionError::Serialize {
        what: "plan entry as CSV",
        message: e.to_string(),
    })
}

/// Entries rendered as `PLAN.json` lines and `PLAN.csv` rows, and their stats: rendered
/// on any thread, appended in order by a [`PlanWriter`].
pub struct EntryBlock {
    /// Each entry as `,\n{…}`; the writer drops the comma before the first entry.
    json: Vec<u8>,
    csv: CsvTable<Vec<u8>>,
    stats: PlanStats,
}

impl EntryBlock {
    pub fn new(reference_time: DateTime<Utc>, style: CsvStyle) -> EntryBlock {
        EntryBlock {
            json: Vec::new(),
            csv: CsvTable::rows_only(Vec::new(), style),
            stats: PlanStats::new(reference_time),
        }
    }

    pub fn push(&mut self, entry: &PlanEntry) -> Result<(), RetentionError> {
        push_json_line(&mut self.json, entry)?;
        push_csv_row(&mut self.csv, entry)?;
        self.stats.add(entry);
        Ok(())
    }

    /// The entries' JSON, without the leading comma when they are the plan's first.
    fn json_after(&self, first: bool) -> &[u8] {
        without_leading_comma(&self.json, first)
    }
}

fn without_leading_comma(json: &[u8], first: bool) -> &[u8] {
    match first {
        true => json.get(1..).unwrap_or_default(),
        false => json,
    }
}

/// Writes `PLAN.json`, `PLAN.csv` and `PLAN.json.sha256` as blocks of entries come:
/// a plan of 300,000 files is 100s of MB, and nothing of it need stay in memory.
/// Each file is written to a temporary file beside it and renamed into place when
/// complete; the sidecar last, so a crash never leaves a verifiable half-written plan.
pub struct PlanWriter {
    json_path: PathBuf,
    csv_path: PathBuf,
    file_name: String,
    header: PlanHeader,
    json: BufWriter<tempfile::NamedTempFile>,
    csv: BufWriter<tempfile::NamedTempFile>,
    stats: PlanStats,
    header_len: usize,
}

impl PlanWriter {
    pub fn create(
        json_path: &Path,
        header: PlanHeader,
        style: CsvStyle,
    ) -> Result<PlanWriter, RetentionError> {
        let file_name = json_path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| RetentionError::InvalidArgument {
                what: "plan path",
                value: json_path.display().to_string(),
                hint: "give a file name such as PLAN.json".to_string(),
            })?
            .to_string();
        let csv_path = csv_path(json_path);
        let json_start = header.json_start()?;
        let mut json = BufWriter::with_capacity(1 << 20, temp_beside(json_path)?);
        json.write_all(&json_start)
            .map_err(|e| RetentionError::io("write", json_path, e))?;
        let mut csv = CsvTable::new(
            BufWriter::with_capacity(1 << 20, temp_beside(&csv_path)?),
            style,
            &CSV_COLUMNS,
        )
        .and_then(CsvTable::into_inner)
        .map_err(|e| RetentionError::io("write", &csv_path, e))?;
        csv.flush()
            .map_err(|e| RetentionError::io("write", &csv_path, e))?;
        Ok(PlanWriter {
            json_path: json_path.to_path_buf(),
            csv_path,
            file_name,
            stats: PlanStats::new(header.reference_time),
            header,
            json,
            csv,
            header_len: json_start.len(),
        })
    }

    /// The header as it will be written, totals aside.
    pub fn header(&self) -> &PlanHeader {
        &self.header
    }

    /// Appends a block's entries after those appended before.
    pub fn append(&mut self, block: EntryBlock) -> Result<(), RetentionError> {
        let first = self.stats.files() == 0;
        self.json
            .write_all(block.json_after(first))
            .map_err(|e| RetentionError::io("write", &self.json_path, e))?;
        let csv = block
            .csv
            .into_inner()
            .map_err(|e| RetentionError::Serialize {
                what: "plan entry as CSV",
                message: e.to_string(),
            })?;
        self.csv
            .write_all(&csv)
            .map_err(|e| RetentionError::io("write", &self.csv_path, e))?;
        self.stats.merge(&block.stats);
        Ok(())
    }

    /// Writes the header with the totals into its room, syncs, hashes and renames both
    /// files into place, then writes the sidecar.
    pub fn finish(mut self) -> Result<(PlanFiles, PlanHeader, PlanStats), RetentionError> {
        use std::os::unix::fs::FileExt;
        let json_path = self.json_path.clone();
        let io_json = |e: std::io::Error| RetentionError::io("write", &json_path, e);
        self.json.write_all(JSON_END).map_err(io_json)?;
        let json = self
            .json
            .into_inner()
            .map_err(|e| io_json(e.into_error()))?;
        self.header.totals = self.stats.totals();
        let json_start = self.header.json_start()?;
        if json_start.len() != self.header_len {
            return Err(RetentionError::Serialize {
                what: "plan header as JSON",
                message: format!(
                    "the header grew from {} to {} bytes while the plan was written",
                    self.header_len,
                    json_start.len()
                ),
            });
        }
        json.as_file()
            .write_all_at(&json_start, 0)
            .map_err(io_json)?;
        failpoint::hit("plan.json.written");
        // The old sidecar goes before the new plan takes the old one's place: a crash in
        // between leaves a plan without a sidecar (refused), never one that seems to match.
        let sidecar = sidecar_path(&self.json_path);
        match fs::remove_file(&sidecar) {
            Ok(()) => {
                let _ = crate::durable::sync_dir(&parent_dir(&sidecar));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RetentionError::io("remove the old sidecar", &sidecar, e)),
        }
        failpoint::hit("plan.sidecar.removed");
        let csv_path = self.csv_path.clone();
        let csv = self
            .csv
            .into_inner()
            .map_err(|e| RetentionError::io("write", &csv_path, e.into_error()))?;
        // The file's hash can only be taken now that its first bytes are final: one
        // sequential read of what was just written, still in the page cache.
        let (sha256, csv_done) = rayon::join(
            || -> Result<String, RetentionError> {
                let mut reader = json.as_file();
                reader.seek(std::io::SeekFrom::Start(0)).map_err(io_json)?;
                let (sha256, _) = sha256_reader(&mut reader)
                    .map_err(|e| RetentionError::io("read back", &json_path, e))?;
                persist_synced(json, &json_path, ["plan.json.synced", "plan.json.renamed"])?;
                Ok(sha256)
            },
            || persist_synced(csv, &csv_path, ["plan.csv.synced", "plan.csv.renamed"]),
        );
        let sha256 = sha256?;
        csv_done?;
        write_atomically(
            &sidecar,
            format!("{sha256}  {}\n", self.file_name).as_bytes(),
            ["plan.sidecar.synced", "plan.sidecar.renamed"],
        )?;
        let files = PlanFiles {
            json: self.json_path,
            csv: self.csv_path,
            sha256_sidecar: sidecar,
            sha256,
        };
        Ok((files, self.header, self.stats))
    }
}

impl Plan {
    /// Assembles a plan from a header (see [`PlanHeader::new`]) and its entries, sorted
    /// by path and totalled.
    pub fn build(mut header: PlanHeader, mut entries: Vec<PlanEntry>) -> Plan {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        header.totals = PlanTotals::of(&entries);
        Plan { header, entries }
    }

    /// The exact bytes [`Plan::write`] puts in `PLAN.json`: the header pretty-printed,
    /// then one entry per line (as easy to read and diff as a pretty-printed file, at a
    /// third of the size for caches of 100,000s of files).
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, RetentionError> {
        let mut entries = Vec::new();
        for entry in &self.entries {
            push_json_line(&mut entries, entry)?;
        }
        let header = PlanHeader {
            totals: PlanTotals::of(&self.entries),
            ..self.header.clone()
        };
        let mut bytes = header.json_start()?;
        bytes.extend_from_slice(without_leading_comma(&entries, true));
        bytes.extend_from_slice(JSON_END);
        Ok(bytes)
    }

    /// SHA-256 of [`Plan::to_json_bytes`]; equal to the file's for a plan this tool wrote.
    pub fn sha256(&self) -> Result<String, RetentionError> {
        Ok(sha256_hex(&self.to_json_bytes()?))
    }

    /// Writes `PLAN.json`, `PLAN.csv` and `PLAN.json.sha256` (see [`PlanWriter`]). The
    /// header's totals are those of the entries.
    pub fn write(&self, json_path: &Path) -> Result<PlanFiles, RetentionError> {
        self.write_with(json_path, CsvStyle::default())
    }

    pub fn write_with(
        &self,
        json_path: &Path,
        style: CsvStyle,
    ) -> Result<PlanFiles, RetentionError> {
        let mut writer = PlanWriter::create(json_path, self.header.clone(), style)?;
        for entries in self.entries.chunks(4096) {
            let mut block = EntryBlock::new(self.header.reference_time, style);
            for entry in entries {
                block.push(entry)?;
            }
            writer.append(block)?;
        }
        Ok(writer.finish()?.0)
    }

    /// Reads a plan, refusing it unless `PLAN.json.sha256` exists, names this
    /// file and matches its bytes.
    pub fn read_verified(json_path: &Path) -> Result<Plan, RetentionError> {
        Ok(Plan::read_verified_with_sha256(json_path)?.0)
    }

    /// [`Plan::read_verified`], with the SHA-256 of the bytes read (the sidecar's): the
    /// digest that approvals sign, of the very bytes the plan was parsed from.
    pub fn read_verified_with_sha256(json_path: &Path) -> Result<(Plan, String), RetentionError> {
        let expected = read_sidecar(json_path)?;
        let bytes = fs::read(json_path).map_err(|e| RetentionError::io("read", json_path, e))?;
        let actual = sha256_hex(&bytes);
        if actual != expected {
            return Err(RetentionError::SidecarMismatch {
                plan: json_path.to_path_buf(),
                expected,
                actual,
            });
        }
        // Parse the very bytes that were verified.
        let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| RetentionError::PlanParse {
            path: json_path.to_path_buf(),
            message: e.to_string(),
        })?;
        check_format_version(&plan.header, json_path)?;
        Ok((plan, actual))
    }

    /// The approvals its policy requires (see [`ApprovalPolicy::required_for`]), counted
    /// over the groups this plan deletes files of.
    pub fn approvals_required(&self) -> (u32, Vec<String>) {
        let deleting: std::collections::BTreeSet<&str> = self
            .entries
            .iter()
            .filter(|e| e.action == Action::Delete)
            .filter_map(|e| e.group_id.as_deref())
            .collect();
        approvals_required(&self.header, |id| deleting.contains(id))
    }

    /// The next time after the reference time at which more files become
    /// deletable, with how many files and bytes.
    pub fn next_deletable(&self) -> Option<(DateTime<Utc>, TotalCount)> {
        PlanStats::of(self.header.reference_time, &self.entries).next_deletable
    }

    /// See [`summary`].
    pub fn summary(&self) -> String {
        summary(
            &self.header,
            &PlanStats::of(self.header.reference_time, &self.entries),
        )
    }
}

/// The digest `PLAN.json.sha256` gives for `json_path`, refusing a sidecar that is missing,
/// malformed or names another file.
fn read_sidecar(json_path: &Path) -> Result<String, RetentionError> {
    let sidecar = sidecar_path(json_path);
    let malformed = |message: String| RetentionError::SidecarMalformed {
        plan: json_path.to_path_buf(),
        sidecar: sidecar.clone(),
        message,
    };
    let sidecar_text = match fs::read_to_string(&sidecar) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RetentionError::SidecarMissing {
                plan: json_path.to_path_buf(),
                sidecar,
            })
        }
        Err(e) => return Err(RetentionError::io("read", &sidecar, e)),
    };
    let line = sidecar_text.lines().next().unwrap_or("").trim_end();
    // A sha256sum line, or the digest alone.
    let bare = (line.len() == 64 && line.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| line.to_ascii_lowercase());
    let (named, expected) = match (crate::evidence::parse_sha256sum_line(line), bare) {
        (Some((name, digest)), _) => (Some(name), digest),
        (None, Some(digest)) => (None, digest),
        (None, None) => {
            return Err(malformed(
                "expected `<64 hex digits>  <file name>`".to_string(),
            ))
        }
    };
    if let Some(named) = named {
        let actual_name = json_path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if Path::new(&named).file_name().and_then(|n| n.to_str()) != Some(actual_name) {
            return Err(malformed(format!(
                "it is for {named:?}, not {actual_name:?}"
            )));
        }
    }
    Ok(expected)
}

fn check_format_version(header: &PlanHeader, json_path: &Path) -> Result<(), RetentionError> {
    if header.format_version != PLAN_FORMAT_VERSION {
        return Err(RetentionError::PlanParse {
            path: json_path.to_path_buf(),
            message: format!(
                "format version {} is not supported (this tool reads {PLAN_FORMAT_VERSION})",
                header.format_version
            ),
        });
    }
    Ok(())
}

/// The approvals a plan's policy requires, counted over the groups `deleting` says the
/// plan deletes files of.
fn approvals_required(header: &PlanHeader, deleting: impl Fn(&str) -> bool) -> (u32, Vec<String>) {
    let groups = header
        .groups
        .iter()
        .filter(|g| deleting(&g.group_id))
        .map(|g| {
            let shown = if g.name.is_empty() {
                &g.group_id
            } else {
                &g.name
            };
            (g.group_type, shown.as_str())
        });
    header.approvals.required_for(groups)
}

/// What `clean` reads of a plan: the header, the digest of its JSON, and the entries in
/// order. A [`Plan`] in memory is one; a [`PlanFile`] reads them from disk one at a time.
pub trait PlanEntries {
    fn header(&self) -> &PlanHeader;
    /// SHA-256 of the plan's JSON.
    fn sha256(&self) -> Result<String, RetentionError>;
    /// Calls `each` on every entry in order; its first error ends the walk.
    fn for_each_entry(
        &self,
        each: &mut dyn FnMut(&PlanEntry) -> Result<(), RetentionError>,
    ) -> Result<(), RetentionError>;
}

impl PlanEntries for Plan {
    fn header(&self) -> &PlanHeader {
        &self.header
    }

    fn sha256(&self) -> Result<String, RetentionError> {
        Plan::sha256(self)
    }

    fn for_each_entry(
        &self,
        each: &mut dyn FnMut(&PlanEntry) -> Result<(), RetentionError>,
    ) -> Result<(), RetentionError> {
        self.entries.iter().try_for_each(each)
    }
}

/// A verified plan whose entries stay on disk: a plan of 1,000,000 files is 100s of MB of
/// JSON, more again parsed. The bytes verified against the sidecar are copied into an
/// anonymous file beside the plan and parsed from there, so what is acted on is what was
/// verified, whatever happens to `PLAN.json` meanwhile.
pub struct PlanFile {
    path: PathBuf,
    header: PlanHeader,
    sha256: String,
    copy: fs::File,
    /// Groups of `delete` entries, in the order they first occur.
    deleting_groups: Vec<String>,
}

impl PlanFile {
    /// Reads a plan like [`Plan::read_verified`] (refused unless `PLAN.json.sha256`
    /// exists, names this file and matches its bytes; the whole file parsed), keeping
    /// the header and the groups the plan deletes files of.
    pub fn open_verified(json_path: &Path) -> Result<PlanFile, RetentionError> {
        let expected = read_sidecar(json_path)?;
        let mut file =
            fs::File::open(json_path).map_err(|e| RetentionError::io("read", json_path, e))?;
        let dir = parent_dir(json_path);
        // Beside the plan (the temporary directory is often RAM); a plan on read-only
        // media is copied to the temporary directory instead.
        let copy = tempfile::tempfile_in(&dir)
            .or_else(|_| tempfile::tempfile())
            .map_err(|e| RetentionError::io("create a private copy of the plan in", &dir, e))?;
        let mut tee = CopyTo {
            inner: &mut file,
            copy: std::io::BufWriter::with_capacity(1 << 20, &copy),
            failed: None,
        };
        let read = sha256_reader(&mut tee);
        if let Some(e) = tee.failed.take() {
            return Err(RetentionError::io("copy", json_path, e));
        }
        let (actual, _) = read.map_err(|e| RetentionError::io("read", json_path, e))?;
        tee.copy
            .flush()
            .map_err(|e| RetentionError::io("copy", json_path, e))?;
        drop(tee);
        if actual != expected {
            return Err(RetentionError::SidecarMismatch {
                plan: json_path.to_path_buf(),
                expected,
                actual,
            });
        }
        let mut deleting_groups: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let header = stream_plan(&copy, json_path, &mut |entry| {
            if entry.action == Action::Delete {
                if let Some(id) = &entry.group_id {
                    if seen.insert(id.clone()) {
                        deleting_groups.push(id.clone());
                    }
                }
            }
            Ok(())
        })?;
        check_format_version(&header, json_path)?;
        Ok(PlanFile {
            path: json_path.to_path_buf(),
            header,
            sha256: actual,
            copy,
            deleting_groups,
        })
    }

    /// The groups of `delete` entries, in the order they first occur in the plan.
    pub fn deleting_groups(&self) -> &[String] {
        &self.deleting_groups
    }

    /// See [`Plan::approvals_required`].
    pub fn approvals_required(&self) -> (u32, Vec<String>) {
        approvals_required(&self.header, |id| {
            self.deleting_groups.iter().any(|g| g == id)
        })
    }
}

impl PlanEntries for PlanFile {
    fn header(&self) -> &PlanHeader {
        &self.header
    }

    fn sha256(&self) -> Result<String, RetentionError> {
        Ok(self.sha256.clone())
    }

    fn for_each_entry(
        &self,
        each: &mut dyn FnMut(&PlanEntry) -> Result<(), RetentionError>,
    ) -> Result<(), RetentionError> {
        stream_plan(&self.copy, &self.path, each).map(|_| ())
    }
}

/// Passes on what it reads and writes it to `copy`; a failed write is kept in `failed`
/// (the hashing loop only knows read errors).
struct CopyTo<'a, W: Write> {
    inner: &'a mut fs::File,
    copy: W,
    failed: Option<std::io::Error>,
}

impl<W: Write> std::io::Read for CopyTo<'_, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.copy.write_all(&buf[..n]) {
            let error = std::io::Error::new(e.kind(), e.to_string());
            self.failed = Some(e);
            return Err(error);
        }
        Ok(n)
    }
}

/// Reads a file from its start with positional reads, so that a shared handle will do.
struct ReadAt<'a> {
    file: &'a fs::File,
    at: u64,
}

impl std::io::Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Parses a plan's JSON from `file` as [`Plan`] would, without keeping its entries: each
/// goes to `each` as it is parsed. Returns the header.
fn stream_plan(
    file: &fs::File,
    json_path: &Path,
    each: &mut dyn FnMut(&PlanEntry) -> Result<(), RetentionError>,
) -> Result<PlanHeader, RetentionError> {
    use serde::de::DeserializeSeed;
    let reader = std::io::BufReader::with_capacity(1 << 20, ReadAt { file, at: 0 });
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut stopped = None;
    let parsed = PlanSeed {
        each,
        stopped: &mut stopped,
    }
    .deserialize(&mut de)
    .and_then(|header| de.end().map(|()| header));
    match (parsed, stopped) {
        (_, Some(error)) => Err(error),
        (Ok(header), None) => Ok(header),
        (Err(e), None) => Err(RetentionError::PlanParse {
            path: json_path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

/// The top-level object of a plan: the header kept, the entries handed on one by one.
struct PlanSeed<'a> {
    each: &'a mut dyn FnMut(&PlanEntry) -> Result<(), RetentionError>,
    /// The error of `each` that stopped the parse.
    stopped: &'a mut Option<RetentionError>,
}

impl<'de> serde::de::DeserializeSeed<'de> for PlanSeed<'_> {
    type Value = PlanHeader;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<PlanHeader, D::Error> {
        d.deserialize_struct("Plan", &["header", "entries"], self)
    }
}

impl<'de> serde::de::Visitor<'de> for PlanSeed<'_> {
    type Value = PlanHeader;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("struct Plan")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PlanHeader, A::Error> {
        use serde::de::Error;
        let mut header = None;
        let mut entries = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "header" if header.is_some() => return Err(A::Error::duplicate_field("header")),
                "header" => header = Some(map.next_value::<PlanHeader>()?),
                "entries" if entries => return Err(A::Error::duplicate_field("entries")),
                "entries" => {
                    entries = true;
                    map.next_value_seed(EntriesSeed {
                        each: &mut *self.each,
                        stopped: &mut *self.stopped,
                    })?;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if !entries {
            return Err(A::Error::missing_field("entries"));
        }
        header.ok_or_else(|| A::Error::missing_field("header"))
    }
}

struct EntriesSeed<'a> {
    each: &'a mut dyn FnMut(&PlanEntry) -> Result<(), RetentionError>,
    stopped: &'a mut Option<RetentionError>,
}

impl<'de> serde::de::DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EntriesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence of plan entries")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<PlanEntry>()? {
            if let Err(e) = (self.each)(&entry) {
                *self.stopped = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// Files and bytes per action and category, the next date on which more
/// becomes deletable, and the group types used.
pub fn summary(h: &PlanHeader, stats: &PlanStats) -> String {
    let mut out = format!(
        "Plan for {} cache {}\nreference time {}, policy {} (sha256 {})\n\n",
        h.platform,
        h.source_root,
        format_time(&h.reference_time),
        h.policy_source,
        h.policy_sha256
    );
    let totals = stats.totals();
    out.push_str("action       files        bytes\n");
    for (name, count) in &totals.by_action {
        out.push_str(&format!(
            "{name:<10} {:>7} {:>12}\n",
            count.files,
            human_bytes(count.bytes)
        ));
    }
    out.push_str(&format!(
        "{:<10} {:>7} {:>12}\n\ncategory     files        bytes\n",
        "total",
        totals.all.files,
        human_bytes(totals.all.bytes)
    ));
    for (name, count) in &totals.by_category {
        out.push_str(&format!(
            "{name:<11} {:>6} {:>12}\n",
            count.files,
            human_bytes(count.bytes)
        ));
    }
    match stats.next_deletable {
        Some((at, count)) => out.push_str(&format!(
            "\nnext: on {} {} more file(s) ({}) become deletable\n",
            human_time(&at),
            count.files,
            human_bytes(count.bytes)
        )),
        None => out.push_str("\nnext: no kept file has a future deletable date\n"),
    }
    if !h.groups.is_empty() {
        out.push_str("\ngroups:\n");
        for g in &h.groups {
            let dissolved = match &g.dissolved_at {
                Some(t) => format!("dissolved {} ({})", human_time(t), g.dissolved_source),
                None => "active".to_string(),
            };
            out.push_str(&format!(
                "  {} {:?}: {} ({}), {dissolved}\n",
                g.group_id, g.name, g.group_type, g.group_type_source
            ));
        }
    }
    out
}

pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::retention::decide::GroupType;
    use chrono::TimeZone;

    pub(crate) fn entry_for(root: &Path, rel: &str, action: Action, hash: bool) -> PlanEntry {
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path).unwrap();
        let sha = hash.then(|| sha256_hex(&fs::read(&path).unwrap()));
        PlanEntry::new(
            rel,
            FileStamp::from_metadata(&meta),
            sha,
            Category::Image,
            Some("g1".to_string()),
            Some("m1".to_string()),
            Decision {
                action,
                rule: "observe.72h".to_string(),
                deletable_from: Some(Utc.with_ymd_and_hms(2025, 9, 4, 0, 0, 0).unwrap()),
                reason: "test".to_string(),
            },
        )
    }

    pub(crate) fn build(root: &Path, entries: Vec<PlanEntry>) -> Plan {
        let group = GroupFacts {
            group_id: "g1".to_string(),
            name: "三年二班".to_string(),
            group_type: GroupType::Education,
            group_type_source: "name keyword 班".to_string(),
            dissolved_at: Some(Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap()),
            dissolved_source: "--dissolved-at".to_string(),
        };
        let header = PlanHeader::new(
            root,
            crate::platform::wechat::WECHAT.name(),
            Utc.with_ymd_and_hms(2025, 10, 1, 0, 0, 0).unwrap(),
            &Policy::builtin(),
            "0.1.0-test",
            vec![group],
        )
        .unwrap();
        Plan::build(header, entries)
    }

    #[test]
    fn write_then_read_verified_round_trips() {
        let cache = tempfile::tempdir().unwrap();
        fs::write(cache.path().join("a.jpg"), b"aaa").unwrap();
        fs::write(cache.path().join("=b.jpg"), b"bb").unwrap();
        let mut keep = entry_for(cache.path(), "=b.jpg", Action::Keep, false);
        keep.deletable_from = Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
        let plan = build(
            cache.path(),
            vec![entry_for(cache.path(), "a.jpg", Action::Delete, true), keep],
        );
        let out = tempfile::tempdir().unwrap();
        let json_path = out.path().join("PLAN.json");
        let files = plan.write(&json_path).unwrap();
        assert_eq!(files.csv, out.path().join("PLAN.csv"));
        let sidecar = fs::read_to_string(&files.sha256_sidecar).unwrap();
        assert_eq!(sidecar, format!("{}  PLAN.json\n", files.sha256));
        assert_eq!(files.sha256, sha256_hex(&fs::read(&json_path).unwrap()));
        assert_eq!(plan.sha256().unwrap(), files.sha256);

        let read = Plan::read_verified(&json_path).unwrap();
        assert_eq!(read, plan);
        assert_eq!(read.header.totals.by_action["delete"].files, 1);
        assert_eq!(read.header.totals.by_action["review"].files, 0);
        assert_eq!(read.header.totals.by_category["image"].bytes, 5);

        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
        let entry = json["entries"][0].as_object().unwrap();
        let keys: Vec<&str> = entry.keys().map(|k| k.as_str()).collect();
        let mut expected = CSV_COLUMNS.to_vec();
        expected.sort();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort();
        assert_eq!(keys_sorted, expected);
        assert_eq!(json["entries"][0]["path"], "=b.jpg");
        assert_eq!(json["entries"][0]["deletable_from"], "2026-03-01T00:00:00Z");

        let csv = fs::read_to_string(&files.csv).unwrap();
        assert!(csv.starts_with('\u{feff}'));
        assert!(csv.contains("\r\n'=b.jpg,2,"), "{csv}");

        let summary = plan.summary();
        assert!(
            summary.contains("next: on 2026-03-01 1 more file(s)"),
            "{summary}"
        );
        assert!(summary.contains("education (name keyword 班)"), "{summary}");
    }

    #[test]
    fn the_policy_approvals_travel_in_the_plan_and_count_deleting_groups() {
        let cache = tempfile::tempdir().unwrap();
        fs::write(cache.path().join("a.jpg"), b"aaa").unwrap();
        let mut plan = build(
            cache.path(),
            vec![entry_for(cache.path(), "a.jpg", Action::Delete, false)],
        );
        assert_eq!(plan.approvals_required(), (0, Vec::new()));
        let text = String::from_utf8(plan.to_json_bytes().unwrap()).unwrap();
        assert!(
            !text.contains("\"approvals\""),
            "absent when none are required"
        );

        plan.header.approvals.group_types = [(GroupType::Education, 2)].into();
        let out = tempfile::tempdir().unwrap();
        let json_path = out.path().join("PLAN.json");
        plan.write(&json_path).unwrap();
        let (read, sha256) = Plan::read_verified_with_sha256(&json_path).unwrap();
        assert_eq!(read, plan);
        assert_eq!(sha256, sha256_hex(&fs::read(&json_path).unwrap()));
        assert_eq!(
            read.approvals_required(),
            (2, vec!["2 for education group 三年二班".to_string()])
        );
        // A group whose files are all kept asks for nothing.
        plan.entries[0].action = Action::Keep;
        assert_eq!(plan.approvals_required().0, 0);
    }

    #[test]
    fn tallies_index_actions_and_categories_in_their_all_order() {
        for (index, action) in Action::ALL.iter().enumerate() {
            assert_eq!(*action as usize, index, "{action}");
        }
        for (index, category) in Category::ALL.iter().enumerate() {
            assert_eq!(*category as usize, index, "{category}");
        }
    }

    /// Entries of every category and action, some with future deletable dates (two on
    /// the earliest), and sizes large enough to saturate the byte counts.
    fn varied_entries(root: &Path, count: usize) -> Vec<PlanEntry> {
        fs::write(root.join("seed.jpg"), b"x").unwrap();
        let base = entry_for(root, "seed.jpg", Action::Keep, false);
        let day = |d: u32| Utc.with_ymd_and_hms(2025, 11, d, 0, 0, 0).unwrap();
        (0..count)
            .map(|i| {
                let mut e = base.clone();
                e.path = format!("d{:02}/f{i:05}", i % 37);
                e.category = Category::ALL[i % Category::ALL.len()];
                e.action = Action::ALL[i % Action::ALL.len()];
                e.size = if i % 101 == 0 { u64::MAX / 3 } else { i as u64 };
                e.deletable_from = match i % 5 {
                    0 => None,
                    1 => Some(day(1 + (i % 20) as u32)),
                    2 => Some(Utc.with_ymd_and_hms(2025, 9, 1, 0, 0, 0).unwrap()),
                    _ => Some(day(28)),
                };
                e
            })
            .collect()
    }

    #[test]
    fn a_plan_written_block_by_block_is_the_plan_written_whole() {
        let cache = tempfile::tempdir().unwrap();
        let plan = build(cache.path(), varied_entries(cache.path(), 10_000));
        let out = tempfile::tempdir().unwrap();

        let whole = out.path().join("whole.json");
        let files = plan.write(&whole).unwrap();
        let bytes = fs::read(&whole).unwrap();
        assert_eq!(bytes, plan.to_json_bytes().unwrap());

        // Blocks of uneven sizes, the first one empty, appended in order.
        let streamed = out.path().join("streamed.json");
        let mut writer =
            PlanWriter::create(&streamed, plan.header.clone(), CsvStyle::default()).unwrap();
        let mut rest = &plan.entries[..];
        for size in [0, 1, 2, 999, 3000].into_iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at(size.min(rest.len()));
            let mut block = EntryBlock::new(plan.header.reference_time, CsvStyle::default());
            for entry in now {
                block.push(entry).unwrap();
            }
            writer.append(block).unwrap();
            rest = later;
        }
        let (streamed_files, header, stats) = writer.finish().unwrap();
        assert_eq!(fs::read(&streamed).unwrap(), bytes);
        assert_eq!(
            fs::read(&streamed_files.csv).unwrap(),
            fs::read(&files.csv).unwrap()
        );
        assert_eq!(streamed_files.sha256, files.sha256);
        assert_eq!(streamed_files.sha256, sha256_hex(&bytes));
        assert_eq!(header, plan.header);
        assert_eq!(
            stats,
            PlanStats::of(plan.header.reference_time, &plan.entries)
        );

        // Every category occurs, byte counts saturate: the header filled its room exactly.
        let read = Plan::read_verified(&streamed).unwrap();
        assert_eq!(read, plan);
        assert_eq!(read.header.totals.by_category.len(), Category::ALL.len());
        assert_eq!(read.header.totals.all.bytes, u64::MAX);
        assert_eq!(read.header.totals.all.files, 10_000);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("{\"header\": {\n"), "{}", &text[..40]);
        // The header's room: spaces after its closing brace, then the entries.
        let (head, entries) = text.split_once(",\n\"entries\": [\n").unwrap();
        assert!(head.trim_end_matches(' ').ends_with("\n}"), "{head}");
        assert!(entries.starts_with("{\"path\":\"d00/f00000\""));
    }

    #[test]
    fn the_next_deletable_date_is_the_earliest_future_one_of_kept_files() {
        let cache = tempfile::tempdir().unwrap();
        let plan = build(cache.path(), varied_entries(cache.path(), 600));
        let reference = plan.header.reference_time;
        let expected_at = plan
            .entries
            .iter()
            .filter(|e| e.action == Action::Keep)
            .filter_map(|e| e.deletable_from)
            .filter(|t| *t > reference)
            .min()
            .unwrap();
        let (at, count) = plan.next_deletable().unwrap();
        assert_eq!(at, expected_at);
        let due: Vec<&PlanEntry> = plan
            .entries
            .iter()
            .filter(|e| e.action == Action::Keep && e.deletable_from == Some(at))
            .collect();
        assert!(due.len() > 1);
        assert_eq!(count.files, due.len() as u64);
        assert_eq!(
            count.bytes,
            due.iter().map(|e| e.size).fold(0, u64::saturating_add)
        );

        // Merged from blocks in any order, the stats are the same.
        let mut merged = PlanStats::new(reference);
        for chunk in plan.entries.chunks(7).rev() {
            merged.merge(&PlanStats::of(reference, chunk));
        }
        assert_eq!(merged, PlanStats::of(reference, &plan.entries));
    }

    #[test]
    fn a_plan_file_streams_the_entries_it_verified() {
        let cache = tempfile::tempdir().unwrap();
        let mut entries = varied_entries(cache.path(), 3000);
        entries[7].group_id = Some("g2".to_string());
        entries[7].action = Action::Delete;
        let plan = build(cache.path(), entries);
        let out = tempfile::tempdir().unwrap();
        let json_path = out.path().join("PLAN.json");
        let files = plan.write(&json_path).unwrap();

        let opened = PlanFile::open_verified(&json_path).unwrap();
        assert_eq!(opened.header(), &plan.header);
        assert_eq!(PlanEntries::sha256(&opened).unwrap(), files.sha256);
        assert_eq!(opened.approvals_required(), plan.approvals_required());
        let mut expected_groups: Vec<String> = Vec::new();
        for e in plan.entries.iter().filter(|e| e.action == Action::Delete) {
            let id = e.group_id.clone().unwrap();
            if !expected_groups.contains(&id) {
                expected_groups.push(id);
            }
        }
        assert_eq!(opened.deleting_groups(), expected_groups);
        // Changed after verification, the file is not what is read: the private copy is.
        fs::write(&json_path, b"{}").unwrap();
        let mut streamed = Vec::new();
        opened
            .for_each_entry(&mut |e| {
                streamed.push(e.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(streamed, plan.entries);
        // An error of the callback ends the walk and is the one returned.
        let mut seen = 0;
        let err = opened
            .for_each_entry(&mut |_| {
                seen += 1;
                Err(RetentionError::Serialize {
                    what: "test",
                    message: "stop".to_string(),
                })
            })
            .unwrap_err();
        assert!(
            matches!(err, RetentionError::Serialize { what: "test", .. }),
            "{err}"
        );
        assert_eq!(seen, 1);
        // Only the plan's files are in the directory: the copy is anonymous.
        assert_eq!(fs::read_dir(out.path()).unwrap().count(), 3);

        // Refused like `read_verified`: a mismatch, or JSON that is not a whole plan.
        let err = PlanFile::open_verified(&json_path).err().unwrap();
        assert!(
            matches!(err, RetentionError::SidecarMismatch { .. }),
            "{err}"
        );
        for bad in [
            &b"{}"[..],
            b"{\"entries\": []}",
            b"{\"header\": 1, \"entries\": []}",
        ] {
            fs::write(&json_path, bad).unwrap();
            fs::write(
                &files.sha256_sidecar,
                format!("{}  PLAN.json\n", sha256_hex(bad)),
            )
            .unwrap();
            let err = PlanFile::open_verified(&json_path).err().unwrap();
            assert!(matches!(err, RetentionError::PlanParse { .. }), "{err}");
            assert!(Plan::read_verified(&json_path).is_err());
        }
        let text = String::from_utf8(plan.to_json_bytes().unwrap()).unwrap();
        let truncated = &text.as_bytes()[..text.len() - 10];
        fs::write(&json_path, truncated).unwrap();
        fs::write(
            &files.sha256_sidecar,
            format!("{}  PLAN.json\n", sha256_hex(truncated)),
        )
        .unwrap();
        let err = PlanFile::open_verified(&json_path).err().unwrap();
        assert!(matches!(err, RetentionError::PlanParse { .. }), "{err}");
    }

    #[test]
    fn tampered_or_unsigned_plans_are_refused() {
        let cache = tempfile::tempdir().unwrap();
        fs::write(cache.path().join("a.jpg"), b"aaa").unwrap();
        let plan = build(
            cache.path(),
            vec![entry_for(cache.path(), "a.jpg", Action::Keep, false)],
        );
        let out = tempfile::tempdir().unwrap();
        let json_path = out.path().join("PLAN.json");
        let files = plan.write(&json_path).unwrap();

        let text = fs::read_to_string(&json_path).unwrap();
        fs::write(&json_path, text.replace("\"keep\"", "\"delete\"")).unwrap();
        let err = Plan::read_verified(&json_path).unwrap_err();
        assert!(
            matches!(err, RetentionError::SidecarMismatch { .. }),
            "{err}"
        );

        fs::write(&json_path, &text).unwrap();
        assert!(Plan::read_verified(&json_path).is_ok());
        fs::write(
            &files.sha256_sidecar,
            format!("{}  OTHER.json\n", files.sha256),
        )
        .unwrap();
        let err = Plan::read_verified(&json_path).unwrap_err();
        assert!(
            matches!(err, RetentionError::SidecarMalformed { .. }),
            "{err}"
        );

        fs::remove_file(&files.sha256_sidecar).unwrap();
        let err = Plan::read_verified(&json_path).unwrap_err();
        assert!(
            matches!(err, RetentionError::SidecarMissing { .. }),
            "{err}"
        );
    }
}
