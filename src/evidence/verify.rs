//! `chatvault verify`: checks a bundle (directory or zip) against its own manifests,
//! and optionally the source files against evidence.json.
//!
//! A zip is read entry by entry from its central directory and never extracted.
//! Paths that could escape the bag (`..`, absolute, backslashes, symlinks,
//! duplicate zip entries) are reported and never opened.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::{json, Value};
use zip::ZipArchive;

use super::bag::{BAGIT_TXT, BAG_INFO_TXT, EVIDENCE_JSON, MANIFEST_TXT, TAGMANIFEST_TXT};
use super::tee;
use super::{io_err, unsafe_path_reason, EvidenceError};

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
    pub matched: Vec<String>,
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

impl VerifyReport {
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
                "matched": self.matched.len(),
                "modified": self.modified.len(),
                "missing": self.missing.len(),
                "extra": self.extra.len(),
                "unsafe": self.unsafe_paths.len(),
                "problems": self.problems.len(),
            },
            "matched": self.matched,
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
            self.matched.len(),
            self.modified.len(),
            self.missing.len(),
            self.extra.len()
        ));
        if !self.unsafe_paths.is_empty() || !self.problems.is_empty() {
            out.push_str(&format!(
                " / unsafe {} / problems {}",
                self.unsafe_paths.len(),
                self.problems.len()
            ));
        }
        out.push('\n');
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

/// What verify needs from a bag, whether a directory or a zip.
trait BagSource: Sync {
    /// Every regular file, relative to the bag root, with its size.
    fn files(&self) -> &BTreeMap<String, u64>;
    /// A small tag file's bytes; `None` if absent.
    fn read_tag(&self, rel: &str) -> Result<Option<Vec<u8>>, String>;
    fn hash(&self, rel: &str) -> Hashed;
}

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
        let bag = DirBag::open(bundle, &mut report)?;
        check_bag(&bag, &mut report);
        check_sidecar_dir(bundle, &mut report);
        finish_with_sources(&bag, opts, &mut report);
    } else {
        let Some(bag) = ZipBag::open(bundle, &mut report)? else {
            return Ok(report);
        };
        let (zip_digest, ()) = rayon::join(|| hash_file(bundle), || check_bag(&bag, &mut report));
        match zip_digest {
            Ok(digest) => report.zip_sha256 = Some(digest),
            Err(e) => report.problems.push(format!("cannot read the zip: {e}")),
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
    for list in [
        &mut report.matched,
        &mut report.modified,
        &mut report.missing,
        &mut report.extra,
        &mut report.unsafe_paths,
    ] {
        list.sort();
        list.dedup();
    }
}

/// The checks shared by directory and zip bags.
fn check_bag(bag: &dyn BagSource, report: &mut VerifyReport) {
    match bag.read_tag(BAGIT_TXT) {
        Ok(Some(bytes)) => check_declaration(&bytes, report),
        Ok(None) => report.missing.push(BAGIT_TXT.to_string()),
        Err(e) => report.problems.push(format!("{BAGIT_TXT}: {e}")),
    }
    let payload = read_manifest(bag, MANIFEST_TXT, report);
    let tags = read_manifest(bag, TAGMANIFEST_TXT, report);
    let tagmanifest_bytes = bag.read_tag(TAGMANIFEST_TXT).ok().flatten();
    report.bag_digest = tagmanifest_bytes.as_deref().map(tee::sha256_hex);

    let mut listed: BTreeMap<String, String> = BTreeMap::new();
    for (rel, digest) in &payload {
        if !rel.starts_with("data/") {
            report.problems.push(format!(
                "{MANIFEST_TXT} lists {rel}, which is not under data/"
            ));
        }
        listed.insert(rel.clone(), digest.clone());
    }
    for (rel, digest) in &tags {
        if rel.starts_with("data/") || rel == TAGMANIFEST_TXT {
            report.problems.push(format!(
                "{TAGMANIFEST_TXT} lists {rel}, which is not a tag file it may cover"
            ));
        }
        listed.insert(rel.clone(), digest.clone());
    }
    if tagmanifest_bytes.is_some() {
        for required in [BAGIT_TXT, BAG_INFO_TXT, MANIFEST_TXT] {
            if !tags.iter().any(|(rel, _)| rel == required) {
                report
                    .problems
                    .push(format!("{TAGMANIFEST_TXT} does not cover {required}"));
            }
        }
    }

    // Hash everything listed, in parallel.
    let outcomes: Vec<(String, String, Hashed)> = listed
        .into_par_iter()
        .map(|(rel, expected)| {
            let outcome = bag.hash(&rel);
            (rel, expected, outcome)
        })
        .collect();
    let mut seen = BTreeSet::new();
    for (rel, expected, outcome) in outcomes {
        seen.insert(rel.clone());
        match outcome {
            Hashed::Digest(actual) if actual == expected => report.matched.push(rel),
            Hashed::Digest(_) => report.modified.push(rel),
            Hashed::Missing => report.missing.push(rel),
            Hashed::Unreadable(why) => {
                report.details.push(format!("{rel}: {why}"));
                report.modified.push(rel);
            }
            Hashed::Unsafe(why) => {
                report.details.push(format!("{rel}: {why}"));
                report.unsafe_paths.push(rel);
            }
        }
    }

    // Anything on disk (or in the zip) that no manifest covers.
    let mut payload_bytes = 0u64;
    let mut payload_count = 0u64;
    for (rel, size) in bag.files() {
        if rel.starts_with("data/") {
            payload_bytes += size;
            payload_count += 1;
        }
        if !seen.contains(rel) && rel != TAGMANIFEST_TXT && rel != BAGIT_TXT {
            report.extra.push(rel.clone());
        }
    }
    check_oxum(bag, payload_bytes, payload_count, report);
    check_evidence_manifest_digest(bag, report);
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
        report.problems.push(format!(
            "{BAGIT_TXT}: BagIt-Version is {version:?}, expected 1.0"
        ));
    }
    if !encoding.is_some_and(|e| e.eq_ignore_ascii_case("UTF-8")) {
        report.problems.push(format!(
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

/// Parses a manifest into (path, digest) pairs; bad lines and unsafe paths are reported.
fn read_manifest(
    bag: &dyn BagSource,
    name: &str,
    report: &mut VerifyReport,
) -> Vec<(String, String)> {
    let bytes = match bag.read_tag(name) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            report.missing.push(name.to_string());
            return Vec::new();
        }
        Err(e) => {
            report.problems.push(format!("{name}: {e}"));
            return Vec::new();
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        report.problems.push(format!("{name} is not valid UTF-8"));
        return Vec::new();
    };
    let mut entries = Vec::new();
    let mut listed = BTreeSet::new();
    for (number, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let Some((digest, path)) = line.split_once([' ', '\t']) else {
            report.problems.push(format!(
                "{name} line {}: not \"<sha256>  <path>\"",
                number + 1
            ));
            continue;
        };
        let path = percent_decode(path.trim_start_matches([' ', '\t']));
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            report.problems.push(format!(
                "{name} line {}: {digest:?} is not a SHA-256",
                number + 1
            ));
            continue;
        }
        if let Some(why) = unsafe_path_reason(&path) {
            report.details.push(format!("{name} lists {path:?}: {why}"));
            report.unsafe_paths.push(path);
            continue;
        }
        if !listed.insert(path.clone()) {
            report
                .problems
                .push(format!("{name} lists {path} more than once"));
            continue;
        }
        entries.push((path, digest.to_ascii_lowercase()));
    }
    entries
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
        report
            .problems
            .push(format!("{BAG_INFO_TXT} has no Payload-Oxum"));
        return;
    };
    let expected = format!("{bytes}.{count}");
    if *oxum != expected {
        report.problems.push(format!(
            "Payload-Oxum is {oxum} but the payload holds {expected} (bytes.files)"
        ));
    }
}

/// evidence.json records the manifest's SHA-256; if it does, it must agree.
fn check_evidence_manifest_digest(bag: &dyn BagSource, report: &mut VerifyReport) {
    let (Ok(Some(evidence)), Ok(Some(manifest))) =
        (bag.read_tag(EVIDENCE_JSON), bag.read_tag(MANIFEST_TXT))
    else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<Value>(&evidence) else {
        report
            .problems
            .push(format!("{EVIDENCE_JSON} is not valid JSON"));
        return;
    };
    if let Some(recorded) = value.get("manifest_sha256").and_then(Value::as_str) {
        if !recorded.eq_ignore_ascii_case(&tee::sha256_hex(&manifest)) {
            report.problems.push(format!(
                "{EVIDENCE_JSON} records manifest_sha256 {recorded}, but {MANIFEST_TXT} hashes differently"
            ));
        }
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
    match line.split_once("  ") {
        Some((digest, path)) if path == expected_path => {
            if actual.as_deref() != Some(digest.to_ascii_lowercase().as_str()) {
                report.problems.push(format!(
                    "{shown} records {digest}, but the bundle hashes to {}",
                    actual.as_deref().unwrap_or("nothing")
                ));
            }
        }
        _ => report
            .problems
            .push(format!("{shown} is not \"<sha256>  {expected_path}\"")),
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
    tee::with_buffer(|buf| tee::hash_reader(&mut file, buf, None)).map(|(digest, _)| digest)
}

/// A bag on disk.
struct DirBag {
    root: PathBuf,
    files: BTreeMap<String, u64>,
}

impl DirBag {
    fn open(root: &Path, report: &mut VerifyReport) -> Result<DirBag, EvidenceError> {
        if !root.join(BAGIT_TXT).is_file() {
            return Err(EvidenceError::NotABundle {
                path: root.to_path_buf(),
                reason: format!("the directory has no {BAGIT_TXT}"),
            });
        }
        let mut files = BTreeMap::new();
        for entry in walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    report.problems.push(format!("cannot list the bag: {e}"));
                    continue;
                }
            };
            if entry.depth() == 0 {
                continue;
            }
            let rel_path = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let Some(rel) = rel_path
                .to_str()
                .map(|s| s.replace(std::path::MAIN_SEPARATOR, "/"))
            else {
                report
                    .unsafe_paths
                    .push(rel_path.to_string_lossy().into_owned());
                report
                    .details
                    .push(format!("{}: name is not UTF-8", rel_path.display()));
                continue;
            };
            let kind = entry.file_type();
            if kind.is_dir() {
                continue;
            }
            if kind.is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.insert(rel, size);
            } else {
                report
                    .details
                    .push(format!("{rel}: a symlink or special file, not followed"));
                report.unsafe_paths.push(rel);
            }
        }
        Ok(DirBag {
            root: root.to_path_buf(),
            files,
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
    fn files(&self) -> &BTreeMap<String, u64> {
        &self.files
    }

    fn read_tag(&self, rel: &str) -> Result<Option<Vec<u8>>, String> {
        match self.resolve(rel) {
            Ok(Some(path)) => std::fs::read(&path).map(Some).map_err(|e| e.to_string()),
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

/// A file shared by several readers, each with its own position (pread), so that
/// one parsed `ZipArchive` can be cloned into every rayon task.
#[derive(Clone)]
struct SharedFile {
    file: Arc<File>,
    pos: u64,
    len: u64,
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&*self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// A zipped bag: entries under one top-level directory.
struct ZipBag {
    archive: ZipArchive<SharedFile>,
    /// "NAME/"
    prefix: String,
    /// Bag-relative path → entry index, for safe regular-file entries in the bag.
    index: HashMap<String, usize>,
    files: BTreeMap<String, u64>,
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
        let len = file.metadata().map_err(io_err("read", path))?.len();
        let shared = SharedFile {
            file: Arc::new(file),
            pos: 0,
            len,
        };
        let archive = match ZipArchive::new(shared.clone()) {
            Ok(archive) => archive,
            Err(e) => {
                report
                    .problems
                    .push(format!("the zip's central directory cannot be read: {e}"));
                return Ok(None);
            }
        };
        let names = match central_directory_names(shared, archive.central_directory_start()) {
            Ok(names) => names,
            Err(e) => {
                report
                    .problems
                    .push(format!("the zip's central directory is damaged: {e}"));
                return Ok(None);
            }
        };
        // The zip crate keeps only the last of several entries with one name, while
        // other tools may extract the first: refuse such names outright.
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for name in &names {
            *counts.entry(name.as_str()).or_default() += 1;
        }
        let duplicated: BTreeSet<String> = counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(name, _)| name.to_string())
            .collect();

        let mut tops: BTreeSet<String> = BTreeSet::new();
        for index in 0..archive.len() {
            if let Some(name) = archive.name_for_index(index) {
                if unsafe_path_reason(name.trim_end_matches('/')).is_none() {
                    if let Some((top, rest)) = name.split_once('/') {
                        if rest == BAGIT_TXT {
                            tops.insert(top.to_string());
                        }
                    }
                }
            }
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
        let prefix = format!("{top}/");
        let mut bag = ZipBag {
            archive,
            prefix,
            index: HashMap::new(),
            files: BTreeMap::new(),
        };
        for index in 0..bag.archive.len() {
            let Ok(entry) = bag.archive.by_index_raw(index) else {
                let name = bag.archive.name_for_index(index).unwrap_or("?").to_string();
                report
                    .details
                    .push(format!("{name}: entry header unreadable"));
                report.modified.push(name);
                continue;
            };
            let name = entry.name().to_string();
            let is_dir = entry.is_dir();
            let is_symlink = entry.is_symlink();
            let size = entry.size();
            drop(entry);
            if let Some(why) = unsafe_path_reason(name.trim_end_matches('/')) {
                report.details.push(format!("{name:?}: {why}"));
                report.unsafe_paths.push(name);
                continue;
            }
            if duplicated.contains(&name) {
                report
                    .details
                    .push(format!("{name}: several zip entries have this name"));
                report.unsafe_paths.push(name);
                continue;
            }
            if is_symlink {
                report.details.push(format!("{name}: a symlink entry"));
                report.unsafe_paths.push(name);
                continue;
            }
            let Some(rel) = name.strip_prefix(&bag.prefix) else {
                if !is_dir {
                    report.extra.push(name);
                }
                continue;
            };
            if is_dir {
                continue;
            }
            bag.index.insert(rel.to_string(), index);
            bag.files.insert(rel.to_string(), size);
        }
        Ok(Some(bag))
    }
}

/// Names of every central directory record, duplicates included.
fn central_directory_names(mut reader: SharedFile, start: u64) -> io::Result<Vec<String>> {
    reader.seek(SeekFrom::Start(start))?;
    let mut reader = io::BufReader::new(reader);
    let mut names = Vec::new();
    let mut fixed = [0u8; 46];
    loop {
        let got = tee::read_up_to(&mut reader, &mut fixed[..4])?;
        if got < 4 || fixed[..4] != [0x50, 0x4b, 0x01, 0x02] {
            break;
        }
        reader.read_exact(&mut fixed[4..])?;
        let le16 = |at: usize| usize::from(u16::from_le_bytes([fixed[at], fixed[at + 1]]));
        let (name_len, extra_len, comment_len) = (le16(28), le16(30), le16(32));
        let mut name = vec![0u8; name_len];
        reader.read_exact(&mut name)?;
        let mut skip = vec![0u8; extra_len + comment_len];
        reader.read_exact(&mut skip)?;
        names.push(String::from_utf8_lossy(&name).into_owned());
    }
    Ok(names)
}

impl BagSource for ZipBag {
    fn files(&self) -> &BTreeMap<String, u64> {
        &self.files
    }

    fn read_tag(&self, rel: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(&index) = self.index.get(rel) else {
            return Ok(None);
        };
        let mut archive = self.archive.clone();
        let mut entry = archive.by_index(index).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        // Tag files are small; cap the read so a forged size cannot exhaust memory.
        (&mut entry)
            .take(64 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        Ok(Some(bytes))
    }

    fn hash(&self, rel: &str) -> Hashed {
        let Some(&index) = self.index.get(rel) else {
            return Hashed::Missing;
        };
        let mut archive = self.archive.clone();
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(e) => return Hashed::Unreadable(e.to_string()),
        };
        // Reading to the end makes the zip crate check the CRC; a damaged deflate
        // stream or CRC mismatch surfaces here as an error, not a panic.
        match tee::with_buffer(|buf| tee::hash_reader(&mut entry, buf, None)) {
            Ok((digest, _)) => Hashed::Digest(digest),
            Err(e) => Hashed::Unreadable(format!("{} ({e})", self.prefix.clone() + rel)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

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
            assert_eq!(report.matched.len(), 8 + 4, "{}", report.render());
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
