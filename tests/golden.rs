//! Golden files: for each platform, the committed simulator fixture under
//! `testdata/<platform>/source/` is copied to a temporary directory, exported (plain and
//! anonymized, with `--fixed-time`) and planned, with the commands of
//! `testdata/GENERATE.sh`, and every output file is compared byte for byte with
//! `testdata/<platform>/golden/`. `UPDATE_GOLDEN=1` rewrites the golden files instead.
//!
//! Two things are not compared byte for byte, each for a stated reason:
//! - the plan's machine-specific fields (see [`normalize`]): the source root's absolute
//!   path, device and inode numbers and change times, and so the plan's sidecar;
//! - copied media (`data/media/**`): they are copies of fixture files, pinned by the
//!   golden `manifest-sha256.txt`, which [`check_media`] checks against them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use regex::bytes::Regex;
use sha2::{Digest, Sha256};

// The times of testdata/GENERATE.sh.
const FIXED: &str = "2025-06-12T09:00:00Z";
const PLAN_NOW: &str = "2025-06-20T00:00:00Z";
const DISSOLVED: &str = "2025-06-10T00:00:00Z";

/// One platform's fixture: where the account directory lies in the copy, and the group
/// the plan treats as dissolved (as in GENERATE.sh's `settings`).
struct Fixture {
    platform: &'static str,
    account: &'static str,
    group: &'static str,
}

const WECHAT: Fixture = Fixture {
    platform: "wechat",
    account: "source",
    group: "52587138491@chatroom",
};
const QQ: Fixture = Fixture {
    platform: "qq",
    account: "source",
    group: "1360565934",
};
const WECOM: Fixture = Fixture {
    platform: "wecom",
    account: "source",
    group: "wruUx2iupkEyZjG6TkM8rxpSKemk8V7i",
};
// DingTalk takes the owner's uid from the directory name `<uid>_v2`.
const DINGTALK: Fixture = Fixture {
    platform: "dingtalk",
    account: "source/123456_v2",
    group: "cidwHHfp+n0fYx==",
};
const ALL: [&Fixture; 4] = [&WECHAT, &QQ, &WECOM, &DINGTALK];

/// Golden files are read by every test and rewritten under UPDATE_GOLDEN=1: one at a time.
static GOLDEN_LOCK: Mutex<()> = Mutex::new(());

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Says something on the terminal even while the test harness captures output.
fn tell(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

// ---------------------------------------------------------------------------------------
// The fixture

/// One line of `source.mtimes`: type (`f` or `l`), mtime, path (bytes, relative to
/// `testdata/<platform>/`, starting with `source/`).
struct Entry {
    kind: u8,
    secs: i64,
    nanos: i64,
    path: Vec<u8>,
}

fn read_mtimes(platform: &str) -> Vec<Entry> {
    let file = testdata().join(platform).join("source.mtimes");
    let bytes = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut entries = Vec::new();
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let mut parts = line.splitn(3, |b| *b == b' ');
        let (kind, time, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some([kind]), Some(time), Some(path)) => (*kind, time, path),
            _ => panic!(
                "{}: bad line {:?}",
                file.display(),
                String::from_utf8_lossy(line)
            ),
        };
        // find's %T@: seconds, a dot, 10 fractional digits (nanoseconds and a zero).
        let time = std::str::from_utf8(time).unwrap();
        let (secs, frac) = time.split_once('.').unwrap_or((time, "0"));
        let frac: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        entries.push(Entry {
            kind,
            secs: secs.parse().unwrap(),
            nanos: frac.parse().unwrap(),
            path: path.to_vec(),
        });
    }
    entries
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every non-directory under `dir`, as (type, path relative to `base`).
fn list_files(base: &Path, dir: &Path, out: &mut BTreeSet<(u8, Vec<u8>)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let path = entry.path();
        if kind.is_dir() {
            list_files(base, &path, out);
        } else {
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            out.insert((if kind.is_symlink() { b'l' } else { b'f' }, rel));
        }
    }
}

/// Copies `testdata/<platform>/source` to `work/source` as the simulator wrote it (same
/// as GENERATE.sh's `copy_fixture`): files stored as `<path>.gz` are decompressed, and
/// every file's mtime (a symlink's own) is set from `source.mtimes`, since git keeps
/// neither and plan records mtimes. Fails if the copy holds other files than
/// `source.mtimes` lists (a file ignored by git or lost in a checkout).
fn copy_fixture(platform: &str, work: &Path) {
    let fixture = testdata().join(platform);
    copy_tree(&fixture.join("source"), &work.join("source"));
    let entries = read_mtimes(platform);
    for entry in &entries {
        let path = work.join(std::ffi::OsStr::from_bytes(&entry.path));
        let mut gz = path.clone().into_os_string();
        gz.push(".gz");
        let gz = PathBuf::from(gz);
        if entry.kind == b'f' && fs::symlink_metadata(&path).is_err() && gz.is_file() {
            let mut bytes = Vec::new();
            flate2::read::GzDecoder::new(fs::File::open(&gz).unwrap())
                .read_to_end(&mut bytes)
                .unwrap();
            fs::write(&path, bytes).unwrap();
            fs::remove_file(&gz).unwrap();
        }
        let time = rustix::fs::Timespec {
            tv_sec: entry.secs,
            tv_nsec: entry.nanos,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &path,
            &rustix::fs::Timestamps {
                last_access: time,
                last_modification: time,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
    }
    let listed: BTreeSet<(u8, Vec<u8>)> = entries.into_iter().map(|e| (e.kind, e.path)).collect();
    let mut present = BTreeSet::new();
    list_files(work, &work.join("source"), &mut present);
    let show = |set: Vec<&(u8, Vec<u8>)>| {
        set.iter()
            .map(|(k, p)| format!("{} {}", *k as char, String::from_utf8_lossy(p)))
            .collect::<Vec<_>>()
    };
    assert!(
        listed == present,
        "testdata/{platform}/source does not hold what source.mtimes lists (ignored by git? \
         lost in a checkout?)\nlisted, not present: {:?}\npresent, not listed: {:?}",
        show(listed.difference(&present).collect()),
        show(present.difference(&listed).collect()),
    );
}

// ---------------------------------------------------------------------------------------
// Producing the outputs

/// Sorted runs of at most this many bytes in the second production of each fixture: every
/// record that would be kept in memory goes through the on-disk merge instead, which
/// must give the same bytes.
const SMALL_SPILL_RUNS: &str = "300";

fn run(work: &Path, args: &[&str], small_runs: bool) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chatvault"));
    if small_runs {
        command.env("CHATVAULT_SPILL_RUN_BYTES", SMALL_SPILL_RUNS);
    } else {
        command.env_remove("CHATVAULT_SPILL_RUN_BYTES");
    }
    let out = command
        .current_dir(work)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chatvault {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs GENERATE.sh's commands on a fresh copy of the fixture, in its temporary
/// directory with relative paths; the outputs are under `<dir>/out`. With `small_runs`,
/// through the on-disk merges of records (see [`SMALL_SPILL_RUNS`]).
fn produce(fixture: &Fixture, small_runs: bool) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    copy_fixture(fixture.platform, dir);
    fs::copy(testdata().join("key.bin"), dir.join("key.bin")).unwrap();
    fs::create_dir_all(dir.join("out/plan")).unwrap();
    let account = fixture.account;
    run(
        dir,
        &[
            "export",
            account,
            "--out",
            "out/bundle",
            "--fixed-time",
            FIXED,
        ],
        small_runs,
    );
    run(
        dir,
        &[
            "export",
            account,
            "--out",
            "out/anon",
            "--fixed-time",
            FIXED,
            "--anonymize",
            "--key-file",
            "key.bin",
        ],
        small_runs,
    );
    let dissolved = format!("{}={DISSOLVED}", fixture.group);
    run(
        dir,
        &[
            "plan",
            account,
            "--out",
            "out/plan/PLAN.json",
            "--now",
            PLAN_NOW,
            "--dissolved-at",
            &dissolved,
            "--hash",
        ],
        small_runs,
    );
    work
}

/// Whether an output file is compared with a golden file: all but copied media.
fn pinned_by_golden(rel: &str) -> bool {
    !rel.split('/')
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w == ["data", "media"])
}

/// Every regular file under `dir`, relative, with `/` separators.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    let mut all = BTreeSet::new();
    if dir.exists() {
        list_files(dir, dir, &mut all);
    }
    for (_, rel) in all {
        set.insert(String::from_utf8(rel).expect("output paths are UTF-8"));
    }
    set
}

/// The output files a golden directory must hold.
fn golden_set(out: &Path) -> BTreeSet<String> {
    files_under(out)
        .into_iter()
        .filter(|rel| pinned_by_golden(rel))
        .collect()
}

/// Checks, independently of the code under test, that the copied media of each bundle
/// under `out` are exactly the `data/media/` files its manifest lists, with those hashes
/// (the golden manifest pins the manifest itself).
fn check_media(out: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for bundle in ["bundle", "anon"] {
        let root = out.join(bundle);
        let manifest = fs::read_to_string(root.join("manifest-sha256.txt")).unwrap();
        let mut listed = BTreeMap::new();
        for line in manifest.lines() {
            let (hash, path) = line.split_once("  ").expect("manifest line");
            if path.starts_with("data/media/") {
                listed.insert(path.to_string(), hash.to_string());
            }
        }
        let present: BTreeSet<String> = files_under(&root.join("data/media"))
            .into_iter()
            .map(|rel| format!("data/media/{rel}"))
            .collect();
        let names: BTreeSet<String> = listed.keys().cloned().collect();
        if names != present {
            problems.push(format!(
                "{bundle}: media files and manifest disagree: listed only {:?}, present only {:?}",
                names.difference(&present).collect::<Vec<_>>(),
                present.difference(&names).collect::<Vec<_>>()
            ));
        }
        for (path, hash) in &listed {
            if let Ok(bytes) = fs::read(root.join(path)) {
                let actual = hex(&Sha256::digest(&bytes));
                if &actual != hash {
                    problems.push(format!(
                        "{bundle}/{path}: sha256 {actual}, manifest says {hash}"
                    ));
                }
            }
        }
    }
    problems
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Normalization: the only output fields not compared as written

/// Rewrites the fields of an output that differ from machine to machine and run to run
/// whatever the options, each replaced by a placeholder naming it; every other byte is
/// kept. `out` is the output directory (the plan sidecar is checked against the plan).
/// GENERATE.sh applies the same rules with sed.
///
/// - `plan/PLAN.json`: the header's `source_root` (the absolute path of the copy: plan
///   records the canonical root, unlike a bundle), `root_dev` and `root_ino`; each
///   entry's `ctime` (set by the copy, cannot be set back), `dev` and `ino`.
/// - `plan/PLAN.csv`: the same three columns of each entry, `ctime`, `dev`, `ino`
///   (columns 4-6).
/// - `plan/PLAN.json.sha256`: the digest of PLAN.json (it covers the fields above),
///   after checking that it is the SHA-256 of the PLAN.json written beside it.
fn normalize(rel: &str, bytes: &[u8], out: &Path) -> Vec<u8> {
    match rel {
        "plan/PLAN.json" => normalize_plan_json(bytes),
        "plan/PLAN.csv" => normalize_plan_csv(bytes),
        "plan/PLAN.json.sha256" => {
            let plan = fs::read(out.join("plan/PLAN.json")).unwrap();
            let digest = hex(&Sha256::digest(&plan));
            if bytes.starts_with(digest.as_bytes()) {
                [b"<sha256 of PLAN.json>", &bytes[64..]].concat()
            } else {
                // Left as written: the mismatch shows in the diff.
                bytes.to_vec()
            }
        }
        _ => bytes.to_vec(),
    }
}

fn normalize_plan_json(bytes: &[u8]) -> Vec<u8> {
    let rules = [
        (
            r#"(?m)^(  "source_root": )"(?:[^"\\]|\\.)*""#,
            r#"$1"<source_root>""#,
        ),
        (r#"(?m)^(  "root_dev": )[0-9]+"#, r#"$1"<dev>""#),
        (r#"(?m)^(  "root_ino": )[0-9]+"#, r#"$1"<ino>""#),
        (r#""ctime":"[^"]*""#, r#""ctime":"<ctime>""#),
        (r#""dev":[0-9]+"#, r#""dev":"<dev>""#),
        (r#""ino":[0-9]+"#, r#""ino":"<ino>""#),
    ];
    let mut text = bytes.to_vec();
    for (pattern, replacement) in rules {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, replacement.as_bytes())
            .into_owned();
    }
    text
}

/// Replaces columns 4-6 (ctime, dev, ino) of every record after the header; fields are
/// found by RFC 4180 quoting, so a quoted path with commas or line breaks is read right.
fn normalize_plan_csv(bytes: &[u8]) -> Vec<u8> {
    const PLACEHOLDERS: [&[u8]; 3] = [b"<ctime>", b"<dev>", b"<ino>"];
    let mut out = Vec::with_capacity(bytes.len());
    let (mut record, mut field, mut quoted) = (0usize, 0usize, false);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let replacing = record > 0 && (3..6).contains(&field);
        if quoted {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    if !replacing {
                        out.extend_from_slice(b"\"\"");
                    }
                    i += 2;
                    continue;
                }
                quoted = false;
            }
            if !replacing {
                out.push(b);
            }
        } else if b == b'"' {
            quoted = true;
            if !replacing {
                out.push(b);
            }
        } else if b == b',' || b == b'\r' || b == b'\n' {
            out.push(b);
            if b == b',' {
                field += 1;
            } else if b == b'\n' {
                record += 1;
                field = 0;
            }
            if record > 0 && (3..6).contains(&field) && b == b',' {
                out.extend_from_slice(PLACEHOLDERS[field - 3]);
            }
        } else if !replacing {
            out.push(b);
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------
// Comparison

/// One golden file that does not match.
struct Mismatch {
    file: String,
    report: String,
}

/// Compares every golden-pinned output under `out` with the file of the same name
/// under `golden` (after [`normalize`]), and the two sets of names; also checks media
/// against their manifests. Returns what differs.
fn compare_tree(golden: &Path, out: &Path) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    let produced = golden_set(out);
    let expected = files_under(golden);
    for rel in expected.difference(&produced) {
        mismatches.push(Mismatch {
            file: rel.clone(),
            report: format!("{rel}: in the golden directory, not produced by the commands"),
        });
    }
    for rel in produced.difference(&expected) {
        mismatches.push(Mismatch {
            file: rel.clone(),
            report: format!("{rel}: produced, but no golden file pins it"),
        });
    }
    for rel in produced.intersection(&expected) {
        let actual = normalize(rel, &fs::read(out.join(rel)).unwrap(), out);
        let wanted = fs::read(golden.join(rel)).unwrap();
        if let Err(report) = compare_bytes(rel, &wanted, &actual) {
            mismatches.push(Mismatch {
                file: rel.clone(),
                report,
            });
        }
    }
    for problem in check_media(out) {
        mismatches.push(Mismatch {
            file: "data/media".into(),
            report: problem,
        });
    }
    mismatches
}

/// `Ok` if equal, else a unified line diff of at most [`MAX_DIFF_LINES`] differing lines.
fn compare_bytes(name: &str, golden: &[u8], actual: &[u8]) -> Result<(), String> {
    if golden == actual {
        return Ok(());
    }
    Err(unified_diff(name, golden, actual))
}

const MAX_DIFF_LINES: usize = 40;
const CONTEXT: usize = 2;

/// Lines split after each `\n`, shown with control characters escaped (`\r` of CRLF
/// included, so a line-ending change is visible).
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|b| *b == b'\n').collect()
}

fn show(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
    let mut shown = String::new();
    for c in text.chars() {
        match c {
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push('\t'),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                shown.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => shown.push(c),
        }
    }
    if !line.ends_with(b"\n") {
        shown.push_str("  (no newline at end)");
    }
    shown
}

/// Edit script between `a` and `b`: common prefix and suffix, and a longest common
/// subsequence of what is left (or all of it replaced when that is too large).
fn edit_script<'t>(a: &[&'t [u8]], b: &[&'t [u8]]) -> Vec<(char, &'t [u8])> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut script: Vec<(char, &[u8])> = a[..prefix].iter().map(|l| (' ', *l)).collect();
    if am.len().saturating_mul(bm.len()) <= 4_000_000 {
        // lcs[i][j]: length of the LCS of am[i..] and bm[j..].
        let (n, m) = (am.len(), bm.len());
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * (m + 1) + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                script.push((' ', am[i]));
                i += 1;
                j += 1;
            } else if j == m || (i < n && lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
                script.push(('-', am[i]));
                i += 1;
            } else {
                script.push(('+', bm[j]));
                j += 1;
            }
        }
    } else {
        script.extend(am.iter().map(|l| ('-', *l)));
        script.extend(bm.iter().map(|l| ('+', *l)));
    }
    script.extend(a[a.len() - suffix..].iter().map(|l| (' ', *l)));
    script
}

fn unified_diff(name: &str, golden: &[u8], actual: &[u8]) -> String {
    let (a, b) = (lines(golden), lines(actual));
    let script = edit_script(&a, &b);
    let changed: Vec<usize> = (0..script.len()).filter(|&k| script[k].0 != ' ').collect();
    let mut report = format!(
        "--- testdata golden {name}\n+++ produced {name}\n({} differing lines)\n",
        changed.len()
    );
    // Hunks: runs of changes with CONTEXT lines around, merged when they touch.
    let mut shown = 0;
    let mut k = 0;
    while k < changed.len() && shown < MAX_DIFF_LINES {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= end + 2 * CONTEXT + 1 {
            k += 1;
            end = changed[k];
        }
        k += 1;
        let end = (end + CONTEXT + 1).min(script.len());
        // Line numbers of the hunk's start in each file.
        let old_line = script[..start].iter().filter(|(t, _)| *t != '+').count() + 1;
        let new_line = script[..start].iter().filter(|(t, _)| *t != '-').count() + 1;
        let old_len = script[start..end].iter().filter(|(t, _)| *t != '+').count();
        let new_len = script[start..end].iter().filter(|(t, _)| *t != '-').count();
        report.push_str(&format!(
            "@@ -{old_line},{old_len} +{new_line},{new_len} @@\n"
        ));
        for (tag, line) in &script[start..end] {
            if *tag != ' ' {
                if shown == MAX_DIFF_LINES {
                    break;
                }
                shown += 1;
            }
            report.push_str(&format!("{tag}{}\n", show(line)));
        }
    }
    if changed.len() > shown {
        report.push_str(&format!(
            "… {} more differing lines\n",
            changed.len() - shown
        ));
    }
    report
}

// ---------------------------------------------------------------------------------------
// Updating

/// Writes the normalized outputs over the golden directory and removes golden files
/// no longer produced.
fn update_golden(golden: &Path, out: &Path) {
    let problems = check_media(out);
    assert!(problems.is_empty(), "not writing goldens: {problems:?}");
    let produced = golden_set(out);
    let mut changed = 0;
    for rel in files_under(golden).difference(&produced) {
        fs::remove_file(golden.join(rel)).unwrap();
        changed += 1;
    }
    for rel in &produced {
        let bytes = normalize(rel, &fs::read(out.join(rel)).unwrap(), out);
        let target = golden.join(rel);
        if fs::read(&target).ok().as_deref() != Some(&bytes[..]) {
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(&target, &bytes).unwrap();
            changed += 1;
        }
    }
    tell(&format!(
        "UPDATE_GOLDEN=1: rewrote {} ({changed} of {} files changed or removed)",
        golden.display(),
        produced.len()
    ));
}

fn check_platform(fixture: &Fixture) {
    let work = produce(fixture, false);
    let out = work.path().join("out");
    let golden = testdata().join(fixture.platform).join("golden");
    let _lock = GOLDEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if updating() {
        update_golden(&golden, &out);
        return;
    }
    let mut mismatches = compare_tree(&golden, &out);
    let spilled = produce(fixture, true);
    mismatches.extend(
        compare_tree(&golden, &spilled.path().join("out"))
            .into_iter()
            .map(|m| Mismatch {
                report: format!(
                    "(with sorted runs of {SMALL_SPILL_RUNS} bytes) {}",
                    m.report
                ),
                ..m
            }),
    );
    if !mismatches.is_empty() {
        let reports: Vec<String> = mismatches.into_iter().map(|m| m.report).collect();
        panic!(
            "{}: outputs differ from testdata/{}/golden/ (if the change is intended, rerun \
             with UPDATE_GOLDEN=1 and review the diff):\n\n{}",
            fixture.platform,
            fixture.platform,
            reports.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn wechat_matches_golden() {
    check_platform(&WECHAT);
}

#[test]
fn qq_matches_golden() {
    check_platform(&QQ);
}

#[test]
fn wecom_matches_golden() {
    check_platform(&WECOM);
}

#[test]
fn dingtalk_matches_golden() {
    check_platform(&DINGTALK);
}

/// No output goes unpinned: each golden directory holds exactly the files the commands
/// produce, copied media aside, and those are exactly what the manifests list.
#[test]
fn golden_dirs_hold_every_output() {
    if updating() {
        return; // the goldens are being rewritten from these very sets
    }
    for fixture in ALL {
        let work = produce(fixture, false);
        let out = work.path().join("out");
        let golden = testdata().join(fixture.platform).join("golden");
        let _lock = GOLDEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let expected = files_under(&golden);
        let produced = golden_set(&out);
        assert_eq!(expected, produced, "{}: golden file set", fixture.platform);
        // The bundles, their sidecars and the plan are all there.
        for rel in [
            "bundle.sha256",
            "bundle/bagit.txt",
            "bundle/bag-info.txt",
            "bundle/manifest-sha256.txt",
            "bundle/tagmanifest-sha256.txt",
            "bundle/evidence.json",
            "bundle/data/messages.csv",
            "bundle/data/members.csv",
            "bundle/data/groups.csv",
            "bundle/data/media.csv",
            "anon.sha256",
            "anon/evidence.json",
            "anon/data/messages.csv",
            "plan/PLAN.json",
            "plan/PLAN.csv",
            "plan/PLAN.json.sha256",
        ] {
            assert!(produced.contains(rel), "{}: no {rel}", fixture.platform);
        }
        assert_eq!(
            check_media(&out),
            Vec::<String>::new(),
            "{}",
            fixture.platform
        );
        assert!(
            files_under(&out.join("bundle/data/media")).len() > 3,
            "{}: the fixture's export copies media",
            fixture.platform
        );
    }
}

/// The comparison really fails on a one-character change: a copy of a golden directory
/// with one byte changed is compared with fresh outputs by the same `compare_tree`.
#[test]
fn a_changed_golden_fails_with_a_diff() {
    if updating() {
        return;
    }
    let work = produce(&WECHAT, false);
    let out = work.path().join("out");
    let copy = tempfile::tempdir().unwrap();
    let mutated = copy.path().join("golden");
    {
        let _lock = GOLDEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        copy_tree(&testdata().join("wechat/golden"), &mutated);
    }
    let clean: Vec<String> = compare_tree(&mutated, &out)
        .into_iter()
        .map(|m| m.report)
        .collect();
    assert!(clean.is_empty(), "the unchanged copy must match: {clean:?}");

    // One character in the middle of messages.csv, and one digit of an mtime in
    // PLAN.json (a field next to the normalized ones, which must still be compared).
    let messages = mutated.join("bundle/data/messages.csv");
    let mut bytes = fs::read(&messages).unwrap();
    let at = bytes.len() / 2
        + bytes[bytes.len() / 2..]
            .iter()
            .position(|b| b.is_ascii_alphanumeric())
            .unwrap();
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    fs::write(&messages, &bytes).unwrap();
    let plan = mutated.join("plan/PLAN.json");
    let text = fs::read_to_string(&plan).unwrap();
    let at = text.find("\"mtime\":\"").unwrap() + "\"mtime\":\"".len() + 3;
    let digit = if &text[at..at + 1] == "9" { "8" } else { "9" };
    fs::write(&plan, format!("{}{digit}{}", &text[..at], &text[at + 1..])).unwrap();

    let mismatches = compare_tree(&mutated, &out);
    let files: Vec<&str> = mismatches.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(files, ["bundle/data/messages.csv", "plan/PLAN.json"]);
    let report = &mismatches[0].report;
    assert!(
        report.starts_with("--- testdata golden bundle/data/messages.csv\n"),
        "{report}"
    );
    assert!(report.contains("(2 differing lines)"), "{report}");
    let minus: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .collect();
    let plus: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert_eq!((minus.len(), plus.len()), (1, 1), "{report}");
    assert_ne!(minus[0][1..], plus[0][1..]);
    assert_eq!(minus[0].len(), plus[0].len());
}

#[test]
fn diff_shows_changed_lines_with_context_and_a_limit() {
    let golden = b"a\r\nb\r\nc\r\nd\r\ne\r\nf\r\n";
    let actual = b"a\r\nb\r\nC\r\nd\r\ne\r\nf\r\ng";
    assert!(compare_bytes("x.csv", golden, golden).is_ok());
    let report = compare_bytes("x.csv", golden, actual).unwrap_err();
    assert_eq!(
        report,
        "--- testdata golden x.csv\n+++ produced x.csv\n(3 differing lines)\n\
         @@ -1,6 +1,7 @@\n a\\r\n b\\r\n-c\\r\n+C\\r\n d\\r\n e\\r\n f\\r\n+g  (no newline at end)\n"
    );
    // A long diff stops after MAX_DIFF_LINES differing lines.
    let many_a: Vec<u8> = (0..100)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let many_b: Vec<u8> = (0..100)
        .flat_map(|i| format!("LINE {i}\n").into_bytes())
        .collect();
    let report = compare_bytes("y", &many_a, &many_b).unwrap_err();
    let shown = report
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .count();
    assert_eq!(shown, MAX_DIFF_LINES);
    assert!(report.ends_with("… 160 more differing lines\n"), "{report}");
}

#[test]
fn normalization_touches_only_the_named_plan_fields() {
    let json = concat!(
        "{\"header\": {\n",
        "  \"source_root\": \"/tmp/.tmpAb\\\"c/source\",\n",
        "  \"root_dev\": 65024,\n",
        "  \"root_ino\": 10010927,\n",
        "  \"tool_version\": \"0.1.0\"\n",
        "},\n",
        "{\"path\":\"a \\\"dev\\\":1\",\"size\":7,\"mtime\":\"2025-06-12T06:51:38.568Z\",",
        "\"ctime\":\"2026-12-07T11:10:59.2Z\",\"dev\":65024,\"ino\":10011047,\"sha256\":null}\n",
    );
    let expected = concat!(
        "{\"header\": {\n",
        "  \"source_root\": \"<source_root>\",\n",
        "  \"root_dev\": \"<dev>\",\n",
        "  \"root_ino\": \"<ino>\",\n",
        "  \"tool_version\": \"0.1.0\"\n",
        "},\n",
        "{\"path\":\"a \\\"dev\\\":1\",\"size\":7,\"mtime\":\"2025-06-12T06:51:38.568Z\",",
        "\"ctime\":\"<ctime>\",\"dev\":\"<dev>\",\"ino\":\"<ino>\",\"sha256\":null}\n",
    );
    assert_eq!(
        String::from_utf8(normalize_plan_json(json.as_bytes())).unwrap(),
        expected
    );
    let csv = "\u{feff}path,size,mtime,ctime,dev,ino,sha256,reason\r\n\
               a.jpg,1,2025-06-01T00:00:00Z,2026-01-01T00:00:00.5Z,65024,77,ab,keep\r\n\
               \"b,\"\"c\"\"\r\nd.pdf\",2,2025-06-02T00:00:00Z,2026-01-02T00:00:00Z,1,2,,\"x, y\"\r\n";
    let expected = "\u{feff}path,size,mtime,ctime,dev,ino,sha256,reason\r\n\
                    a.jpg,1,2025-06-01T00:00:00Z,<ctime>,<dev>,<ino>,ab,keep\r\n\
                    \"b,\"\"c\"\"\r\nd.pdf\",2,2025-06-02T00:00:00Z,<ctime>,<dev>,<ino>,,\"x, y\"\r\n";
    assert_eq!(
        String::from_utf8(normalize_plan_csv(csv.as_bytes())).unwrap(),
        expected
    );
}
