//! `clean` and `undo` against a hostile world: a second run at the same time, a directory
//! swapped for a symlink while they run, an edited plan with a recomputed sidecar, an
//! edited journal, a root or quarantine that is not what it seems.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;

fn source(dir: &Path) -> PathBuf {
    simulate(
        "wechat",
        dir,
        "wx",
        &[
            "--groups",
            "3",
            "--messages",
            "1500",
            "--days",
            "30",
            "--seed",
            "5",
            "--wal",
        ],
    )
}

fn plan(root: &Path, out: &Path) -> serde_json::Value {
    run_ok(&[
        "plan",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--now",
        NOW,
        "--hash",
    ]);
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

fn deletes(plan: &serde_json::Value) -> BTreeSet<String> {
    plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "delete")
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

fn tree(root: &Path) -> std::collections::BTreeMap<String, String> {
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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn apply(plan: &Path, root: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["clean", s(plan), "--apply", "--yes", "--root", s(root)];
    args.extend_from_slice(extra);
    run(&args)
}

/// Writes `plan` as the plan file with a sidecar recomputed in the format `plan` writes,
/// as anyone editing a plan can.
fn write_with_sidecar(path: &Path, plan: &serde_json::Value) {
    let bytes = serde_json::to_vec_pretty(plan).unwrap();
    std::fs::write(path, &bytes).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let sha = {
        use sha2::{Digest, Sha256};
        format!("{:x}", Sha256::digest(&bytes))
    };
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".sha256");
    std::fs::write(PathBuf::from(sidecar), format!("{sha}  {name}\n")).unwrap();
}

#[test]
fn a_second_run_fails_fast_with_exit_12_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let plan_path = dir.path().join("plan.json");
    let planned = plan(&root, &plan_path);
    let before = tree(&root);
    let journal = dir.path().join("plan.json.journal");
    let pid = std::process::id().to_string();

    // Another run holds the journal's lock: clean and undo both refuse at once.
    {
        let _held = chatvault::lockfile::acquire(&journal).unwrap();
        let out = apply(&plan_path, &root, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(exit_code(&out), 12, "{stderr}");
        assert!(stderr.contains(&pid), "{stderr}");
        let out = run(&["undo", s(&journal)]);
        assert_eq!(
            exit_code(&out),
            12,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(&pid));
    }
    // The plan's lock: a run of the same plan with another journal refuses too.
    {
        let _held = chatvault::lockfile::acquire(&plan_path).unwrap();
        let other_journal = dir.path().join("other.journal");
        let out = apply(&plan_path, &root, &["--journal", s(&other_journal)]);
        assert_eq!(
            exit_code(&out),
            12,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!other_journal.exists());
    }
    assert_eq!(tree(&root), before, "a refused run touched files");

    // Two real runs at once: each succeeds or fails fast with 12; every file once.
    let spawn = || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("chatvault"))
            .args([
                "clean",
                s(&plan_path),
                "--apply",
                "--yes",
                "--root",
                s(&root),
            ])
            .output()
    };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(spawn);
        let b = scope.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    for out in [&a, &b] {
        let code = exit_code(out);
        assert!(
            code == 0 || code == 12,
            "{code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if code == 12 {
            assert!(String::from_utf8_lossy(&out.stderr).contains("PID"));
        }
    }
    let after = tree(&root);
    let gone: BTreeSet<String> = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    assert_eq!(gone, deletes(&planned));
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut done = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["action"] == "deleted" {
            done.push(v["path"].as_str().unwrap().to_string());
        }
    }
    let unique: BTreeSet<&String> = done.iter().collect();
    assert_eq!(unique.len(), done.len(), "a file journaled twice");
    assert_eq!(unique.len(), gone.len());
    assert!(!dir.path().join("plan.json.journal.lock").exists());
}

/// A thread swaps a cache directory for a symlink to an outside directory of hard links to
/// the very files planned (same inode, size, times: every metadata check passes) while
/// clean runs. Clean walks by handles with O_NOFOLLOW: no name outside the root goes, ever.
#[test]
fn a_directory_swapped_for_a_symlink_mid_run_never_leads_outside_the_root() {
    use chatvault::retention::{
        clean, Action, Category, CleanOptions, Decision, FileStamp, Plan, PlanEntry, PlanHeader,
        Policy,
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wx");
    let sub = root.join("image2/ab");
    std::fs::create_dir_all(&sub).unwrap();
    let mut db = b"SQLite format 3\0".to_vec();
    db.resize(4096, 0);
    std::fs::write(root.join("EnMicroMsg.db"), db).unwrap();
    let outside = dir.path().join("outside/ab");
    std::fs::create_dir_all(&outside).unwrap();
    let iterations = 120;
    let files = 24;
    let started = std::time::Instant::now();
    let mut skipped_for_the_swap = 0;
    for round in 0..iterations {
        let mut entries = Vec::new();
        for i in 0..files {
            let name = format!("r{round}_{i}.jpg");
            std::fs::write(sub.join(&name), format!("image {round} {i}")).unwrap();
            std::fs::hard_link(sub.join(&name), outside.join(&name)).unwrap();
            let meta = std::fs::symlink_metadata(sub.join(&name)).unwrap();
            entries.push(PlanEntry::new(
                &format!("image2/ab/{name}"),
                FileStamp::from_metadata(&meta),
                None,
                Category::Image,
                Some("g".into()),
                Some("m".into()),
                Decision {
                    action: Action::Delete,
                    rule: "observe.72h".into(),
                    deletable_from: None,
                    reason: "test".into(),
                },
            ));
        }
        let header = PlanHeader::new(
            &root,
            "wechat",
            chrono::Utc::now(),
            &Policy::builtin(),
            "test",
            Vec::new(),
        )
        .unwrap();
        let plan = Plan::build(header, entries);
        let mut opts = CleanOptions::for_plan(&dir.path().join(format!("plan{round}.json")));
        opts.apply = true;
        opts.expected_root = Some(root.clone());

        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, sub, outside) = (stop.clone(), sub.clone(), outside.clone());
            let real = sub.with_file_name("ab.real");
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::fs::rename(&sub, &real).unwrap();
                    std::os::unix::fs::symlink(&outside, &sub).unwrap();
                    std::thread::yield_now();
                    std::fs::remove_file(&sub).unwrap();
                    std::fs::rename(&real, &sub).unwrap();
                    std::thread::yield_now();
                }
            })
        };
        let report = clean(&plan, &opts, &mut |_| {}).unwrap();
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        skipped_for_the_swap += report.skipped_changed.len();

        for i in 0..files {
            let name = format!("r{round}_{i}.jpg");
            assert!(
                outside.join(&name).exists(),
                "round {round}: {name} outside the root was removed"
            );
        }
        assert!(std::fs::symlink_metadata(&sub).unwrap().is_dir());
        if started.elapsed().as_secs() > 15 {
            eprintln!("stopped after {} rounds for time", round + 1);
            break;
        }
    }
    eprintln!("{skipped_for_the_swap} entries skipped because of the swap");
}

#[test]
fn an_edited_plan_with_a_recomputed_sidecar_cannot_reach_databases_or_outside() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    assert!(root.join("EnMicroMsg.db-wal").exists());
    let plan_path = dir.path().join("plan.json");
    let planned = plan(&root, &plan_path);
    let precious = dir.path().join("precious.txt");
    std::fs::write(&precious, b"outside the root").unwrap();
    let before = tree(&root);

    let template = planned["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "delete")
        .unwrap()
        .clone();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "EnMicroMsg.db",
            Box::new(|p: &mut serde_json::Value| {
                for e in p["entries"].as_array_mut().unwrap() {
                    if e["path"] == "EnMicroMsg.db" {
                        e["action"] = "delete".into();
                        e["category"] = "image".into();
                    }
                }
            }),
        ),
        (
            "EnMicroMsg.db-wal",
            Box::new(|p: &mut serde_json::Value| {
                for e in p["entries"].as_array_mut().unwrap() {
                    if e["path"] == "EnMicroMsg.db-wal" {
                        e["action"] = "delete".into();
                    }
                }
            }),
        ),
        ("../precious.txt", {
            let t = template.clone();
            Box::new(move |p: &mut serde_json::Value| {
                let mut e = t.clone();
                e["path"] = "image2/../../precious.txt".into();
                p["entries"].as_array_mut().unwrap().push(e);
            })
        }),
        ("absolute", {
            let t = template.clone();
            let precious = precious.clone();
            Box::new(move |p: &mut serde_json::Value| {
                let mut e = t.clone();
                e["path"] = precious.to_str().unwrap().into();
                p["entries"].as_array_mut().unwrap().push(e);
            })
        }),
    ];
    for (what, edit) in &cases {
        let mut edited = planned.clone();
        edit(&mut edited);
        let path = dir.path().join("edited.json");
        write_with_sidecar(&path, &edited);
        for args in [vec![], vec!["--quarantine", "/tmp/chatvault-q-never"]] {
            let out = apply(&path, &root, &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(exit_code(&out), 10, "{what}: {stderr}");
            assert!(stderr.contains("never deleted"), "{what}: {stderr}");
            assert!(stderr.contains("nothing was touched"), "{what}: {stderr}");
        }
        // The dry run says so too.
        let out = run(&["clean", s(&path)]);
        assert_eq!(exit_code(&out), 10, "{what}");
        assert_eq!(tree(&root), before, "{what}: files touched");
        assert_eq!(std::fs::read(&precious).unwrap(), b"outside the root");
        assert!(!dir.path().join("edited.json.journal").exists());
    }

    // A changed root: the plan names another directory (with its device and inode).
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.me"), b"x").unwrap();
    let mut moved = planned.clone();
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&other).unwrap();
        moved["header"]["source_root"] = other.to_str().unwrap().into();
        moved["header"]["root_dev"] = meta.dev().into();
        moved["header"]["root_ino"] = meta.ino().into();
    }
    let path = dir.path().join("moved.json");
    write_with_sidecar(&path, &moved);
    let out = apply(&path, &root, &[]);
    assert_eq!(
        exit_code(&out),
        10,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to clean a different directory")
    );
    // Even confirmed, it does not hold the platform planned.
    let out = apply(&path, &other, &[]);
    assert_eq!(
        exit_code(&out),
        10,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(other.join("keep.me").exists());
    // The same root with a changed inode recorded.
    let mut replaced = planned.clone();
    replaced["header"]["root_ino"] = 1.into();
    write_with_sidecar(&path, &replaced);
    let out = apply(&path, &root, &[]);
    assert_eq!(exit_code(&out), 10);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no longer the directory"));
    assert_eq!(tree(&root), before);
}

#[test]
fn an_edited_journal_cannot_move_files_from_or_to_outside() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let plan_path = dir.path().join("plan.json");
    let planned = plan(&root, &plan_path);
    let wanted = deletes(&planned);
    assert!(wanted.len() >= 3);
    let before = tree(&root);
    let quarantine = dir.path().join("q");
    let out = apply(&plan_path, &root, &["--quarantine", s(&quarantine)]);
    assert_eq!(
        exit_code(&out),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An outside file with the very content of a quarantined one.
    let victims: Vec<&String> = wanted.iter().take(2).collect();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let decoy = outside.join("decoy.jpg");
    std::fs::copy(quarantine.join(victims[0]), &decoy).unwrap();
    let journal = dir.path().join("plan.json.journal");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut edited = String::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["path"] == victims[0].as_str() {
            // Restore "from" a file outside the quarantine.
            v["quarantine_path"] = decoy.to_str().unwrap().into();
        }
        if v["path"] == victims[1].as_str() {
            // Restore "to" a place outside the root.
            v["path"] = format!("../outside/{}", victims[1].replace('/', "_")).into();
        }
        edited.push_str(&v.to_string());
        edited.push('\n');
    }
    std::fs::write(&journal, edited).unwrap();

    let out = run(&["undo", s(&journal)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(exit_code(&out), 11, "{stdout}");
    assert!(
        stdout.contains(&format!("SKIPPED   {}: refused", victims[0])),
        "{stdout}"
    );
    assert!(
        stdout.contains("refused: restore target outside the root"),
        "{stdout}"
    );
    assert!(decoy.exists(), "the outside decoy was moved");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        1,
        "something was restored outside the root"
    );
    // Both stay in quarantine; everything else is back.
    for victim in &victims {
        assert!(quarantine.join(victim).exists(), "{victim}");
    }
    let after = tree(&root);
    for (path, sha) in &before {
        if victims.contains(&path) {
            assert!(!after.contains_key(path), "{path}");
        } else {
            assert_eq!(after.get(path), Some(sha), "{path}");
        }
    }
}

#[test]
fn a_wrong_root_or_a_quarantine_inside_the_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let plan_path = dir.path().join("plan.json");
    plan(&root, &plan_path);
    let before = tree(&root);

    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let out = apply(&plan_path, &other, &[]);
    assert_eq!(exit_code(&out), 10);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to clean a different directory")
    );

    let link_into_root = dir.path().join("link-to-root");
    std::os::unix::fs::symlink(&root, &link_into_root).unwrap();
    let dotdot = dir.path().join("other/../wx/q-dotdot");
    let via_link = link_into_root.join("q-link");
    let link_to_image = dir.path().join("link-to-image2");
    std::os::unix::fs::symlink(root.join("image2"), &link_to_image).unwrap();
    for quarantine in [
        root.join("q"),
        root.clone(),
        dotdot,
        via_link,
        link_into_root.clone(),
        link_to_image,
    ] {
        for extra in [vec![], vec!["--dry-run-placeholder"]] {
            let out = if extra.is_empty() {
                apply(&plan_path, &root, &["--quarantine", s(&quarantine)])
            } else {
                run(&["clean", s(&plan_path), "--quarantine", s(&quarantine)])
            };
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(exit_code(&out), 2, "{}: {stderr}", quarantine.display());
            assert!(stderr.contains("inside the plan root"), "{stderr}");
        }
    }
    assert_eq!(tree(&root), before);
    assert!(!root.join("q").exists() && !root.join("q-dotdot").exists());
}
