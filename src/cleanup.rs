//! `chatvault plan`: walk a source's cache, tie each file to the message that references
//! it, and decide per the retention policy. The decision itself lives in `retention`.

use std::collections::{HashMap, HashSet};
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
    // The cache is walked beside the pass over the messages (one thread reads those).
    let (files, references) = rayon::join(
        || list_files(source.root(), !needs_hash),
        || read_references(source.as_ref(), &groups, opts),
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
    let bar = crate::progress::bar(opts.progress, files.len() as u64, "files");
    // A block per piece of the window that a thread takes (rayon splits a range further
    // only when another thread is idle), so a few large files in a window still spread
    // over both cores; `collect` keeps the blocks in path order.
    let render = |window: &[FoundFile]| -> Result<Vec<EntryBlock>, PlanError> {
        window
            .par_iter()
            .try_fold(
                || EntryBlock::new(opts.now, style),
                |mut block, file| {
                    let entry = plan_entry(
                        source.as_ref(),
                        file,
                        platform,
                        &references,
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
    let mut rendered = Vec::new();
    for window in files.chunks(WINDOW_FILES) {
        let to_append = std::mem::take(&mut rendered);
        let (next, appended) =
            rayon::join(|| render(window), || append_blocks(&mut writer, to_append));
        appended?;
        rendered = next?;
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
) -> Result<(HashMap<String, Reference>, Vec<GroupFacts>), PlanError> {
    let progress = crate::progress::counter(opts.progress, "messages read");
    let mut references: HashMap<String, Reference> = HashMap::new();
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
                let newer = references
                    .get(&rel)
                    .is_none_or(|r| Some(r.time_ms) <= message.time_ms);
                if newer {
                    references.insert(
                        rel,
                        Reference {
                            group: index,
                            message_id: message.message_id.clone(),
                            // No time: no instant, so no deadline from the message.
                            time_ms: message.time_ms.unwrap_or(i64::MIN),
                        },
                    );
                }
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

/// Everything under `root` that is not a directory, sorted by relative path. Regular
/// files are stat-ed only with `stat_files` (without, the directory entry's type says
/// what they are, and `plan_entry` takes their metadata from the open file).
///
/// One rayon task per directory, and entries stat-ed relative to their directory
/// (`DirEntry::metadata` is `fstatat`): about twice as fast on 2 cores as a serial walk
/// that resolves every absolute path again.
fn list_files(root: &Path, stat_files: bool) -> Result<Vec<FoundFile>, PlanError> {
    // Elsewhere there is no opening without following links: stat first.
    let stat_files = stat_files || cfg!(not(unix));
    let found = Mutex::new(Vec::new());
    let first_error = Mutex::new(None);
    rayon::scope(|scope| {
        walk_dir(
            scope,
            root.to_path_buf(),
            String::new(),
            true,
            stat_files,
            &found,
            &first_error,
        )
    });
    if let Some(error) = lock(first_error) {
        return Err(error);
    }
    // Sorted by index, then moved once: sorting the entries themselves (200 bytes each)
    // moved 100s of MB for a cache of 300,000 files.
    let files = lock(found);
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.par_sort_unstable_by(|&a, &b| files[a].rel.cmp(&files[b].rel));
    let mut slots: Vec<Option<FoundFile>> = files.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .filter_map(|index| slots[index].take())
        .collect())
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
    stat_files: bool,
    found: &'s Mutex<Vec<FoundFile>>,
    first_error: &'s Mutex<Option<PlanError>>,
) {
    let fail = |path: &Path, source: std::io::Error| {
        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(PlanError::Io {
            path: path.to_path_buf(),
            source,
        });
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => return fail(&dir, e),
    };
    let mut local = Vec::new();
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
            scope.spawn(move |scope| {
                walk_dir(
                    scope,
                    path,
                    child_rel,
                    utf8 && name_utf8,
                    stat_files,
                    found,
                    first_error,
                )
            });
        } else {
            let meta = if file_type.is_file() && !stat_files {
                None
            } else {
                match entry.metadata() {
                    Ok(meta) => Some(FoundMeta::of(&meta)),
                    Err(e) => return fail(&entry.path(), e),
                }
            };
            local.push(FoundFile {
                non_utf8_path: (!(utf8 && name_utf8)).then(|| entry.path()),
                rel: child_rel,
                meta,
            });
        }
    }
    found
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(local);
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
    references: &HashMap<String, Reference>,
    facts: &[GroupFacts],
    database_files: &HashSet<String>,
    bundle_hashes: Option<&HashSet<String>>,
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
    let reference = references.get(&file.rel);
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
            .map(|set| sha256.as_ref().is_some_and(|sha| set.contains(sha))),
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

/// The payload hashes of a bundle that verifies; a bundle that does not verify is refused.
fn bundle_payload_hashes(bundle: &Path) -> Result<HashSet<String>, PlanError> {
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
    let manifest = read_manifest(bundle).map_err(bad)?;
    Ok(manifest
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_ascii_lowercase)
        .collect())
}

/// `manifest-sha256.txt` of a directory bundle, or of the single top directory of a zip.
fn read_manifest(bundle: &Path) -> Result<String, String> {
    use std::io::Read;
    const NAME: &str = "manifest-sha256.txt";
    if bundle.is_dir() {
        return std::fs::read_to_string(bundle.join(NAME)).map_err(|e| format!("{NAME}: {e}"));
    }
    let file = std::fs::File::open(bundle).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let name = archive
        .file_names()
        .find(|n| n.split('/').count() == 2 && n.ends_with(&format!("/{NAME}")))
        .map(str::to_string)
        .ok_or_else(|| format!("no {NAME} in the zip"))?;
    let mut text = String::new();
    archive
        .by_name(&name)
        .map_err(|e| e.to_string())?
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
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
