//! Helpers shared by the integration tests: run the binary, simulate sources, read CSV
//! back, and hash trees independently of the code under test.
#![allow(dead_code)]

pub mod leaks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use sha2::{Digest, Sha256};

pub fn chatvault() -> Command {
    let mut cmd = Command::cargo_bin("chatvault").unwrap();
    cmd.env_remove("RUST_LOG");
    cmd
}

pub fn run(args: &[&str]) -> Output {
    chatvault().args(args).output().unwrap()
}

pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "chatvault {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// Runs an outside tool (`bagit.py`, `sha256sum`, `unzip`, …) and fails the test, with its
/// output, unless it succeeds.
pub fn shell_ok(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fixed reference time so simulated sources are identical across runs.
pub const NOW: &str = "2025-06-12T08:00:00Z";

/// Simulates a source into `dir/name` and returns its path.
pub fn simulate(platform: &str, dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let root = dir.join(name);
    let mut args = vec![
        "simulate",
        platform,
        "--out",
        root.to_str().unwrap(),
        "--now",
        NOW,
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    root
}

/// Parses a CSV file written by chatvault: strips the BOM, undoes the formula guard.
pub fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).unwrap();
    let body = bytes.strip_prefix("\u{FEFF}".as_bytes()).unwrap_or(&bytes);
    let mut reader = csv::ReaderBuilder::new().from_reader(body);
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .cloned()
                .zip(
                    r.iter()
                        .map(|c| chatvault::sink::csv::unguard_cell(c).to_string()),
                )
                .collect()
        })
        .collect()
}

pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    format!("{:x}", Sha256::digest(&bytes))
}

/// Every file under `root` (not following links) with its SHA-256 and metadata that a
/// read must not change.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, (String, u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut map = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        if meta.file_type().is_file() {
            map.insert(
                entry.path().to_path_buf(),
                (sha256_file(entry.path()), meta.len(), meta.mtime()),
            );
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path()).unwrap();
            map.insert(
                entry.path().to_path_buf(),
                (target.to_string_lossy().into_owned(), 0, 0),
            );
        }
    }
    map
}

/// Opens a private copy of a WeChat database (with its WAL) for ground-truth queries, so
/// the test itself never changes the source.
pub fn ground_truth_db(root: &Path, rel: &str) -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let src = root.join(rel);
    let name = src.file_name().unwrap().to_owned();
    let copy = dir.path().join(&name);
    std::fs::copy(&src, &copy).unwrap();
    for suffix in ["-wal", "-journal"] {
        let mut from = src.as_os_str().to_owned();
        from.push(suffix);
        let from = PathBuf::from(from);
        if from.exists() {
            let mut to = copy.as_os_str().to_owned();
            to.push(suffix);
            std::fs::copy(&from, PathBuf::from(to)).unwrap();
        }
    }
    let conn = rusqlite::Connection::open(&copy).unwrap();
    (dir, conn)
}

/// An outside tool, or `None` (then the calling test skips that check, unless
/// CHATVAULT_REQUIRE_TOOLS is set, as in CI).
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = if name == "bagit.py" {
        std::env::var_os("BAGIT_PY").map(PathBuf::from)
    } else {
        None
    }
    .or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CHATVAULT_REQUIRE_TOOLS").is_none(),
            "{name} is required (CHATVAULT_REQUIRE_TOOLS is set) but not found"
        );
        eprintln!("note: {name} not found; skipping that check");
    }
    found
}

pub fn exit_code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Checks every row of a bundle's media.csv against the source and returns the rows:
/// copies are byte-identical with the recorded hash and safe names, refused paths really
/// point outside the root, missing files are missing, never-downloaded ones are named so.
/// Each of `statuses` must occur, and no other status may.
pub fn check_media_rows(
    root: &Path,
    bundle: &Path,
    statuses: &[&str],
) -> Vec<BTreeMap<String, String>> {
    let media = read_csv(&bundle.join("data/media.csv"));
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for row in &media {
        let status = row["status"].as_str();
        assert!(statuses.contains(&status), "unexpected status {status}");
        *seen.entry(status.to_string()).or_default() += 1;
        match status {
            "copied" => {
                let copied = bundle.join(&row["bundle_path"]);
                assert_eq!(
                    std::fs::read(&copied).unwrap(),
                    std::fs::read(root.join(&row["source_path"])).unwrap(),
                    "{}",
                    row["source_path"]
                );
                assert_eq!(sha256_file(&copied), row["sha256"]);
                assert!(!row["bundle_path"].contains(['%', '\r', '\n']));
            }
            "outside_root" => {
                let p = &row["source_path"];
                let is_link = root
                    .join(p)
                    .symlink_metadata()
                    .map(|m| m.file_type().is_symlink());
                assert!(
                    p.starts_with('/') || p.contains("..") || is_link.unwrap_or(false),
                    "{p} is not outside the root"
                );
                assert!(row["bundle_path"].is_empty());
            }
            "missing" => assert!(!root.join(&row["source_path"]).exists()),
            "not_downloaded" => assert!(row["source_path"].starts_with("SERVERID://")),
            other => panic!("no check for status {other}"),
        }
    }
    for status in statuses {
        assert!(
            seen.contains_key(*status),
            "no media with status {status}: {seen:?}"
        );
    }
    media
}

/// Runs an export that must fail: the exit code, the message, no panic, and neither a
/// bundle nor a partial one left behind.
pub fn export_fails(source: &Path, out_dir: &Path, code: i32, message: &str) {
    let out = out_dir.join("bundle-refused");
    let result = run(&[
        "export",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(exit_code(&result), code, "{source:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "{source:?}: expected {message:?} in {stderr:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "an output was left behind");
    assert!(
        !out_dir.join("bundle-refused.partial").exists(),
        "a partial output was left behind"
    );
}

/// The rows of a bundle's messages.csv by group, in file order, each checked to be of
/// `platform`; the groups must be exactly those `expected` has.
pub fn messages_by_group<T>(
    bundle: &Path,
    platform: &str,
    expected: &BTreeMap<String, T>,
) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut by_group: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for row in read_csv(&bundle.join("data/messages.csv")) {
        assert_eq!(row["platform"], platform);
        by_group
            .entry(row["group_id"].clone())
            .or_default()
            .push(row);
    }
    assert_eq!(
        by_group.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same groups"
    );
    by_group
}

/// What `time_utc` must say for a time column holding `value` in units of `unit_ms`
/// milliseconds: RFC 3339 with milliseconds for an integer instant of years 0000-9999, empty
/// for anything else (NULL, text, a REAL, an instant no output can write).
pub fn expected_time_utc(value: &rusqlite::types::Value, unit_ms: i64) -> String {
    use chrono::{SecondsFormat, TimeZone, Utc};
    let rusqlite::types::Value::Integer(n) = value else {
        return String::new();
    };
    match n.checked_mul(unit_ms) {
        Some(ms) if (-62_167_219_200_000..=253_402_300_799_999).contains(&ms) => Utc
            .timestamp_millis_opt(ms)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        _ => String::new(),
    }
}

/// Headless Chromium with a fresh profile on `url` (the flags Debian's build needs here).
pub fn chromium_run(
    browser: &Path,
    profile: &Path,
    args: &[&str],
    url: &str,
) -> std::process::Output {
    std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap()
}
