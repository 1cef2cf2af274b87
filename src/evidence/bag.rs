//! Streaming BagIt writer: payload files are hashed while they are written, tag
//! files are derived from those digests, and the finished bag appears under its
//! final name only after everything is written and synced.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use rayon::prelude::*;

use super::publish::{self, Target};
use super::tee::{self, CopyError, HashingWriter, IO_BUFFER};
use super::zipbag::ZipTarget;
use super::{io_err, validate_payload_rel, EvidenceError};
use crate::failpoint;
use crate::lockfile::{self, LockGuard};
use crate::spill::{Fields, RecordBuf, SortedRuns, SpillLog};

pub const BAGIT_TXT: &str = "bagit.txt";
pub const BAG_INFO_TXT: &str = "bag-info.txt";
pub const MANIFEST_TXT: &str = "manifest-sha256.txt";
pub const TAGMANIFEST_TXT: &str = "tagmanifest-sha256.txt";
pub const EVIDENCE_JSON: &str = "evidence.json";
/// The bag declaration, byte for byte (RFC 8493 §2.1.1).
pub const BAGIT_DECLARATION: &str = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";

/// bag-info.txt labels this writer sets itself; callers may not repeat them.
const RESERVED_LABELS: [&str; 3] = ["Bagging-Date", "Payload-Oxum", "Bag-Software-Agent"];

/// Where and how to write a bundle.
#[derive(Debug, Clone)]
pub struct BagOptions {
    /// "NAME" (possibly with parent directories). A directory bag is written to
    /// NAME; with `zip`, NAME.zip is written, holding the top-level directory NAME/.
    pub out: PathBuf,
    pub zip: bool,
    /// Replace an existing bundle (only a chatvault bundle of the same kind, and only
    /// once the new one is complete).
    pub force: bool,
    /// Paths the output may neither be, lie inside, nor contain (the source).
    pub protected: Vec<PathBuf>,
    /// Bagging-Date and zip entry times; makes output byte-identical across runs.
    pub fixed_time: Option<DateTime<Utc>>,
    /// Version recorded as `Bag-Software-Agent: chatvault <tool_version>`.
    pub tool_version: String,
}

/// One payload file as recorded in manifest-sha256.txt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Path inside the bag, "data/…".
    pub rel: String,
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// What the caller needs to write evidence.json and bag-info fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSummary {
    /// SHA-256 of manifest-sha256.txt.
    pub manifest_sha256: String,
    /// "bytes.count", as in bag-info.txt.
    pub payload_oxum: String,
    pub files: usize,
    pub bytes: u64,
}

/// The finished bundle and the values a person writes down.
#[derive(Debug, Clone)]
pub struct BagSummary {
    /// Final NAME or NAME.zip.
    pub path: PathBuf,
    /// SHA-256 of tagmanifest-sha256.txt.
    pub bag_digest: String,
    /// NAME.sha256 or NAME.zip.sha256.
    pub sidecar: PathBuf,
    /// SHA-256 of the zip file, for zip bundles.
    pub zip_sha256: Option<String>,
    pub payload: PayloadSummary,
}

/// A payload text file being written (CSV …); hashed as it is written.
/// Hand it back with [`BagWriter::finish_text`].
pub struct PayloadText {
    writer_id: u64,
    rel: String,
    path: PathBuf,
    out: BufWriter<HashingWriter<File>>,
}

impl PayloadText {
    /// Path inside the bag, "data/…".
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// Bytes written so far (excluding what is still buffered).
    pub fn bytes_flushed(&self) -> u64 {
        self.out.get_ref().bytes()
    }
}

impl Write for PayloadText {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

static NEXT_WRITER_ID: AtomicU64 = AtomicU64::new(1);

/// Payload names already taken, case-folded: two names that differ only in case
/// would overwrite each other when the bag is unpacked on Windows or macOS.
///
/// Directories (a few per conversation) are kept in memory and checked as names are
/// claimed; file names, one per payload file, go to sorted runs on disk and are checked
/// against each other and against the directories at the end, so that memory does not
/// grow with the number of files.
struct NameRegistry {
    dirs: HashMap<String, String>,
    /// "folded\0as claimed" for every file.
    files: SortedRuns,
}

fn clash(path: &str, existing: &str, reason: &'static str) -> EvidenceError {
    EvidenceError::DuplicatePayloadPath {
        path: path.to_string(),
        existing: existing.to_string(),
        reason,
    }
}

impl NameRegistry {
    fn new(spill_dir: &Path) -> NameRegistry {
        NameRegistry {
            dirs: HashMap::new(),
            files: SortedRuns::new(spill_dir),
        }
    }

    fn claim(&mut self, rel: &str, spill_dir: &Path) -> Result<(), EvidenceError> {
        let folded = rel.to_lowercase();
        if let Some(existing) = self.dirs.get(&folded) {
            return Err(clash(
                rel,
                existing,
                "a directory of that name already holds files",
            ));
        }
        for (end, _) in folded.match_indices('/') {
            self.dirs
                .entry(folded[..end].to_string())
                .or_insert_with(|| rel[..end].to_string());
        }
        let mut record = RecordBuf::keyed(&folded);
        record.str(rel);
        self.files
            .push(record.as_slice())
            .map_err(io_err("write a spill file in", spill_dir))
    }

    /// The checks that need every file name: the same name twice, names that differ only
    /// in case, and a file where another file's directory is.
    fn check(self, spill_dir: &Path) -> Result<(), EvidenceError> {
        let spill_error = || io_err("read a spill file in", spill_dir);
        let sorted = self.files.into_sorted().map_err(spill_error())?;
        let mut previous: Option<(String, String)> = None;
        for record in sorted {
            let record = record.map_err(spill_error())?;
            let (folded, mut fields) = Fields::keyed(&record).map_err(spill_error())?;
            let rel = fields.str().map_err(spill_error())?;
            if let Some((previous_folded, previous_rel)) = &previous {
                if previous_folded == folded {
                    let reason = if previous_rel == rel {
                        "same name"
                    } else {
                        "names differ only in letter case"
                    };
                    return Err(clash(rel, previous_rel, reason));
                }
            }
            if let Some(dir) = self.dirs.get(folded) {
                return Err(clash(
                    rel,
                    dir,
                    "a file of that name is in the way of the directory",
                ));
            }
            previous = Some((folded.to_string(), rel.to_string()));
        }
        Ok(())
    }
}

/// The payload files finished so far: counted, logged in the order they were added (the
/// report's hash annex lists them so), and queued in path order for the manifest, on
/// disk rather than in memory.
struct PayloadRecords {
    files: usize,
    bytes: u64,
    /// rel, size, sha256.
    log: SpillLog,
    /// Keyed by rel: sha256.
    by_path: SortedRuns,
}

impl PayloadRecords {
    fn new(spill_dir: &Path) -> PayloadRecords {
        PayloadRecords {
            files: 0,
            bytes: 0,
            log: SpillLog::new(spill_dir),
            by_path: SortedRuns::new(spill_dir),
        }
    }

    fn push(&mut self, digest: &FileDigest) -> std::io::Result<()> {
        let mut logged = RecordBuf::new();
        logged.str(&digest.rel).u64(digest.size).str(&digest.sha256);
        self.log.push(logged.as_slice())?;
        let mut keyed = RecordBuf::keyed(&digest.rel);
        keyed.str(&digest.sha256);
        self.by_path.push(keyed.as_slice())?;
        self.files += 1;
        self.bytes += digest.size;
        Ok(())
    }
}

fn logged_digest(record: std::io::Result<Vec<u8>>) -> std::io::Result<FileDigest> {
    let record = record?;
    let mut fields = Fields::new(&record);
    Ok(FileDigest {
        rel: fields.str()?.to_string(),
        size: fields.u64()?,
        sha256: fields.str()?.to_string(),
    })
}

/// Writes one bag. See the module documentation of [`crate::evidence`].
pub struct BagWriter {
    id: u64,
    target: Target,
    final_path: PathBuf,
    /// Directory bag: the bag being built. Zip bag: staging area for files that
    /// are deflated at `finish`.
    partial: PathBuf,
    /// Set once the bag is under its final name; until then, dropping the writer
    /// removes what it wrote.
    published: bool,
    time: DateTime<Utc>,
    tool_version: String,
    /// Where the spill files go: beside the output.
    spill_dir: PathBuf,
    payload: PayloadRecords,
    names: NameRegistry,
    open_texts: HashSet<String>,
    zip: Option<ZipTarget>,
    copy_buf: Vec<u8>,
    /// Last, so that it is released only after the cleanup in `drop`.
    _lock: LockGuard,
}

impl Drop for BagWriter {
    fn drop(&mut self) {
        if !self.published {
            // A killed process cannot do this; the next `create` removes what it left.
            drop(self.zip.take());
            let _ = publish::remove_tree(&self.partial);
            let _ = publish::remove_tree(&self.target.partial_path());
        }
    }
}

impl BagWriter {
    /// Gives up on the bag: removes everything it wrote, leaving no output behind.
    pub fn abort(self) -> Result<(), EvidenceError> {
        drop(self);
        Ok(())
    }

    /// Starts a bag. Refuses an output that overlaps `protected` or whose directory
    /// does not exist, and an existing output unless `force` and it is a chatvault
    /// bundle of the same kind; takes NAME.lock; finishes or removes what a killed run
    /// left (see [`publish`]).
    pub fn create(opts: BagOptions) -> Result<BagWriter, EvidenceError> {
        let (parent, name) = split_output(&opts.out, opts.zip)?;
        let target = Target {
            parent,
            name,
            zip: opts.zip,
        };
        target.check_location(&opts.protected)?;
        let final_path = target.final_path();
        let lock = lockfile::acquire(&final_path)?;
        target.recover()?;
        target.check_existing(opts.force)?;
        let partial = match target.staging_path() {
            Some(staging) => staging,
            None => target.partial_path(),
        };
        publish::create_marked_dir(&partial)?;
        failpoint::hit("export.bag.created");
        let time = opts.fixed_time.unwrap_or_else(Utc::now);
        let zip = if opts.zip {
            Some(ZipTarget::create(
                target.partial_path(),
                partial.clone(),
                &target.name,
                time,
            )?)
        } else {
            None
        };
        let spill_dir = target.parent.clone();
        Ok(BagWriter {
            id: NEXT_WRITER_ID.fetch_add(1, Ordering::Relaxed),
            payload: PayloadRecords::new(&spill_dir),
            names: NameRegistry::new(&spill_dir),
            spill_dir,
            target,
            final_path,
            partial,
            published: false,
            time,
            tool_version: opts.tool_version,
            open_texts: HashSet::new(),
            zip,
            copy_buf: Vec::new(),
            _lock: lock,
        })
    }

    /// Where records that grow with the payload are kept while the bag is written
    /// (anonymous files beside the output; see [`crate::spill`]).
    pub fn spill_dir(&self) -> &Path {
        &self.spill_dir
    }

    /// Final path of the bundle (NAME or NAME.zip).
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Opens a payload text file `data/<rel_in_data>`; several may be open at once.
    pub fn text_file(&mut self, rel_in_data: &str) -> Result<PayloadText, EvidenceError> {
        let rel = self.claim(rel_in_data)?;
        let path = self.partial_path(&rel)?;
        let file = create_new(&path, &rel)?;
        self.open_texts.insert(rel.clone());
        Ok(PayloadText {
            writer_id: self.id,
            rel,
            path,
            out: BufWriter::with_capacity(256 * 1024, HashingWriter::new(file)),
        })
    }

    /// Closes a payload text file and records its digest.
    pub fn finish_text(&mut self, text: PayloadText) -> Result<FileDigest, EvidenceError> {
        if text.writer_id != self.id || !self.open_texts.contains(&text.rel) {
            return Err(EvidenceError::ForeignPayloadText { rel: text.rel });
        }
        let PayloadText { rel, path, out, .. } = text;
        let hashing = out
            .into_inner()
            .map_err(|e| io_err("write", &path)(e.into_error()))?;
        let (_file, sha256, size) = hashing.finish();
        self.open_texts.remove(&rel);
        if let Some(zip) = self.zip.as_mut() {
            zip.stage(rel.clone(), path, size)?;
        }
        self.record(rel, size, sha256)
    }

    /// Copies a media file into `data/<rel_in_data>`, hashing it in the same pass.
    /// In a zip, `compressed_already` files are stored, others deflated.
    pub fn copy_file(
        &mut self,
        rel_in_data: &str,
        src: &mut dyn Read,
        compressed_already: bool,
    ) -> Result<FileDigest, EvidenceError> {
        self.copy_file_sized(rel_in_data, src, compressed_already, None)
    }

    /// [`copy_file`](Self::copy_file) with the source size if known (from
    /// metadata): in a zip, stored entries below 4 GiB then carry no zip64 fields.
    pub fn copy_file_sized(
        &mut self,
        rel_in_data: &str,
        src: &mut dyn Read,
        compressed_already: bool,
        size_hint: Option<u64>,
    ) -> Result<FileDigest, EvidenceError> {
        let rel = self.claim(rel_in_data)?;
        if self.copy_buf.len() != IO_BUFFER {
            self.copy_buf = vec![0; IO_BUFFER];
        }
        let (sha256, size) = match self.zip.as_mut() {
            Some(zip) if compressed_already => {
                zip.add_stored(&rel, src, size_hint, &mut self.copy_buf)?
            }
            Some(zip) => {
                // A zip entry to deflate later in parallel, spooled meanwhile.
                zip.spool(rel.clone(), src, &mut self.copy_buf)?
            }
            None => {
                let path = self.partial_path(&rel)?;
                let mut file = create_new(&path, &rel)?;
                let (sha256, size) = tee::copy_hashing(src, &mut file, &mut self.copy_buf, 0)
                    .map_err(|e| match e {
                        CopyError::Read(e) => io_err("read the source of", Path::new(&rel))(e),
                        CopyError::Write(e) => io_err("write", &path)(e),
                    })?;
                (sha256, size)
            }
        };
        self.record(rel, size, sha256)
    }

    /// Payload files finished so far, in the order they were added (read back from disk).
    pub fn payload(
        &mut self,
    ) -> Result<impl Iterator<Item = Result<FileDigest, EvidenceError>> + '_, EvidenceError> {
        let spill_dir = self.spill_dir.clone();
        let records = self
            .payload
            .log
            .iter()
            .map_err(io_err("read a spill file in", &spill_dir))?;
        Ok(records
            .map(move |r| logged_digest(r).map_err(io_err("read a spill file in", &spill_dir))))
    }

    /// How many payload files are finished so far.
    pub fn payload_files(&self) -> usize {
        self.payload.files
    }

    /// Writes the manifests and tag files, syncs, and moves the bag to its final
    /// name; then writes the sidecar. `tags` sees the payload summary first (so that
    /// evidence.json can record the manifest digest), writes evidence.json into the writer
    /// it is given, and returns the extra bag-info.txt fields (Chatvault-* …), written in
    /// this order after Bagging-Date, Payload-Oxum and Bag-Software-Agent.
    pub fn finish(
        mut self,
        tags: impl FnOnce(&PayloadSummary, &mut dyn Write) -> std::io::Result<Vec<(String, String)>>,
    ) -> Result<BagSummary, EvidenceError> {
        if let Some(rel) = self.open_texts.iter().min() {
            return Err(EvidenceError::UnfinishedPayload { rel: rel.clone() });
        }
        let spill_dir = self.spill_dir.clone();
        let spill_error = || io_err("read a spill file in", &spill_dir);
        let names = std::mem::replace(&mut self.names, NameRegistry::new(&spill_dir));
        names.check(&spill_dir)?;

        // Tag files are written beside the payload (a directory bag) or in the staging
        // area (a zip, which streams them in), each hashed as it is written.
        let mut tag_digests: BTreeMap<&str, String> = BTreeMap::new();
        tag_digests.insert(
            BAGIT_TXT,
            crate::digest::sha256_hex(BAGIT_DECLARATION.as_bytes()),
        );
        if self.zip.is_none() {
            let path = self.partial.join(BAGIT_TXT);
            fs::write(&path, BAGIT_DECLARATION).map_err(io_err("write", &path))?;
        }
        let by_path = std::mem::replace(&mut self.payload.by_path, SortedRuns::new(&spill_dir));
        let sorted = by_path.into_sorted().map_err(spill_error())?;
        let manifest_sha256 = self.write_tag(MANIFEST_TXT, |out| {
            for record in sorted {
                let record = record?;
                let (rel, mut fields) = Fields::keyed(&record)?;
                let sha256 = fields.str()?;
                out.write_all(sha256.as_bytes())?;
                out.write_all(b"  ")?;
                out.write_all(rel.as_bytes())?;
                out.write_all(b"\n")?;
            }
            Ok(())
        })?;
        let summary = PayloadSummary {
            manifest_sha256: manifest_sha256.clone(),
            payload_oxum: format!("{}.{}", self.payload.bytes, self.payload.files),
            files: self.payload.files,
            bytes: self.payload.bytes,
        };
        tag_digests.insert(MANIFEST_TXT, manifest_sha256);
        let mut extra_bag_info = Vec::new();
        let evidence_sha256 = self.write_tag(EVIDENCE_JSON, |out| {
            extra_bag_info = tags(&summary, out)?;
            Ok(())
        })?;
        tag_digests.insert(EVIDENCE_JSON, evidence_sha256);
        let bag_info = bag_info_text(
            &self.time.format("%Y-%m-%d").to_string(),
            &summary.payload_oxum,
            &format!("chatvault {}", self.tool_version),
            &extra_bag_info,
        )?;
        let bag_info_sha256 =
            self.write_tag(BAG_INFO_TXT, |out| out.write_all(bag_info.as_bytes()))?;
        tag_digests.insert(BAG_INFO_TXT, bag_info_sha256);
        let tagmanifest = manifest_text(
            tag_digests
                .iter()
                .map(|(name, digest)| (*name, digest.as_str())),
        );
        let bag_digest =
            self.write_tag(TAGMANIFEST_TXT, |out| out.write_all(tagmanifest.as_bytes()))?;

        let (zip_sha256, sidecar_line) = match self.zip.take() {
            Some(zip) => {
                // bagit.txt went in first, at create; the others in name order.
                let tag_paths: Vec<(&str, PathBuf)> =
                    [BAG_INFO_TXT, EVIDENCE_JSON, MANIFEST_TXT, TAGMANIFEST_TXT]
                        .into_iter()
                        .map(|name| (name, self.partial.join(name)))
                        .collect();
                let tag_refs: Vec<(&str, &Path)> = tag_paths
                    .iter()
                    .map(|(name, path)| (*name, path.as_path()))
                    .collect();
                let zip_sha256 = zip.finish(&tag_refs, self.payload.files == 0)?;
                // The zip is complete and synced; nothing in the staging area is needed
                // any more.
                publish::remove_tree(&self.partial)?;
                let line = format!("{zip_sha256}  {}.zip\n", self.target.name);
                (Some(zip_sha256), line)
            }
            None => {
                let tag_names = [
                    BAGIT_TXT,
                    BAG_INFO_TXT,
                    EVIDENCE_JSON,
                    MANIFEST_TXT,
                    TAGMANIFEST_TXT,
                ];
                if self.payload.files + tag_names.len() > SYNCFS_ABOVE_FILES {
                    syncfs(&self.partial)?;
                } else {
                    let mut files: Vec<PathBuf> = Vec::with_capacity(self.payload.files + 5);
                    let partial = self.partial.clone();
                    for digest in self.payload()? {
                        files.push(partial.join(digest?.rel));
                    }
                    files.extend(tag_names.iter().map(|name| self.partial.join(name)));
                    sync_files(&self.partial, &files)?;
                }
                let line = format!("{bag_digest}  {}/{TAGMANIFEST_TXT}\n", self.target.name);
                (None, line)
            }
        };
        failpoint::hit("export.bag.synced");
        self.target.publish(&sidecar_line)?;
        self.published = true;
        let sidecar = self.target.sidecar_path();
        Ok(BagSummary {
            path: self.final_path.clone(),
            bag_digest,
            sidecar,
            zip_sha256,
            payload: summary,
        })
    }

    /// Writes the tag file `name` into the partial area, returning its SHA-256.
    fn write_tag(
        &self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<String, EvidenceError> {
        let path = self.partial.join(name);
        let file = create_new(&path, name)?;
        let mut out = BufWriter::with_capacity(IO_BUFFER, HashingWriter::new(file));
        write(&mut out).map_err(io_err("write", &path))?;
        let hashing = out
            .into_inner()
            .map_err(|e| io_err("write", &path)(e.into_error()))?;
        let (_file, sha256, _) = hashing.finish();
        Ok(sha256)
    }

    fn claim(&mut self, rel_in_data: &str) -> Result<String, EvidenceError> {
        validate_payload_rel(rel_in_data)?;
        self.names.claim(rel_in_data, &self.spill_dir)?;
        Ok(format!("data/{rel_in_data}"))
    }

    /// Where a payload file lives in the partial area; creates its directories.
    fn partial_path(&self, rel: &str) -> Result<PathBuf, EvidenceError> {
        let path = self.partial.join(rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        Ok(path)
    }

    fn record(
        &mut self,
        rel: String,
        size: u64,
        sha256: String,
    ) -> Result<FileDigest, EvidenceError> {
        let digest = FileDigest { rel, size, sha256 };
        self.payload
            .push(&digest)
            .map_err(io_err("write a spill file in", &self.spill_dir))?;
        Ok(digest)
    }
}

/// "<sha256>  <path>\n" lines, in the order given.
fn manifest_text<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (path, digest) in entries {
        out.push_str(digest);
        out.push_str("  ");
        out.push_str(path);
        out.push('\n');
    }
    out
}

/// bag-info.txt with the writer's own fields first, then the caller's.
fn bag_info_text(
    date: &str,
    oxum: &str,
    agent: &str,
    extra: &[(String, String)],
) -> Result<String, EvidenceError> {
    let mut out =
        format!("Bagging-Date: {date}\nPayload-Oxum: {oxum}\nBag-Software-Agent: {agent}\n");
    for (label, value) in extra {
        let refuse = |reason| {
            Err(EvidenceError::InvalidBagInfo {
                label: label.clone(),
                reason,
            })
        };
        if label.is_empty() || label.contains(':') || label.chars().any(char::is_whitespace) {
            return refuse("a label must be non-empty, without ':' or whitespace");
        }
        if label.chars().any(char::is_control) {
            return refuse("the label contains a control character");
        }
        if RESERVED_LABELS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(label))
        {
            return refuse("this field is written by the bag writer itself");
        }
        // Values stay on one line: RFC 8493 only recommends 79-column lines, and
        // folded values are unfolded differently by different readers.
        if value.chars().any(char::is_control) {
            return refuse("the value contains a newline or other control character");
        }
        if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
            return refuse("the value starts or ends with whitespace, which readers strip");
        }
        out.push_str(label);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
    Ok(out)
}

/// Splits `out` into its parent directory and the bundle name, checking that the
/// name can appear in a sidecar line and as a zip's top-level directory.
fn split_output(out: &Path, zip: bool) -> Result<(PathBuf, String), EvidenceError> {
    let shown = out.display().to_string();
    let invalid = |reason| EvidenceError::InvalidOutputName {
        name: shown.clone(),
        reason,
    };
    let file_name = out
        .file_name()
        .ok_or_else(|| invalid("the output path has no final name"))?;
    let mut name = file_name
        .to_str()
        .ok_or_else(|| invalid("the name is not valid UTF-8"))?
        .to_string();
    if zip && name.len() > 4 && name.to_ascii_lowercase().ends_with(".zip") {
        // "--zip out.zip" means the bundle NAME "out", written as out.zip.
        name.truncate(name.len() - 4);
    }
    if validate_payload_rel(&name).is_err() || name.contains('/') {
        return Err(invalid(
            "the name must be one path component without \\, %, control characters or surrounding whitespace",
        ));
    }
    Ok((parent_dir(out), name))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Above this many files, a directory bag is made durable by one `syncfs(2)` of its file
/// system rather than an `fsync` per file and directory.
const SYNCFS_ABOVE_FILES: usize = 256;

/// Creates a payload or tag file that must not exist yet: an exact duplicate name is
/// refused here, before it could overwrite the first (case duplicates, which a
/// case-sensitive file system keeps apart, are found at `finish`).
fn create_new(path: &Path, rel: &str) -> Result<File, EvidenceError> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => clash(
                rel,
                rel,
                "the file system already holds a file of that name (the same, or one differing only in case)",
            ),
            _ => io_err("create", path)(e),
        })
}

/// One `syncfs(2)` of the file system holding `root`: one call that waits for the disk
/// once, instead of tens of thousands that each wait (the file system's other dirty data
/// is written too, which is why small bags sync file by file).
fn syncfs(root: &Path) -> Result<(), EvidenceError> {
    let dir = File::open(root).map_err(io_err("open", root))?;
    rustix::fs::syncfs(&dir).map_err(|errno| io_err("sync the file system of", root)(errno.into()))
}

/// Makes every file of a small directory bag, and each directory holding them, durable,
/// so a crash after the rename cannot leave a bag with empty files.
fn sync_files(root: &Path, files: &[PathBuf]) -> Result<(), EvidenceError> {
    files.par_iter().try_for_each(|path| {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io_err("sync", path))
    })?;
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf(), root.join("data")];
    for file in files {
        let mut dir = file.parent();
        while let Some(d) = dir {
            if !d.starts_with(root) || d == root || d == root.join("data") {
                break;
            }
            dirs.push(d.to_path_buf());
            dir = d.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    dirs.iter().try_for_each(|dir| publish::sync_dir(dir))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::Command;

    use super::super::testkit::{bagit_py, options, run, tree_bytes, write_sample};
    use super::*;

    #[test]
    fn directory_bag_passes_sha256sum_and_bagit_py() {
        let tmp = tempfile::tempdir().unwrap();
        let summary = write_sample(options(tmp.path(), "bag", false), None);
        let bag = tmp.path().join("bag");
        assert_eq!(summary.path, bag);
        assert!(!tmp.path().join("bag.partial").exists());
        for manifest in [MANIFEST_TXT, TAGMANIFEST_TXT] {
            let (ok, out) = run(Command::new("sha256sum")
                .arg("-c")
                .arg(manifest)
                .current_dir(&bag));
            assert!(ok, "{manifest}: {out}");
        }
        let (ok, out) = run(Command::new("sha256sum")
            .args(["--strict", "-c", "bag.sha256"])
            .current_dir(tmp.path()));
        assert!(
            ok && out.contains("bag/tagmanifest-sha256.txt: OK"),
            "{out}"
        );
        let info = fs::read_to_string(bag.join(BAG_INFO_TXT)).unwrap();
        assert!(
            info.starts_with("Bagging-Date: 2025-06-12\nPayload-Oxum: "),
            "{info}"
        );
        assert!(info
            .contains("Bag-Software-Agent: chatvault 0.1.0-test\nChatvault-Format-Version: 1\n"));
        assert!(info.contains(&format!("Payload-Oxum: {}\n", summary.payload.payload_oxum)));
        assert_eq!(summary.payload.files, 8);
        assert_eq!(
            fs::read_to_string(bag.join(BAGIT_TXT)).unwrap(),
            BAGIT_DECLARATION
        );
        let manifest = fs::read_to_string(bag.join(MANIFEST_TXT)).unwrap();
        let paths: Vec<&str> = manifest.lines().map(|l| &l[66..]).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        assert_eq!(
            summary.payload.manifest_sha256,
            crate::digest::sha256_hex(manifest.as_bytes())
        );
        assert_eq!(
            summary.bag_digest,
            crate::digest::sha256_hex(&fs::read(bag.join(TAGMANIFEST_TXT)).unwrap())
        );
        if let Some(bagit) = bagit_py() {
            let (ok, out) = run(Command::new(bagit).arg("--validate").arg(&bag));
            assert!(ok, "bagit.py: {out}");
        }
    }

    #[test]
    fn zip_bag_passes_unzip_python_and_bagit_py() {
        let tmp = tempfile::tempdir().unwrap();
        let summary = write_sample(options(tmp.path(), "bag", true), None);
        let zip = tmp.path().join("bag.zip");
        assert_eq!(summary.path, zip);
        assert!(!tmp.path().join("bag.zip.partial").exists());
        assert!(!tmp.path().join("bag.zip.partial.d").exists());
        assert_eq!(
            summary.zip_sha256.as_deref(),
            Some(crate::digest::sha256_hex(&fs::read(&zip).unwrap()).as_str())
        );
        let (ok, out) = run(Command::new("unzip").arg("-t").arg(&zip));
        assert!(ok && out.contains("No errors detected"), "{out}");
        let (ok, out) = run(Command::new("sha256sum")
            .args(["--strict", "-c", "bag.zip.sha256"])
            .current_dir(tmp.path()));
        assert!(ok, "{out}");
        let script = r#"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
names = z.namelist()
assert all(n.startswith("bag/") for n in names), names
assert names[0] == "bag/bagit.txt", names
info = {i.filename: i for i in z.infolist()}
assert info["bag/data/media/g1/photo 1.jpg"].compress_type == zipfile.ZIP_STORED
assert info["bag/data/messages.csv"].compress_type == zipfile.ZIP_DEFLATED
assert info["bag/data/media/g2/notes.txt"].compress_type == zipfile.ZIP_DEFLATED
assert info["bag/data/media/g1/报价单.xlsx"].flag_bits & 0x800
assert info["bag/data/messages.csv"].date_time == (2025, 6, 12, 0, 5, 20)
print(len(names))
"#;
        let (ok, out) = run(Command::new("python3").arg("-c").arg(script).arg(&zip));
        assert!(ok, "python zipfile: {out}");
        // Unpacked, it is the same bag as a directory bundle.
        let unpacked = tmp.path().join("unpacked");
        let (ok, out) = run(Command::new("unzip")
            .arg("-q")
            .arg(&zip)
            .arg("-d")
            .arg(&unpacked));
        assert!(ok, "{out}");
        let (ok, out) = run(Command::new("sha256sum")
            .args(["-c", MANIFEST_TXT])
            .current_dir(unpacked.join("bag")));
        assert!(ok, "{out}");
        if let Some(bagit) = bagit_py() {
            let (ok, out) = run(Command::new(bagit)
                .arg("--validate")
                .arg(unpacked.join("bag")));
            assert!(ok, "bagit.py: {out}");
        }
        let dir_tmp = tempfile::tempdir().unwrap();
        let dir_summary = write_sample(options(dir_tmp.path(), "bag", false), None);
        assert_eq!(dir_summary.bag_digest, summary.bag_digest);
    }

    #[test]
    fn fixed_time_gives_byte_identical_bundles() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for zip in [false, true] {
            let first = write_sample(options(a.path(), "same", zip), None);
            let second = write_sample(options(b.path(), "same", zip), None);
            assert_eq!(first.bag_digest, second.bag_digest);
            assert_eq!(first.zip_sha256, second.zip_sha256);
        }
        assert_eq!(tree_bytes(a.path()), tree_bytes(b.path()));
    }

    #[test]
    fn dropped_writer_leaves_nothing_and_leftovers_of_a_kill_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let listing = |dir: &Path| -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        for zip in [false, true] {
            {
                let mut writer = BagWriter::create(options(tmp.path(), "bag", zip)).unwrap();
                let mut text = writer.text_file("messages.csv").unwrap();
                text.write_all(b"half a row").unwrap();
                writer
                    .copy_file("media/a.jpg", &mut &b"jpeg"[..], true)
                    .unwrap();
                // Dropped on an error path: nothing finished, nothing left.
            }
            assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
        }
        // What a killed run leaves: our marked partial directory, an empty zip partial
        // and a stale partial sidecar. The next run removes them.
        publish::create_marked_dir(&tmp.path().join("bag.partial")).unwrap();
        fs::write(tmp.path().join("bag.partial/data/x.csv"), "x").unwrap();
        fs::write(
            tmp.path().join("bag.sha256.partial"),
            format!("{}  bag/tagmanifest-sha256.txt\n", "0".repeat(64)),
        )
        .unwrap();
        let summary = write_sample(options(tmp.path(), "bag", false), None);
        assert!(summary.path.exists());
        assert_eq!(listing(tmp.path()), ["bag", "bag.sha256"]);
        publish::create_marked_dir(&tmp.path().join("z.zip.partial.d")).unwrap();
        fs::write(tmp.path().join("z.zip.partial"), "").unwrap();
        write_sample(options(tmp.path(), "z", true), None);
        assert_eq!(
            listing(tmp.path()),
            ["bag", "bag.sha256", "z.zip", "z.zip.sha256"]
        );
    }

    #[test]
    fn strangers_files_under_our_names_are_refused_and_kept() {
        for (name, zip, plant) in [
            ("bag.partial", false, "dir"),
            ("bag.zip.partial", true, "file"),
            ("bag.zip.partial.d", true, "dir"),
            ("bag.sha256.partial", false, "file"),
            ("bag.sha256", false, "file"),
            ("bag.replaced-123", false, "dir"),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let planted = tmp.path().join(name);
            if plant == "dir" {
                fs::create_dir(&planted).unwrap();
                fs::write(planted.join("thesis.docx"), "only copy").unwrap();
            } else {
                fs::write(&planted, "only copy").unwrap();
            }
            let err = BagWriter::create(options(tmp.path(), "bag", zip))
                .err()
                .unwrap();
            assert!(
                matches!(err, EvidenceError::NotOurs { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(name), "{err}");
            let kept = if plant == "dir" {
                fs::read_to_string(planted.join("thesis.docx")).unwrap()
            } else {
                fs::read_to_string(&planted).unwrap()
            };
            assert_eq!(kept, "only copy", "{name}");
            assert!(!tmp.path().join("bag.lock").exists());
        }
    }

    #[test]
    fn of_several_bundles_moved_aside_the_one_the_sidecar_names_is_put_back() {
        let tmp = tempfile::tempdir().unwrap();
        // Two complete bundles, as two interrupted runs would have moved them aside
        // (the one named by the sidecar has the higher PID, which sorts first as text).
        let first = write_sample(options(tmp.path(), "bag", false), None);
        fs::rename(&first.path, tmp.path().join("bag.replaced-1200")).unwrap();
        let sidecar = fs::read_to_string(tmp.path().join("bag.sha256")).unwrap();
        let made_elsewhere = tempfile::tempdir_in(tmp.path()).unwrap();
        let mut other = options(made_elsewhere.path(), "bag", false);
        other.fixed_time = None;
        let mut writer = BagWriter::create(other).unwrap();
        writer.copy_file("x.jpg", &mut &b"other"[..], true).unwrap();
        let second = writer.finish(|_, _| Ok(Vec::new())).unwrap();
        fs::rename(&second.path, tmp.path().join("bag.replaced-500")).unwrap();
        fs::write(tmp.path().join("bag.sha256"), &sidecar).unwrap();
        // The next run puts back the bundle the sidecar names.
        let writer = BagWriter::create(options(tmp.path(), "bag", false)).err();
        assert!(
            matches!(writer, Some(EvidenceError::ExistingOutput(_))),
            "{writer:?}"
        );
        let digest = crate::digest::sha256_hex(
            &fs::read(tmp.path().join("bag").join(TAGMANIFEST_TXT)).unwrap(),
        );
        assert_eq!(digest, first.bag_digest);
        assert!(!tmp.path().join("bag.replaced-500").exists());
        // With no sidecar to tell them apart, nothing is chosen or removed.
        let tmp = tempfile::tempdir().unwrap();
        for pid in ["7", "8"] {
            let made_elsewhere = tempfile::tempdir_in(tmp.path()).unwrap();
            let bag = write_sample(options(made_elsewhere.path(), "bag", false), None);
            fs::rename(&bag.path, tmp.path().join(format!("bag.replaced-{pid}"))).unwrap();
        }
        let err = BagWriter::create(options(tmp.path(), "bag", false)).err();
        assert!(
            matches!(err, Some(EvidenceError::NotOurs { .. })),
            "{err:?}"
        );
        assert!(
            tmp.path().join("bag.replaced-7").exists()
                && tmp.path().join("bag.replaced-8").exists()
        );
    }

    #[test]
    fn a_symlink_planted_as_the_lock_file_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, tmp.path().join("bag.lock")).unwrap();
        let err = BagWriter::create(options(tmp.path(), "bag", false)).err();
        assert!(matches!(err, Some(EvidenceError::Locked(_))), "{err:?}");
        assert!(!elsewhere.exists());
    }

    #[test]
    fn force_replaces_only_a_chatvault_bundle_of_the_same_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let forced = |name: &str, zip: bool| {
            let mut opts = options(tmp.path(), name, zip);
            opts.force = true;
            BagWriter::create(opts)
        };
        // A plain directory, a document, a symlink to a bag, another tool's bag.
        fs::create_dir(tmp.path().join("plain")).unwrap();
        fs::write(tmp.path().join("plain/a.txt"), "a").unwrap();
        fs::write(tmp.path().join("doc.zip"), "PK not really").unwrap();
        let real = write_sample(options(tmp.path(), "real", false), None);
        std::os::unix::fs::symlink(&real.path, tmp.path().join("link")).unwrap();
        fs::create_dir_all(tmp.path().join("other/data")).unwrap();
        fs::write(tmp.path().join("other/bagit.txt"), BAGIT_DECLARATION).unwrap();
        fs::write(
            tmp.path().join("other/bag-info.txt"),
            "Bag-Software-Agent: bagit.py v1.8\n",
        )
        .unwrap();
        for (name, zip) in [
            ("plain", false),
            ("doc", true),
            ("link", false),
            ("other", false),
            ("real", true),
        ] {
            let err = forced(name, zip).err();
            let ok = name == "real" && zip; // real.zip does not exist: nothing to replace
            assert_eq!(err.is_none(), ok, "{name}: {err:?}");
            if let Some(err) = err {
                assert!(
                    matches!(err, EvidenceError::NotOurs { .. }),
                    "{name}: {err}"
                );
            }
        }
        assert_eq!(
            fs::read_to_string(tmp.path().join("plain/a.txt")).unwrap(),
            "a"
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("doc.zip")).unwrap(),
            "PK not really"
        );
        assert!(tmp.path().join("other/bag-info.txt").exists());
        // A directory bag is not replaced by a zip of the same name, nor the reverse.
        let zipped = write_sample(options(tmp.path(), "zipped", true), None);
        fs::rename(&zipped.path, tmp.path().join("zipped")).unwrap();
        assert!(matches!(
            forced("zipped", false).err(),
            Some(EvidenceError::NotOurs { .. })
        ));
    }

    #[test]
    fn output_overlapping_a_protected_path_or_without_a_parent_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("src");
        fs::create_dir_all(source.join("sub")).unwrap();
        for out in [
            source.clone(),
            source.join("bundle"),
            source.join("sub/bundle"),
            tmp.path().to_path_buf(),
            source.join("sub/../bundle"),
        ] {
            let mut opts = options(tmp.path(), "x", false);
            opts.out = out.clone();
            opts.protected = vec![source.clone()];
            opts.force = true;
            let err = BagWriter::create(opts).err();
            assert!(
                matches!(
                    err,
                    Some(
                        EvidenceError::OutputOverlapsSource { .. }
                            | EvidenceError::InvalidOutputName { .. }
                    )
                ),
                "{}: {err:?}",
                out.display()
            );
        }
        let mut opts = options(tmp.path(), "x", false);
        opts.out = tmp.path().join("missing/parent/bundle");
        let err = BagWriter::create(opts).err();
        assert!(
            matches!(err, Some(EvidenceError::OutputParentMissing(_))),
            "{err:?}"
        );
        assert!(!tmp.path().join("missing").exists());
        assert_eq!(fs::read_dir(&source).unwrap().count(), 1);
    }

    #[test]
    fn existing_output_is_refused_unless_forced() {
        let tmp = tempfile::tempdir().unwrap();
        for zip in [false, true] {
            let first = write_sample(options(tmp.path(), "bag", zip), None);
            let err = BagWriter::create(options(tmp.path(), "bag", zip))
                .err()
                .unwrap();
            assert!(matches!(err, EvidenceError::ExistingOutput(_)), "{err}");
            let mut forced = options(tmp.path(), "bag", zip);
            forced.force = true;
            forced.fixed_time = None;
            let mut writer = BagWriter::create(forced).unwrap();
            // The old bundle stays until the new one is complete.
            assert!(first.path.exists());
            writer
                .copy_file("only.jpg", &mut &b"new"[..], true)
                .unwrap();
            let second = writer.finish(|_, _| Ok(Vec::new())).unwrap();
            assert_eq!(second.path, first.path);
            assert_eq!(second.payload.files, 1);
            let leftovers: Vec<String> = fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("replaced") || n.contains("partial"))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }

    #[test]
    fn unsafe_and_colliding_payload_paths_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut writer = BagWriter::create(options(tmp.path(), "bag", false)).unwrap();
        for bad in [
            "../evil",
            "/abs",
            "a/../../b",
            "50%.jpg",
            "a\nb",
            "a\rb",
            "x\0",
        ] {
            let err = writer.copy_file(bad, &mut &b""[..], true).err().unwrap();
            assert!(
                matches!(err, EvidenceError::UnsafePayloadPath { .. }),
                "{bad:?}: {err}"
            );
        }
        writer
            .copy_file("media/A.jpg", &mut &b"1"[..], true)
            .unwrap();
        // Found as the name is claimed: a directory already holding files, and (in a
        // directory bag) the very same name.
        for clash in ["MEDIA", "media/A.jpg"] {
            let err = writer.copy_file(clash, &mut &b"2"[..], true).err().unwrap();
            assert!(
                matches!(err, EvidenceError::DuplicatePayloadPath { .. }),
                "{clash}: {err}"
            );
        }
        assert_eq!(writer.payload_files(), 1);
        assert_eq!(
            fs::read(tmp.path().join("bag.partial/data/media/A.jpg")).unwrap(),
            b"1"
        );
        drop(writer);
        // Found at the end, from every name: the same name in a zip, a name differing only
        // in case, a file where a directory is, in either order.
        for (zip, first, second) in [
            (true, "media/A.jpg", "media/A.jpg"),
            (false, "media/A.jpg", "media/a.jpg"),
            (true, "media/A.jpg", "media/a.JPG"),
            (false, "media/a", "media/A/x.jpg"),
            (true, "media/A/x.jpg", "media/a"),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let mut writer = BagWriter::create(options(tmp.path(), "bag", zip)).unwrap();
            writer.copy_file(first, &mut &b"1"[..], true).unwrap();
            let err = match writer.copy_file(second, &mut &b"2"[..], true) {
                Err(err) => {
                    drop(writer);
                    err
                }
                Ok(_) => writer.finish(|_, _| Ok(Vec::new())).err().unwrap(),
            };
            assert!(
                matches!(err, EvidenceError::DuplicatePayloadPath { .. }),
                "{first} then {second}: {err}"
            );
            assert!(
                fs::read_dir(tmp.path()).unwrap().next().is_none(),
                "{first} then {second}: output left behind"
            );
        }
    }

    #[test]
    fn bag_info_values_must_stay_on_one_line() {
        for (label, value) in [
            ("Chatvault-Note", "two\nlines"),
            ("Chatvault-Note", "cr\r"),
            ("Payload-Oxum", "1.1"),
            ("Bad Label", "x"),
            ("Bad:Label", "x"),
            ("Chatvault-Note", " padded"),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let writer = BagWriter::create(options(tmp.path(), "bag", false)).unwrap();
            let err = writer
                .finish(|_, out| {
                    out.write_all(b"{}")?;
                    Ok(vec![(label.into(), value.into())])
                })
                .err()
                .unwrap();
            assert!(
                matches!(err, EvidenceError::InvalidBagInfo { .. }),
                "{label}: {err}"
            );
            assert!(!tmp.path().join("bag").exists());
        }
        let long = "长".repeat(300);
        let tmp = tempfile::tempdir().unwrap();
        let writer = BagWriter::create(options(tmp.path(), "bag", false)).unwrap();
        writer
            .finish(|_, out| {
                out.write_all(b"{}")?;
                Ok(vec![("Chatvault-Long".into(), long.clone())])
            })
            .unwrap();
        let info = fs::read_to_string(tmp.path().join("bag").join(BAG_INFO_TXT)).unwrap();
        assert!(info.ends_with(&format!("Chatvault-Long: {long}\n")));
    }

    #[test]
    fn unfinished_text_fails_finish() {
        let tmp = tempfile::tempdir().unwrap();
        let mut writer = BagWriter::create(options(tmp.path(), "bag", true)).unwrap();
        let _open = writer.text_file("messages.csv").unwrap();
        let err = writer.finish(|_, _| Ok(Vec::new())).err().unwrap();
        assert!(
            matches!(err, EvidenceError::UnfinishedPayload { .. }),
            "{err}"
        );
        assert!(!tmp.path().join("bag.zip").exists());
    }

    #[test]
    fn zip_name_may_be_given_with_extension_and_empty_bag_has_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let writer = BagWriter::create(options(tmp.path(), "out.zip", true)).unwrap();
        let summary = writer.finish(|_, _| Ok(Vec::new())).unwrap();
        assert_eq!(summary.path, tmp.path().join("out.zip"));
        assert_eq!(summary.payload.payload_oxum, "0.0");
        let (ok, out) = run(Command::new("unzip").arg("-l").arg(&summary.path));
        assert!(
            ok && out.contains("out/data/") && out.contains("out/bagit.txt"),
            "{out}"
        );
    }
}
