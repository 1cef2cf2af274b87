//! `chatvault verify`: checks any BagIt bag (directory or zip) against RFC 8493 with
//! [`super::bagit`], then, for chatvault's own bundles, evidence.json, the sidecar and
//! (with `--source`) the source files.
//!
//! A zip is read entry by entry from its central directory and never extracted.
//! Paths that could escape the bag (`..`, absolute, backslashes, `~`, drive letters,
//! symlinks, duplicate zip entries) are reported and never opened.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::bag::{BAGIT_TXT, BAG_INFO_TXT, EVIDENCE_JSON, MANIFEST_TXT, TAGMANIFEST_TXT};
use super::bagit::source::{BagSource, DirBag, ZipBag, ZipFinding};
use super::bagit::{check_bag, Algorithm, BagFacts, Mode};
use super::{tee, unsafe_path_reason, EvidenceError};

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Re-hash the source files listed in evidence.json under this root.
    pub source_root: Option<PathBuf>,
    /// How much to check: everything, or completeness only (no hashing).
    pub mode: Mode,
}

/// Source files re-hashed against evidence.json's `sources`. Each list holds at most
/// [`MAX_LISTED`] entries; `totals` counts them all.
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
    pub totals: SourceTotals,
}

/// How many sources ended how (complete, however many are listed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceTotals {
    pub matched: u64,
    pub modified: u64,
    pub missing: u64,
    pub unchecked: u64,
    pub problems: u64,
}

impl SourceCheck {
    pub fn ok(&self) -> bool {
        self.totals.modified == 0 && self.totals.missing == 0 && self.totals.problems == 0
    }

    fn problem(&mut self, text: String) {
        push_capped(&mut self.problems, &mut self.totals.problems, text);
    }
}

/// What a verification concluded, in order of gravity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Complete, and every checksum matched (warnings and files still to be fetched
    /// allowed).
    Valid,
    /// Complete; checksums were not computed (`--fast`, `--completeness-only`).
    Complete,
    /// The bag breaks the BagIt format (bagit.txt, manifests, bag-info, unsafe paths …),
    /// but every file that could be checked matched.
    Invalid,
    /// A checksum does not match, or files are missing, added or unsafe: the content is
    /// not what the manifests recorded.
    Tampered,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Complete => "complete",
            Outcome::Invalid => "invalid",
            Outcome::Tampered => "tampered",
        }
    }

    /// The command's exit code ([`crate::exit`]).
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Valid | Outcome::Complete => crate::exit::OK,
            Outcome::Invalid => crate::exit::INVALID_BAG,
            Outcome::Tampered => crate::exit::TAMPERED,
        }
    }
}

/// One path's finding, with the digests per algorithm where there are any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFinding {
    pub path: String,
    /// "modified", "missing", "extra", "unsafe", "out-of-scope", "fetch-pending",
    /// "not-in-manifest", "listed-twice", "unreadable".
    pub kind: &'static str,
    /// (algorithm, expected, actual) for a checked file.
    pub digests: Vec<(Algorithm, String, Option<String>)>,
    pub note: Option<String>,
}

impl PathFinding {
    pub fn new(path: &str, kind: &'static str) -> PathFinding {
        PathFinding {
            path: path.to_string(),
            kind,
            digests: Vec::new(),
            note: None,
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> PathFinding {
        self.note = Some(note.into());
        self
    }
}

/// Checksums compared per algorithm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlgorithmCount {
    pub matched: u64,
    pub mismatched: u64,
}

/// Outcome of [`verify`]. Paths are relative to the bag root ("data/…", "bag-info.txt").
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub bundle: PathBuf,
    pub is_zip: bool,
    pub mode: Mode,
    /// As `bagit.txt` gives it.
    pub bagit_version: Option<String>,
    /// One of chatvault's own bundles (evidence.json or Chatvault-* labels).
    pub chatvault: bool,
    /// SHA-256 of tagmanifest-sha256.txt as found (compare with the notarized value).
    pub bag_digest: Option<String>,
    /// SHA-256 of the zip file itself.
    pub zip_sha256: Option<String>,
    /// How many files fell in each category; the lists below keep at most
    /// [`MAX_LISTED`] entries each.
    pub totals: Totals,
    pub algorithms: BTreeMap<Algorithm, AlgorithmCount>,
    pub modified: Vec<String>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub unsafe_paths: Vec<String>,
    /// Listed, absent, and named in fetch.txt: the bag is holey, not damaged.
    pub fetch_pending: Vec<String>,
    /// Content that does not agree with what the bag records: Payload-Oxum, the
    /// sidecar, evidence.json's manifest digest, a damaged zip …
    pub problems: Vec<String>,
    /// Breaks of the BagIt format (RFC 8493 and earlier versions).
    pub invalid: Vec<String>,
    /// Valid but worth knowing (listed twice with the same checksum before 1.0, names
    /// that differ only by case, OS files, md5sum-style manifests …).
    pub warnings: Vec<String>,
    /// Why entries were reported (read errors, CRC failures); informational.
    pub details: Vec<String>,
    /// Every finding by path, with its digests.
    pub findings: Vec<PathFinding>,
    /// Unsafe entries found in the bag itself (symlinks, special files, zip entries),
    /// as opposed to unsafe paths a manifest names.
    pub unsafe_found: u64,
    pub source: Option<SourceCheck>,
}

/// Counts per finding category (the lists hold at most [`MAX_LISTED`] entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub matched: u64,
    /// Present files that were not hashed (`--fast`, `--completeness-only`).
    pub unhashed: u64,
    pub modified: u64,
    pub missing: u64,
    pub extra: u64,
    pub unsafe_paths: u64,
    pub fetch_pending: u64,
    pub problems: u64,
    pub invalid: u64,
    pub warnings: u64,
    pub findings: u64,
    /// Details beyond the listed ones.
    pub details_omitted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finding {
    Modified,
    Missing,
    Extra,
    Unsafe,
}

/// Entries kept word for word per category; beyond this only their number is
/// counted, so a report's memory is bounded whatever the bag holds.
pub const MAX_LISTED: usize = 10_000;

fn push_capped<T>(list: &mut Vec<T>, total: &mut u64, item: T) {
    *total += 1;
    if list.len() < MAX_LISTED {
        list.push(item);
    }
}

impl VerifyReport {
    pub(crate) fn add(&mut self, finding: Finding, path: String) {
        let (list, total) = match finding {
            Finding::Modified => (&mut self.modified, &mut self.totals.modified),
            Finding::Missing => (&mut self.missing, &mut self.totals.missing),
            Finding::Extra => (&mut self.extra, &mut self.totals.extra),
            Finding::Unsafe => (&mut self.unsafe_paths, &mut self.totals.unsafe_paths),
        };
        push_capped(list, total, path);
    }

    pub(crate) fn problem(&mut self, problem: String) {
        push_capped(&mut self.problems, &mut self.totals.problems, problem);
    }

    pub(crate) fn invalid(&mut self, fault: String) {
        push_capped(&mut self.invalid, &mut self.totals.invalid, fault);
    }

    pub(crate) fn warn(&mut self, warning: String) {
        push_capped(&mut self.warnings, &mut self.totals.warnings, warning);
    }

    pub(crate) fn fetch_pending(&mut self, path: String) {
        push_capped(
            &mut self.fetch_pending,
            &mut self.totals.fetch_pending,
            path,
        );
    }

    pub(crate) fn record(&mut self, finding: PathFinding) {
        push_capped(&mut self.findings, &mut self.totals.findings, finding);
    }

    pub(crate) fn count_algorithm(&mut self, algorithm: Algorithm, matched: bool) {
        let count = self.algorithms.entry(algorithm).or_default();
        if matched {
            count.matched += 1;
        } else {
            count.mismatched += 1;
        }
    }

    pub(crate) fn detail(&mut self, detail: String) {
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
            (&mut self.fetch_pending, &mut self.totals.fetch_pending),
        ] {
            let before = list.len();
            list.sort();
            list.dedup();
            *total -= (before - list.len()) as u64;
        }
        let before = self.warnings.len();
        self.warnings.dedup();
        self.totals.warnings -= (before - self.warnings.len()) as u64;
        self.findings
            .sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    }

    /// What the checks concluded: tampering outranks a broken format.
    pub fn outcome(&self) -> Outcome {
        let tampered = !self.modified.is_empty()
            || !self.missing.is_empty()
            || !self.extra.is_empty()
            || self.unsafe_found > 0
            || !self.problems.is_empty()
            || self.source.as_ref().is_some_and(|s| !s.ok());
        if tampered {
            Outcome::Tampered
        } else if !self.invalid.is_empty() || !self.unsafe_paths.is_empty() {
            Outcome::Invalid
        } else if self.mode == Mode::Full {
            Outcome::Valid
        } else {
            Outcome::Complete
        }
    }

    /// True only if the bag is valid (or, without hashing, complete): nothing missing,
    /// extra, unsafe, mismatched or malformed.
    pub fn ok(&self) -> bool {
        matches!(self.outcome(), Outcome::Valid | Outcome::Complete)
    }

    /// Why a bag did not pass, in one line, for a command that needed it to
    /// (`check --bundle`, `export --after`, `verify --chain`).
    pub fn failure_summary(&self) -> String {
        let t = &self.totals;
        format!(
            "{} modified, {} missing, {} extra, {} unsafe, {} invalid, {} problems",
            t.modified, t.missing, t.extra, t.unsafe_paths, t.invalid, t.problems
        )
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
                "counts": {
                    "matched": s.totals.matched,
                    "modified": s.totals.modified,
                    "missing": s.totals.missing,
                    "unchecked": s.totals.unchecked,
                    "problems": s.totals.problems,
                },
            })
        });
        let algorithms: Map<String, Value> = self
            .algorithms
            .iter()
            .map(|(a, c)| {
                (
                    a.name().to_string(),
                    json!({"matched": c.matched, "mismatched": c.mismatched}),
                )
            })
            .collect();
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let digests: Map<String, Value> = f
                    .digests
                    .iter()
                    .map(|(a, expected, actual)| {
                        (
                            a.name().to_string(),
                            json!({"expected": expected, "actual": actual}),
                        )
                    })
                    .collect();
                json!({"path": f.path, "kind": f.kind, "digests": digests, "note": f.note})
            })
            .collect();
        let outcome = self.outcome();
        json!({
            "bundle": self.bundle.display().to_string(),
            "kind": if self.is_zip { "zip" } else { "directory" },
            "ok": self.ok(),
            "result": outcome.as_str(),
            "exit_code": outcome.exit_code(),
            "mode": mode_name(self.mode),
            "bagit_version": self.bagit_version,
            "chatvault_bundle": self.chatvault,
            "bag_digest": self.bag_digest,
            "zip_sha256": self.zip_sha256,
            "counts": {
                "matched": self.totals.matched,
                "unhashed": self.totals.unhashed,
                "modified": self.totals.modified,
                "missing": self.totals.missing,
                "extra": self.totals.extra,
                "unsafe": self.totals.unsafe_paths,
                "fetch_pending": self.totals.fetch_pending,
                "problems": self.totals.problems,
                "invalid": self.totals.invalid,
                "warnings": self.totals.warnings,
                "findings": self.totals.findings,
            },
            "algorithms": algorithms,
            "listed_at_most": MAX_LISTED,
            "modified": self.modified,
            "missing": self.missing,
            "extra": self.extra,
            "unsafe_paths": self.unsafe_paths,
            "fetch_pending": self.fetch_pending,
            "problems": self.problems,
            "invalid": self.invalid,
            "warnings": self.warnings,
            "details": self.details,
            "findings": findings,
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
        if let Some(version) = &self.bagit_version {
            out.push_str(&format!(
                "bagit: {version}{}\n",
                if self.chatvault {
                    " (a chatvault bundle)"
                } else {
                    ""
                }
            ));
        }
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
        for (name, count) in [
            ("present, not hashed", self.totals.unhashed),
            ("fetch-pending", self.totals.fetch_pending),
            ("warnings", self.totals.warnings),
            ("unsafe", self.totals.unsafe_paths),
            ("problems", self.totals.problems),
            ("invalid", self.totals.invalid),
        ] {
            if count > 0 {
                out.push_str(&format!(" / {name} {count}"));
            }
        }
        out.push('\n');
        if !self.algorithms.is_empty() {
            let per: Vec<String> = self
                .algorithms
                .iter()
                .rev()
                .map(|(a, c)| {
                    if c.mismatched > 0 {
                        format!("{a} {} matched, {} mismatched", c.matched, c.mismatched)
                    } else {
                        format!("{a} {} matched", c.matched)
                    }
                })
                .collect();
            out.push_str(&format!("checksums: {}\n", per.join("; ")));
        }
        let listed = [
            self.totals.modified,
            self.totals.missing,
            self.totals.extra,
            self.totals.unsafe_paths,
            self.totals.fetch_pending,
            self.totals.problems,
            self.totals.invalid,
            self.totals.warnings,
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
                    out.push_str(&shown(item));
                    out.push('\n');
                }
            }
        };
        section("modified", &self.modified);
        section("missing", &self.missing);
        section("extra", &self.extra);
        section("unsafe paths (not opened)", &self.unsafe_paths);
        section(
            "fetch pending (listed in fetch.txt, not yet fetched)",
            &self.fetch_pending,
        );
        section("problems", &self.problems);
        section("invalid", &self.invalid);
        section("warnings", &self.warnings);
        section("details", &self.details);
        if let Some(s) = &self.source {
            out.push_str(&format!(
                "source {}: matched {} / modified {} / missing {} / unchecked {}\n",
                s.root.display(),
                s.totals.matched,
                s.totals.modified,
                s.totals.missing,
                s.totals.unchecked
            ));
            let mut section = |title: &str, items: &[String]| {
                if !items.is_empty() {
                    out.push_str(&format!("source {title}:\n"));
                    for item in items {
                        out.push_str("  ");
                        out.push_str(&shown(item));
                        out.push('\n');
                    }
                }
            };
            section("modified", &s.modified);
            section("missing", &s.missing);
            section("problems", &s.problems);
        }
        if self.totals.fetch_pending > 0 && self.ok() {
            out.push_str(&format!(
                "note: the bag is valid but incomplete: {} file(s) listed in fetch.txt are still to be fetched\n",
                self.totals.fetch_pending
            ));
        }
        out.push_str(match self.outcome() {
            Outcome::Valid => "result: OK\n",
            Outcome::Complete => "result: OK (complete; checksums not computed)\n",
            Outcome::Invalid => "result: INVALID (not a well-formed bag)\n",
            Outcome::Tampered => "result: TAMPERED\n",
        });
        out
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Full => "full",
        Mode::Fast => "fast",
        Mode::CompletenessOnly => "completeness-only",
    }
}

/// A path or message as printed: control characters (a name may hold CR or LF) escaped.
pub(crate) fn shown(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.escape_debug().to_string()
    } else {
        text.to_string()
    }
}

/// Verifies a bag directory or zip.
pub fn verify(bundle: &Path, opts: &VerifyOptions) -> Result<VerifyReport, EvidenceError> {
    let meta = bundle.metadata().map_err(|e| EvidenceError::NotABundle {
        path: bundle.to_path_buf(),
        reason: format!("cannot open it: {e}"),
    })?;
    let mut report = VerifyReport {
        bundle: bundle.to_path_buf(),
        is_zip: !meta.is_dir(),
        mode: opts.mode,
        ..VerifyReport::default()
    };
    if meta.is_dir() {
        let bag = DirBag::open(bundle)?;
        let facts = check(&bag, opts, &mut report);
        if facts.chatvault {
            check_sidecar_dir(bundle, &mut report);
        }
        finish_with_sources(&bag, opts, &mut report);
    } else {
        let mut bag = match ZipBag::open(bundle)? {
            Ok(bag) => bag,
            Err(damaged) => {
                report.problem(damaged);
                report.finish_lists();
                return Ok(report);
            }
        };
        for finding in bag.take_findings() {
            match finding {
                ZipFinding::Unsafe { name, why } => {
                    report.detail(why.clone());
                    report.add(Finding::Unsafe, name.clone());
                    report.unsafe_found += 1;
                    report.record(PathFinding::new(&name, "unsafe").note(why));
                }
                ZipFinding::Extra { name } => {
                    report.add(Finding::Extra, name.clone());
                    report.record(
                        PathFinding::new(&name, "extra").note("outside the bag's directory"),
                    );
                }
            }
        }
        let hash_zip = opts.mode == Mode::Full;
        let (zip_digest, facts) = rayon::join(
            || hash_zip.then(|| hash_file(bundle)),
            || check(&bag, opts, &mut report),
        );
        match zip_digest {
            Some(Ok(digest)) => report.zip_sha256 = Some(digest),
            Some(Err(e)) => report.problem(format!("cannot read the zip: {e}")),
            None => {}
        }
        if facts.chatvault {
            check_sidecar_zip(bundle, &mut report);
        }
        finish_with_sources(&bag, opts, &mut report);
    }
    Ok(report)
}

/// The generic checks, then those of chatvault's own bundles.
fn check(bag: &dyn BagSource, opts: &VerifyOptions, report: &mut VerifyReport) -> BagFacts {
    let facts = check_bag(bag, opts.mode, report);
    report.chatvault = facts.chatvault;
    if opts.mode == Mode::Full && facts.top_files.iter().any(|f| f == TAGMANIFEST_TXT) {
        report.bag_digest = match bag.open(TAGMANIFEST_TXT) {
            Ok(Some(mut reader)) => {
                tee::with_buffer(|buf| tee::hash_reader(&mut reader, buf, None))
                    .ok()
                    .map(|(digest, _)| digest)
            }
            _ => None,
        };
    }
    if facts.chatvault {
        // chatvault writes one tag manifest that covers every tag file.
        if facts.top_files.iter().any(|f| f == TAGMANIFEST_TXT) {
            for required in [BAGIT_TXT, BAG_INFO_TXT, MANIFEST_TXT] {
                if !facts.tag_listed.contains(required) {
                    report.problem(format!("{TAGMANIFEST_TXT} does not cover {required}"));
                }
            }
        } else {
            report.add(Finding::Missing, TAGMANIFEST_TXT.to_string());
        }
        if opts.mode == Mode::Full {
            check_evidence_manifest_digest(bag, report);
        }
    }
    facts
}

fn finish_with_sources(bag: &dyn BagSource, opts: &VerifyOptions, report: &mut VerifyReport) {
    if let Some(root) = &opts.source_root {
        report.source = Some(check_sources(bag, root));
    }
    report.finish_lists();
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

/// Sources re-hashed together: enough for both cores, few enough that memory does not
/// grow with evidence.json.
const SOURCE_BATCH: usize = 1024;

/// Re-hashes the sources listed in evidence.json under `root`. evidence.json is read as
/// a stream, one `sources` entry at a time, and hashed in batches: it lists every media
/// file an export copied.
fn check_sources(bag: &dyn BagSource, root: &Path) -> SourceCheck {
    let mut check = SourceCheck {
        root: root.to_path_buf(),
        ..SourceCheck::default()
    };
    let reader = match bag.open(EVIDENCE_JSON) {
        Ok(Some(reader)) => reader,
        Ok(None) => {
            check.problem(format!("the bundle has no {EVIDENCE_JSON}"));
            return check;
        }
        Err(e) => {
            check.problem(format!("{EVIDENCE_JSON}: {e}"));
            return check;
        }
    };
    let mut checker = SourceChecker {
        check,
        root,
        batch: Vec::with_capacity(SOURCE_BATCH),
        entries: 0,
        found_sources: false,
    };
    let mut json = serde_json::Deserializer::from_reader(io::BufReader::new(reader));
    let parsed = serde::de::DeserializeSeed::deserialize(EvidenceSeed(&mut checker), &mut json)
        .and_then(|()| json.end());
    checker.flush();
    let mut check = checker.check;
    match parsed {
        Err(e) => check.problem(format!("{EVIDENCE_JSON} is not valid JSON: {e}")),
        Ok(()) if !checker.found_sources => {
            check.problem(format!("{EVIDENCE_JSON} has no \"sources\" array"));
        }
        Ok(()) => {}
    }
    check
}

/// A source evidence.json names, to hash.
struct Wanted {
    path: String,
    size: Option<u64>,
    sha256: String,
}

struct SourceChecker<'a> {
    check: SourceCheck,
    root: &'a Path,
    batch: Vec<Wanted>,
    entries: usize,
    found_sources: bool,
}

impl SourceChecker<'_> {
    /// One entry of `sources`, as evidence.json holds it.
    fn entry(&mut self, source: &Value) {
        let index = self.entries;
        self.entries += 1;
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
        let check = &mut self.check;
        let Some(path) = source.get("path").and_then(Value::as_str) else {
            push_capped(&mut check.unchecked, &mut check.totals.unchecked, label);
            return;
        };
        let (Some(before), Some(after)) = (before, after) else {
            check.problem(format!("{label}: sha256_before or sha256_after is missing"));
            return;
        };
        if !before.eq_ignore_ascii_case(after) {
            check.problem(format!(
                "{label}: changed while it was exported (sha256_before ≠ sha256_after)"
            ));
        }
        if let Some(why) = unsafe_path_reason(path) {
            check.problem(format!("{label}: refused, {why}"));
            return;
        }
        self.batch.push(Wanted {
            path: path.to_string(),
            size: source.get("size").and_then(Value::as_u64),
            sha256: after.to_ascii_lowercase(),
        });
        if self.batch.len() >= SOURCE_BATCH {
            self.flush();
        }
    }

    /// Hashes the batch (in parallel) and records how each source ended.
    fn flush(&mut self) {
        enum Outcome {
            Matched,
            Modified,
            Missing,
            Unreadable(String),
        }
        let root = self.root;
        let outcomes: Vec<Outcome> = self
            .batch
            .par_iter()
            .map(|w| {
                let full = root.join(&w.path);
                match full.metadata() {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Missing,
                    Err(e) => Outcome::Unreadable(e.to_string()),
                    // A different size needs no hashing to be called modified.
                    Ok(meta) if w.size.is_some_and(|s| s != meta.len()) => Outcome::Modified,
                    Ok(_) => match hash_file(&full) {
                        Ok(digest) if digest == w.sha256 => Outcome::Matched,
                        Ok(_) => Outcome::Modified,
                        Err(e) => Outcome::Unreadable(e.to_string()),
                    },
                }
            })
            .collect();
        let check = &mut self.check;
        for (wanted, outcome) in self.batch.drain(..).zip(outcomes) {
            let path = wanted.path;
            match outcome {
                Outcome::Matched => {
                    push_capped(&mut check.matched, &mut check.totals.matched, path)
                }
                Outcome::Modified => {
                    push_capped(&mut check.modified, &mut check.totals.modified, path)
                }
                Outcome::Missing => {
                    push_capped(&mut check.missing, &mut check.totals.missing, path)
                }
                Outcome::Unreadable(why) => {
                    check.problem(format!("{path}: cannot read it: {why}"));
                    push_capped(&mut check.modified, &mut check.totals.modified, path);
                }
            }
        }
    }
}

/// evidence.json's top-level object: `sources` is handed to the checker entry by entry,
/// everything else is skipped unread.
struct EvidenceSeed<'c, 'a>(&'c mut SourceChecker<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for EvidenceSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EvidenceSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "sources" && !self.0.found_sources {
                self.0.found_sources = map.next_value_seed(SourcesSeed(self.0))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `sources` value: `true` if it was an array (whose entries went to the checker).
struct SourcesSeed<'c, 'a>(&'c mut SourceChecker<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for SourcesSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for SourcesSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of sources")
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<bool, S::Error> {
        while let Some(entry) = seq.next_element::<Value>()? {
            self.0.entry(&entry);
        }
        Ok(true)
    }

    // Anything else is not an array: not the sources.
    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<bool, M::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(false)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut file = tee::open_regular(path)?;
    crate::digest::sha256_reader(&mut file).map(|(digest, _)| digest)
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
                    ..VerifyOptions::default()
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
    fn many_sources_are_counted_in_full_and_listed_up_to_the_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("source");
        let count = MAX_LISTED + 40;
        for i in 0..count {
            let dir = source.join(format!("d{}", i % 50));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("{i}.jpg")), i.to_string()).unwrap();
        }
        let summary = write_sample(options(tmp.path(), "bag", false), Some(&source));
        fs::write(source.join("d7/7.jpg"), b"changed").unwrap();
        fs::remove_file(source.join("d8/8.jpg")).unwrap();
        let report = verify(
            &summary.path,
            &VerifyOptions {
                source_root: Some(source),
                ..VerifyOptions::default()
            },
        )
        .unwrap();
        let sources = report.source.as_ref().unwrap();
        assert_eq!(sources.totals.matched, count as u64 - 2);
        assert_eq!(sources.matched.len(), MAX_LISTED);
        assert_eq!(sources.modified, ["d7/7.jpg"]);
        assert_eq!(sources.missing, ["d8/8.jpg"]);
        assert_eq!(sources.totals.unchecked, 1);
        assert!(!report.ok());
        assert_eq!(
            report.to_json()["source"]["counts"]["matched"],
            count as u64 - 2
        );
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
                ..VerifyOptions::default()
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
                .invalid
                .iter()
                .any(|p| p.contains("longer than 65536 bytes")),
            "{:?}",
            report.invalid
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
