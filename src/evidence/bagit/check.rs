//! The validator: every rule of RFC 8493 (and of BagIt 0.93 to 0.97 where they differ)
//! that a bag's own files can be checked against. Findings go to the [`VerifyReport`];
//! what the caller needs for its own checks on top is returned as [`BagFacts`].
//!
//! Memory: the strongest payload manifest is streamed and hashed in batches; only what
//! must be looked up later is held: 16 bytes per listed path, and the digests of any
//! further manifests (to hash each file once, with every algorithm, in one read).

use std::collections::BTreeSet;
use std::io;

use rayon::prelude::*;

use super::algorithm::Algorithm;
use super::baginfo::{parse_bag_info, BagInfo, Oxum};
use super::declaration::{parse_declaration, Version};
use super::encoding::{read_line, TagEncoding, Utf8Reader};
use super::fetch::{parse_fetch_line, FetchError};
use super::manifest::{manifest_file, manifest_name, parse_line, Entry, EntryError, ManifestKind};
use super::path::{file_name, fold, is_os_special_file};
use super::source::{
    path_key, BagSource, Found, Hashed, PathMap, PathSet, BAGIT_TXT, MAX_TAG_FILE,
};
use crate::digest::hex;
use crate::evidence::verify::{Finding, PathFinding, VerifyReport};

/// How much of the bag to check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Structure, completeness and every checksum.
    #[default]
    Full,
    /// Payload-Oxum and completeness only; nothing is hashed (bagit.py's `--fast`).
    Fast,
    /// Structure and completeness; nothing is hashed.
    CompletenessOnly,
}

/// What the validator learnt, for the checks made on top of it.
#[derive(Debug, Clone, Default)]
pub struct BagFacts {
    pub version: Option<Version>,
    /// evidence.json or a `Chatvault-` label: one of chatvault's own bags.
    pub chatvault: bool,
    pub top_files: Vec<String>,
    /// Every path a tag manifest lists (a bag has few tag files).
    pub tag_listed: BTreeSet<String>,
    pub info: BagInfo,
    pub oxum: Option<Oxum>,
}

/// A manifest line longer than this is malformed (no file system has such a path).
pub const MAX_MANIFEST_LINE: usize = 64 * 1024;
/// Manifest entries hashed in parallel at a time.
const HASH_BATCH: usize = 2048;
/// A bag may have at most this many manifests of one kind that are checked.
const MAX_MANIFESTS: usize = 8;

const FETCH_TXT: &str = "fetch.txt";
const EVIDENCE_JSON: &str = "evidence.json";

/// A file waiting to be hashed: every digest the manifests expect for it.
struct Job {
    path: String,
    key: u128,
    expected: Vec<(Algorithm, Vec<u8>)>,
}

/// A fetch.txt entry.
struct Fetch {
    path: String,
    length: Option<u64>,
    /// Bit i: payload manifest i lists the file.
    listed: u8,
    /// Absent from the bag: still to be fetched.
    pending: bool,
}

/// The state of one check.
struct Ctx<'a> {
    bag: &'a dyn BagSource,
    report: &'a mut VerifyReport,
    version: Version,
    encoding: TagEncoding,
    mode: Mode,
    fetch: PathMap<Fetch>,
    /// Last directory listed while looking for a name that differs only by case or
    /// normalization, and its entries.
    listed_dir: Option<(String, Vec<String>)>,
}

/// Checks the bag; `mode` says how much.
pub fn check_bag(bag: &dyn BagSource, mode: Mode, report: &mut VerifyReport) -> BagFacts {
    let mut facts = BagFacts::default();
    let declaration = match bag.read_tag(BAGIT_TXT) {
        Ok(Some(bytes)) => parse_declaration(&bytes),
        Ok(None) => {
            report.invalid(format!("the bag has no {BAGIT_TXT}"));
            Default::default()
        }
        Err(e) => {
            report.invalid(format!("{BAGIT_TXT}: {e}"));
            Default::default()
        }
    };
    for fault in &declaration.faults {
        report.invalid(fault.clone());
    }
    facts.version = declaration.version;
    report.bagit_version = declaration.version.map(|v| v.to_string());
    // A bag whose declaration cannot be read is still checked as best it can be: as
    // BagIt 1.0 in UTF-8, the strictest reading.
    let version = declaration
        .version
        .filter(|v| v.is_known())
        .unwrap_or(Version::V1_0);
    let encoding = declaration.encoding.unwrap_or(TagEncoding::Utf8);

    facts.top_files = match bag.top_files() {
        Ok(files) => files,
        Err(e) => {
            report.problem(format!("cannot list the bag's base directory: {e}"));
            Vec::new()
        }
    };
    let mut ctx = Ctx {
        bag,
        report,
        version,
        encoding,
        mode,
        fetch: PathMap::default(),
        listed_dir: None,
    };

    let info_file = version.info_file();
    if facts.top_files.iter().any(|f| f == info_file) {
        if let Some(text) = ctx.read_text(info_file) {
            facts.info = parse_bag_info(&text, version, info_file);
            for fault in &facts.info.faults {
                ctx.report.invalid(fault.clone());
            }
            for warning in &facts.info.warnings {
                ctx.report.warn(warning.clone());
            }
            match facts.info.oxum() {
                Ok(oxum) => facts.oxum = oxum,
                Err(fault) => ctx.report.invalid(format!("{info_file}: {fault}")),
            }
        }
    }
    facts.chatvault = facts.top_files.iter().any(|f| f == EVIDENCE_JSON)
        || facts
            .info
            .fields
            .iter()
            .any(|(label, _)| label.starts_with("Chatvault-"));
    if !bag.has_payload_dir() {
        ctx.report
            .invalid("the bag has no data/ directory (the payload directory every bag has)".into());
    }
    if mode == Mode::Fast && facts.oxum.is_none() {
        ctx.report.invalid(format!(
            "--fast compares the payload with Payload-Oxum, which {info_file} does not give; check without --fast"
        ));
    }

    let (payload, tags) = ctx.manifests(&facts.top_files, facts.chatvault);
    if facts.top_files.iter().any(|f| f == FETCH_TXT) {
        ctx.read_fetch();
    }
    let payload_listed = ctx.check_manifests(ManifestKind::Payload, &payload);
    let tag_entries = ctx.check_tag_manifests(&tags, &payload);
    let tag_keys: PathSet = tag_entries.iter().map(|p| path_key(p)).collect();
    facts.tag_listed = tag_entries;
    ctx.check_fetch_listed(payload.len());

    // Anything in the bag that no manifest lists, and the payload's size.
    let (mut bytes, mut files) = (0u64, 0u64);
    let mut names = NameClashes::default();
    let chatvault = facts.chatvault;
    let walked = bag.walk(&mut |found| match found {
        Found::File(rel, size) => {
            if rel.starts_with("data/") {
                bytes += size;
                files += 1;
                // Without a manifest to check there is no telling what is extra.
                if !payload.is_empty() && !payload_listed.contains(&path_key(rel)) {
                    ctx.report.add(Finding::Extra, rel.to_string());
                    ctx.report.record(PathFinding::new(rel, "extra"));
                } else if is_os_special_file(rel) {
                    ctx.report.warn(format!(
                        "{rel} is a file the operating system makes ({}), rarely meant as payload",
                        file_name(rel)
                    ));
                }
                if let Some(other) = names.clash(rel) {
                    ctx.report.warn(format!(
                        "{other} and {rel} differ only by case or Unicode normalization: one overwrites the other on macOS and Windows"
                    ));
                }
            } else if chatvault
                && rel != BAGIT_TXT
                && manifest_name(rel).is_none_or(|(kind, _)| kind != ManifestKind::Tag)
                && !tag_keys.contains(&path_key(rel))
            {
                // chatvault lists every tag file it writes: any other one was added.
                ctx.report.add(Finding::Extra, rel.to_string());
                ctx.report.record(PathFinding::new(rel, "extra"));
            }
        }
        Found::Unsafe(rel, why) => {
            ctx.report.detail(format!("{rel}: {why}"));
            ctx.report.add(Finding::Unsafe, rel.clone());
            ctx.report.unsafe_found += 1;
            ctx.report.record(PathFinding::new(&rel, "unsafe").note(why));
        }
    });
    if let Err(e) = walked {
        ctx.report.problem(format!("cannot list the bag: {e}"));
    }
    drop(payload_listed);
    ctx.check_oxum(facts.oxum, bytes, files, facts.chatvault, info_file);
    facts
}

/// Finds payload names that differ only by case or Unicode normalization among the
/// files of one directory (walks give a directory's files together, or close to it:
/// the last few directories are remembered).
#[derive(Default)]
struct NameClashes {
    dirs: Vec<(String, std::collections::HashMap<String, String>)>,
}

impl NameClashes {
    fn clash(&mut self, rel: &str) -> Option<String> {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let at = match self.dirs.iter().position(|(d, _)| d == dir) {
            Some(at) => at,
            None => {
                if self.dirs.len() >= 8 {
                    self.dirs.remove(0);
                }
                self.dirs.push((dir.to_string(), Default::default()));
                self.dirs.len() - 1
            }
        };
        let seen = &mut self.dirs[at].1;
        let folded = fold(name);
        match seen.get(&folded) {
            Some(other) if other != name => Some(format!("{dir}/{other}")),
            Some(_) => None,
            None => {
                seen.insert(folded, name.to_string());
                None
            }
        }
    }
}

impl<'a> Ctx<'a> {
    /// A tag file's text in the declared encoding (capped); `None` if it cannot be read
    /// (reported).
    fn read_text(&mut self, name: &str) -> Option<String> {
        let reader = match self.bag.open(name) {
            Ok(Some(reader)) => reader,
            Ok(None) => return None,
            Err(e) => {
                self.report.problem(format!("{name}: {e}"));
                return None;
            }
        };
        let mut decoded = Utf8Reader::new(io::Read::take(reader, MAX_TAG_FILE), self.encoding);
        let mut bytes = Vec::new();
        let read = io::Read::read_to_end(&mut decoded, &mut bytes);
        if decoded.had_utf8_bom() {
            self.report.invalid(format!(
                "{name} begins with a byte order mark, which a UTF-8 tag file must not"
            ));
        }
        if let Err(e) = read {
            self.report.invalid(format!(
                "{name} cannot be decoded as {:?}: {e}",
                self.encoding
            ));
            return None;
        }
        match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                self.report.invalid(format!("{name} is not valid UTF-8"));
                Some(String::from_utf8_lossy(e.as_bytes()).into_owned())
            }
        }
    }

    /// The payload and tag manifests present whose algorithm chatvault computes,
    /// strongest first; the others are reported.
    fn manifests(&mut self, top: &[String], chatvault: bool) -> (Vec<Algorithm>, Vec<Algorithm>) {
        let (mut payload, mut tags) = (Vec::new(), Vec::new());
        let mut unknown_payload = 0;
        for file in top {
            let Some((kind, name)) = manifest_name(file) else {
                continue;
            };
            match Algorithm::from_name(name) {
                Some(algorithm) => match kind {
                    ManifestKind::Payload => payload.push(algorithm),
                    ManifestKind::Tag => tags.push(algorithm),
                },
                None => {
                    if kind == ManifestKind::Payload {
                        unknown_payload += 1;
                    }
                    self.report.warn(format!(
                        "{file}: the algorithm {name:?} is not one chatvault computes (md5, sha1, sha224, sha256, sha384, sha512); its checksums were not checked"
                    ));
                }
            }
        }
        for list in [&mut payload, &mut tags] {
            list.sort_by(|a, b| b.cmp(a));
            if list.len() > MAX_MANIFESTS {
                list.truncate(MAX_MANIFESTS);
            }
        }
        if payload.is_empty() {
            if chatvault {
                self.report.add(
                    Finding::Missing,
                    manifest_file(ManifestKind::Payload, Algorithm::Sha256),
                );
            } else if unknown_payload > 0 {
                self.report.invalid(
                    "no payload manifest uses an algorithm chatvault computes: nothing can be verified"
                        .into(),
                );
            } else {
                self.report.invalid(
                    "the bag has no payload manifest (manifest-<algorithm>.txt); every bag has at least one"
                        .into(),
                );
            }
        }
        (payload, tags)
    }

    /// Reads fetch.txt: every entry's path is checked before anything is opened.
    fn read_fetch(&mut self) {
        let Some(mut lines) = self.lines(FETCH_TXT, false) else {
            return;
        };
        let mut line = Vec::new();
        while let Some(text) = lines.next(&mut line, self.report) {
            let number = lines.number;
            match parse_fetch_line(&text) {
                Ok(None) => {}
                Ok(Some(entry)) => {
                    let key = path_key(&entry.path);
                    if self.fetch.contains_key(&key) {
                        self.report.invalid(format!(
                            "{FETCH_TXT} line {number} lists {} again",
                            entry.path
                        ));
                        continue;
                    }
                    self.fetch.insert(
                        key,
                        Fetch {
                            path: entry.path,
                            length: entry.length,
                            listed: 0,
                            pending: false,
                        },
                    );
                }
                Err(FetchError::OutOfScope { path, reason }) => {
                    self.out_of_scope(FETCH_TXT, number, path, reason);
                }
                Err(e) => self
                    .report
                    .invalid(format!("{FETCH_TXT} line {number}: {e}")),
            }
        }
    }

    /// Every file in fetch.txt must be listed in every payload manifest (§2.2.3).
    fn check_fetch_listed(&mut self, manifests: usize) {
        let all = if manifests >= 8 {
            u8::MAX
        } else {
            (1u8 << manifests) - 1
        };
        let mut unlisted: Vec<&str> = self
            .fetch
            .values()
            .filter(|f| f.listed != all)
            .map(|f| f.path.as_str())
            .collect();
        unlisted.sort();
        for path in unlisted {
            self.report.invalid(format!(
                "{FETCH_TXT} lists {path}, which not every payload manifest lists"
            ));
        }
    }

    fn out_of_scope(&mut self, file: &str, number: usize, path: String, reason: &str) {
        self.report.invalid(format!(
            "{file} line {number}: {path:?} is out of scope ({reason}); it was not opened"
        ));
        self.report.add(Finding::Unsafe, path.clone());
        self.report
            .record(PathFinding::new(&path, "out-of-scope").note(format!("{file}: {reason}")));
    }

    /// A manifest's lines, decoded; `None` if it cannot be opened (reported).
    fn lines(&mut self, name: &str, quiet: bool) -> Option<Lines<'a>> {
        let reader = match self.bag.open(name) {
            Ok(Some(reader)) => reader,
            Ok(None) => {
                if !quiet {
                    self.report.add(Finding::Missing, name.to_string());
                }
                return None;
            }
            Err(e) => {
                if !quiet {
                    self.report.problem(format!("{name}: {e}"));
                }
                return None;
            }
        };
        let decoded = Utf8Reader::new(reader, self.encoding);
        Some(Lines {
            name: name.to_string(),
            reader: io::BufReader::with_capacity(256 * 1024, decoded),
            number: 0,
            quiet,
            bom_checked: false,
            star_said: false,
            dot_said: false,
        })
    }

    /// Checks the manifests of one kind, hashing every file they list once with all of
    /// their algorithms; returns the keys of every listed path.
    fn check_manifests(&mut self, kind: ManifestKind, algorithms: &[Algorithm]) -> PathSet {
        let mut listed = PathSet::default();
        let Some((&primary, secondary)) = algorithms.split_first() else {
            return listed;
        };
        // The other manifests' digests, by path, to hash each file once.
        let mut others: Vec<(Algorithm, PathMap<Vec<u8>>)> = Vec::new();
        for &algorithm in secondary {
            let index = self.index_manifest(kind, algorithm);
            others.push((algorithm, index));
        }
        let mut jobs: Vec<Job> = Vec::with_capacity(HASH_BATCH);
        let mut repeated: Vec<(u128, Vec<u8>, usize)> = Vec::new();
        let name = manifest_file(kind, primary);
        if let Some(mut lines) = self.lines(&name, false) {
            let mut line = Vec::new();
            while let Some(entry) = lines.entry(&mut line, primary, kind, self) {
                let key = path_key(&entry.path);
                if !listed.insert(key) {
                    repeated.push((key, entry.digest, lines.number));
                    continue;
                }
                let mut expected = vec![(primary, entry.digest)];
                let mut mask = 1u8;
                for (index, (algorithm, digests)) in others.iter_mut().enumerate() {
                    match digests.remove(&key) {
                        Some(digest) => {
                            expected.push((*algorithm, digest));
                            mask |= 2 << index;
                        }
                        None => self.not_in(kind, &entry.path, &manifest_file(kind, *algorithm)),
                    }
                }
                self.note_fetch(kind, key, mask);
                jobs.push(Job {
                    path: entry.path,
                    key,
                    expected,
                });
                if jobs.len() == HASH_BATCH {
                    self.run(kind, &mut jobs, &mut listed);
                }
            }
        }
        self.run(kind, &mut jobs, &mut listed);
        if !repeated.is_empty() {
            self.repeated_entries(kind, primary, &repeated);
        }
        // Files some other manifest lists but the first does not.
        for at in 0..others.len() {
            if others[at].1.is_empty() {
                continue;
            }
            let (algorithm, _) = others[at];
            let name = manifest_file(kind, algorithm);
            let Some(mut lines) = self.lines(&name, true) else {
                continue;
            };
            let mut line = Vec::new();
            while let Some(entry) = lines.entry(&mut line, algorithm, kind, self) {
                let key = path_key(&entry.path);
                let Some(digest) = others[at].1.remove(&key) else {
                    continue;
                };
                self.not_in(kind, &entry.path, &manifest_file(kind, primary));
                let mut expected = vec![(algorithm, digest)];
                let mut mask = 2u8 << at;
                for (index, (other, digests)) in others.iter_mut().enumerate().skip(at + 1) {
                    match digests.remove(&key) {
                        Some(digest) => {
                            expected.push((*other, digest));
                            mask |= 2 << index;
                        }
                        None => self.not_in(kind, &entry.path, &manifest_file(kind, *other)),
                    }
                }
                for (other, _) in others.iter().take(at) {
                    self.not_in(kind, &entry.path, &manifest_file(kind, *other));
                }
                listed.insert(key);
                self.note_fetch(kind, key, mask);
                jobs.push(Job {
                    path: entry.path,
                    key,
                    expected,
                });
                if jobs.len() == HASH_BATCH {
                    self.run(kind, &mut jobs, &mut listed);
                }
            }
            self.run(kind, &mut jobs, &mut listed);
        }
        listed
    }

    fn note_fetch(&mut self, kind: ManifestKind, key: u128, mask: u8) {
        if kind == ManifestKind::Payload {
            if let Some(fetch) = self.fetch.get_mut(&key) {
                fetch.listed |= mask;
            }
        }
    }

    /// A path one manifest lists and another does not: from BagIt 1.0 every payload
    /// manifest lists every payload file; tag manifests only should list the same files.
    fn not_in(&mut self, kind: ManifestKind, path: &str, manifest: &str) {
        match kind {
            ManifestKind::Payload if self.version >= Version::V1_0 => {
                self.report.invalid(format!(
                    "{manifest} does not list {path} (from BagIt 1.0 every payload manifest lists every payload file)"
                ));
                self.report
                    .record(PathFinding::new(path, "not-in-manifest").note(manifest.to_string()));
            }
            ManifestKind::Payload => {}
            ManifestKind::Tag => self.report.warn(format!(
                "{manifest} does not list {path}, which another tag manifest lists"
            )),
        }
    }

    /// Reads a further manifest into memory: path key → digest.
    fn index_manifest(&mut self, kind: ManifestKind, algorithm: Algorithm) -> PathMap<Vec<u8>> {
        let mut index: PathMap<Vec<u8>> = PathMap::default();
        let name = manifest_file(kind, algorithm);
        let Some(mut lines) = self.lines(&name, false) else {
            return index;
        };
        let mut line = Vec::new();
        while let Some(entry) = lines.entry(&mut line, algorithm, kind, self) {
            let key = path_key(&entry.path);
            match index.get(&key) {
                Some(first) => {
                    let same = *first == entry.digest;
                    let number = lines.number;
                    self.repeated(&name, number, &entry.path, same);
                }
                None => {
                    index.insert(key, entry.digest);
                }
            }
        }
        index
    }

    /// Entries of the streamed manifest whose path came earlier: its digests are
    /// looked up in a second pass, to tell a harmless repeat from a contradiction.
    fn repeated_entries(
        &mut self,
        kind: ManifestKind,
        algorithm: Algorithm,
        repeated: &[(u128, Vec<u8>, usize)],
    ) {
        let wanted: PathSet = repeated.iter().map(|(key, _, _)| *key).collect();
        let mut first: PathMap<(String, Vec<u8>)> = PathMap::default();
        let name = manifest_file(kind, algorithm);
        if let Some(mut lines) = self.lines(&name, true) {
            let mut line = Vec::new();
            while let Some(entry) = lines.entry(&mut line, algorithm, kind, self) {
                let key = path_key(&entry.path);
                if wanted.contains(&key) && !first.contains_key(&key) {
                    first.insert(key, (entry.path, entry.digest));
                }
            }
        }
        for (key, digest, number) in repeated {
            if let Some((path, earlier)) = first.get(key) {
                let same = earlier == digest;
                let path = path.clone();
                self.repeated(&name, *number, &path, same);
            }
        }
    }

    fn repeated(&mut self, manifest: &str, number: usize, path: &str, same: bool) {
        if !same {
            self.report.invalid(format!(
                "{manifest} line {number} lists {path} again with a different checksum"
            ));
            self.report.record(
                PathFinding::new(path, "listed-twice")
                    .note(format!("{manifest}: different checksums")),
            );
        } else if self.version >= Version::V1_0 {
            self.report.invalid(format!(
                "{manifest} line {number} lists {path} again (BagIt 1.0 lists every file exactly once)"
            ));
            self.report.record(
                PathFinding::new(path, "listed-twice").note(format!("{manifest}: same checksum")),
            );
        } else {
            self.report.warn(format!(
                "{manifest} line {number} lists {path} again, with the same checksum"
            ));
        }
    }

    /// Hashes a batch in parallel and records each outcome.
    fn run(&mut self, kind: ManifestKind, jobs: &mut Vec<Job>, listed: &mut PathSet) {
        if jobs.is_empty() {
            return;
        }
        let hashing = self.mode == Mode::Full;
        let bag = self.bag;
        let outcomes: Vec<Hashed> = jobs
            .par_iter()
            .map(|job| {
                let algorithms: Vec<Algorithm> = if hashing {
                    job.expected.iter().map(|(a, _)| *a).collect()
                } else {
                    Vec::new()
                };
                bag.hash(&job.path, &algorithms)
            })
            .collect();
        for (job, outcome) in jobs.drain(..).zip(outcomes) {
            self.outcome(kind, job, outcome, listed);
        }
    }

    fn outcome(&mut self, kind: ManifestKind, job: Job, outcome: Hashed, listed: &mut PathSet) {
        match outcome {
            Hashed::Digests(actual, _) if self.mode != Mode::Full => {
                drop(actual);
                self.report.totals.unhashed += 1;
            }
            Hashed::Digests(actual, _) => self.compare(&job.path, &job.expected, &actual),
            Hashed::Missing => {
                if kind == ManifestKind::Payload {
                    if let Some(fetch) = self.fetch.get_mut(&job.key) {
                        fetch.pending = true;
                        let note = match fetch.length {
                            Some(length) => format!("to be fetched ({length} bytes)"),
                            None => "to be fetched".to_string(),
                        };
                        self.report.fetch_pending(job.path.clone());
                        self.report
                            .record(PathFinding::new(&job.path, "fetch-pending").note(note));
                        return;
                    }
                }
                if let Some(variant) = self.variant(&job.path) {
                    let algorithms: Vec<Algorithm> = job.expected.iter().map(|(a, _)| *a).collect();
                    let hashed = if self.mode == Mode::Full {
                        self.bag.hash(&variant, &algorithms)
                    } else {
                        self.bag.hash(&variant, &[])
                    };
                    if let Hashed::Digests(actual, _) = hashed {
                        let same = self.mode != Mode::Full
                            || job.expected.iter().all(|(a, want)| {
                                actual.iter().any(|(b, got)| a == b && got == want)
                            });
                        if same {
                            self.report.warn(format!(
                                "{} is listed, and the bag holds it as {variant}: the names differ only by case or Unicode normalization",
                                job.path
                            ));
                            listed.insert(path_key(&variant));
                            if self.mode == Mode::Full {
                                self.compare(&job.path, &job.expected, &actual);
                            } else {
                                self.report.totals.unhashed += 1;
                            }
                            return;
                        }
                    }
                }
                self.report.add(Finding::Missing, job.path.clone());
                self.report.record(PathFinding::new(&job.path, "missing"));
            }
            Hashed::Unreadable(why) => {
                self.report.detail(format!("{}: {why}", job.path));
                self.report.add(Finding::Modified, job.path.clone());
                self.report
                    .record(PathFinding::new(&job.path, "unreadable").note(why));
            }
            Hashed::Unsafe(why) => {
                self.report.detail(format!("{}: {why}", job.path));
                self.report.add(Finding::Unsafe, job.path.clone());
                self.report.unsafe_found += 1;
                self.report
                    .record(PathFinding::new(&job.path, "unsafe").note(why.to_string()));
            }
            Hashed::Directory => {
                self.report.invalid(format!(
                    "{} is a directory, but a manifest lists it as a file",
                    job.path
                ));
            }
        }
    }

    fn compare(
        &mut self,
        path: &str,
        expected: &[(Algorithm, Vec<u8>)],
        actual: &[(Algorithm, Vec<u8>)],
    ) {
        let mut finding = PathFinding::new(path, "modified");
        let mut all = true;
        for (algorithm, want) in expected {
            let got = actual.iter().find(|(a, _)| a == algorithm).map(|(_, d)| d);
            let same = got == Some(want);
            self.report.count_algorithm(*algorithm, same);
            all &= same;
            finding
                .digests
                .push((*algorithm, hex(want), got.map(|d| hex(d))));
        }
        if all {
            self.report.totals.matched += 1;
        } else {
            self.report.add(Finding::Modified, path.to_string());
            self.report.record(finding);
        }
    }

    /// The one path in the bag that names `rel` but for case or Unicode normalization.
    fn variant(&mut self, rel: &str) -> Option<String> {
        let mut found = String::new();
        for component in rel.split('/') {
            let names = self.dir_names(&found)?;
            let next = if names.iter().any(|n| n == component) {
                component.to_string()
            } else {
                let folded = fold(component);
                let mut matches = names.iter().filter(|n| fold(n) == folded);
                let first = matches.next()?.clone();
                if matches.next().is_some() {
                    return None;
                }
                first
            };
            if !found.is_empty() {
                found.push('/');
            }
            found.push_str(&next);
        }
        (found != rel).then_some(found)
    }

    fn dir_names(&mut self, dir: &str) -> Option<&Vec<String>> {
        if self.listed_dir.as_ref().is_none_or(|(d, _)| d != dir) {
            let names = self.bag.list_dir(dir)?;
            self.listed_dir = Some((dir.to_string(), names));
        }
        self.listed_dir.as_ref().map(|(_, names)| names)
    }

    /// Tag manifests: checked like payload manifests, and each must list every payload
    /// manifest. Returns every path they list.
    fn check_tag_manifests(
        &mut self,
        tags: &[Algorithm],
        payload: &[Algorithm],
    ) -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        for &algorithm in tags {
            let name = manifest_file(ManifestKind::Tag, algorithm);
            let mut here = BTreeSet::new();
            if let Some(mut lines) = self.lines(&name, true) {
                let mut line = Vec::new();
                lines.quiet = true;
                while let Some(entry) = lines.entry(&mut line, algorithm, ManifestKind::Tag, self) {
                    here.insert(entry.path);
                }
            }
            for &manifest in payload {
                let wanted = manifest_file(ManifestKind::Payload, manifest);
                if !here.contains(&wanted) {
                    let message = format!("{name} does not list {wanted} (a tag manifest lists every payload manifest)");
                    if self.version >= Version::V1_0 {
                        self.report.invalid(message);
                    } else {
                        self.report.warn(message);
                    }
                }
            }
            paths.extend(here);
        }
        self.check_manifests(ManifestKind::Tag, tags);
        paths
    }

    fn check_oxum(
        &mut self,
        oxum: Option<Oxum>,
        bytes: u64,
        files: u64,
        chatvault: bool,
        info_file: &str,
    ) {
        let Some(oxum) = oxum else {
            if chatvault {
                self.report
                    .problem(format!("{info_file} has no Payload-Oxum"));
            }
            return;
        };
        // Files still to be fetched count as the payload they will be.
        let pending: Vec<&Fetch> = self.fetch.values().filter(|f| f.pending).collect();
        let files = files.saturating_add(pending.len() as u64);
        let known: Option<u64> = pending
            .iter()
            .try_fold(0u64, |sum, f| f.length.map(|l| sum.saturating_add(l)));
        let found = Oxum {
            bytes: bytes.saturating_add(known.unwrap_or(0)),
            files,
        };
        let differs = found.files != oxum.files || (known.is_some() && found.bytes != oxum.bytes);
        if differs {
            let what = if pending.is_empty() {
                "the payload holds"
            } else {
                "the payload and the files to be fetched hold"
            };
            self.report.problem(format!(
                "Payload-Oxum is {oxum} but {what} {found} (bytes.files)"
            ));
        }
    }
}

/// A manifest read line by line.
struct Lines<'a> {
    name: String,
    reader: io::BufReader<Utf8Reader<Box<dyn io::Read + Send + 'a>>>,
    number: usize,
    /// Already checked once: report nothing again.
    quiet: bool,
    bom_checked: bool,
    /// md5sum's "*" or "./" before a path was already reported once for this file.
    star_said: bool,
    dot_said: bool,
}

impl Lines<'_> {
    /// The next line's text; faults are reported (unless quiet) and the line skipped.
    fn next(&mut self, line: &mut Vec<u8>, report: &mut VerifyReport) -> Option<String> {
        loop {
            let read = read_line(&mut self.reader, line, MAX_MANIFEST_LINE);
            if !self.bom_checked {
                self.bom_checked = true;
                if self.reader.get_ref().had_utf8_bom() && !self.quiet {
                    report.invalid(format!(
                        "{} begins with a byte order mark, which a UTF-8 tag file must not",
                        self.name
                    ));
                }
            }
            let too_long = match read {
                Ok(Some(too_long)) => too_long,
                Ok(None) => return None,
                Err(e) => {
                    if !self.quiet {
                        report.invalid(format!("{}: cannot be read or decoded: {e}", self.name));
                    }
                    return None;
                }
            };
            self.number += 1;
            if too_long {
                if !self.quiet {
                    report.invalid(format!(
                        "{} line {}: longer than {MAX_MANIFEST_LINE} bytes",
                        self.name, self.number
                    ));
                }
                continue;
            }
            match std::str::from_utf8(line) {
                Ok(text) => return Some(text.to_string()),
                Err(_) => {
                    if !self.quiet {
                        report.invalid(format!(
                            "{} line {}: not valid UTF-8",
                            self.name, self.number
                        ));
                    }
                }
            }
        }
    }

    /// The next entry that belongs in a manifest of `kind`; every other line is
    /// reported (unless quiet) and skipped.
    fn entry(
        &mut self,
        line: &mut Vec<u8>,
        algorithm: Algorithm,
        kind: ManifestKind,
        ctx: &mut Ctx,
    ) -> Option<Entry> {
        loop {
            let text = self.next(line, ctx.report)?;
            let number = self.number;
            let entry = match parse_line(&text, algorithm) {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    if !self.quiet {
                        ctx.report
                            .warn(format!("{} line {number} is blank (ignored)", self.name));
                    }
                    continue;
                }
                Err(EntryError::OutOfScope { path, reason }) => {
                    if !self.quiet {
                        let name = self.name.clone();
                        ctx.out_of_scope(&name, number, path, reason);
                    }
                    continue;
                }
                Err(e) => {
                    if !self.quiet {
                        ctx.report
                            .invalid(format!("{} line {number}: {e}", self.name));
                    }
                    continue;
                }
            };
            if !self.quiet {
                // Said once per manifest: a bag made with md5sum has it on every line.
                if entry.md5sum_star && !self.star_said {
                    self.star_said = true;
                    ctx.report.warn(format!(
                        "{} line {number} (and any later ones): \"*\" before the path, as md5sum writes it, was ignored; strict validators refuse such a bag",
                        self.name
                    ));
                }
                if entry.dot_slash && !self.dot_said {
                    self.dot_said = true;
                    ctx.report.warn(format!(
                        "{} line {number} (and any later ones): \"./\" before the path was ignored",
                        self.name
                    ));
                }
            }
            let misplaced = match kind {
                ManifestKind::Payload => (!entry.path.starts_with("data/"))
                    .then(|| format!("lists {}, which is not under data/ (a payload manifest lists only payload files)", entry.path)),
                ManifestKind::Tag if entry.path.starts_with("data/") => Some(format!(
                    "lists {}, a payload file (a tag manifest lists only tag files)",
                    entry.path
                )),
                ManifestKind::Tag => manifest_name(&entry.path)
                    .is_some_and(|(k, _)| k == ManifestKind::Tag)
                    .then(|| format!("lists {}, a tag manifest (tag manifests do not list each other)", entry.path)),
            };
            if let Some(why) = misplaced {
                if !self.quiet {
                    ctx.report
                        .invalid(format!("{} line {number} {why}", self.name));
                }
                continue;
            }
            return Some(entry);
        }
    }
}
