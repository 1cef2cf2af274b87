//! Deterministic crashes: each command is first run with `CHATVAULT_FAILPOINT_TRACE` to
//! list the crash points it reaches, then killed (SIGABRT) at every one of them in turn
//! (the first time it is reached, and for the per-file points also the third), and the
//! invariants checked:
//! - the source's databases are unchanged (SHA-256);
//! - no file is removed that the plan did not mark `delete`;
//! - no file is lost: after re-running `clean --apply` every planned file is gone (delete
//!   mode) and nothing else; after `undo` every file is back with its SHA-256 (quarantine);
//! - the journal holds each completion at most once per file;
//! - a crash while writing a plan leaves no plan, the old one, or a new one that verifies:
//!   never a `PLAN.json` whose sidecar does not match that is accepted.
#![cfg(feature = "failpoints")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

const SIGABRT: i32 = 6;

/// Crash points of the per-file steps: also crashed at their third hit.
const PER_FILE: &[&str] = &[
    "clean.intent.before",
    "clean.intent.after",
    "clean.unlink.before",
    "clean.unlink.after",
    "clean.unlink.synced",
    "clean.rename.before",
    "clean.rename.after",
    "clean.rename.synced",
    "clean.done.before",
    "clean.done.after",
    "undo.intent.before",
    "undo.intent.after",
    "undo.rename.before",
    "undo.rename.after",
    "undo.rename.synced",
    "undo.done.before",
    "undo.done.after",
];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run_env(args: &[&str], env: &[(&str, &Path)], failpoint: Option<&str>) -> Output {
    let mut cmd = chatvault();
    cmd.env_remove("CHATVAULT_FAILPOINT")
        .env_remove("CHATVAULT_FAILPOINT_TRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(point) = failpoint {
        cmd.env("CHATVAULT_FAILPOINT", point);
    }
    cmd.args(args).output().unwrap()
}

/// The crash points a command reaches, in the order first reached.
fn trace(args: &[&str], dir: &Path) -> Vec<String> {
    let file = dir.join("trace.txt");
    let _ = std::fs::remove_file(&file);
    let out = run_env(args, &[("CHATVAULT_FAILPOINT_TRACE", &file)], None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn crash(args: &[&str], point: &str) {
    let out = run_env(args, &[], Some(point));
    assert_eq!(
        out.status.signal(),
        Some(SIGABRT),
        "{point}: the failpoint was not reached ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Case {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    root: PathBuf,
    plan: PathBuf,
    journal: PathBuf,
    quarantine: PathBuf,
    before: BTreeMap<String, String>,
    deletes: BTreeSet<String>,
}

fn tree(root: &Path) -> BTreeMap<String, String> {
    snapshot(root)
        .into_iter()
        .map(|(p, (sha, _, _))| {
            (
                p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                sha,
            )
        })
        .collect()
}

impl Case {
    fn new() -> Case {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let root = simulate(
            "wechat",
            &dir,
            "wx",
            &[
                "--groups",
                "3",
                "--messages",
                "500",
                "--days",
                "30",
                "--seed",
                "5",
                "--wal",
            ],
        );
        let plan = dir.join("plan.json");
        run_ok(&["plan", s(&root), "--out", s(&plan), "--now", NOW, "--hash"]);
        let planned: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
        let deletes: BTreeSet<String> = planned["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "delete")
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        assert!(deletes.len() >= 3, "{} deletions", deletes.len());
        Case {
            journal: dir.join("plan.json.journal"),
            quarantine: dir.join("q"),
            before: tree(&root),
            _dir: temp,
            dir,
            root,
            plan,
            deletes,
        }
    }

    fn clean_args(&self, quarantine: bool) -> Vec<String> {
        let mut args: Vec<String> = ["clean", s(&self.plan), "--apply", "--yes", "--root"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push(s(&self.root).to_string());
        if quarantine {
            args.push("--quarantine".into());
            args.push(s(&self.quarantine).to_string());
        }
        args
    }

    fn databases_unchanged(&self, point: &str) {
        let now = tree(&self.root);
        for db in ["EnMicroMsg.db", "EnMicroMsg.db-wal"] {
            assert_eq!(now.get(db), self.before.get(db), "{point}: {db} changed");
            assert!(now.contains_key(db), "{point}: {db} gone");
        }
    }

    /// Only planned files are gone; every other file has its content.
    fn only_planned_gone(&self, point: &str) -> BTreeSet<String> {
        let now = tree(&self.root);
        let mut gone = BTreeSet::new();
        for (path, sha) in &self.before {
            match now.get(path) {
                None => {
                    assert!(
                        self.deletes.contains(path),
                        "{point}: {path} removed, not planned"
                    );
                    gone.insert(path.clone());
                }
                Some(now_sha) => assert_eq!(now_sha, sha, "{point}: {path} changed"),
            }
        }
        gone
    }

    fn journal_completions_unique(&self, point: &str) {
        let Ok(text) = std::fs::read_to_string(&self.journal) else {
            return;
        };
        let mut seen = BTreeSet::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{point}: journal line {line:?}: {e}"));
            let action = v["action"].as_str().unwrap_or_default();
            if matches!(action, "deleted" | "quarantined" | "restored") {
                let key = (action.to_string(), v["path"].as_str().unwrap().to_string());
                assert!(seen.insert(key.clone()), "{point}: {key:?} journaled twice");
            }
        }
    }
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The points to crash at: every traced point, the per-file ones also at their third hit.
fn targets(points: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for point in points {
        out.push(point.clone());
        if PER_FILE.contains(&point.as_str()) {
            out.push(format!("{point}@3"));
        }
    }
    out
}

fn assert_planted(points: &[String], planted: &[&str]) {
    assert!(!points.is_empty(), "no crash point reached");
    for name in planted {
        assert!(
            points.iter().any(|p| p == name),
            "{name} not reached: {points:?}"
        );
    }
}

#[test]
fn clean_delete_mode_survives_a_crash_at_every_point() {
    let probe = Case::new();
    let points = trace(&as_strs(&probe.clean_args(false)), &probe.dir);
    assert_planted(
        &points,
        &[
            "clean.locked",
            "clean.header.before",
            "clean.header.after",
            "clean.intent.before",
            "clean.intent.after",
            "clean.unlink.before",
            "clean.unlink.after",
            "clean.unlink.synced",
            "clean.done.before",
            "clean.done.after",
        ],
    );
    eprintln!("clean (delete) crash points: {}", points.len());
    for point in targets(&points) {
        let case = Case::new();
        let args = case.clean_args(false);
        crash(&as_strs(&args), &point);
        case.databases_unchanged(&point);
        case.only_planned_gone(&point);
        // Re-running finishes the job: exactly the planned files gone, nothing skipped.
        let rerun = run(&as_strs(&args));
        assert_eq!(
            exit_code(&rerun),
            0,
            "{point}: {}{}",
            String::from_utf8_lossy(&rerun.stdout),
            String::from_utf8_lossy(&rerun.stderr)
        );
        assert_eq!(case.only_planned_gone(&point), case.deletes, "{point}");
        case.databases_unchanged(&point);
        case.journal_completions_unique(&point);
    }
}

#[test]
fn clean_quarantine_mode_then_undo_restores_everything_after_a_crash_at_every_point() {
    let probe = Case::new();
    let points = trace(&as_strs(&probe.clean_args(true)), &probe.dir);
    assert_planted(
        &points,
        &[
            "clean.locked",
            "clean.header.after",
            "clean.intent.before",
            "clean.intent.after",
            "clean.rename.before",
            "clean.rename.after",
            "clean.rename.synced",
            "clean.done.before",
            "clean.done.after",
        ],
    );
    eprintln!("clean (quarantine) crash points: {}", points.len());
    for point in targets(&points) {
        // Undo straight after the crash.
        let case = Case::new();
        let args = case.clean_args(true);
        crash(&as_strs(&args), &point);
        case.databases_unchanged(&point);
        case.only_planned_gone(&point);
        let undo = run(&["undo", s(&case.journal)]);
        let stdout = String::from_utf8_lossy(&undo.stdout);
        if case.journal.exists() && tree(&case.root) != case.before {
            assert_eq!(exit_code(&undo), 0, "{point}: {stdout}");
        }
        assert_eq!(
            tree(&case.root),
            case.before,
            "{point}: not everything is back: {stdout}"
        );
        case.journal_completions_unique(&point);

        // Or: finish the clean first, then undo (at each point's first hit).
        if point.contains('@') {
            continue;
        }
        let case = Case::new();
        let args = case.clean_args(true);
        crash(&as_strs(&args), &point);
        let rerun = run(&as_strs(&args));
        assert_eq!(
            exit_code(&rerun),
            0,
            "{point}: {}",
            String::from_utf8_lossy(&rerun.stdout)
        );
        assert_eq!(case.only_planned_gone(&point), case.deletes, "{point}");
        for path in &case.deletes {
            assert_eq!(
                sha256_file(&case.quarantine.join(path)),
                case.before[path],
                "{point}: {path} in quarantine"
            );
        }
        let undo = run(&["undo", s(&case.journal)]);
        assert_eq!(
            exit_code(&undo),
            0,
            "{point}: {}",
            String::from_utf8_lossy(&undo.stdout)
        );
        assert_eq!(tree(&case.root), case.before, "{point}");
        case.journal_completions_unique(&point);
    }
}

#[test]
fn undo_survives_a_crash_at_every_point() {
    let setup = || {
        let case = Case::new();
        run_ok(&as_strs(&case.clean_args(true)));
        assert_eq!(case.only_planned_gone("setup"), case.deletes);
        case
    };
    let probe = setup();
    let points = trace(&["undo", s(&probe.journal)], &probe.dir);
    assert_planted(
        &points,
        &[
            "undo.locked",
            "undo.intent.before",
            "undo.intent.after",
            "undo.rename.before",
            "undo.rename.after",
            "undo.rename.synced",
            "undo.done.before",
            "undo.done.after",
        ],
    );
    eprintln!("undo crash points: {}", points.len());
    for point in targets(&points) {
        let case = setup();
        crash(&["undo", s(&case.journal)], &point);
        case.databases_unchanged(&point);
        case.only_planned_gone(&point);
        let again = run(&["undo", s(&case.journal)]);
        assert_eq!(
            exit_code(&again),
            0,
            "{point}: {}",
            String::from_utf8_lossy(&again.stdout)
        );
        assert_eq!(tree(&case.root), case.before, "{point}");
        case.journal_completions_unique(&point);
    }
}

/// After a crash while writing `plan.json`: no plan, or the old plan, or a plan that
/// verifies (the sidecar matches, it parses whole); a mismatch is refused with exit 10.
fn check_plan_after_crash(case: &Case, point: &str, old: Option<&[u8]>) {
    case.databases_unchanged(point);
    assert_eq!(
        tree(&case.root),
        case.before,
        "{point}: plan changed the source"
    );
    if !case.plan.exists() {
        assert!(old.is_none(), "{point}: the old plan is gone");
        return;
    }
    let out = run(&["clean", s(&case.plan)]);
    match exit_code(&out) {
        0 => {
            let bytes = std::fs::read(&case.plan).unwrap();
            let sidecar = std::fs::read_to_string(case.dir.join("plan.json.sha256")).unwrap();
            let sha = {
                use sha2::{Digest, Sha256};
                format!("{:x}", Sha256::digest(&bytes))
            };
            assert_eq!(sidecar, format!("{sha}  plan.json\n"), "{point}");
            let plan: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(
                plan["header"]["totals"]["all"]["files"].as_u64().unwrap() as usize,
                plan["entries"].as_array().unwrap().len(),
                "{point}: a partial plan verified"
            );
        }
        10 => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("sidecar"), "{point}: {stderr}");
        }
        code => panic!(
            "{point}: exit {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn plan_writing_survives_a_crash_at_every_point() {
    let probe = Case::new();
    let plan_args = |case: &Case, now: &str| -> Vec<String> {
        [
            "plan",
            s(&case.root),
            "--out",
            s(&case.plan),
            "--now",
            now,
            "--hash",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let fresh = probe.dir.join("fresh.json");
    let mut args = plan_args(&probe, NOW);
    args[3] = s(&fresh).to_string();
    let points = trace(&as_strs(&args), &probe.dir);
    assert_planted(
        &points,
        &[
            "plan.json.written",
            "plan.sidecar.removed",
            "plan.json.synced",
            "plan.json.renamed",
            "plan.csv.synced",
            "plan.csv.renamed",
            "plan.sidecar.synced",
            "plan.sidecar.renamed",
        ],
    );
    eprintln!("plan crash points: {}", points.len());
    for point in &points {
        // Over an existing plan (made for another reference time, so its bytes differ).
        let case = Case::new();
        let old = std::fs::read(&case.plan).unwrap();
        crash(&as_strs(&plan_args(&case, "2025-06-13T08:00:00Z")), point);
        check_plan_after_crash(&case, point, Some(&old));
        // With no plan before.
        let _ = std::fs::remove_file(&case.plan);
        let _ = std::fs::remove_file(case.dir.join("plan.json.sha256"));
        crash(&as_strs(&plan_args(&case, NOW)), point);
        check_plan_after_crash(&case, point, None);
    }
}

/// The same with the quarantine on another device (`/dev/shm`, where it is one): files are
/// copied through handles, synced, verified, and only then unlinked; undo copies back.
#[test]
fn quarantine_across_devices_survives_a_crash_at_every_point() {
    use std::os::unix::fs::MetadataExt;
    let shm = Path::new("/dev/shm");
    let probe = Case::new();
    let other_device = std::fs::metadata(shm)
        .map(|m| m.dev() != std::fs::metadata(&probe.root).unwrap().dev())
        .unwrap_or(false);
    if !other_device {
        eprintln!("skipped: /dev/shm is not on another device here");
        return;
    }
    let across = |case: &mut Case| {
        let q = tempfile::tempdir_in(shm).unwrap();
        case.quarantine = q.path().join("q");
        q
    };
    let mut probe = probe;
    let _q = across(&mut probe);
    let points = trace(&as_strs(&probe.clean_args(true)), &probe.dir);
    assert_planted(&points, &["clean.copy.synced", "clean.copy.renamed"]);
    let undo_points = trace(&["undo", s(&probe.journal)], &probe.dir);
    assert_planted(&undo_points, &["undo.copy.synced", "undo.copy.renamed"]);
    assert_eq!(tree(&probe.root), probe.before);
    eprintln!(
        "across devices: clean {} points, undo {} points",
        points.len(),
        undo_points.len()
    );
    for point in &points {
        let mut case = Case::new();
        let _q = across(&mut case);
        crash(&as_strs(&case.clean_args(true)), point);
        case.databases_unchanged(point);
        case.only_planned_gone(point);
        let _ = run(&["undo", s(&case.journal)]);
        assert_eq!(
            tree(&case.root),
            case.before,
            "{point}: not everything is back"
        );
    }
    for point in &undo_points {
        let mut case = Case::new();
        let _q = across(&mut case);
        run_ok(&as_strs(&case.clean_args(true)));
        crash(&["undo", s(&case.journal)], point);
        case.only_planned_gone(point);
        let again = run(&["undo", s(&case.journal)]);
        assert_eq!(
            exit_code(&again),
            0,
            "{point}: {}",
            String::from_utf8_lossy(&again.stdout)
        );
        assert_eq!(tree(&case.root), case.before, "{point}");
        case.journal_completions_unique(point);
    }
}
