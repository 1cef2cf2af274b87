//! The export pipeline: a source's groups, members and messages → CSV files and media in
//! an evidence bundle, with the source hashed before and after.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use rayon::prelude::*;
use serde_json::json;

use crate::anonymize::{Anonymizer, Identity, Key};
use crate::evidence::unchanged::ReadStamp;
use crate::evidence::{BagOptions, BagSummary, BagWriter, EvidenceError};
use crate::records::{Group, Message, Warning};
use crate::retention::FileStamp;
use crate::sink::csv::CsvStyle;
use crate::sink::media::MediaCopier;
pub use crate::sink::media::MediaCounts;
use crate::sink::{
    Format, GroupHeader, GroupRow, MediaStatus, MemberRow, MessageRow, QuoteRow, ReportFacts, Sink,
};
use crate::source::{self, Source, SourceError};
use crate::timefmt;

/// The version of the bundle layout and CSV columns (`Chatvault-Format-Version`).
pub const FORMAT_VERSION: &str = "1";
/// Warnings kept word for word (in evidence.json); beyond this only their number is
/// recorded, so memory stays flat however many malformed rows a source holds.
const MAX_WARNINGS: usize = 10_000;
/// China Standard Time, the default `--tz`.
pub const DEFAULT_TZ: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("+08:00 is a valid offset"),
};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the source changed while it was being exported ({path}): close the chat app and export again")]
    SourceChanged { path: String },
    #[error("the --checklist is not of this source: {0}")]
    ChecklistMismatch(String),
    #[error("cannot continue {bundle}: {reason}")]
    ChainMismatch { bundle: String, reason: String },
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    #[error("cannot read {path}: {source}")]
    ReadSource {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ExportError {
    /// The command's exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            ExportError::Source(e) => e.exit_code(),
            ExportError::SourceChanged { .. } => crate::exit::SOURCE_BUSY,
            ExportError::Evidence(e) => e.exit_code(),
            ExportError::Write { .. } => crate::exit::OUTPUT,
            ExportError::ReadSource { .. } => crate::exit::DAMAGED,
            ExportError::Chain(e) => e.exit_code(),
            ExportError::ChecklistMismatch(_) | ExportError::ChainMismatch { .. } => {
                crate::exit::USAGE
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub source: PathBuf,
    pub out: PathBuf,
    /// Only these group ids (all groups when empty).
    pub groups: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub tz: FixedOffset,
    pub csv: CsvStyle,
    /// The output formats, each a sink fed by the one pass (default: CSV and HTML).
    pub formats: Vec<Format>,
    pub media: bool,
    pub include_private: bool,
    pub zip: bool,
    pub force: bool,
    pub fixed_time: Option<DateTime<Utc>>,
    /// The command line for the evidence, as [`recorded_command_line`] makes it: no
    /// secrets, and no paths of the examiner's machine.
    pub command_line: Vec<String>,
    pub progress: bool,
    /// Pseudonymize members and redact PII (outputs.md, "Anonymized exports").
    pub anonymize: Option<AnonymizeOptions>,
    /// The case this export is evidence in, and who made it: recorded in evidence.json,
    /// bag-info.txt and the report.
    pub case_id: Option<String>,
    pub examiner: Option<String>,
    /// A `check` of this source made before the export: copied into the payload
    /// (`data/check.json`) and shown in the report.
    pub checklist: Option<crate::check::CheckReport>,
    /// Export only what lies beyond this bundle's high-water marks, chained to it.
    pub after: Option<crate::chain::Predecessor>,
    /// With `after`: compare the messages behind the marks with the predecessor's
    /// (`data/changes.csv`). Off, an increment reads only what lies beyond the marks.
    pub changes: bool,
}

#[derive(Debug, Clone)]
pub struct AnonymizeOptions {
    pub key: Key,
    /// Copy media (under message-id names) instead of leaving them out.
    pub with_media: bool,
}

impl ExportOptions {
    pub fn new(source: PathBuf, out: PathBuf) -> ExportOptions {
        ExportOptions {
            source,
            out,
            groups: Vec::new(),
            since: None,
            until: None,
            tz: DEFAULT_TZ,
            csv: CsvStyle {
                bom: true,
                guard: true,
            },
            formats: vec![Format::Csv, Format::Html],
            media: true,
            include_private: false,
            zip: false,
            force: false,
            fixed_time: None,
            command_line: Vec::new(),
            progress: false,
            anonymize: None,
            case_id: None,
            examiner: None,
            checklist: None,
            after: None,
            changes: true,
        }
    }
}

#[derive(Debug)]
pub struct ExportSummary {
    pub bundle: BagSummary,
    pub platform: String,
    pub groups: u64,
    pub members: u64,
    pub messages: u64,
    pub media: MediaCounts,
    pub warnings: u64,
    pub first_warnings: Vec<Warning>,
    /// An increment's lines in `changes.csv`, when it compared.
    pub changes: Option<u64>,
    pub elapsed: Duration,
}

impl ExportSummary {
    pub fn messages_per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Per-group figures for `groups.csv`.
#[derive(Debug, Default, Clone)]
struct GroupStats {
    messages: u64,
    members: u64,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
}

/// A source file read during the export, with its hash when read and at the end.
#[derive(Debug, Clone)]
struct SourceRecord {
    path: PathBuf,
    size: u64,
    sha256_before: String,
    /// Its identity before the first read (see [`crate::evidence::unchanged`]).
    read_stamp: Option<ReadStamp>,
    /// Media paths can carry names (`Download/张伟的简历.pdf`): hidden in anonymized exports.
    is_media: bool,
}

/// How people appear in the output: as the source names them, or pseudonymized with
/// names and PII in free text replaced.
struct Identities {
    anonymizer: Option<Anonymizer>,
}

impl Identities {
    fn id<'a>(&self, id: &'a str) -> Cow<'a, str> {
        match &self.anonymizer {
            Some(a) => Cow::Owned(a.pseudonym(id)),
            None => Cow::Borrowed(id),
        }
    }

    /// A person's name: with anonymization, their pseudonym (or, with no id, the name's
    /// text anonymized).
    fn name<'a>(&self, id: Option<&str>, name: &'a str) -> Cow<'a, str> {
        match (&self.anonymizer, id) {
            (None, _) => Cow::Borrowed(name),
            (Some(_), _) if name.is_empty() => Cow::Borrowed(""),
            (Some(a), Some(id)) if !id.is_empty() => Cow::Owned(a.pseudonym(id)),
            (Some(a), _) => Cow::Owned(a.text(name)),
        }
    }

    /// A chat's id as written: a one-to-one chat is named by the people in it (a wxid,
    /// WeCom's `a|b`), so anonymized it becomes a pseudonym of the whole id.
    fn chat_id<'a>(&self, group: &'a Group) -> Cow<'a, str> {
        match &self.anonymizer {
            Some(a) if !group.is_group => Cow::Owned(a.pseudonym(&group.id)),
            _ => Cow::Borrowed(&group.id),
        }
    }

    fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.anonymizer {
            Some(a) => Cow::Owned(a.text(text)),
            None => Cow::Borrowed(text),
        }
    }

    fn active(&self) -> bool {
        self.anonymizer.is_some()
    }
}

/// Every member of the exported groups and everyone else the source can name.
fn build_anonymizer(
    source: &dyn Source,
    groups: &[Group],
    key: &Key,
) -> Result<Anonymizer, ExportError> {
    let mut identities = Vec::new();
    let mut add = |m: crate::records::Member| {
        let mut names = vec![m.display_name, m.group_nickname];
        names.extend(m.alias);
        names.extend(m.other_names);
        identities.push(Identity {
            member_id: m.member_id,
            names,
        });
    };
    for group in groups {
        source.members(&group.id)?.into_iter().for_each(&mut add);
    }
    source.people().into_iter().for_each(&mut add);
    // A name with no member behind it is replaced by a pseudonym of the name itself.
    for name in source.unattributed_names() {
        identities.push(Identity {
            member_id: name.clone(),
            names: vec![name],
        });
    }
    Ok(Anonymizer::new(key, source.platform().name(), identities))
}

struct Warnings {
    kept: Vec<Warning>,
    total: u64,
}

impl Warnings {
    fn push(&mut self, location: String, message: String) {
        self.total += 1;
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(Warning { location, message });
        }
    }
}

/// Exports the source at `opts.source` (its platform detected from its content).
pub fn export(opts: &ExportOptions) -> Result<ExportSummary, ExportError> {
    let started = Instant::now();
    let source = source::open(&opts.source)?;
    export_source(source.as_ref(), opts, started)
}

/// Exports an opened source; `started` is when the user's command began.
pub fn export_source(
    source: &dyn Source,
    opts: &ExportOptions,
    started: Instant,
) -> Result<ExportSummary, ExportError> {
    let started_at = opts.fixed_time.unwrap_or_else(Utc::now);
    let groups = select_groups(source, opts)?;
    if let Some(list) = &opts.checklist {
        if list.platform != source.platform().name() {
            return Err(ExportError::ChecklistMismatch(format!(
                "it checked a {} account, this is {}",
                list.platform,
                source.platform()
            )));
        }
        if list.owner_id.as_deref() != source.owner_id() {
            return Err(ExportError::ChecklistMismatch(format!(
                "it checked account {}, this is {}",
                list.owner_id.as_deref().unwrap_or("(unknown)"),
                source.owner_id().unwrap_or("(unknown)")
            )));
        }
    }

    // Databases are hashed beside the export and again once they have been read; their
    // metadata, taken before any message is read and compared at the end, proves that both
    // hashes are of the content that was read.
    let identities = Identities {
        anonymizer: match &opts.anonymize {
            Some(a) => Some(build_anonymizer(source, &groups, &a.key)?),
            None => None,
        },
    };
    if let Some(previous) = &opts.after {
        if let Err(error) = check_continues(source, previous, &identities) {
            // A tampered predecessor is reported as such, not as the mismatch it shows.
            crate::chain::verify_predecessor(previous)?;
            return Err(error);
        }
    }
    let db_files = source.source_files();
    let stamped_at = Utc::now();
    let metadata_before: Vec<Option<std::fs::Metadata>> = db_files
        .iter()
        .map(|f| std::fs::metadata(&f.path).ok())
        .collect();
    let stamps_before: Vec<(&source::SourceFile, Option<FileStamp>)> = db_files
        .iter()
        .zip(&metadata_before)
        .map(|(f, meta)| (f, meta.as_ref().map(FileStamp::from_metadata)))
        .collect();
    let hash_databases = || -> Result<Vec<(String, SourceRecord)>, ExportError> {
        hash_files(&db_files)
            .into_iter()
            .zip(db_files.iter().zip(&metadata_before))
            .map(|((rel, hashed), (f, meta))| {
                let (sha256_before, size) = hashed?;
                let record = SourceRecord {
                    path: f.path.clone(),
                    size,
                    sha256_before,
                    read_stamp: meta.as_ref().map(|m| ReadStamp::new(stamped_at, m)),
                    is_media: false,
                };
                Ok((rel, record))
            })
            .collect()
    };

    // Paths can carry people's names (/home/zhangwei/…): anonymized evidence records
    // none, and other evidence only the source directory's own name, so that the same
    // source exported from anywhere gives the same bundle.
    let root_display = if identities.active() {
        serde_json::Value::Null
    } else {
        json!(final_component(&opts.source.to_string_lossy()))
    };
    let command_line: Vec<String> = if identities.active() {
        opts.command_line
            .iter()
            .map(|arg| match arg.as_str() {
                PATH_PLACEHOLDER => arg.clone(),
                _ if arg.starts_with("--") => arg.clone(),
                _ => identities.text(arg).into_owned(),
            })
            .collect()
    } else {
        opts.command_line.clone()
    };
    let filters = json!({
        "groups": opts
            .groups
            .iter()
            .map(|id| match groups.iter().find(|g| &g.id == id) {
                Some(group) => identities.chat_id(group).into_owned(),
                None => identities.text(id).into_owned(),
            })
            .collect::<Vec<_>>(),
        "since": opts.since.map(timefmt::utc_seconds),
        "until": opts.until.map(timefmt::utc_seconds),
        "include_private": opts.include_private,
        "media": media_wanted(opts),
        "tz": opts.tz.to_string(),
        "csv_bom": opts.csv.bom,
        "csv_guard": if opts.csv.guard { "excel" } else { "none" },
    });

    let key_fingerprint = identities.anonymizer.as_ref().map(|a| a.key_fingerprint());
    let owner_id = identities.id(source.owner_id().unwrap_or("")).into_owned();
    let provenance = Provenance {
        command_line: &command_line,
        filters: &filters,
        started_at,
        owner_id: &owner_id,
        key_fingerprint: key_fingerprint.as_deref(),
    };

    let mut bag = BagWriter::create(BagOptions {
        out: opts.out.clone(),
        zip: opts.zip,
        force: opts.force,
        // Never write into, over or around what is being preserved.
        protected: vec![opts.source.clone(), source.root().to_path_buf()],
        fixed_time: opts.fixed_time,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    })?;
    // The "before" hashes run beside the export rather than ahead of it; the stamps taken
    // above, compared after the "after" hashes, prove that both are of what was read.
    let written = std::thread::scope(|scope| {
        // Both run as jobs on the two-core pool, not on threads of their own: the hash of a
        // large database is one stream, and three hashing threads on two cores would slow it
        // to two thirds of a core while verification took the rest.
        let before = scope.spawn(|| on_the_pool(hash_databases));
        // A predecessor not verified yet is verified beside the export, which is published
        // only if it passes.
        let previous_verified = opts
            .after
            .as_ref()
            .map(|p| scope.spawn(|| on_the_pool(|| crate::chain::verify_predecessor(p))));
        // Hashing does not panic on input; a panic there is a bug and is passed on as one.
        let joined = || {
            before
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        };
        let written = write_payload(
            &mut bag,
            source,
            opts,
            &groups,
            &identities,
            &provenance,
            joined,
        );
        match previous_verified.map(|v| v.join().unwrap_or_else(|p| std::panic::resume_unwind(p))) {
            Some(Err(error)) => Err(ExportError::Chain(error)),
            _ => written,
        }
    });
    let unchanged = || match stamps_before
        .iter()
        .find(|(file, before)| before.is_none() || *before != stamp(&file.path))
    {
        Some((file, _)) => Err(ExportError::SourceChanged {
            path: file.rel_path.clone(),
        }),
        None => Ok(()),
    };
    let payload = match written.and_then(|payload| unchanged().map(|()| payload)) {
        Ok(payload) => payload,
        Err(error) => {
            // A failed export leaves nothing that could pass for a finished one.
            let _ = bag.abort();
            return Err(error);
        }
    };
    let WrittenPayload {
        changes,
        high_water,
        finished_at,
        counts,
        total_messages,
        total_members,
        media_counts,
        source_entries,
        warnings,
    } = payload;

    let platform_name = source.platform().to_string();
    let guard = if opts.csv.guard { "excel" } else { "none" };
    let group_count = groups.len();
    let warnings_total = warnings.total;
    let first_warnings: Vec<Warning> = warnings.kept.iter().take(10).cloned().collect();
    // The account holder (a pseudonym when anonymized), for `check` and chained exports.
    let owner_shown = (!owner_id.is_empty()).then(|| owner_id.clone());
    let case = (opts.case_id.is_some() || opts.examiner.is_some())
        .then(|| json!({"id": opts.case_id, "examiner": opts.examiner}));
    // A bag-info value is one line.
    let one_line = |v: &str| v.replace(|c: char| c.is_control(), " ");
    let case_labels: Vec<(&str, String)> = [
        ("Chatvault-Case-Id", &opts.case_id),
        ("Chatvault-Examiner", &opts.examiner),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.as_deref().map(|v| (label, one_line(v))))
    .collect();
    let chain_index = opts.after.as_ref().map_or(0, |p| p.chain_index + 1);
    let predecessor = opts.after.as_ref().map(|p| {
        let mut marks: Vec<&crate::chain::HighWater> = p.high_water.values().collect();
        marks.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        json!({
            "bag_digest": p.bag_digest,
            "bundle": p.name,
            "chain_index": p.chain_index,
            "high_water": marks,
        })
    });
    let bundle = bag.finish(move |payload, out| {
        let evidence = Evidence {
            tool: json!({"name": "chatvault", "version": env!("CARGO_PKG_VERSION")}),
            format_version: FORMAT_VERSION,
            command_line: &command_line,
            started_utc: timefmt::utc_seconds(started_at),
            finished_utc: timefmt::utc_seconds(finished_at),
            source: json!({"platform": platform_name, "root": root_display, "owner": owner_shown}),
            sources: &source_entries,
            filters: &filters,
            case: case.clone(),
            counts: &counts,
            warnings_total,
            warnings: &warnings.kept,
            anonymized: key_fingerprint.is_some(),
            key_fingerprint: key_fingerprint.as_deref(),
            high_water: &high_water,
            chain: json!({ "index": chain_index }),
            predecessor: predecessor.clone(),
            manifest_sha256: &payload.manifest_sha256,
        };
        let mut bag_info = vec![
            ("Chatvault-Format-Version".into(), FORMAT_VERSION.into()),
            ("Chatvault-Platform".into(), platform_name.clone()),
            ("Chatvault-Csv-Guard".into(), guard.into()),
            (
                "Chatvault-Anonymized".into(),
                if key_fingerprint.is_some() {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ),
        ];
        if let Some(fingerprint) = &key_fingerprint {
            bag_info.push(("Chatvault-Key-Fingerprint".into(), fingerprint.clone()));
        }
        for (label, value) in &case_labels {
            bag_info.push((label.to_string(), value.clone()));
        }
        if let Some(previous) = &opts.after {
            bag_info.push((
                "Chatvault-Previous-Bag-Digest".into(),
                previous.bag_digest.clone(),
            ));
            bag_info.push(("Chatvault-Chain-Index".into(), chain_index.to_string()));
        }
        bag_info.push(("Chatvault-Groups".into(), group_count.to_string()));
        bag_info.push(("Chatvault-Messages".into(), total_messages.to_string()));
        serde_json::to_writer_pretty(out, &evidence)?;
        Ok(bag_info)
    })?;
    Ok(ExportSummary {
        bundle,
        platform: source.platform().to_string(),
        groups: groups.len() as u64,
        members: total_members,
        messages: total_messages,
        media: media_counts,
        warnings: warnings.total,
        first_warnings,
        changes,
        elapsed: started.elapsed(),
    })
}

/// An increment continues a bundle of the same platform and account, anonymized alike.
fn check_continues(
    source: &dyn Source,
    previous: &crate::chain::Predecessor,
    identities: &Identities,
) -> Result<(), ExportError> {
    let refuse = |reason: String| ExportError::ChainMismatch {
        bundle: previous.path.display().to_string(),
        reason,
    };
    if previous.platform != source.platform().name() {
        return Err(refuse(format!(
            "it is a {} bundle, this source is {}",
            previous.platform,
            source.platform()
        )));
    }
    let fingerprint = identities.anonymizer.as_ref().map(|a| a.key_fingerprint());
    if fingerprint != previous.key_fingerprint {
        return Err(refuse(match (&previous.key_fingerprint, &fingerprint) {
            (Some(_), None) => "it is anonymized: anonymize the increment with the same key".into(),
            (None, Some(_)) => "it is not anonymized: an increment must be made alike".into(),
            _ => "it was anonymized with another key (its fingerprint differs)".into(),
        }));
    }
    let owner = source.owner_id().map(|o| identities.id(o).into_owned());
    if previous.owner.is_some() && owner != previous.owner {
        return Err(refuse(format!(
            "it is of account {}, this source is of {}",
            previous.owner.as_deref().unwrap_or_default(),
            owner.as_deref().unwrap_or("(unknown)")
        )));
    }
    Ok(())
}

/// An increment's list of what changed behind its predecessor's marks, in `data/`.
const CHANGES: &str = "changes.csv";

fn changes_error(reason: String) -> ExportError {
    ExportError::ReadSource {
        path: "the predecessor's messages.csv".into(),
        source: std::io::Error::other(reason),
    }
}

/// Writes out (and forgets) the changes found so far.
fn write_changes(
    log: &mut crate::chain::changes::ChangeLog,
    table: Option<&mut crate::sink::csv::CsvTable<crate::evidence::PayloadText>>,
) -> Result<(), ExportError> {
    let Some(table) = table else {
        return Ok(());
    };
    for c in log.found.drain(..) {
        table
            .row(&[
                &c.group_id,
                &c.message_id,
                c.change,
                c.field,
                &c.old_sha256,
                &c.new_sha256,
            ])
            .map_err(|source| ExportError::Write {
                path: CHANGES.into(),
                source,
            })?;
    }
    Ok(())
}

/// Where a `--checklist` goes in `data/`.
const CHECKLIST: &str = "check.json";

/// How a path argument appears in an anonymized bundle's command line.
const PATH_PLACEHOLDER: &str = "[path]";

/// The last component of a path as typed (`/home/zhangwei/cases/wx/` → `wx`).
fn final_component(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, last)) if !last.is_empty() => last.to_string(),
        _ if trimmed.is_empty() => path.to_string(),
        _ => trimmed.to_string(),
    }
}

/// The command line as recorded in evidence.json: the program as `chatvault`, and each
/// value in `path_values` (the source, `--out`, `--key-file` …, as typed) by its final
/// component, or as `[path]` when `anonymized`. The examiner's directories are personal
/// data and would make bundles of one source differ by where they were made.
pub fn recorded_command_line(
    argv: impl IntoIterator<Item = String>,
    path_values: &[String],
    anonymized: bool,
) -> Vec<String> {
    let shown = |value: &str| {
        if anonymized {
            PATH_PLACEHOLDER.to_string()
        } else {
            final_component(value)
        }
    };
    let mut args = argv.into_iter();
    let mut recorded = Vec::new();
    if args.next().is_some() {
        recorded.push("chatvault".to_string());
    }
    for arg in args {
        if path_values.contains(&arg) {
            recorded.push(shown(&arg));
            continue;
        }
        match arg.split_once('=') {
            Some((flag, value))
                if flag.starts_with("--") && path_values.iter().any(|p| p == value) =>
            {
                recorded.push(format!("{flag}={}", shown(value)));
            }
            _ => recorded.push(arg),
        }
    }
    recorded
}

/// What writing the payload produced, for the tag files and the summary.
struct WrittenPayload {
    /// Lines of `changes.csv`, for an increment that compared.
    changes: Option<u64>,
    /// Per conversation, how far this bundle (with its predecessors) holds it.
    high_water: Vec<crate::chain::HighWater>,
    /// When the payload was complete: the report's and evidence.json's finishing time.
    finished_at: DateTime<Utc>,
    counts: serde_json::Value,
    total_messages: u64,
    total_members: u64,
    media_counts: MediaCounts,
    source_entries: SourceList,
    warnings: Warnings,
}

/// What the export records about itself, known before the payload is written.
struct Provenance<'a> {
    command_line: &'a [String],
    filters: &'a serde_json::Value,
    started_at: DateTime<Utc>,
    owner_id: &'a str,
    key_fingerprint: Option<&'a str>,
}

/// One entry of evidence.json's `sources`: a source file read, hashed before and after.
#[derive(Debug, serde::Serialize)]
pub struct SourceEntry {
    /// Relative to the source root; `None` for media of an anonymized export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A media file named by its hash alone (anonymized exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_sha256: Option<String>,
    pub size: u64,
    pub sha256_before: String,
    pub sha256_after: String,
    #[serde(skip)]
    pub is_media: bool,
}

/// evidence.json, serialized straight from the records (a `Value` tree of every warning
/// and source file would cost memory in proportion to them).
#[derive(serde::Serialize)]
struct Evidence<'a> {
    tool: serde_json::Value,
    format_version: &'a str,
    command_line: &'a [String],
    started_utc: String,
    finished_utc: String,
    source: serde_json::Value,
    sources: &'a SourceList,
    filters: &'a serde_json::Value,
    /// `--case-id` and `--examiner`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    case: Option<serde_json::Value>,
    counts: &'a serde_json::Value,
    warnings_total: u64,
    warnings: &'a [Warning],
    anonymized: bool,
    key_fingerprint: Option<&'a str>,
    /// Per conversation, how far this bundle holds it: what an increment continues from.
    high_water: &'a [crate::chain::HighWater],
    /// This bundle's place in a chain of increments (0: a whole export).
    chain: serde_json::Value,
    /// The bundle this one continues (`export --after`).
    #[serde(skip_serializing_if = "Option::is_none")]
    predecessor: Option<serde_json::Value>,
    manifest_sha256: &'a str,
}

/// Writes the CSV files and media into the bag, then checks that every source file read
/// still hashes as it did.
fn write_payload(
    bag: &mut BagWriter,
    source: &dyn Source,
    opts: &ExportOptions,
    groups: &[Group],
    identities: &Identities,
    provenance: &Provenance,
    databases_before: impl FnOnce() -> Result<Vec<(String, SourceRecord)>, ExportError>,
) -> Result<WrittenPayload, ExportError> {
    let mut warnings = Warnings {
        kept: source
            .warnings()
            .into_iter()
            .map(|w| Warning {
                location: identities.text(&w.location).into_owned(),
                message: identities.text(&w.message).into_owned(),
            })
            .collect(),
        total: 0,
    };
    warnings.total = warnings.kept.len() as u64;

    let mut checklist_kept: Option<crate::check::CheckReport> = None;
    let mut sinks: Vec<Box<dyn Sink>> = Vec::with_capacity(opts.formats.len());
    for format in &opts.formats {
        sinks.push(format.sink(bag, opts.csv)?);
    }
    let mut copier = MediaCopier::new(media_wanted(opts), !identities.active(), bag.spill_dir());
    let mut change_log = None;
    let mut changes_csv = None;
    if let Some(previous) = opts.after.as_ref().filter(|_| opts.changes) {
        let mut links = crate::chain::earlier_links(&previous.path)?;
        links.push((
            previous.path.clone(),
            previous.filters["csv_guard"] == "excel",
        ));
        let held = crate::chain::changes::HeldRows::open_chain(&links).map_err(|reason| {
            ExportError::ChainMismatch {
                bundle: previous.path.display().to_string(),
                reason,
            }
        })?;
        let both_copy_media = previous.filters["media"] == true && media_wanted(opts);
        change_log = Some(crate::chain::changes::ChangeLog::new(held, both_copy_media));
        changes_csv = Some(
            crate::sink::csv::CsvTable::new(
                bag.text_file(CHANGES)?,
                opts.csv,
                &crate::chain::changes::HEADER,
            )
            .map_err(|source| ExportError::Write {
                path: CHANGES.into(),
                source,
            })?,
        );
    }
    let mut checklist_rows = None;
    if let Some(list) = &opts.checklist {
        // Names and ids in the checklist are the source's: an anonymized export keeps
        // only its statuses.
        let kept = if identities.active() {
            crate::check::CheckReport {
                owner_id: None,
                groups: list
                    .groups
                    .iter()
                    .map(|g| crate::check::GroupCheck {
                        // Group chats keep their ids, as in the CSV; anything else is a
                        // person's id.
                        group_id: if groups.iter().any(|x| x.id == g.group_id && x.is_group) {
                            g.group_id.clone()
                        } else {
                            identities.id(&g.group_id).into_owned()
                        },
                        group_name: identities.text(&g.group_name).into_owned(),
                        findings: g
                            .findings
                            .iter()
                            .map(|f| crate::check::Finding {
                                summary: identities.text(&f.summary).into_owned(),
                                evidence: Vec::new(),
                                todo: identities.text(&f.todo).into_owned(),
                                ..f.clone()
                            })
                            .collect(),
                        ..g.clone()
                    })
                    .collect(),
                ..list.clone()
            }
        } else {
            list.clone()
        };
        let mut file = bag.text_file(CHECKLIST)?;
        let bytes = serde_json::to_vec_pretty(&kept).map_err(|e| ExportError::Write {
            path: CHECKLIST.into(),
            source: std::io::Error::other(e),
        })?;
        std::io::Write::write_all(&mut file, &bytes).map_err(|source| ExportError::Write {
            path: CHECKLIST.into(),
            source,
        })?;
        bag.finish_text(file)?;
        checklist_rows = Some(kept.groups.len() as u64);
        checklist_kept = Some(kept);
    }

    let progress = crate::progress::counter(opts.progress, "messages");
    let platform = source.platform().name();
    let mut stats: Vec<GroupStats> = Vec::with_capacity(groups.len());
    let mut marks: Vec<crate::chain::HighWater> = Vec::with_capacity(groups.len());
    let since_ms = opts.since.map(|t| t.timestamp_millis());
    let until_ms = opts.until.map(|t| t.timestamp_millis());

    let group_ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    if let Some(previous) = opts.after.as_ref().filter(|_| !opts.changes) {
        let floors: HashMap<String, i64> = groups
            .iter()
            .filter_map(|g| {
                let mark = previous.high_water.get(identities.chat_id(g).as_ref())?;
                Some((g.id.clone(), mark.last_time_ms?))
            })
            .collect();
        source.set_message_floors(&floors);
    }
    source.prepare_messages(&group_ids);
    // The databases' "after" hashes, when the source has read everything up front.
    let mut early_after: Option<std::thread::JoinHandle<Vec<(String, HashResult)>>> = None;
    for group in groups {
        let mut group_stats = GroupStats::default();
        let chat_id = identities.chat_id(group);
        let members = source.members(&group.id)?;
        group_stats.members = members.len() as u64;
        let group_name = identities.text(&group.name);
        let header = GroupHeader {
            platform,
            group_id: &chat_id,
            group_name: &group_name,
            is_group: group.is_group,
        };
        begin_group(
            bag,
            &mut sinks,
            &header,
            &members,
            identities,
            opts.after.as_ref(),
        )?;
        let previous_mark = opts
            .after
            .as_ref()
            .and_then(|p| p.high_water.get(chat_id.as_ref()));
        let mut mark = crate::chain::HighWater::new(&chat_id);
        let mut log = change_log.as_mut().filter(|_| previous_mark.is_some());
        if let Some(log) = log.as_mut() {
            log.begin_group(&chat_id).map_err(changes_error)?;
        }
        let mut names: HashMap<String, String> = members
            .iter()
            .map(|m| (m.member_id.clone(), m.shown_name().to_string()))
            .collect();
        copier.start_group(&chat_id);
        let (mut time_utc, mut time_local) = (String::new(), String::new());

        let stream = source.messages(&group.id)?;
        if early_after.is_none() && source.databases_read() {
            // Settled files are proven unchanged by their identity at the end.
            let files: Vec<source::SourceFile> = source
                .source_files()
                .into_iter()
                .filter(|f| !crate::evidence::unchanged::settled_now(&f.path))
                .collect();
            // Without a thread, the hashes are simply taken at the end.
            early_after = std::thread::Builder::new()
                .name("hash-after".into())
                .spawn(move || hash_files(&files))
                .ok();
        }
        for message in stream {
            let message = message?;
            // A message with no time is kept (the source warned): it cannot be placed
            // outside the range.
            if message
                .time_ms
                .is_some_and(|t| since_ms.is_some_and(|s| t < s) || until_ms.is_some_and(|u| t > u))
            {
                continue;
            }
            if previous_mark.is_some_and(|m| !m.beyond(message.time_ms, &message.message_id)) {
                if let Some(log) = log.as_mut() {
                    let utc = message.time_ms.map(timefmt::utc_millis).unwrap_or_default();
                    // The file an export would show: the first one there, the primary
                    // before its thumbnails (a thumbnail stands in for an image never
                    // downloaded), as the copier picks it.
                    let media_now = message.media.iter().find_map(|m| match &m.location {
                        crate::records::MediaLocation::Path(p) => {
                            match crate::pathsafe::resolve(source.root(), p) {
                                crate::pathsafe::Resolved::Inside { path, .. }
                                    if path.is_file() =>
                                {
                                    Some(path)
                                }
                                _ => None,
                            }
                        }
                        _ => None,
                    });
                    log.message(crate::chain::changes::Held {
                        group_id: chat_id.to_string(),
                        message_id: message.message_id.clone(),
                        time_utc: utc,
                        kind: message.kind.as_str().to_string(),
                        text: identities.text(&message.text).into_owned(),
                        media_sha256: String::new(),
                        media_now,
                    })
                    .map_err(changes_error)?;
                    write_changes(log, changes_csv.as_mut())?;
                }
                continue;
            }
            mark.hold(message.time_ms, &message.message_id);
            let location = || format!("{chat_id} message {}", message.message_id);
            if let Some(w) = &message.warning {
                warnings.push(location(), w.clone());
            }
            let sender_name = sender_name(source, &message, &mut names);
            match message.time_ms {
                Some(t) => {
                    timefmt::write_utc_millis(t, &mut time_utc);
                    timefmt::write_local_millis(t, opts.tz, &mut time_local);
                }
                None => {
                    time_utc.clear();
                    time_local.clear();
                }
            }
            let media = copier.copy(bag, source.root(), &message, &mut |w| {
                warnings.push(location(), w)
            })?;
            let shown = media.iter().find(|m| m.status == MediaStatus::Copied);
            let quote = message.quote.as_deref().map(|q| {
                let sender_id = q.sender_id.as_deref();
                QuoteRow {
                    message_id: q.message_id.clone().unwrap_or_default(),
                    sender_id: identities.id(sender_id.unwrap_or("")).into_owned(),
                    sender_name: identities
                        .name(sender_id, q.sender_name.as_deref().unwrap_or(""))
                        .into_owned(),
                    text: identities.text(&q.text).into_owned(),
                }
            });
            let sender_id = message.sender_id.as_deref();
            let row = MessageRow {
                platform,
                group_id: &chat_id,
                group_name: &group_name,
                message_id: &message.message_id,
                time_ms: message.time_ms,
                time_utc: &time_utc,
                time_local: &time_local,
                sender_id: &identities.id(sender_id.unwrap_or("")),
                sender_name: &identities.name(sender_id, sender_name),
                direction: message.direction,
                kind: message.kind,
                text: &identities.text(&message.text),
                media_path: shown.map_or("", |m| m.bundle_path.as_str()),
                media_sha256: shown.map_or("", |m| m.sha256.as_str()),
                raw_type: &message.raw_type,
                quote: quote.as_ref(),
            };
            for sink in &mut sinks {
                sink.message(bag, &row, &media)?;
            }
            group_stats.messages += 1;
            if let Some(t) = message.time_ms {
                group_stats.first_ms = Some(group_stats.first_ms.map_or(t, |f| f.min(t)));
                group_stats.last_ms = Some(group_stats.last_ms.map_or(t, |l| l.max(t)));
            }
            progress.inc(1);
        }
        if let Some(log) = log.as_mut() {
            log.end_group().map_err(changes_error)?;
            write_changes(log, changes_csv.as_mut())?;
        }
        stats.push(group_stats);
        marks.push(match previous_mark {
            Some(previous) => mark.carried(previous),
            None => mark,
        });
    }
    progress.finish_and_clear();

    let group_cells = group_cells(groups, identities);
    let group_rows = group_rows(platform, groups, &stats, &group_cells);
    let mut counts = serde_json::Map::new();
    let mut changes_total = None;
    if let Some(table) = changes_csv {
        counts.insert(CHANGES.to_string(), table.rows().into());
        changes_total = Some(table.rows());
        let file = table.into_inner().map_err(|source| ExportError::Write {
            path: CHANGES.into(),
            source,
        })?;
        bag.finish_text(file)?;
    }
    if let Some(rows) = checklist_rows {
        counts.insert(CHECKLIST.to_string(), rows.into());
    }
    let mut reports = Vec::new();
    for mut sink in sinks {
        sink.groups(bag, &group_rows)?;
        let finished = sink.finish(bag)?;
        for (file, rows) in finished.counts {
            counts.insert(file, rows.into());
        }
        reports.extend(finished.report);
    }
    let total_messages = stats.iter().map(|s| s.messages).sum();
    let total_members = stats.iter().map(|s| s.members).sum();
    let (media_counts, copied_media) = copier.into_copied();
    crate::failpoint::hit("export.csv.finished");

    // Every source file read: media as the copier read them, the databases once hashed.
    let mut databases = databases_before()?;
    databases.sort_by(|a, b| a.0.cmp(&b.0));
    let source_entries = recheck_sources(
        copied_media,
        databases,
        early_after,
        identities,
        bag.spill_dir(),
    )?;

    // Reports come last: they show every other payload file's hash and the sources'.
    let finished_at = opts.fixed_time.unwrap_or_else(Utc::now);
    let facts = ReportFacts {
        tool_version: env!("CARGO_PKG_VERSION"),
        command_line: provenance.command_line,
        case_id: opts.case_id.as_deref(),
        examiner: opts.examiner.as_deref(),
        started: provenance.started_at,
        finished: finished_at,
        tz: opts.tz,
        platform,
        owner_id: provenance.owner_id,
        key_fingerprint: provenance.key_fingerprint,
        filters: provenance.filters,
        sources: &source_entries,
        media: &media_counts,
        warnings_total: warnings.total,
        warnings: &warnings.kept,
        checklist: checklist_kept.as_ref(),
    };
    for report in reports {
        for (file, rows) in report.write(bag, &facts)? {
            counts.insert(file, rows.into());
        }
    }
    let counts = serde_json::Value::Object(counts);
    // Conversations the predecessor held and this export did not touch keep their marks.
    if let Some(previous) = &opts.after {
        let mut untouched: Vec<&crate::chain::HighWater> = previous
            .high_water
            .values()
            .filter(|h| !marks.iter().any(|m| m.group_id == h.group_id))
            .collect();
        untouched.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        marks.extend(untouched.into_iter().map(|h| crate::chain::HighWater {
            first_time_ms: None,
            ids_at_first_time: Vec::new(),
            messages: 0,
            ..h.clone()
        }));
    }

    Ok(WrittenPayload {
        changes: changes_total,
        high_water: marks,
        finished_at,
        counts,
        total_messages,
        total_members,
        media_counts,
        source_entries,
        warnings,
    })
}

/// Every source file read, hashed before and after: evidence.json's `sources` and the
/// report's, in path order, kept on disk (one entry per media file copied).
pub struct SourceList {
    log: crate::spill::SealedLog,
    media_files: u64,
}

impl SourceList {
    /// How many of the entries are media files.
    pub fn media_files(&self) -> u64 {
        self.media_files
    }

    pub fn len(&self) -> u64 {
        self.log.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// The entries in path order, read back from disk.
    pub fn iter(&self) -> impl Iterator<Item = std::io::Result<SourceEntry>> + '_ {
        self.log
            .iter()
            .map(|record| SourceEntry::from_record(&record?))
    }
}

impl serde::Serialize for SourceList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = serializer.serialize_seq(usize::try_from(self.len()).ok())?;
        for entry in self.iter() {
            seq.serialize_element(&entry.map_err(S::Error::custom)?)?;
        }
        seq.end()
    }
}

impl SourceEntry {
    fn record(&self) -> crate::spill::RecordBuf {
        let mut record = crate::spill::RecordBuf::new();
        record
            .u64(u64::from(self.is_media))
            .str(self.path.as_deref().unwrap_or(""))
            .u64(u64::from(self.path.is_some()))
            .str(self.media_sha256.as_deref().unwrap_or(""))
            .u64(u64::from(self.media_sha256.is_some()))
            .u64(self.size)
            .str(&self.sha256_before)
            .str(&self.sha256_after);
        record
    }

    fn from_record(record: &[u8]) -> std::io::Result<SourceEntry> {
        let mut fields = crate::spill::Fields::new(record);
        let is_media = fields.u64()? != 0;
        let path = fields.str()?.to_string();
        let path = (fields.u64()? != 0).then_some(path);
        let media_sha256 = fields.str()?.to_string();
        let media_sha256 = (fields.u64()? != 0).then_some(media_sha256);
        Ok(SourceEntry {
            path,
            media_sha256,
            size: fields.u64()?,
            sha256_before: fields.str()?.to_string(),
            sha256_after: fields.str()?.to_string(),
            is_media,
        })
    }
}

/// Source files re-checked together: enough to keep both cores busy, few enough that
/// memory does not grow with the number of media files.
const RECHECK_BATCH: usize = 2048;

/// Hashes every source file read once more (those a thread hashed early are joined): each
/// must still hash as it did when read, or the app was writing. `media` are the copier's
/// records in path order; `databases` are in path order too and win over a media record
/// of the same path. Returns evidence.json's `sources`, in path order.
fn recheck_sources(
    media: crate::spill::SortedRuns,
    databases: Vec<(String, SourceRecord)>,
    early_after: Option<std::thread::JoinHandle<Vec<(String, HashResult)>>>,
    identities: &Identities,
    spill_dir: &std::path::Path,
) -> Result<SourceList, ExportError> {
    let spill_error = |source| ExportError::Write {
        path: format!("a temporary file in {}", spill_dir.display()),
        source,
    };
    let early: HashMap<String, HashResult> = match early_after {
        Some(handle) => handle
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
            .into_iter()
            .collect(),
        None => HashMap::new(),
    };
    let mut media = FirstCopies {
        sorted: media.into_sorted().map_err(spill_error)?,
        last: None,
    };
    let mut databases = databases.into_iter().peekable();
    let mut log = crate::spill::SpillLog::new(spill_dir);
    let mut batch: Vec<(String, SourceRecord)> = Vec::with_capacity(RECHECK_BATCH);
    let mut next_media = media.next().map_err(spill_error)?;
    let mut media_files = 0;
    loop {
        let next = match (&next_media, databases.peek()) {
            (None, None) => break,
            // A database read as a medium too is listed once, as the database.
            (Some((rel, _)), Some((database, _))) if database <= rel => {
                if database == rel {
                    next_media = media.next().map_err(spill_error)?;
                }
                databases.next()
            }
            (Some(_), _) => {
                let taken = next_media.take();
                next_media = media.next().map_err(spill_error)?;
                taken.map(|(rel, file)| {
                    (
                        rel,
                        SourceRecord {
                            path: file.path,
                            size: file.size,
                            sha256_before: file.sha256,
                            read_stamp: file.read_stamp,
                            is_media: true,
                        },
                    )
                })
            }
            (None, Some(_)) => databases.next(),
        };
        batch.extend(next);
        if batch.len() >= RECHECK_BATCH {
            for entry in recheck_batch(&mut batch, &early, identities)? {
                media_files += u64::from(entry.is_media);
                log.push(entry.record().as_slice()).map_err(spill_error)?;
            }
        }
    }
    for entry in recheck_batch(&mut batch, &early, identities)? {
        media_files += u64::from(entry.is_media);
        log.push(entry.record().as_slice()).map_err(spill_error)?;
    }
    Ok(SourceList {
        media_files,
        log: log.seal().map_err(spill_error)?,
    })
}

/// The copier's records in path order, each file once (its first copy).
struct FirstCopies {
    sorted: crate::spill::Sorted,
    last: Option<String>,
}

impl FirstCopies {
    fn next(&mut self) -> std::io::Result<Option<(String, crate::sink::media::CopiedFile)>> {
        for record in self.sorted.by_ref() {
            let record = record?;
            let (rel, file) = crate::sink::media::CopiedFile::from_record(&record)?;
            if self.last.as_deref() != Some(rel) {
                self.last = Some(rel.to_string());
                return Ok(Some((rel.to_string(), file)));
            }
        }
        Ok(None)
    }
}

/// The "after" hashes of a batch of sources (in parallel), checked against the "before"
/// ones; empties the batch.
fn recheck_batch(
    batch: &mut Vec<(String, SourceRecord)>,
    early: &HashMap<String, HashResult>,
    identities: &Identities,
) -> Result<Vec<SourceEntry>, ExportError> {
    // A file whose identity proves it unchanged since its first read is not read again:
    // its "after" hash is the one taken while it was read.
    let results: Vec<HashResult> = batch
        .par_iter()
        .map(|(rel, record)| match early.get(rel) {
            Some(Ok(hashed)) => Ok(hashed.clone()),
            Some(Err(_)) => Err(ExportError::SourceChanged { path: rel.clone() }),
            None => {
                let proven = record
                    .read_stamp
                    .as_ref()
                    .is_some_and(|s| s.proves_unchanged(stamp(&record.path).as_ref()));
                if proven {
                    Ok((record.sha256_before.clone(), record.size))
                } else {
                    hash_file(&record.path)
                }
            }
        })
        .collect();
    let mut entries = Vec::with_capacity(batch.len());
    for ((rel, record), result) in batch.drain(..).zip(results) {
        let (sha_after, _) =
            result.map_err(|_| ExportError::SourceChanged { path: rel.clone() })?;
        if sha_after != record.sha256_before {
            return Err(ExportError::SourceChanged { path: rel });
        }
        // Anonymized: a media file is named by its hash, never by its path.
        let hidden = identities.active() && record.is_media;
        entries.push(SourceEntry {
            media_sha256: hidden.then(|| record.sha256_before.clone()),
            path: (!hidden).then_some(rel),
            size: record.size,
            sha256_before: record.sha256_before,
            sha256_after: sha_after,
            is_media: record.is_media,
        });
    }
    Ok(entries)
}

/// Each group's id, name and owner as written.
fn group_cells<'a>(
    groups: &'a [Group],
    identities: &Identities,
) -> Vec<(Cow<'a, str>, Cow<'a, str>, Cow<'a, str>)> {
    groups
        .iter()
        .map(|g| {
            (
                identities.chat_id(g),
                identities.text(&g.name),
                identities.id(g.owner_id.as_deref().unwrap_or("")),
            )
        })
        .collect()
}

/// `groups.csv`'s rows: each group with the figures of its pass.
fn group_rows<'a>(
    platform: &'a str,
    groups: &[Group],
    stats: &[GroupStats],
    cells: &'a [(Cow<'a, str>, Cow<'a, str>, Cow<'a, str>)],
) -> Vec<GroupRow<'a>> {
    groups
        .iter()
        .zip(stats)
        .zip(cells)
        .map(|((group, s), (id, name, owner))| GroupRow {
            platform,
            group_id: id,
            group_name: name,
            owner_id: owner,
            member_count: if s.members > 0 {
                s.members
            } else {
                group.declared_member_count.unwrap_or(0)
            },
            message_count: s.messages,
            first_message_utc: s.first_ms.map(timefmt::utc_millis).unwrap_or_default(),
            last_message_utc: s.last_ms.map(timefmt::utc_millis).unwrap_or_default(),
        })
        .collect()
}

/// A conversation and its members, as the outputs show them, to every sink.
fn begin_group(
    bag: &mut BagWriter,
    sinks: &mut [Box<dyn Sink>],
    header: &GroupHeader,
    members: &[crate::records::Member],
    identities: &Identities,
    previous: Option<&crate::chain::Predecessor>,
) -> Result<(), ExportError> {
    let cells: Vec<_> = members
        .iter()
        .map(|m| {
            (
                identities.id(&m.member_id),
                identities.name(Some(&m.member_id), &m.display_name),
                identities.name(Some(&m.member_id), &m.group_nickname),
                m.joined_ms.map(timefmt::utc_millis).unwrap_or_default(),
            )
        })
        .collect();
    let rows: Vec<MemberRow> = members
        .iter()
        .zip(&cells)
        .map(|(m, (id, display_name, nickname, joined))| MemberRow {
            platform: header.platform,
            group_id: header.group_id,
            member_id: id,
            display_name,
            group_nickname: nickname,
            role: m.role.as_str(),
            joined_at_utc: joined,
            left: m.left,
        })
        // An increment lists only members who joined, left or changed since.
        .filter(|row| {
            previous.is_none_or(|p| {
                let key = (row.group_id.to_string(), row.member_id.to_string());
                p.members.get(&key).is_none_or(|was| {
                    was.display_name != row.display_name
                        || was.group_nickname != row.group_nickname
                        || was.role != row.role
                        || was.left != row.left
                })
            })
        })
        .collect();
    for sink in sinks {
        sink.begin_group(bag, header, &rows)?;
    }
    Ok(())
}

/// Groups to export, sorted by id: group chats (and one-to-one chats with
/// `--include-private`), restricted to `--group` ids when given.
fn select_groups(source: &dyn Source, opts: &ExportOptions) -> Result<Vec<Group>, ExportError> {
    let all = source.groups()?;
    for wanted in &opts.groups {
        if !all.iter().any(|g| &g.id == wanted) {
            return Err(SourceError::NoSuchGroup(wanted.clone()).into());
        }
    }
    Ok(all
        .into_iter()
        .filter(|g| g.is_group || opts.include_private || opts.groups.contains(&g.id))
        .filter(|g| opts.groups.is_empty() || opts.groups.contains(&g.id))
        .collect())
}

/// Group nickname if set, else contact display name, else the id; the name a source stores
/// with the message itself comes first.
fn sender_name<'a>(
    source: &dyn Source,
    message: &'a Message,
    names: &'a mut HashMap<String, String>,
) -> &'a str {
    if let Some(name) = message.sender_name.as_deref().filter(|n| !n.is_empty()) {
        return name;
    }
    let Some(id) = message.sender_id.as_deref() else {
        return "";
    };
    if !names.contains_key(id) {
        let name = source.display_name(id).unwrap_or_else(|| id.to_string());
        names.insert(id.to_string(), name);
    }
    names.get(id).map_or("", String::as_str)
}

/// Media are copied unless `--no-media`; anonymized exports copy them only with `--with-media`.
fn media_wanted(opts: &ExportOptions) -> bool {
    opts.media && opts.anonymize.as_ref().is_none_or(|a| a.with_media)
}

type HashResult = Result<(String, u64), ExportError>;

/// Runs `work` as a job of the global rayon pool (whose threads are the cores), blocking
/// the calling thread until it is done.
fn on_the_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::join(work, || ()).0
}

/// Each file's relative path and hash, in the order given, hashed in parallel.
fn hash_files(files: &[source::SourceFile]) -> Vec<(String, HashResult)> {
    files
        .par_iter()
        .map(|f| (f.rel_path.clone(), hash_file(&f.path)))
        .collect()
}

/// The identity of a file (size, times, device, inode), as `clean` re-checks it; `None`
/// when it cannot be read.
fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    std::fs::metadata(path)
        .ok()
        .map(|meta| FileStamp::from_metadata(&meta))
}

/// SHA-256 and size of a source file.
fn hash_file(path: &std::path::Path) -> Result<(String, u64), ExportError> {
    let read_error = |source| ExportError::ReadSource {
        path: path.display().to_string(),
        source,
    };
    crate::digest::sha256_file(path).map_err(read_error)
}
