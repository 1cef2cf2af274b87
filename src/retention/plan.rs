//! The cleanup plan: `PLAN.json` (the contract), `PLAN.csv` (the same entries
//! for people) and `PLAN.json.sha256` (a `sha256sum -c` sidecar that `clean`
//! insists on).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::decide::{Action, Category, Decision, GroupFacts};
use super::policy::Policy;
use super::{format_time, human_time, serde_opt_time, serde_time, sha256_hex, RetentionError};

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
fn unix_time(seconds: i64, nanos: i64) -> DateTime<Utc> {
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
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanTotals {
    pub all: TotalCount,
    /// Every action, zero counts included.
    pub by_action: BTreeMap<String, TotalCount>,
    /// Categories that occur.
    pub by_category: BTreeMap<String, TotalCount>,
}

impl PlanTotals {
    pub fn of(entries: &[PlanEntry]) -> PlanTotals {
        let mut totals = PlanTotals::default();
        for action in Action::ALL {
            totals
                .by_action
                .insert(action.as_str().to_string(), TotalCount::default());
        }
        for entry in entries {
            totals.all.add(entry.size);
            totals
                .by_action
                .entry(entry.action.as_str().to_string())
                .or_default()
                .add(entry.size);
            totals
                .by_category
                .entry(entry.category.as_str().to_string())
                .or_default()
                .add(entry.size);
        }
        totals
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
    pub totals: PlanTotals,
}

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

/// How `PLAN.csv` is written (see outputs.md, "CSV files").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvStyle {
    /// UTF-8 BOM so Excel on a Chinese Windows reads UTF-8.
    pub bom: bool,
    /// Prefix `'` to cells starting with `= + - @ TAB CR LF '`.
    pub formula_guard: bool,
}

impl Default for CsvStyle {
    fn default() -> Self {
        CsvStyle {
            bom: true,
            formula_guard: true,
        }
    }
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

fn guard_cell(cell: &str, style: CsvStyle) -> Cow<'_, str> {
    let risky = |c: char| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '\'');
    if style.formula_guard && cell.starts_with(risky) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// synced before the rename, so readers see the old file or the whole new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RetentionError> {
    write_atomically_with(path, |file| {
        file.write_all(bytes)
            .map_err(|e| RetentionError::io("write", path, e))
    })
}

/// Writes `path` through a temporary file beside it, synced and renamed into place.
pub(crate) fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut fs::File) -> Result<(), RetentionError>,
) -> Result<(), RetentionError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(&dir)
        .map_err(|e| RetentionError::io("create a temporary file in", &dir, e))?;
    write(temp.as_file_mut())?;
    temp.as_file()
        .sync_all()
        .map_err(|e| RetentionError::io("write", temp.path(), e))?;
    temp.persist(path)
        .map_err(|e| RetentionError::io("rename into place", path, e.error))?;
    // Make the rename itself durable.
    if let Ok(dir_handle) = fs::File::open(&dir) {
        let _ = dir_handle.sync_all();
    }
    Ok(())
}

/// Hashes what passes through, so a plan is hashed as it is written.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex_digest(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Plan {
    /// Assembles a plan: canonicalizes the root and records its device and
    /// inode, records the policy, sorts entries by path and totals them.
    pub fn build(
        root: &Path,
        platform: &str,
        reference_time: DateTime<Utc>,
        policy: &Policy,
        tool_version: &str,
        groups: Vec<GroupFacts>,
        mut entries: Vec<PlanEntry>,
    ) -> Result<Plan, RetentionError> {
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
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let totals = PlanTotals::of(&entries);
        Ok(Plan {
            header: PlanHeader {
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
                totals,
            },
            entries,
        })
    }

    /// Recomputes `header.totals` after entries were changed by hand.
    pub fn recompute_totals(&mut self) {
        self.header.totals = PlanTotals::of(&self.entries);
    }

    /// The exact bytes [`Plan::write`] puts in `PLAN.json`.
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, RetentionError> {
        let mut bytes = Vec::with_capacity(4096 + 320 * self.entries.len());
        self.write_json(&mut bytes)?;
        Ok(bytes)
    }

    /// The header pretty-printed, then one entry per line: as easy to read and diff as a
    /// pretty-printed file, at a third of the size for caches of 100,000s of files.
    fn write_json<W: Write>(&self, mut out: W) -> Result<(), RetentionError> {
        let failed = |e: serde_json::Error| RetentionError::Serialize {
            what: "plan as JSON",
            message: e.to_string(),
        };
        let io = |e: std::io::Error| failed(serde_json::Error::io(e));
        out.write_all(b"{\"header\": ").map_err(io)?;
        serde_json::to_writer_pretty(&mut out, &self.header).map_err(failed)?;
        out.write_all(b",\n\"entries\": [").map_err(io)?;
        for (index, entry) in self.entries.iter().enumerate() {
            out.write_all(if index == 0 { b"\n" } else { b",\n" })
                .map_err(io)?;
            serde_json::to_writer(&mut out, entry).map_err(failed)?;
        }
        out.write_all(b"\n]}\n").map_err(io)?;
        Ok(())
    }

    /// SHA-256 of [`Plan::to_json_bytes`]; equal to the file's for a plan this tool wrote.
    pub fn sha256(&self) -> Result<String, RetentionError> {
        Ok(sha256_hex(&self.to_json_bytes()?))
    }

    /// The entries as CSV (RFC 4180, CRLF).
    pub fn to_csv_bytes(&self, style: CsvStyle) -> Result<Vec<u8>, RetentionError> {
        self.write_csv(Vec::new(), style)
    }

    fn write_csv<W: Write>(&self, mut out: W, style: CsvStyle) -> Result<W, RetentionError> {
        let csv_error = |e: csv::Error| RetentionError::Serialize {
            what: "plan as CSV",
            message: e.to_string(),
        };
        if style.bom {
            out.write_all("\u{feff}".as_bytes())
                .map_err(|e| csv_error(e.into()))?;
        }
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        writer.write_record(CSV_COLUMNS).map_err(csv_error)?;
        // Cells borrow from the entry where they can: 14 fresh strings per row were most
        // of the time of writing a plan of 100,000s of files.
        let (mut size, mut dev, mut ino) = (String::new(), String::new(), String::new());
        for e in &self.entries {
            let number = |text: &mut String, n: u64| {
                use std::fmt::Write as _;
                text.clear();
                let _ = write!(text, "{n}");
            };
            number(&mut size, e.size);
            number(&mut dev, e.dev);
            number(&mut ino, e.ino);
            let mtime = format_time(&e.mtime);
            let ctime = format_time(&e.ctime);
            let deletable_from = e.deletable_from.map(|t| format_time(&t));
            let row: [&str; 14] = [
                &e.path,
                &size,
                &mtime,
                &ctime,
                &dev,
                &ino,
                e.sha256.as_deref().unwrap_or_default(),
                e.category.as_str(),
                e.group_id.as_deref().unwrap_or_default(),
                e.message_id.as_deref().unwrap_or_default(),
                &e.rule,
                e.action.as_str(),
                deletable_from.as_deref().unwrap_or_default(),
                &e.reason,
            ];
            for cell in row {
                writer
                    .write_field(guard_cell(cell, style).as_bytes())
                    .map_err(csv_error)?;
            }
            writer.write_record(None::<&[u8]>).map_err(csv_error)?;
        }
        writer.into_inner().map_err(|e| RetentionError::Serialize {
            what: "plan as CSV",
            message: e.to_string(),
        })
    }

    /// Writes `PLAN.json`, `PLAN.csv` and `PLAN.json.sha256`, each atomically;
    /// the sidecar last, so a crash never leaves a verifiable half-written plan.
    pub fn write(&self, json_path: &Path) -> Result<PlanFiles, RetentionError> {
        self.write_with(json_path, CsvStyle::default())
    }

    pub fn write_with(
        &self,
        json_path: &Path,
        style: CsvStyle,
    ) -> Result<PlanFiles, RetentionError> {
        let file_name = json_path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| RetentionError::InvalidArgument {
                what: "plan path",
                value: json_path.display().to_string(),
                hint: "give a file name such as PLAN.json".to_string(),
            })?;
        let csv = csv_path(json_path);
        let sidecar = sidecar_path(json_path);
        // Streamed to disk and hashed on the way: a plan of 300,000 files is 100s of MB.
        // The JSON and the CSV are written side by side, one per core.
        let write_json = || -> Result<String, RetentionError> {
            let mut sha256 = String::new();
            write_atomically_with(json_path, |file| {
                // Buffered before hashing, so SHA-256 sees megabytes, not JSON tokens.
                let mut out = std::io::BufWriter::with_capacity(
                    1 << 20,
                    HashingWriter {
                        inner: file,
                        hasher: Sha256::new(),
                    },
                );
                self.write_json(&mut out)?;
                let hashing = out
                    .into_inner()
                    .map_err(|e| RetentionError::io("write", json_path, e.into_error()))?;
                sha256 = hex_digest(hashing.hasher.finalize().as_slice());
                Ok(())
            })?;
            Ok(sha256)
        };
        let write_csv = || {
            write_atomically_with(&csv, |file| {
                let mut out =
                    self.write_csv(std::io::BufWriter::with_capacity(1 << 20, file), style)?;
                out.flush()
                    .map_err(|e| RetentionError::io("write", &csv, e))
            })
        };
        let (json_written, csv_written) = rayon::join(write_json, write_csv);
        let sha256 = json_written?;
        csv_written?;
        write_atomically(&sidecar, format!("{sha256}  {file_name}\n").as_bytes())?;
        Ok(PlanFiles {
            json: json_path.to_path_buf(),
            csv,
            sha256_sidecar: sidecar,
            sha256,
        })
    }

    /// Reads a plan, refusing it unless `PLAN.json.sha256` exists, names this
    /// file and matches its bytes.
    pub fn read_verified(json_path: &Path) -> Result<Plan, RetentionError> {
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
        let mut fields = sidecar_text.lines().next().unwrap_or("").split_whitespace();
        let expected = fields.next().unwrap_or("").to_ascii_lowercase();
        if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed(
                "expected `<64 hex digits>  <file name>`".to_string(),
            ));
        }
        if let Some(named) = fields.next() {
            let named = named.trim_start_matches('*');
            let actual_name = json_path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if Path::new(named).file_name().and_then(|n| n.to_str()) != Some(actual_name) {
                return Err(malformed(format!(
                    "it is for {named:?}, not {actual_name:?}"
                )));
            }
        }
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
        if plan.header.format_version != PLAN_FORMAT_VERSION {
            return Err(RetentionError::PlanParse {
                path: json_path.to_path_buf(),
                message: format!(
                    "format version {} is not supported (this tool reads {PLAN_FORMAT_VERSION})",
                    plan.header.format_version
                ),
            });
        }
        Ok(plan)
    }

    /// The next time after the reference time at which more files become
    /// deletable, with how many files and bytes.
    pub fn next_deletable(&self) -> Option<(DateTime<Utc>, TotalCount)> {
        let next = self
            .entries
            .iter()
            .filter(|e| e.action == Action::Keep)
            .filter_map(|e| e.deletable_from)
            .filter(|t| *t > self.header.reference_time)
            .min()?;
        let mut count = TotalCount::default();
        for e in &self.entries {
            if e.action == Action::Keep && e.deletable_from == Some(next) {
                count.add(e.size);
            }
        }
        Some((next, count))
    }

    /// Files and bytes per action and category, the next date on which more
    /// becomes deletable, and the group types used.
    pub fn summary(&self) -> String {
        let h = &self.header;
        let mut out = format!(
            "Plan for {} cache {}\nreference time {}, policy {} (sha256 {})\n\n",
            h.platform,
            h.source_root,
            format_time(&h.reference_time),
            h.policy_source,
            h.policy_sha256
        );
        let totals = PlanTotals::of(&self.entries);
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
        match self.next_deletable() {
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
        Plan::build(
            root,
            "wechat",
            Utc.with_ymd_and_hms(2025, 10, 1, 0, 0, 0).unwrap(),
            &Policy::builtin(),
            "0.1.0-test",
            vec![group],
            entries,
        )
        .unwrap()
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
