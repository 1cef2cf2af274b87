//! `chatvault verify`: checks a bundle (directory or zip) against its own manifests,
//! and optionally the source files against evidence.json.
//!
//! A zip is read entry by entry from its central directory and never extracted.
//! Paths that could escape the bag (`..`, absolute, backslashes, symlinks,
//! duplicate zip entries) are reported and never opened.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{json, Value};

use super::bag::{BAGIT_TXT, BAG_INFO_TXT, EVIDENCE_JSON, MANIFEST_TXT, TAGMANIFEST_TXT};
use super::{io_err, tee, unsafe_path_reason, zipread, EvidenceError};

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Re-hash the source files listed in evidence.json under this root.
    pub source_root: Option<PathBuf>,
}

/// Source files re-hashed against evidence.json's `sources`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceCheck {
    pub root: PathBuf,
    pub matched: Vec<String>,
    pub modified: Vec<String>,
    pub missing: Vec<String>,
    /// Entries without a path (anonymized exports record only the hash).
    pub unchecked: Vec<String>,
    /// evidence.json unreadable, refused paths, sha256_before ≠ sha256_after …
    pub problems: Vec<String>,
}

impl SourceCheck {
    pub fn ok(&self) -> bool {
        self.modified.is_empty() && self.missing.is_empty() && self.problems.is_empty()
    }
}

/// Outcome of [`verify`]. Paths are relative to the bag root ("data/…", "bag-info.txt").
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub bundle: PathBuf,
    pub is_zip: bool,
    /// SHA-256 of tagmanifest-sha256.txt as found (compare with the notarized value).
    pub bag_digest: Option<String>,
    /// SHA-256 of the zip file itself.
    pub zip_sha256: Option<String>,
    /// How many files fell in each category; the lists below keep at most
    /// [`MAX_LISTED`] paths each.
    pub totals: Totals,
    pub modified: Vec<String>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub unsafe_paths: Vec<String>,
    /// Structural faults: bad bagit.txt, Payload-Oxum mismatch, unlisted tag files …
    pub problems: Vec<String>,
    /// Why entries were reported (read errors, CRC failures); informational.
    pub details: Vec<String>,
    pub source: Option<SourceCheck>,
}

/// Counts per finding category (the lists hold at most [`MAX_LISTED`] paths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub matched: u64,
    pub modified: u64,
    pub missing: u64,
    pub extra: u64,
    pub unsafe_paths: u64,
    pub problems: u64,
    /// Details beyond the listed ones.
    pub details_omitted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finding {
    Modified,
    Missing,
    Extra,
    Unsafe,
}

impl VerifyReport {
    fn add(&mut self, finding: Finding, path: String) {
        let (list, total) = match finding {
            Finding::Modified => (&mut self.modified, &mut self.totals.modified),
            Finding::Missing => (&mut self.missing, &mut self.totals.missing),
            Finding::Extra => (&mut self.extra, &mut self.totals.extra),
            Finding::Unsafe => (&mut self.unsafe_paths, &mut self.totals.unsafe_paths),
        };
        *total += 1;
        if list.len() < MAX_LISTED {
            list.push(path);
        }
    }

    fn problem(&mut self, problem: String) {
        self.totals.problems += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(problem);
        }
    }

    fn detail(&mut self, detail: String) {
        if self.details.len() < MAX_LISTED {
            self.details.push(detail);
        } else {
            self.totals.details_omitted += 1;
        }
    }

    /// Sorts the lists; a path reported twice (say, an unsafe name both listed in a
    /// manifest and found in the walk) counts once.
    fn finish_lists(&mut self) {
        for (list, total) in [
            (&mut self.modified, &mut self.totals.modified),
            (&mut self.missing, &mut self.totals.missing),
            (&mut self.extra, &mut self.totals.extra),
            (&mut self.unsafe_paths, &mut self.totals.unsafe_paths),
        ] {
            let before = list.len();
            list.sort();
            list.dedup();
            *total -= (before - list.len()) as u64;
        }
    }

    /// True only if every hash matched and nothing is missing, extra, unsafe or wrong.
    pub fn ok(&self) -> bool {
        self.modified.is_empty()
            && self.missing.is_empty()
            && self.extra.is_empty()
            && self.unsafe_paths.is_empty()
            && self.problems.is_empty()
            && self.source.as_ref().is_none_or(SourceCheck::ok)
    }

    pub fn to_json(&self) -> Value {
        let source = self.source.as_ref().map(|s| {
            json!({
                "root": s.root.display().to_string(),
                "ok": s.ok(),
                "matched": s.matched,
                "modified": s.modified,
                "missing": s.missing,
                "unchecked": s.unchecked,
                "problems": s.problems,
            })
        });
        json!({
            "bundle": self.bundle.display().to_string(),
            "kind": if self.is_zip { "zip" } else { "directory" },
            "ok": self.ok(),
            "bag_digest": self.bag_digest,
            "zip_sha256": self.zip_sha256,
            "counts": {
                "matched": self.totals.matched,
                "modified": self.totals.modified,
                "missing": self.totals.missing,
                "extra": self.totals.extra,
                "unsafe": self.totals.unsafe_paths,
                "problems": self.totals.problems,
            },
            "listed_at_most": MAX_LISTED,
            "modified": self.modified,
            "missing": self.missing,
            "extra": self.extra,
            "unsafe_paths": self.unsafe_paths,
            "problems": self.problems,
            "details": self.details,
            "source": source,
        })
    }

    /// Human-readable: counts first, then the paths that did not match.
    pub fn render(&self) -> String {
        let mut out = format!(
            "bundle: {} ({})\n",
            self.bundle.display(),
            if self.is_zip { "zip" } else { "directory" }
        );
        if let Some(digest) = &self.bag_digest {
            out.push_str(&format!("bag digest: {digest}\n"));
        }
        if let Some(digest) = &self.zip_sha256 {
            out.push_str(&format!("zip sha256: {digest}\n"));
        }
        out.push_str(&format!(
            "matched {} / modified {} / missing {} / extra {}",
            self.totals.matched, self.totals.modified, self.totals.missing, self.totals.extra
        ));
        if !self.unsafe_paths.is_empty() || !self.problems.is_empty() {
            out.push_str(&format!(
                " / unsafe {} / problems {}",
                self.totals.unsafe_paths, self.totals.problems
            ));
        }
        out.push('\n');
        let listed = [
            self.totals.modified,
            self.totals.missing,
            self.totals.extra,
            self.totals.unsafe_paths,
            self.totals.problems,
        ];
        if listed.iter().any(|&n| n > MAX_LISTED as u64) || self.totals.details_omitted > 0 {
            out.push_str(&format!(
                "(each list below shows at most {MAX_LISTED} paths; the counts are complete)\n"
            ));
        }
        let mut section = |title: &str, items: &[String]| {
            if !items.is_empty() {
                out.push_str(title);
                out.push_str(":\n");
                for item in items {
                    out.push_str("  ");
                    out.push_str(item);
                    out.push('\n');
                }
            }
        };
        section("modified", &self.modified);
        section("missing", &self.missing);
        section("extra", &self.extra);
        section("unsafe paths (not opened)", &self.unsafe_paths);
        section("problems", &self.problems);
        section("details", &self.details);
        if let Some(s) = &self.source {
            out.push_str(&format!(
                "source {}: matched {} / modified {} / missing {} / unchecked {}\n",
                s.root.display(),
                s.matched.len(),
                s.modified.len(),
                s.missing.len(),
                s.unchecked.len()
            ));
            let mut section = |title: &str, items: &[String]| {
                if !items.is_empty() {
                    out.push_str(&format!("source {title}:\n"));
                    for item in items {
                        out.push_str("  ");
                        out.push_str(item);
                        out.push('\n');
                    }
                }
            };
            section("modified", &s.modified);
            section("missing", &s.missing);
            section("problems", &s.problems);
        }
        out.push_str(if self.ok() {
            "result: OK\n"
        } else {
            "result: TAMPERED\n"
        });
        out
    }
}

/// Result of hashing one listed file.
enum Hashed {
    Digest(String),
    Missing,
    /// Present but unreadable or corrupt (zip CRC/inflate failure …).
    Unreadable(String),
    Unsafe(&'static str),
}

/// What a walk of the bag's files finds.
enum Found<'a> {
    /// A regular file, relative to the bag root, with its size.
    File(&'a str, u64),
    /// Something never opened (a symlink, special file, unsafe or duplicate name).
    Unsafe(String, String),
}

/// What verify needs from a bag, whether a directory or a zip. Nothing here holds the
/// bag's file list: files are walked once, streaming, at the end.
trait BagSource: Sync {
    /// Calls `visit` for every file in the bag (a directory walk or the zip's central
    /// directory); a failure to list is returned.
    fn walk(&self, visit: &mut dyn FnMut(Found)) -> Result<(), String>;
    /// A streaming reader of a file; `None` if absent.
    fn open(&self, rel: &str) -> Result<Option<Box<dyn Read + Send + '_>>, String>;
    fn hash(&self, rel: &str) -> Hashed;

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

/// Paths kept word for word per finding category; beyond this only their number is
/// counted, so a report's memory is bounded whatever the bag holds.
pub const MAX_LISTED: usize = 10_000;
/// A manifest line longer than this is malformed (no path needs 64 KiB).
const MAX_MANIFEST_LINE: usize = 64 * 1024;
/// Tag files read whole (bagit.txt, bag-info.txt, evidence.json for `--source`).
const MAX_TAG_FILE: u64 = 64 << 20;
/// Manifest entries hashed in parallel at a time.
const HASH_BATCH: usize = 2048;

/// A 128-bit digest of a bag-relative path: what is kept of every listed path, so
/// that memory is 16 bytes per file rather than its name. Truncated SHA-256: no one
/// can make two paths collide.
fn path_key(rel: &str) -> u128 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(rel.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(bytes)
}

/// The keys are already uniform: hash them by their low bits.
#[derive(Default)]
struct KeyHasher(u64);

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

type KeyBuild = std::hash::BuildHasherDefault<KeyHasher>;
type PathSet = HashSet<u128, KeyBuild>;

/// Verifies a bundle directory or zip.
pub fn verify(bundle: &Path, opts: &VerifyOptions) -> Result<VerifyReport, EvidenceError> {
    let meta = bundle.metadata().map_err(|e| EvidenceError::NotABundle {
        path: bundle.to_path_buf(),
        reason: format!("cannot open it: {e}"),
    })?;
    let mut report = VerifyReport {
        bundle: bundle.to_path_buf(),
        is_zip: !meta.is_dir(),
        ..VerifyReport::default()
    };
    if meta.is_dir() {
        let bag = DirBag::open(bundle)?;
        check_bag(&bag, &mut report);
        check_sidecar_dir(bundle, &mut report);
        finish_with_sources(&bag, opts, &mut report);
    } else {
        let Some(bag) = ZipBag::open(bundle, &mut report)? else {
            report.finish_lists();
            return Ok(report);
        };
        let (zip_digest, ()) = rayon::join(|| hash_file(bundle), || check_bag(&bag, &mut report));
        match zip_digest {
            Ok(digest) => report.zip_sha256 = Some(digest),
            Err(e) => report.problem(format!("cannot read the zip: {e}")),
        }
        check_sidecar_zip(bundle, &mut report);
        finish_with_sources(&bag, opts, &mut report);
    }
    Ok(report)
}

fn finish_with_sources(bag: &dyn BagSource, opts: &VerifyOptions, report: &mut VerifyReport) {
    if let Some(root) = &opts.source_root {
        let evidence = bag.read_tag(EVIDENCE_JSON);
        report.source = Some(check_sources(evidence, root));
    }
    report.finish_lists();
}

/// The checks shared by directory and zip bags: every manifest entry hashed (streamed
/// in batches), then one walk of the bag for files no manifest lists.
fn check_bag(bag: &dyn BagSource, report: &mut VerifyReport) {
    match bag.read_tag(BAGIT_TXT) {
        Ok(Some(bytes)) => check_declaration(&bytes, report),
        Ok(None) => report.add(Finding::Missing, BAGIT_TXT.to_string()),
        Err(e) => report.problem(format!("{BAGIT_TXT}: {e}")),
    }
    report.bag_digest = match bag.open(TAGMANIFEST_TXT) {
        Ok(Some(mut reader)) => tee::with_buffer(|buf| tee::hash_reader(&mut reader, buf, None))
            .ok()
            .map(|(digest, _)| digest),
        _ => None,
    };
    let mut listed = PathSet::default();
    hash_manifest(bag, MANIFEST_TXT, report, &mut listed, |rel| {
        (!rel.starts_with("data/"))
            .then(|| format!("{MANIFEST_TXT} lists {rel}, which is not under data/"))
    });
    let mut covered = [false; 3];
    let tags_present = hash_manifest(bag, TAGMANIFEST_TXT, report, &mut listed, |rel| {
        for (seen, required) in covered
            .iter_mut()
            .zip([BAGIT_TXT, BAG_INFO_TXT, MANIFEST_TXT])
        {
            *seen |= rel == required;
        }
        (rel.starts_with("data/") || rel == TAGMANIFEST_TXT)
            .then(|| format!("{TAGMANIFEST_TXT} lists {rel}, which is not a tag file it may cover"))
    });
    if tags_present {
        for (seen, required) in covered.iter().zip([BAGIT_TXT, BAG_INFO_TXT, MANIFEST_TXT]) {
            if !seen {
                report.problem(format!("{TAGMANIFEST_TXT} does not cover {required}"));
            }
        }
    }

    // Anything on disk (or in the zip) that no manifest covers.
    let (mut payload_bytes, mut payload_count) = (0u64, 0u64);
    let walked = bag.walk(&mut |found| match found {
        Found::File(rel, size) => {
            if rel.starts_with("data/") {
                payload_bytes += size;
                payload_count += 1;
            }
            if rel != TAGMANIFEST_TXT && rel != BAGIT_TXT && !listed.contains(&path_key(rel)) {
                report.add(Finding::Extra, rel.to_string());
            }
        }
        Found::Unsafe(rel, why) => {
            report.detail(format!("{rel}: {why}"));
            report.add(Finding::Unsafe, rel);
        }
    });
    if let Err(e) = walked {
        report.problem(format!("cannot list the bag: {e}"));
    }
    drop(listed);
    check_oxum(bag, payload_bytes, payload_count, report);
    check_evidence_manifest_digest(bag, report);
}

/// Streams one manifest: parses each line, hashes its files in parallel batches and
/// records the outcome; every listed path goes into `listed` (as a key). `misplaced`
/// says why a path does not belong in this manifest. Returns whether it exists.
fn hash_manifest(
    bag: &dyn BagSource,
    name: &str,
    report: &mut VerifyReport,
    listed: &mut PathSet,
    mut misplaced: impl FnMut(&str) -> Option<String>,
) -> bool {
    let reader = match bag.open(name) {
        Ok(Some(reader)) => reader,
        Ok(None) => {
            report.add(Finding::Missing, name.to_string());
            return false;
        }
        Err(e) => {
            report.problem(format!("{name}: {e}"));
            return true;
        }
    };
    let mut reader = io::BufReader::with_capacity(256 * 1024, reader);
    let mut batch: Vec<(String, String)> = Vec::with_capacity(HASH_BATCH);
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        let read = read_capped_line(&mut reader, &mut line, MAX_MANIFEST_LINE);
        let too_long = match read {
            Ok(Some(too_long)) => too_long,
            Ok(None) => break,
            Err(e) => {
                report.problem(format!("{name}: cannot read it: {e}"));
                break;
            }
        };
        number += 1;
        if too_long {
            report.problem(format!(
                "{name} line {number}: longer than {MAX_MANIFEST_LINE} bytes"
            ));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            report.problem(format!("{name} line {number}: not valid UTF-8"));
            continue;
        };
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            continue;
        }
        let Some((digest, path)) = text.split_once([' ', '\t']) else {
            report.problem(format!("{name} line {number}: not \"<sha256>  <path>\""));
            continue;
        };
        let path = percent_decode(path.trim_start_matches([' ', '\t']));
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            report.problem(format!("{name} line {number}: {digest:?} is not a SHA-256"));
            continue;
        }
        if let Some(why) = unsafe_path_reason(&path) {
            report.detail(format!("{name} lists {path:?}: {why}"));
            report.add(Finding::Unsafe, path);
            continue;
        }
        if !listed.insert(path_key(&path)) {
            report.problem(format!("{name} lists {path} more than once"));
            continue;
        }
        if let Some(problem) = misplaced(&path) {
            report.problem(problem);
        }
        batch.push((path, digest.to_ascii_lowercase()));
        if batch.len() == HASH_BATCH {
            hash_batch(bag, &mut batch, report);
        }
    }
    hash_batch(bag, &mut batch, report);
    true
}

fn hash_batch(bag: &dyn BagSource, batch: &mut Vec<(String, String)>, report: &mut VerifyReport) {
    let outcomes: Vec<Hashed> = batch.par_iter().map(|(rel, _)| bag.hash(rel)).collect();
    for ((rel, expected), outcome) in batch.drain(..).zip(outcomes) {
        match outcome {
            Hashed::Digest(actual) if actual == expected => report.totals.matched += 1,
            Hashed::Digest(_) => report.add(Finding::Modified, rel),
            Hashed::Missing => report.add(Finding::Missing, rel),
            Hashed::Unreadable(why) => {
                report.detail(format!("{rel}: {why}"));
                report.add(Finding::Modified, rel);
            }
            Hashed::Unsafe(why) => {
                report.detail(format!("{rel}: {why}"));
                report.add(Finding::Unsafe, rel);
            }
        }
    }
}

/// Reads one line (without its `\n`) into `line`, keeping at most `cap` bytes.
/// `Ok(None)` at the end; `Ok(Some(true))` for a line longer than `cap`, whose rest is
/// skipped without being kept.
fn read_capped_line(
    reader: &mut impl io::BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<bool>> {
    line.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (chunk, used, ended) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (&buf[..at], at + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = cap.saturating_sub(line.len());
        if chunk.len() > room {
            too_long = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        reader.consume(used);
        if ended {
            return Ok(Some(too_long));
        }
    }
}

fn check_declaration(bytes: &[u8], report: &mut VerifyReport) {
    let fields = parse_tag_fields(bytes);
    let version = fields
        .iter()
        .find(|(k, _)| k == "BagIt-Version")
        .map(|(_, v)| v.as_str());
    let encoding = fields
        .iter()
        .find(|(k, _)| k == "Tag-File-Character-Encoding")
        .map(|(_, v)| v.as_str());
    if !matches!(version, Some("1.0") | Some("0.97")) {
        report.problem(format!(
            "{BAGIT_TXT}: BagIt-Version is {version:?}, expected 1.0"
        ));
    }
    if !encoding.is_some_and(|e| e.eq_ignore_ascii_case("UTF-8")) {
        report.problem(format!(
            "{BAGIT_TXT}: Tag-File-Character-Encoding is {encoding:?}, expected UTF-8"
        ));
    }
}

/// "Label: value" lines; continuation lines (leading whitespace) are joined.
fn parse_tag_fields(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((label, value)) = line.split_once(':') {
            fields.push((label.trim().to_string(), value.trim().to_string()));
        }
    }
    fields
}

/// RFC 8493 §2.1.3: manifests percent-encode CR, LF and % in paths.
fn percent_decode(path: &str) -> String {
    path.replace("%0D", "\r")
        .replace("%0d", "\r")
        .replace("%0A", "\n")
        .replace("%0a", "\n")
        .replace("%25", "%")
}

fn check_oxum(bag: &dyn BagSource, bytes: u64, count: u64, report: &mut VerifyReport) {
    let info = match bag.read_tag(BAG_INFO_TXT) {
        Ok(Some(info)) => info,
        _ => return, // reported as missing or unreadable already
    };
    let fields = parse_tag_fields(&info);
    let Some((_, oxum)) = fields.iter().find(|(k, _)| k == "Payload-Oxum") else {
        report.problem(format!("{BAG_INFO_TXT} has no Payload-Oxum"));
        return;
    };
    let expected = format!("{bytes}.{count}");
    if *oxum != expected {
        report.problem(format!(
            "Payload-Oxum is {oxum} but the payload holds {expected} (bytes.files)"
        ));
    }
}

/// evidence.json records the manifest's SHA-256; if it does, it must agree. Both are
/// streamed: evidence.json may list tens of thousands of source files.
fn check_evidence_manifest_digest(bag: &dyn BagSource, report: &mut VerifyReport) {
    #[derive(serde::Deserialize)]
    struct Recorded {
        manifest_sha256: Option<String>,
    }
    let Ok(Some(evidence)) = bag.open(EVIDENCE_JSON) else {
        return;
    };
    let recorded: Recorded = match serde_json::from_reader(io::BufReader::new(evidence)) {
        Ok(recorded) => recorded,
        Err(_) => {
            report.problem(format!("{EVIDENCE_JSON} is not valid JSON"));
            return;
        }
    };
    let Some(recorded) = recorded.manifest_sha256 else {
        return;
    };
    let Ok(Some(mut manifest)) = bag.open(MANIFEST_TXT) else {
        return;
    };
    let Ok((actual, _)) = tee::with_buffer(|buf| tee::hash_reader(&mut manifest, buf, None)) else {
        return;
    };
    if !recorded.eq_ignore_ascii_case(&actual) {
        report.problem(format!(
            "{EVIDENCE_JSON} records manifest_sha256 {recorded}, but {MANIFEST_TXT} hashes differently"
        ));
    }
}

/// NAME.sha256 beside a directory bag: "<bag digest>  NAME/tagmanifest-sha256.txt".
fn check_sidecar_dir(bundle: &Path, report: &mut VerifyReport) {
    let Some(name) = bundle.file_name() else {
        return;
    };
    let mut sidecar = bundle.as_os_str().to_owned();
    sidecar.push(".sha256");
    let expected_path = format!("{}/{TAGMANIFEST_TXT}", name.to_string_lossy());
    let actual = report.bag_digest.clone();
    check_sidecar(Path::new(&sidecar), &expected_path, actual, report);
}

/// NAME.zip.sha256 beside a zip: "<zip sha256>  NAME.zip".
fn check_sidecar_zip(bundle: &Path, report: &mut VerifyReport) {
    let Some(name) = bundle.file_name() else {
        return;
    };
    let mut sidecar = bundle.as_os_str().to_owned();
    sidecar.push(".sha256");
    let actual = report.zip_sha256.clone();
    check_sidecar(Path::new(&sidecar), &name.to_string_lossy(), actual, report);
}

fn check_sidecar(
    sidecar: &Path,
    expected_path: &str,
    actual: Option<String>,
    report: &mut VerifyReport,
) {
    let Ok(text) = std::fs::read_to_string(sidecar) else {
        return; // no sidecar beside the bundle: nothing to compare
    };
    let shown = sidecar.display();
    let line = text.lines().next().unwrap_or_default();
    match super::hashsum::parse_line(line) {
        Some((path, digest)) if path == expected_path => {
            if actual.as_deref() != Some(digest.to_ascii_lowercase().as_str()) {
                report.problem(format!(
                    "{shown} records {digest}, but the bundle hashes to {}",
                    actual.as_deref().unwrap_or("nothing")
                ));
            }
        }
        _ => report.problem(format!("{shown} is not \"<sha256>  {expected_path}\"")),
    }
}

/// Re-hashes the sources listed in evidence.json under `root`.
fn check_sources(evidence: Result<Option<Vec<u8>>, String>, root: &Path) -> SourceCheck {
    let mut check = SourceCheck {
        root: root.to_path_buf(),
        ..SourceCheck::default()
    };
    let value = match evidence {
        Ok(Some(bytes)) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => value,
            Err(e) => {
                check
                    .problems
                    .push(format!("{EVIDENCE_JSON} is not valid JSON: {e}"));
                return check;
            }
        },
        Ok(None) => {
            check
                .problems
                .push(format!("the bundle has no {EVIDENCE_JSON}"));
            return check;
        }
        Err(e) => {
            check.problems.push(format!("{EVIDENCE_JSON}: {e}"));
            return check;
        }
    };
    let Some(sources) = value.get("sources").and_then(Value::as_array) else {
        check
            .problems
            .push(format!("{EVIDENCE_JSON} has no \"sources\" array"));
        return check;
    };
    struct Wanted {
        path: String,
        size: Option<u64>,
        sha256: String,
    }
    let mut wanted = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let before = source.get("sha256_before").and_then(Value::as_str);
        let after = source.get("sha256_after").and_then(Value::as_str);
        let label = source
            .get("path")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "sources[{index}] ({})",
                    after.or(before).unwrap_or("no hash")
                )
            });
        let Some(path) = source.get("path").and_then(Value::as_str) else {
            check.unchecked.push(label);
            continue;
        };
        let (Some(before), Some(after)) = (before, after) else {
            check
                .problems
                .push(format!("{label}: sha256_before or sha256_after is missing"));
            continue;
        };
        if !before.eq_ignore_ascii_case(after) {
            check.problems.push(format!(
                "{label}: changed while it was exported (sha256_before ≠ sha256_after)"
            ));
        }
        if let Some(why) = unsafe_path_reason(path) {
            check.problems.push(format!("{label}: refused, {why}"));
            continue;
        }
        wanted.push(Wanted {
            path: path.to_string(),
            size: source.get("size").and_then(Value::as_u64),
            sha256: after.to_ascii_lowercase(),
        });
    }
    enum Outcome {
        Matched,
        Modified,
        Missing,
        Unreadable(String),
    }
    let outcomes: Vec<(String, Outcome)> = wanted
        .par_iter()
        .map(|w| {
            let full = root.join(&w.path);
            let outcome = match full.metadata() {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Missing,
                Err(e) => Outcome::Unreadable(e.to_string()),
                // A different size needs no hashing to be called modified.
                Ok(meta) if w.size.is_some_and(|s| s != meta.len()) => Outcome::Modified,
                Ok(_) => match hash_file(&full) {
                    Ok(digest) if digest == w.sha256 => Outcome::Matched,
                    Ok(_) => Outcome::Modified,
                    Err(e) => Outcome::Unreadable(e.to_string()),
                },
            };
            (w.path.clone(), outcome)
        })
        .collect();
    for (path, outcome) in outcomes {
        match outcome {
            Outcome::Matched => check.matched.push(path),
            Outcome::Modified => check.modified.push(path),
            Outcome::Missing => check.missing.push(path),
            Outcome::Unreadable(why) => {
                check
                    .problems
                    .push(format!("{path}: cannot read it: {why}"));
                check.modified.push(path);
            }
        }
    }
    check
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut file = tee::open_regular(path)?;
    crate::digest::sha256_reader(&mut file).map(|(digest, _)| digest)
}

/// A bag on disk.
struct DirBag {
    root: PathBuf,
}

impl DirBag {
    fn open(root: &Path) -> Result<DirBag, EvidenceError> {
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
    fn resolve(&self, rel: &str) -> Result<Option<PathBuf>, &'static str> {
        let mut path = self.root.clone();
        let components: Vec<&str> = rel.split('/').collect();
        for (index, component) in components.iter().enumerate() {
            path.push(component);
            match path.symlink_metadata() {
                Err(_) => return Ok(None),
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err("a symlink on the way, not followed")
                }
                Ok(meta) if index + 1 == components.len() && !meta.is_file() => {
                    return Err("not a regular file")
                }
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
            Err(why) => Err(why.to_string()),
        }
    }

    fn hash(&self, rel: &str) -> Hashed {
        match self.resolve(rel) {
            Ok(Some(path)) => match hash_file(&path) {
                Ok(digest) => Hashed::Digest(digest),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Hashed::Missing,
                Err(e) => Hashed::Unreadable(e.to_string()),
            },
            Ok(None) => Hashed::Missing,
            Err(why) => Hashed::Unsafe(why),
        }
    }
}

/// A zip entry of the bag, as verify keeps it.
#[derive(Clone, Copy)]
struct Indexed {
    entry: zipread::Entry,
    /// Several entries have this name: other tools may extract any of them.
    duplicated: bool,
}

/// A zipped bag: entries under one top-level directory, read from the central
/// directory without extracting anything.
struct ZipBag {
    zip: zipread::ZipReader,
    /// "NAME/"
    prefix: String,
    /// Bag-relative path (as a key) → entry, for regular-file entries in the bag.
    index: HashMap<u128, Indexed, KeyBuild>,
}

impl ZipBag {
    /// `Ok(None)`: a zip too damaged to read (reported in `report`).
    fn open(path: &Path, report: &mut VerifyReport) -> Result<Option<ZipBag>, EvidenceError> {
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
                report.problem(format!("the zip's central directory cannot be read: {e}"));
                return Ok(None);
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
            report.problem(format!("the zip's central directory is damaged: {e}"));
            return Ok(None);
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
        };
        // Second pass: index the bag's files; report what is never opened.
        let mut findings: Vec<(Finding, String, Option<String>)> = Vec::new();
        let mut note = |finding, name: String, why: Option<String>| {
            if findings.len() < 4 * MAX_LISTED {
                findings.push((finding, name, why));
            }
        };
        let prefix = bag.prefix.clone();
        let index = &mut bag.index;
        let second = bag.zip.for_each(|record| {
            let name = String::from_utf8_lossy(record.name).into_owned();
            if let Some(why) = unsafe_path_reason(name.trim_end_matches('/')) {
                note(
                    Finding::Unsafe,
                    name.clone(),
                    Some(format!("{name:?}: {why}")),
                );
                return Ok(());
            }
            if record.is_symlink {
                note(
                    Finding::Unsafe,
                    name.clone(),
                    Some(format!("{name}: a symlink entry")),
                );
                return Ok(());
            }
            let Some(rel) = name.strip_prefix(&prefix) else {
                if !record.is_dir {
                    note(Finding::Extra, name, None);
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
                    note(Finding::Unsafe, name, Some(why));
                }
            }
            Ok(())
        });
        for (finding, name, why) in findings {
            if let Some(why) = why {
                report.detail(why);
            }
            report.add(finding, name);
        }
        if let Err(e) = second {
            report.problem(format!("the zip's central directory is damaged: {e}"));
            return Ok(None);
        }
        Ok(Some(bag))
    }
}

impl BagSource for ZipBag {
    fn walk(&self, visit: &mut dyn FnMut(Found)) -> Result<(), String> {
        let mut reported: HashSet<u128, KeyBuild> = HashSet::default();
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

    fn hash(&self, rel: &str) -> Hashed {
        let Some(indexed) = self.index.get(&path_key(rel)) else {
            return Hashed::Missing;
        };
        if indexed.duplicated {
            return Hashed::Unsafe("several zip entries have this name");
        }
        let mut entry = match self.zip.open_entry(&indexed.entry) {
            Ok(entry) => entry,
            Err(e) => return Hashed::Unreadable(format!("{}{rel} ({e})", self.prefix)),
        };
        // Reading to the end checks the size and CRC; a damaged deflate stream or a
        // CRC mismatch surfaces here as an error, not a panic.
        match tee::with_buffer(|buf| tee::hash_reader(&mut entry, buf, None)) {
            Ok((digest, _)) => Hashed::Digest(digest),
            Err(e) => Hashed::Unreadable(format!("{}{rel} ({e})", self.prefix)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

    use std::fs::File;

    use zip::ZipArchive;

    use super::super::testkit::{options, write_sample};
    use super::*;

    /// A bag (dir or zip) plus a source root recorded in its evidence.json.
    fn sample(zip: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source");
        fs::create_dir_all(source.join("db")).unwrap();
        fs::write(source.join("db/EnMicroMsg.db"), b"sqlite bytes").unwrap();
        fs::write(source.join("db/EnMicroMsg.db-wal"), b"wal bytes").unwrap();
        let summary = write_sample(options(tmp.path(), "bag", zip), Some(&source));
        (tmp, summary.path, source)
    }

    fn check(bundle: &Path) -> VerifyReport {
        verify(bundle, &VerifyOptions::default()).unwrap()
    }

    fn flip_byte(path: &Path, offset: u64) {
        let mut bytes = fs::read(path).unwrap();
        bytes[offset as usize] ^= 0x55;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn untouched_bags_pass_with_sources() {
        for zip in [false, true] {
            let (_tmp, bundle, source) = sample(zip);
            let report = verify(
                &bundle,
                &VerifyOptions {
                    source_root: Some(source),
                },
            )
            .unwrap();
            assert!(report.ok(), "{}", report.render());
            assert_eq!(report.totals.matched, 8 + 4, "{}", report.render());
            let sources = report.source.as_ref().unwrap();
            assert_eq!(sources.matched.len(), 2);
            assert_eq!(sources.unchecked.len(), 1);
            assert!(report.bag_digest.is_some());
            assert_eq!(report.zip_sha256.is_some(), zip);
            assert_eq!(report.to_json()["ok"], true);
            assert!(report.render().contains("result: OK"));
        }
    }

    #[test]
    fn directory_tampering_is_reported_by_category() {
        type Case = (&'static str, fn(&Path), fn(&VerifyReport) -> bool);
        let cases: [Case; 6] = [
            (
                "flipped payload byte",
                |b| flip_byte(&b.join("data/messages.csv"), 10),
                |r| r.modified == ["data/messages.csv"] && r.missing.is_empty(),
            ),
            (
                "deleted payload",
                |b| fs::remove_file(b.join("data/media/g2/voice.amr")).unwrap(),
                |r| {
                    r.missing == ["data/media/g2/voice.amr"]
                        && r.problems.iter().any(|p| p.contains("Payload-Oxum"))
                },
            ),
            (
                "added payload",
                |b| fs::write(b.join("data/new.txt"), b"x").unwrap(),
                |r| r.extra == ["data/new.txt"] && r.modified.is_empty(),
            ),
            (
                "edited bag-info",
                |b| {
                    let path = b.join(BAG_INFO_TXT);
                    let text = fs::read_to_string(&path).unwrap().replace("excel", "none");
                    fs::write(path, text).unwrap();
                },
                |r| r.modified == [BAG_INFO_TXT],
            ),
            (
                "edited evidence.json",
                |b| {
                    let mut f = fs::OpenOptions::new()
                        .append(true)
                        .open(b.join(EVIDENCE_JSON))
                        .unwrap();
                    f.write_all(b" ").unwrap();
                },
                |r| r.modified == [EVIDENCE_JSON],
            ),
            (
                "symlink in payload",
                |b| {
                    std::os::unix::fs::symlink("/etc/passwd", b.join("data/link")).unwrap();
                },
                |r| r.unsafe_paths == ["data/link"],
            ),
        ];
        for (what, tamper, expected) in cases {
            let (_tmp, bundle, _) = sample(false);
            tamper(&bundle);
            let report = check(&bundle);
            assert!(!report.ok(), "{what}");
            assert!(expected(&report), "{what}: {}", report.render());
            assert!(report.render().contains("result: TAMPERED"));
        }
    }

    #[test]
    fn modified_source_and_sidecar_are_reported() {
        let (tmp, bundle, source) = sample(false);
        fs::write(source.join("db/EnMicroMsg.db-wal"), b"WAL bytes").unwrap();
        fs::remove_file(source.join("db/EnMicroMsg.db")).unwrap();
        let report = verify(
            &bundle,
            &VerifyOptions {
                source_root: Some(source),
            },
        )
        .unwrap();
        let sources = report.source.as_ref().unwrap();
        assert_eq!(sources.modified, ["db/EnMicroMsg.db-wal"]);
        assert_eq!(sources.missing, ["db/EnMicroMsg.db"]);
        assert!(!report.ok());
        assert!(report.modified.is_empty());

        fs::write(
            tmp.path().join("bag.sha256"),
            format!("{}  bag/tagmanifest-sha256.txt\n", "0".repeat(64)),
        )
        .unwrap();
        let report = check(&bundle);
        assert!(
            report.problems.iter().any(|p| p.contains("bag.sha256")),
            "{}",
            report.render()
        );
    }

    #[test]
    fn flipped_byte_inside_zip_entry_is_modified_not_a_panic() {
        let (_tmp, zip, _) = sample(true);
        let (stored_at, deflated_at) = {
            let mut archive = ZipArchive::new(File::open(&zip).unwrap()).unwrap();
            let stored = archive
                .by_name("bag/data/media/g1/photo 1.jpg")
                .unwrap()
                .data_start();
            let deflated = archive.by_name("bag/data/messages.csv").unwrap();
            (
                stored,
                deflated.data_start() + deflated.compressed_size() / 2,
            )
        };
        for offset in [stored_at + 100, deflated_at] {
            let copy = zip.with_file_name(format!("copy{offset}.zip"));
            fs::copy(&zip, &copy).unwrap();
            flip_byte(&copy, offset);
            let report = check(&copy);
            assert!(!report.ok());
            assert_eq!(report.modified.len(), 1, "{}", report.render());
            assert!(
                report.modified[0].starts_with("data/"),
                "{}",
                report.render()
            );
        }
        // The untouched zip still passes, and its sidecar matches.
        assert!(check(&zip).ok());
    }

    #[test]
    fn a_huge_manifest_line_and_many_findings_stay_bounded() {
        let (_tmp, bundle, _source) = sample(false);
        let manifest = bundle.join(MANIFEST_TXT);
        let mut text = fs::read_to_string(&manifest).unwrap();
        // One line of 1 MiB, then more missing files than any list keeps.
        text.push_str(&format!(
            "{}  data/{}\n",
            "0".repeat(64),
            "x".repeat(1 << 20)
        ));
        for i in 0..(MAX_LISTED + 500) {
            text.push_str(&format!("{}  data/gone/{i}.txt\n", "0".repeat(64)));
        }
        fs::write(&manifest, text).unwrap();
        let report = check(&bundle);
        assert!(!report.ok());
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("longer than 65536 bytes")),
            "{:?}",
            report.problems
        );
        assert_eq!(report.totals.missing, (MAX_LISTED + 500) as u64);
        assert_eq!(report.missing.len(), MAX_LISTED);
        assert_eq!(
            report.totals.matched,
            8 + 4 - 1,
            "the manifest itself no longer matches"
        );
        assert_eq!(report.totals.modified, 1);
        let json = report.to_json();
        assert_eq!(json["counts"]["missing"], (MAX_LISTED + 500) as u64);
        assert!(report.render().contains("at most 10000 paths"));
    }

    #[test]
    fn zip_with_escaping_entries_is_refused() {
        let (tmp, zip, _) = sample(true);
        let evil = tmp.path().join("evil.zip");
        fs::copy(&zip, &evil).unwrap();
        {
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&evil)
                .unwrap();
            let mut writer = zip::ZipWriter::new_append(file).unwrap();
            let opts = zip::write::SimpleFileOptions::default();
            writer.start_file("../evil", opts).unwrap();
            writer.write_all(b"pwned").unwrap();
            writer.start_file("bag/data/a\\..\\..\\x", opts).unwrap();
            writer.write_all(b"pwned").unwrap();
            writer.start_file("other/readme.txt", opts).unwrap();
            writer.write_all(b"hi").unwrap();
            writer.finish().unwrap();
        }
        let report = check(&evil);
        assert_eq!(
            report.unsafe_paths,
            ["../evil", "bag/data/a\\..\\..\\x"],
            "{}",
            report.render()
        );
        assert_eq!(report.extra, ["other/readme.txt"]);
        assert!(report.modified.is_empty() && report.missing.is_empty());
        assert!(!report.ok());
    }

    #[test]
    fn non_bundles_are_told_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let text = tmp.path().join("notes.txt");
        fs::write(&text, b"hello").unwrap();
        let plain_zip = tmp.path().join("plain.zip");
        {
            let mut writer = zip::ZipWriter::new(File::create(&plain_zip).unwrap());
            writer
                .start_file("x/readme.txt", zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(b"hi").unwrap();
            writer.finish().unwrap();
        }
        for path in [empty, text, plain_zip, tmp.path().join("absent")] {
            let err = verify(&path, &VerifyOptions::default()).err().unwrap();
            assert!(err.is_not_a_bundle(), "{}: {err}", path.display());
        }
        // A zip whose end is cut off is damaged, not "not a bundle".
        let (_tmp, zip, _) = sample(true);
        let bytes = fs::read(&zip).unwrap();
        fs::write(&zip, &bytes[..bytes.len() - 30]).unwrap();
        let report = check(&zip);
        assert!(
            !report.ok() && !report.problems.is_empty(),
            "{}",
            report.render()
        );
    }
}
