//! `chatvault plan`: walk a source's cache, tie each file to the message that references
//! it, and decide per the retention policy. The decision itself lives in `retention`.

use std::collections::HashSet;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use rayon::prelude::*;

use crate::evidence;
use crate::platform::PlatformRef;
use crate::records::{CacheClass, MediaKind, MediaLocation};
use crate::retention::{
    self, decide, resolve_group_type, Action, Category, CsvStyle, Decision, EntryBlock, FileFacts,
    FileStamp, GroupFacts, GroupType, PlanEntry, PlanFiles, PlanHeader, PlanStats, PlanWriter,
    Policy, RetentionError,
};
use crate::source::{self, Source, SourceError};
use crate::spill::{self, Sorted, SortedRuns};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error("--require-bundle {path}: {detail}")]
    Bundle { path: PathBuf, detail: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no group `{0}` in this source (given with {1}); run `chatvault inspect` to list the groups")]
    UnknownGroup(String, &'static str),
    /// The files and references sorted on disk beside the plan.
    #[error("cannot write or read the temporary sort files in {dir} (beside the plan; is the disk full?): {source}")]
    Spill {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PlanError {
    /// The command's exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            PlanError::Source(e) => e.exit_code(),
            PlanError::Retention(e) => e.exit_code(),
            PlanError::UnknownGroup(..) => crate::exit::NOT_FOUND,
            PlanError::Bundle { .. } => crate::exit::TAMPERED,
            PlanError::Io { .. } => crate::exit::DAMAGED,
            PlanError::Spill { .. } => crate::exit::OUTPUT,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub source: PathBuf,
    pub now: DateTime<Utc>,
    pub dissolved_at: Vec<(String, DateTime<Utc>)>,
    pub group_types: Vec<(String, GroupType)>,
    pub require_bundle: Option<PathBuf>,
    pub hash: bool,
    pub policy: Policy,
    pub progress: bool,
}

/// The message that references a file (the latest one, when several do).
#[derive(Debug, Clone)]
struct Reference {
    group: usize,
    message_id: String,
    time_ms: i64,
}

/// Files per window of entries rendered while the window before is appended to the plan
/// files: enough to keep both cores busy, little enough that memory does not grow with
/// the cache.
const WINDOW_FILES: usize = 16 * 1024;

/// A plan written to disk, with what its summary needs.
#[derive(Debug, Clone)]
pub struct WrittenPlan {
    pub files: PlanFiles,
    /// As written, with the totals.
    pub header: PlanHeader,
    pub stats: PlanStats,
}

impl WrittenPlan {
    /// Files and bytes per action and category, the next date on which more becomes
    /// deletable, and the group types used.
    pub fn summary(&self) -> String {
        retention::plan::summary(&self.header, &self.stats)
    }
}

/// Plans the cleanup of a source's cache and writes the plan to `out` (with `PLAN.csv`
/// and the `.sha256` sidecar beside it). Entries are written as they are decided, in
/// path order, so memory does not grow with the plan.
pub fn make_plan(opts: &PlanOptions, out: &Path) -> Result<WrittenPlan, PlanError> {
    make_plan_with_runs(opts, out, spill::RUN_BYTES)
}

/// [`make_plan`] with sort runs of about `run_bytes` (tests use tiny ones, so that the
/// files and references go through the merge on disk).
fn make_plan_with_runs(
    opts: &PlanOptions,
    out: &Path,
    run_bytes: usize,
) -> Result<WrittenPlan, PlanError> {
    let source = source::open(&opts.source)?;
    let groups = source.groups()?;
    for (id, _) in &opts.dissolved_at {
        if !groups.iter().any(|g| &g.id == id) {
            return Err(PlanError::UnknownGroup(id.clone(), "--dissolved-at"));
        }
    }
    for (id, _) in &opts.group_types {
        if !groups.iter().any(|g| &g.id == id) {
            return Err(PlanError::UnknownGroup(id.clone(), "--group-type"));
        }
    }

    let needs_hash = opts.hash || opts.require_bundle.is_some();
    // The files and the references are sorted on disk, beside the plan (the temporary
    // directory is often RAM), so memory does not grow with the cache; the plan is then
    // a merge-join of the two sorted streams.
    let spill_dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let spill_error = |source| PlanError::Spill {
        dir: spill_dir.clone(),
        source,
    };
    // The cache is walked beside the pass over the messages (one thread reads those).
    let (files, references) = rayon::join(
        || {
            let runs = SortedRuns::with_budget(&spill_dir, run_bytes);
            list_files(source.root(), !needs_hash, runs, &spill_dir)
        },
        || {
            let runs = SortedRuns::with_budget(&spill_dir, run_bytes);
            read_references(source.as_ref(), &groups, opts, runs, &spill_dir)
        },
    );
    let (references, facts) = references?;
    let files = files?;

    let bundle_hashes = match &opts.require_bundle {
        Some(path) => Some(bundle_payload_hashes(path)?),
        None => None,
    };
    let database_files: HashSet<String> = source
        .source_files()
        .into_iter()
        .map(|f| f.rel_path)
        .collect();

    let platform = source.platform();
    let header = PlanHeader::new(
        source.root(),
        platform.name(),
        opts.now,
        &opts.policy,
        env!("CARGO_PKG_VERSION"),
        facts.clone(),
    )?;
    let style = CsvStyle::default();
    let mut writer = PlanWriter::create(out, header, style)?;
    let bar = crate::progress::bar(opts.progress, files.len(), "files");
    let mut files = files.into_sorted().map_err(spill_error)?;
    let mut references = ReferenceCursor::new(references.into_sorted().map_err(spill_error)?);
    // A block per piece of the window that a thread takes (rayon splits a range further
    // only when another thread is idle), so a few large files in a window still spread
    // over both cores; `collect` keeps the blocks in path order.
    let render = |window: &[(FoundFile, Option<Reference>)]| -> Result<Vec<EntryBlock>, PlanError> {
        window
            .par_iter()
            .try_fold(
                || EntryBlock::new(opts.now, style),
                |mut block, (file, reference)| {
                    let entry = plan_entry(
                        source.as_ref(),
                        file,
                        platform,
                        reference.as_ref(),
                        &facts,
                        &database_files,
                        bundle_hashes.as_ref(),
                        opts,
                    )?;
                    block.push(&entry)?;
                    bar.inc(1);
                    Ok(block)
                },
            )
            .collect()
    };
    // While a window renders, the one before is appended and the next one read.
    let mut window = next_window(&mut files, &mut references).map_err(spill_error)?;
    let mut rendered = Vec::new();
    while !window.is_empty() {
        let to_append = std::mem::take(&mut rendered);
        let (next, (appended, following)) = rayon::join(
            || render(&window),
            || {
                (
                    append_blocks(&mut writer, to_append),
                    next_window(&mut files, &mut references),
                )
            },
        );
        appended?;
        rendered = next?;
        window = following.map_err(spill_error)?;
    }
    append_blocks(&mut writer, rendered)?;
    bar.finish_and_clear();
    let (files, header, stats) = writer.finish()?;
    Ok(WrittenPlan {
        files,
        header,
        stats,
    })
}

/// The next files in path order, up to [`WINDOW_FILES`], each with the message that
/// references it.
fn next_window(
    files: &mut Sorted,
    references: &mut ReferenceCursor,
) -> io::Result<Vec<(FoundFile, Option<Reference>)>> {
    let mut window = Vec::with_capacity(WINDOW_FILES);
    for record in files.by_ref().take(WINDOW_FILES) {
        let file = FoundFile::decode(&record?)?;
        let reference = references.for_path(&file.rel)?;
        window.push((file, reference));
    }
    Ok(window)
}

/// Reads the fields of a spill record in the order they were written.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    /// The key before the first `\0`: a relative path.
    fn key(&mut self) -> io::Result<&'a str> {
        let end = self
            .0
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad_record("no end of path"))?;
        let key = std::str::from_utf8(&self.0[..end]).map_err(|_| bad_record("path not UTF-8"))?;
        self.0 = &self.0[end + 1..];
        Ok(key)
    }

    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| bad_record("too short"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn u64(&mut self) -> io::Result<u64> {
        self.take().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> io::Result<i64> {
        self.take().map(i64::from_be_bytes)
    }

    fn time(&mut self) -> io::Result<DateTime<Utc>> {
        let seconds = self.i64()?;
        let nanos = self.take().map(u32::from_be_bytes)?;
        DateTime::from_timestamp(seconds, nanos).ok_or_else(|| bad_record("time out of range"))
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// A spill record that does not decode: the sort files were damaged under us.
fn bad_record(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a sorted record is damaged ({what})"),
    )
}

fn push_time(out: &mut Vec<u8>, time: DateTime<Utc>) {
    out.extend_from_slice(&time.timestamp().to_be_bytes());
    out.extend_from_slice(&time.timestamp_subsec_nanos().to_be_bytes());
}

/// A reference as a spill record: the path, `\0`, a rank, then the reference itself.
/// The first record of a path is the one that wins: the latest message with a time (the
/// last read of equal times), else the first read without one, as when a map of path to
/// reference is updated message by message. Hence the rank is inverted: times descending.
fn encode_reference(
    out: &mut Vec<u8>,
    rel: &str,
    sequence: u64,
    time_ms: Option<i64>,
    group: usize,
    message_id: &str,
) {
    out.clear();
    out.extend_from_slice(rel.as_bytes());
    out.push(0);
    // Sign bit flipped: signed times in byte order.
    let ordered = |t: i64| (t as u64) ^ (1 << 63);
    let (time, timed, sequence) = match time_ms {
        Some(t) => (ordered(t), 1u8, sequence),
        None => (ordered(i64::MIN), 0, !sequence),
    };
    out.extend_from_slice(&(!time).to_be_bytes());
    out.push(!timed);
    out.extend_from_slice(&(!sequence).to_be_bytes());
    out.extend_from_slice(&(group as u64).to_be_bytes());
    // No time: no instant, so no deadline from the message.
    out.extend_from_slice(&time_ms.unwrap_or(i64::MIN).to_be_bytes());
    out.extend_from_slice(message_id.as_bytes());
}

fn decode_reference(record: &[u8]) -> io::Result<(&str, Reference)> {
    let mut fields = Fields(record);
    let rel = fields.key()?;
    fields.take::<17>()?;
    let group = usize::try_from(fields.u64()?).map_err(|_| bad_record("group"))?;
    let time_ms = fields.i64()?;
    let message_id = std::str::from_utf8(fields.rest())
        .map_err(|_| bad_record("message id not UTF-8"))?
        .to_string();
    Ok((
        rel,
        Reference {
            group,
            message_id,
            time_ms,
        },
    ))
}

/// The winning reference of each path, looked up in path order.
struct ReferenceCursor {
    sorted: Sorted,
    /// The last path read and its reference.
    current: Option<(String, Reference)>,
}

impl ReferenceCursor {
    fn new(sorted: Sorted) -> ReferenceCursor {
        ReferenceCursor {
            sorted,
            current: None,
        }
    }

    /// The reference of `rel`; paths asked for must not decrease.
    fn for_path(&mut self, rel: &str) -> io::Result<Option<Reference>> {
        loop {
            if let Some((current, reference)) = &self.current {
                if current.as_str() >= rel {
                    return Ok((current == rel).then(|| reference.clone()));
                }
            }
            if !self.advance()? {
                return Ok(None);
            }
        }
    }

    /// Moves to the next path, past the losing references of the current one.
    fn advance(&mut self) -> io::Result<bool> {
        for record in self.sorted.by_ref() {
            let record = record?;
            let (rel, reference) = decode_reference(&record)?;
            if self.current.as_ref().is_some_and(|(c, _)| c == rel) {
                continue;
            }
            self.current = Some((rel.to_string(), reference));
            return Ok(true);
        }
        self.current = None;
        Ok(false)
    }
}

fn append_blocks(writer: &mut PlanWriter, blocks: Vec<EntryBlock>) -> Result<(), PlanError> {
    for block in blocks {
        writer.append(block)?;
    }
    Ok(())
}

/// One pass over every conversation's messages: which message references each file, and
/// each group's facts (type, dissolution).
fn read_references(
    source: &dyn Source,
    groups: &[crate::records::Group],
    opts: &PlanOptions,
    mut references: SortedRuns,
    spill_dir: &Path,
) -> Result<(SortedRuns, Vec<GroupFacts>), PlanError> {
    let progress = crate::progress::counter(opts.progress, "messages read");
    let mut record = Vec::new();
    let mut sequence = 0u64;
    let mut facts = Vec::with_capacity(groups.len());
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    source.prepare_messages(&ids);
    for (index, group) in groups.iter().enumerate() {
        let mut announced: Option<i64> = None;
        for message in source.messages(&group.id)? {
            let message = message?;
            progress.inc(1);
            if message.announces_dissolution() {
                announced = message.time_ms.or(announced);
            }
            for media in &message.media {
                let MediaLocation::Path(named) = &media.location else {
                    continue;
                };
                let Some(rel) = relative_key(source.root(), named) else {
                    continue;
                };
                // No file is named so; and the `\0` ends the key of a record.
                if rel.contains('\0') {
                    continue;
                }
                encode_reference(
                    &mut record,
                    &rel,
                    sequence,
                    message.time_ms,
                    index,
                    &message.message_id,
                );
                sequence += 1;
                references
                    .push(&record)
                    .map_err(|source| PlanError::Spill {
                        dir: spill_dir.to_path_buf(),
                        source,
                    })?;
            }
        }
        let given_type = opts
            .group_types
            .iter()
            .rev()
            .find(|(id, _)| id == &group.id)
            .map(|(_, t)| *t);
        let (group_type, group_type_source) =
            resolve_group_type(given_type, &group.name, &opts.policy);
        let given_dissolution = opts
            .dissolved_at
            .iter()
            .rev()
            .find(|(id, _)| id == &group.id)
            .map(|(_, t)| *t);
        let (dissolved_at, dissolved_source) = match (given_dissolution, announced) {
            (Some(t), _) => (Some(t), "--dissolved-at".to_string()),
            (None, Some(ms)) => (
                Utc.timestamp_millis_opt(ms).single(),
                "system message announcing the dissolution".to_string(),
            ),
            (None, None) => (None, "active".to_string()),
        };
        facts.push(GroupFacts {
            group_id: group.id.clone(),
            name: group.name.clone(),
            group_type,
            group_type_source,
            dissolved_at,
            dissolved_source,
        });
    }
    progress.finish_and_clear();
    Ok((references, facts))
}

/// A file found under the root, with its metadata (not following links), unless it is a
/// regular file whose metadata is left to be taken when it is opened for hashing.
struct FoundFile {
    rel: String,
    /// The path itself when `rel`, its UTF-8 form, is not (the name is not UTF-8).
    non_utf8_path: Option<PathBuf>,
    meta: Option<FoundMeta>,
}

impl FoundFile {
    fn path(&self, root: &Path) -> PathBuf {
        match &self.non_utf8_path {
            Some(path) => path.clone(),
            None => root.join(&self.rel),
        }
    }

    const HAS_META: u8 = 1;
    const IS_FILE: u8 = 2;
    const IS_SYMLINK: u8 = 4;
    const NON_UTF8: u8 = 8;

    /// As a spill record: `rel`, `\0`, flags, the metadata when taken, then the path
    /// itself when the name is not UTF-8. Records sort as their `rel`s do, since no path
    /// holds a `\0`.
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.rel.as_bytes());
        out.push(0);
        let mut flags = 0;
        if let Some(meta) = &self.meta {
            flags |= FoundFile::HAS_META;
            if meta.is_file {
                flags |= FoundFile::IS_FILE;
            }
            if meta.is_symlink {
                flags |= FoundFile::IS_SYMLINK;
            }
        }
        if self.non_utf8_path.is_some() {
            flags |= FoundFile::NON_UTF8;
        }
        out.push(flags);
        if let Some(meta) = &self.meta {
            let stamp = meta.stamp;
            out.extend_from_slice(&stamp.size.to_be_bytes());
            push_time(out, stamp.mtime);
            push_time(out, stamp.ctime);
            out.extend_from_slice(&stamp.dev.to_be_bytes());
            out.extend_from_slice(&stamp.ino.to_be_bytes());
        }
        if let Some(path) = &self.non_utf8_path {
            out.extend_from_slice(path.as_os_str().as_bytes());
        }
    }

    fn decode(record: &[u8]) -> io::Result<FoundFile> {
        let mut fields = Fields(record);
        let rel = fields.key()?.to_string();
        let [flags] = fields.take()?;
        let meta = if flags & FoundFile::HAS_META != 0 {
            Some(FoundMeta {
                stamp: FileStamp {
                    size: fields.u64()?,
                    mtime: fields.time()?,
                    ctime: fields.time()?,
                    dev: fields.u64()?,
                    ino: fields.u64()?,
                },
                is_file: flags & FoundFile::IS_FILE != 0,
                is_symlink: flags & FoundFile::IS_SYMLINK != 0,
            })
        } else {
            None
        };
        let non_utf8_path = (flags & FoundFile::NON_UTF8 != 0)
            .then(|| PathBuf::from(std::ffi::OsStr::from_bytes(fields.rest())));
        Ok(FoundFile {
            rel,
            non_utf8_path,
            meta,
        })
    }
}

/// The part of a file's metadata a plan uses: a tenth of the size of `Metadata`, which
/// matters for 100,000s of files.
#[derive(Debug, Clone, Copy)]
struct FoundMeta {
    stamp: FileStamp,
    is_file: bool,
    is_symlink: bool,
}

impl FoundMeta {
    fn of(meta: &std::fs::Metadata) -> FoundMeta {
        FoundMeta {
            stamp: FileStamp::from_metadata(meta),
            is_file: meta.is_file(),
            is_symlink: meta.file_type().is_symlink(),
        }
    }
}

/// Everything under `root` that is not a directory, pushed into `runs` to be read back
/// sorted by relative path. Regular
/// files are stat-ed only with `stat_files` (without, the directory entry's type says
/// what they are, and `plan_entry` takes their metadata from the open file).
///
/// One rayon task per directory, and entries stat-ed relative to their directory
/// (`DirEntry::metadata` is `fstatat`): about twice as fast on 2 cores as a serial walk
/// that resolves every absolute path again.
fn list_files(
    root: &Path,
    stat_files: bool,
    runs: SortedRuns,
    spill_dir: &Path,
) -> Result<SortedRuns, PlanError> {
    // Elsewhere there is no opening without following links: stat first.
    let walk = Walk {
        stat_files: stat_files || cfg!(not(unix)),
        found: Mutex::new(runs),
        spill_dir,
        first_error: Mutex::new(None),
    };
    rayon::scope(|scope| walk_dir(scope, root.to_path_buf(), String::new(), true, &walk));
    if let Some(error) = lock(walk.first_error) {
        return Err(error);
    }
    Ok(lock(walk.found))
}

/// What every directory's task of a walk shares.
struct Walk<'a> {
    stat_files: bool,
    found: Mutex<SortedRuns>,
    spill_dir: &'a Path,
    first_error: Mutex<Option<PlanError>>,
}

/// A poisoned lock only means another task panicked; its data is still what we collected.
fn lock<T>(mutex: Mutex<T>) -> T {
    mutex
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn walk_dir<'s>(
    scope: &rayon::Scope<'s>,
    dir: PathBuf,
    rel: String,
    utf8: bool,
    walk: &'s Walk<'s>,
) {
    let record_error = |error: PlanError| {
        let mut slot = walk.first_error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(error);
    };
    let fail = |path: &Path, source: std::io::Error| {
        record_error(PlanError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => return fail(&dir, e),
    };
    // This directory's records, one after another, pushed under one lock at the end.
    let mut local = Vec::new();
    let mut ends = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => return fail(&dir, e),
        };
        let name = entry.file_name();
        let name_utf8 = name.to_str().is_some();
        let name = name.to_string_lossy();
        let child_rel = if rel.is_empty() {
            name.into_owned()
        } else {
            format!("{rel}/{name}")
        };
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            Err(e) => return fail(&entry.path(), e),
        };
        if file_type.is_dir() {
            let path = entry.path();
            scope.spawn(move |scope| walk_dir(scope, path, child_rel, utf8 && name_utf8, walk));
        } else {
            let meta = if file_type.is_file() && !walk.stat_files {
                None
            } else {
                match entry.metadata() {
                    Ok(meta) => Some(FoundMeta::of(&meta)),
                    Err(e) => return fail(&entry.path(), e),
                }
            };
            FoundFile {
                non_utf8_path: (!(utf8 && name_utf8)).then(|| entry.path()),
                rel: child_rel,
                meta,
            }
            .encode(&mut local);
            ends.push(local.len());
        }
    }
    let mut runs = walk.found.lock().unwrap_or_else(|p| p.into_inner());
    let mut start = 0;
    for end in ends {
        if let Err(source) = runs.push(&local[start..end]) {
            drop(runs);
            return record_error(PlanError::Spill {
                dir: walk.spill_dir.to_path_buf(),
                source,
            });
        }
        start = end;
    }
}

/// The relative, `/`-separated key of a path a message names, or `None` when it escapes.
fn relative_key(root: &Path, named: &str) -> Option<String> {
    let path = Path::new(named);
    let relative = if path.is_absolute() {
        path.strip_prefix(root).ok()?
    } else {
        path
    };
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn category_of(class: CacheClass) -> Category {
    match class {
        CacheClass::Media(kind) => match kind {
            MediaKind::Image => Category::Image,
            MediaKind::ImageThumb => Category::ImageThumb,
            MediaKind::Voice => Category::Voice,
            MediaKind::Video => Category::Video,
            MediaKind::VideoThumb => Category::VideoThumb,
            MediaKind::File => Category::File,
            MediaKind::Emoji => Category::Emoji,
        },
        CacheClass::Avatar => Category::Avatar,
        CacheClass::RecycleBin => Category::RecycleBin,
        CacheClass::Database | CacheClass::Other => Category::Other,
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_entry(
    source: &dyn Source,
    file: &FoundFile,
    platform: PlatformRef,
    reference: Option<&Reference>,
    facts: &[GroupFacts],
    database_files: &HashSet<String>,
    bundle_hashes: Option<&BundleHashes>,
    opts: &PlanOptions,
) -> Result<PlanEntry, PlanError> {
    let path = file.path(source.root());
    let (meta, opened) = match file.meta {
        Some(meta) => (meta, None),
        None => open_unfollowed(&path)?,
    };
    let stamp = meta.stamp;
    let class = platform.cache_class(&file.rel);
    let category = category_of(class);
    let utf8 = file.non_utf8_path.is_none();
    // Anything that is not a plain file with a UTF-8 name is left to a person.
    if meta.is_symlink || !meta.is_file || !utf8 {
        let why = if meta.is_symlink {
            "symbolic link: never deleted automatically"
        } else if !utf8 {
            "file name is not valid UTF-8: review by hand"
        } else {
            "not a regular file: review by hand"
        };
        let decision = Decision {
            action: Action::Review,
            rule: "orphan".into(),
            deletable_from: None,
            reason: why.into(),
        };
        return Ok(PlanEntry::new(
            &file.rel, stamp, None, category, None, None, decision,
        ));
    }
    let needs_hash = opts.hash || bundle_hashes.is_some();
    let sha256 = match (needs_hash, opened) {
        (true, Some(mut opened)) => Some(hash_open_file(&mut opened, stamp.size, &path)?),
        (true, None) => Some(hash_file(&path)?),
        (false, _) => None,
    };
    let group_facts = reference.and_then(|r| facts.get(r.group));
    let message_time = reference.and_then(|r| Utc.timestamp_millis_opt(r.time_ms).single());
    let is_database = class == CacheClass::Database || database_files.contains(&file.rel);
    let facts_for_decision = FileFacts {
        retention: platform.retention(),
        rel_path: &file.rel,
        category,
        under_recycle_bin: class == CacheClass::RecycleBin,
        mtime: stamp.mtime,
        reference: group_facts.zip(message_time),
        is_database,
        in_required_bundle: bundle_hashes
            .map(|set| sha256.as_deref().is_some_and(|sha| set.contains(sha))),
    };
    let mut decision = decide(&facts_for_decision, &opts.policy, opts.now);
    // What `clean` would refuse is never planned as a deletion (see retention::guard).
    if decision.action == Action::Delete {
        if let Some(why) = retention::guard::never_delete(platform, &file.rel) {
            decision = Decision {
                action: Action::Review,
                rule: "guard.never_delete".into(),
                deletable_from: decision.deletable_from,
                reason: format!("{why} (otherwise: {})", decision.reason),
            };
        }
    }
    Ok(PlanEntry::new(
        &file.rel,
        stamp,
        if opts.hash { sha256 } else { None },
        category,
        group_facts.map(|g| g.group_id.clone()),
        reference.map(|r| r.message_id.clone()),
        decision,
    ))
}

fn hash_file(path: &Path) -> Result<String, PlanError> {
    crate::digest::sha256_file(path)
        .map(|(sha, _)| sha)
        .map_err(|source| PlanError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Hashes a file opened by [`open_unfollowed`], whose size is known from its metadata.
fn hash_open_file(file: &mut std::fs::File, size: u64, path: &Path) -> Result<String, PlanError> {
    // One buffer per thread: a fresh one per (mostly small) file costs more than the hash.
    evidence::tee::with_buffer(|buf| evidence::tee::hash_sized_file(file, buf, size))
        .map(|(sha, _)| sha)
        .map_err(|source| PlanError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Opens a file that the walk saw as regular, without following a link, and takes its
/// metadata from the open file: the stamp and the hash are then of one and the same file,
/// and one path lookup serves both. Something else by now (a link, a pipe) gives its own
/// metadata (`lstat`) and no handle; so does a file that cannot be opened, whose hashing
/// then reports why.
fn open_unfollowed(path: &Path) -> Result<(FoundMeta, Option<std::fs::File>), PlanError> {
    let io = |source| PlanError::Io {
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: a pipe swapped in since the walk must not block the open.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path);
        if let Ok(file) = opened {
            let meta = FoundMeta::of(&file.metadata().map_err(io)?);
            return Ok(if meta.is_file {
                (meta, Some(file))
            } else {
                (meta, None)
            });
        }
    }
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    Ok((FoundMeta::of(&meta), None))
}

/// The payload digests of a bundle, sorted: 32 bytes a file rather than a `String` in a
/// set (about 100), which matters for bundles of 100,000s of files.
struct BundleHashes(Vec<[u8; 32]>);

impl BundleHashes {
    fn contains(&self, sha256_hex: &str) -> bool {
        digest_of_hex(sha256_hex).is_some_and(|digest| self.0.binary_search(&digest).is_ok())
    }
}

/// 64 hex digits, either case, as the digest's bytes.
fn digest_of_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let nibble = |b: u8| char::from(b).to_digit(16);
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = u8::try_from(nibble(pair[0])? << 4 | nibble(pair[1])?).ok()?;
    }
    Some(digest)
}

/// The payload hashes of a bundle that verifies; a bundle that does not verify is refused.
fn bundle_payload_hashes(bundle: &Path) -> Result<BundleHashes, PlanError> {
    let bad = |detail: String| PlanError::Bundle {
        path: bundle.to_path_buf(),
        detail,
    };
    let report = evidence::verify(bundle, &evidence::VerifyOptions::default())
        .map_err(|e| bad(e.to_string()))?;
    if !report.ok() {
        return Err(bad(
            "the bundle does not verify (run `chatvault verify` on it); files are only released against an intact bundle".into(),
        ));
    }
    let mut digests = Vec::new();
    // A first field that is not a digest can match no file's hash: it is left out.
    for_each_manifest_line(bundle, |line| {
        if let Some(digest) = line.split_whitespace().next().and_then(digest_of_hex) {
            digests.push(digest);
        }
    })
    .map_err(bad)?;
    digests.sort_unstable();
    digests.dedup();
    digests.shrink_to_fit();
    Ok(BundleHashes(digests))
}

/// Each line of `manifest-sha256.txt` of a directory bundle, or of the single top
/// directory of a zip, read a line at a time.
fn for_each_manifest_line(bundle: &Path, mut each: impl FnMut(&str)) -> Result<(), String> {
    use std::io::BufRead;
    const NAME: &str = "manifest-sha256.txt";
    let mut lines = |reader: &mut dyn BufRead| -> Result<(), String> {
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => each(&line),
                Err(e) => return Err(format!("{NAME}: {e}")),
            }
        }
    };
    if bundle.is_dir() {
        let file = std::fs::File::open(bundle.join(NAME)).map_err(|e| format!("{NAME}: {e}"))?;
        return lines(&mut io::BufReader::new(file));
    }
    let file = std::fs::File::open(bundle).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let name = archive
        .file_names()
        .find(|n| n.split('/').count() == 2 && n.ends_with(&format!("/{NAME}")))
        .map(str::to_string)
        .ok_or_else(|| format!("no {NAME} in the zip"))?;
    let mut entry = io::BufReader::new(archive.by_name(&name).map_err(|e| e.to_string())?);
    lines(&mut entry)
}

/// Parses `GROUP=TIME` (split at the last `=`).
pub fn parse_dissolved_at(arg: &str) -> Result<(String, DateTime<Utc>), String> {
    let (group, time) = retention::split_group_assignment(arg).map_err(|e| e.to_string())?;
    let time = crate::timefmt::parse_time(&time).map_err(|e| e.to_string())?;
    Ok((group, time))
}

/// Parses `GROUP=TYPE`.
pub fn parse_group_type(arg: &str) -> Result<(String, GroupType), String> {
    let (group, kind) = retention::split_group_assignment(arg).map_err(|e| e.to_string())?;
    let kind: GroupType = kind.parse().map_err(|_| {
        format!(
            "`{kind}` is not a group type: education, ecommerce, commercial, family, work or other"
        )
    })?;
    Ok((group, kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use proptest::prelude::*;

    /// The reference a map of path to reference ends with, updated message by message
    /// (the rule before references were sorted on disk).
    fn winners_by_map(refs: &[(String, Option<i64>)]) -> Vec<(String, usize)> {
        let mut map: std::collections::HashMap<&str, (usize, i64)> = Default::default();
        for (index, (rel, time)) in refs.iter().enumerate() {
            let newer = map.get(rel.as_str()).is_none_or(|r| Some(r.1) <= *time);
            if newer {
                map.insert(rel, (index, time.unwrap_or(i64::MIN)));
            }
        }
        let mut out: Vec<(String, usize)> =
            map.into_iter().map(|(k, v)| (k.to_string(), v.0)).collect();
        out.sort();
        out
    }

    fn winners_by_sort(refs: &[(String, Option<i64>)], budget: usize) -> Vec<(String, usize)> {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = SortedRuns::with_budget(dir.path(), budget);
        let mut record = Vec::new();
        for (index, (rel, time)) in refs.iter().enumerate() {
            // The message id says which message it was.
            encode_reference(&mut record, rel, index as u64, *time, 0, &index.to_string());
            runs.push(&record).unwrap();
        }
        let mut cursor = ReferenceCursor::new(runs.into_sorted().unwrap());
        let mut out = Vec::new();
        while cursor.advance().unwrap() {
            let (rel, reference) = cursor.current.clone().unwrap();
            out.push((rel, reference.message_id.parse().unwrap()));
        }
        out
    }

    proptest! {
        #[test]
        fn the_first_sorted_reference_is_the_one_a_map_keeps(
            refs in proptest::collection::vec(
                (
                    "[ab]{0,2}",
                    proptest::option::of(prop_oneof![Just(i64::MIN), Just(i64::MAX), -3i64..3]),
                ),
                0..60,
            ),
            budget in 1usize..600,
        ) {
            prop_assert_eq!(winners_by_sort(&refs, budget), winners_by_map(&refs));
        }
    }

    fn simulated(dir: &Path) -> PathBuf {
        let mut sim = crate::simulate::SimOptions::new(dir.join("wx"));
        sim.groups = 3;
        sim.messages = 1500;
        sim.seed = 5;
        sim.now_ms = 1_759_276_800_000;
        let root = crate::platform::wechat::WECHAT.simulate(&sim).unwrap().root;
        // What the plan leaves to a person: a link and a name that is not UTF-8.
        std::fs::write(
            root.join(std::ffi::OsStr::from_bytes(b"bad\xffname.jpg")),
            b"x",
        )
        .unwrap();
        std::os::unix::fs::symlink("elsewhere", root.join("a-link")).unwrap();
        root
    }

    fn files_under(dir: &Path, rel: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if entry.file_type().unwrap().is_dir() {
                files_under(&entry.path(), &child, out);
            } else {
                out.push(child);
            }
        }
    }

    #[test]
    fn a_plan_merged_from_many_sort_runs_is_the_plan_sorted_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(dir.path());
        let mut expected_paths = Vec::new();
        files_under(&root, "", &mut expected_paths);
        expected_paths.sort();
        assert!(expected_paths.len() > 500, "{}", expected_paths.len());
        for hash in [false, true] {
            let opts = PlanOptions {
                source: root.clone(),
                now: Utc.with_ymd_and_hms(2025, 10, 1, 0, 0, 0).unwrap(),
                dissolved_at: Vec::new(),
                group_types: Vec::new(),
                require_bundle: None,
                hash,
                policy: Policy::builtin(),
                progress: false,
            };
            let out = tempfile::tempdir().unwrap();
            std::fs::create_dir(out.path().join("memory")).unwrap();
            std::fs::create_dir(out.path().join("merged")).unwrap();
            let in_memory = out.path().join("memory/PLAN.json");
            let merged = out.path().join("merged/PLAN.json");
            // One run that never leaves memory, against runs of a few records each.
            let a = make_plan_with_runs(&opts, &in_memory, usize::MAX).unwrap();
            let b = make_plan_with_runs(&opts, &merged, 300).unwrap();
            let json = std::fs::read(&in_memory).unwrap();
            assert_eq!(json, std::fs::read(&merged).unwrap());
            assert_eq!(
                std::fs::read(&a.files.csv).unwrap(),
                std::fs::read(&b.files.csv).unwrap()
            );
            assert_eq!(a.stats, b.stats);
            // Only the plan's own files are left beside it: the sort files are anonymous.
            assert_eq!(
                std::fs::read_dir(out.path().join("merged"))
                    .unwrap()
                    .count(),
                3
            );

            let plan: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let entries = plan["entries"].as_array().unwrap();
            let paths: Vec<String> = entries
                .iter()
                .map(|e| e["path"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(paths, expected_paths);
            let referenced = entries
                .iter()
                .filter(|e| e["message_id"].is_string())
                .count();
            assert!(referenced > 100, "{referenced} files tied to a message");
        }
    }
}
