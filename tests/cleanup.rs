//! Retention plans and cleanup on simulated sources: decisions, apply, quarantine, undo,
//! refusals. Rule boundaries are unit-tested in `retention::decide`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;

fn plan(root: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "plan",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--now",
        NOW,
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

fn entries_by(plan: &serde_json::Value, action: &str) -> BTreeSet<String> {
    plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

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
        ],
    )
}

fn relative(
    snapshot: &BTreeMap<PathBuf, (String, u64, i64)>,
    root: &Path,
) -> BTreeMap<String, String> {
    snapshot
        .iter()
        .map(|(p, (sha, _, _))| {
            (
                p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                sha.clone(),
            )
        })
        .collect()
}

#[test]
fn plan_covers_every_file_and_follows_the_dissolution() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let plan_path = dir.path().join("plan.json");
    let planned_json = plan(&root, &plan_path, &["--hash"]);
    assert!(dir.path().join("plan.json.sha256").is_file());
    assert!(dir.path().join("plan.csv").is_file());

    // One entry per file under the root, links included.
    let on_disk: BTreeSet<String> = relative(&snapshot(&root), &root).into_keys().collect();
    let planned: BTreeSet<String> = planned_json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    let on_disk_utf8: BTreeSet<String> = on_disk
        .iter()
        .filter(|p| !p.contains('\u{FFFD}'))
        .cloned()
        .collect();
    assert!(
        on_disk_utf8.is_subset(&planned),
        "{:?}",
        on_disk_utf8.difference(&planned).collect::<Vec<_>>()
    );
    assert_eq!(planned.len(), on_disk.len());

    // The simulated dissolution (群主已解散该群, ~9 days before NOW) releases that group's media;
    // active groups keep everything; the database is never deleted; orphans go to review.
    let groups = planned_json["header"]["groups"].as_array().unwrap();
    let dissolved: Vec<&str> = groups
        .iter()
        .filter(|g| !g["dissolved_at"].is_null())
        .map(|g| g["group_id"].as_str().unwrap())
        .collect();
    assert_eq!(dissolved.len(), 1, "{groups:?}");
    let deletes = entries_by(&planned_json, "delete");
    assert!(!deletes.is_empty());
    for e in planned_json["entries"].as_array().unwrap() {
        let path = e["path"].as_str().unwrap();
        if e["action"] == "delete" {
            assert_eq!(e["group_id"], dissolved[0], "{path}");
            assert!(e["sha256"].is_string());
            assert!(e["reason"].as_str().unwrap().contains("seed"), "{e}");
        }
        if path.starts_with("EnMicroMsg.db") {
            assert_ne!(e["action"], "delete");
        }
        if e["group_id"].is_null() {
            assert_ne!(e["action"], "delete", "orphan {path}");
        }
    }
    assert!(
        !entries_by(&planned_json, "review").is_empty(),
        "orphans are reviewed"
    );

    // --dissolved-at and --group-type override: a group made `education` keeps its media 6
    // months; the education group, made `family` and dissolved long ago, releases its media.
    let education = groups
        .iter()
        .find(|g| g["group_type"] == "education")
        .map(|g| g["group_id"].as_str().unwrap().to_string())
        .unwrap();
    let overridden = plan(
        &root,
        &dir.path().join("plan2.json"),
        &[
            "--dissolved-at",
            &format!("{education}=2025-01-01T00:00:00Z"),
            "--group-type",
            &format!("{dissolved}=education", dissolved = dissolved[0]),
            "--group-type",
            &format!("{education}=family"),
        ],
    );
    for e in overridden["entries"].as_array().unwrap() {
        if e["group_id"] == dissolved[0] && e["action"] == "keep" {
            assert_eq!(e["rule"], "hold.education", "{e}");
        }
    }
    assert!(overridden["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["group_id"] == education.as_str() && e["action"] == "delete"));
}

#[test]
fn apply_deletes_exactly_the_plan_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let plan_path = dir.path().join("plan.json");
    let planned_json = plan(&root, &plan_path, &["--hash"]);
    let deletes = entries_by(&planned_json, "delete");
    let before = relative(&snapshot(&root), &root);

    // A dry run touches nothing.
    run_ok(&["clean", plan_path.to_str().unwrap()]);
    assert_eq!(relative(&snapshot(&root), &root), before);

    // Without a terminal, --apply needs --yes.
    let refused = run(&["clean", plan_path.to_str().unwrap(), "--apply"]);
    assert!(!refused.status.success());
    assert_eq!(relative(&snapshot(&root), &root), before);

    // --yes without --root: the plan alone does not say what to clean.
    let unconfirmed = run(&["clean", plan_path.to_str().unwrap(), "--apply", "--yes"]);
    assert_eq!(exit_code(&unconfirmed), 2);
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--root DIR"));
    assert_eq!(relative(&snapshot(&root), &root), before);

    let root_arg = root.to_str().unwrap();
    run_ok(&[
        "clean",
        plan_path.to_str().unwrap(),
        "--apply",
        "--yes",
        "--root",
        root_arg,
    ]);
    let after = relative(&snapshot(&root), &root);
    let gone: BTreeSet<String> = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    assert_eq!(gone, deletes, "exactly the planned deletions");
    for (path, sha) in &after {
        assert_eq!(&before[path], sha, "{path} changed");
    }
    // The journal has one line per deletion, and a rerun does nothing more.
    let journal = std::fs::read_to_string(dir.path().join("plan.json.journal")).unwrap();
    let deleted_lines = journal
        .lines()
        .filter(|l| l.contains("\"deleted\""))
        .count();
    assert_eq!(deleted_lines, deletes.len());
    run_ok(&[
        "clean",
        plan_path.to_str().unwrap(),
        "--apply",
        "--yes",
        "--root",
        root_arg,
    ]);
    let journal = std::fs::read_to_string(dir.path().join("plan.json.journal")).unwrap();
    assert_eq!(
        journal
            .lines()
            .filter(|l| l.contains("\"deleted\""))
            .count(),
        deletes.len()
    );
}

#[test]
fn quarantine_then_undo_restores_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let plan_path = dir.path().join("plan.json");
    let planned_json = plan(&root, &plan_path, &[]);
    let before = relative(&snapshot(&root), &root);
    let quarantine = dir.path().join("q");
    run_ok(&[
        "clean",
        plan_path.to_str().unwrap(),
        "--apply",
        "--yes",
        "--root",
        root.to_str().unwrap(),
        "--quarantine",
        quarantine.to_str().unwrap(),
    ]);
    for path in entries_by(&planned_json, "delete") {
        assert!(!root.join(&path).exists());
        assert_eq!(sha256_file(&quarantine.join(&path)), before[&path]);
    }
    run_ok(&[
        "undo",
        dir.path().join("plan.json.journal").to_str().unwrap(),
    ]);
    assert_eq!(relative(&snapshot(&root), &root), before);
}

#[test]
fn changed_files_are_skipped_and_tampered_plans_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let plan_path = dir.path().join("plan.json");
    let planned_json = plan(&root, &plan_path, &["--hash"]);
    let deletes: Vec<String> = entries_by(&planned_json, "delete").into_iter().collect();
    assert!(deletes.len() >= 2);
    // One file gets new content of the same size, another a new size.
    let same_size = root.join(&deletes[0]);
    let len = std::fs::metadata(&same_size).unwrap().len() as usize;
    std::fs::write(&same_size, vec![b'x'; len]).unwrap();
    std::fs::write(root.join(&deletes[1]), b"grown and changed").unwrap();

    // A tampered plan is refused before anything is touched.
    let tampered = dir.path().join("tampered.json");
    let text = std::fs::read_to_string(&plan_path).unwrap();
    std::fs::write(&tampered, text.replacen("\"keep\"", "\"delete\"", 1)).unwrap();
    std::fs::copy(
        dir.path().join("plan.json.sha256"),
        dir.path().join("tampered.json.sha256"),
    )
    .unwrap();
    let root_arg = root.to_str().unwrap();
    let out = run(&[
        "clean",
        tampered.to_str().unwrap(),
        "--apply",
        "--yes",
        "--root",
        root_arg,
    ]);
    assert_eq!(
        exit_code(&out),
        10,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&[
        "clean",
        plan_path.to_str().unwrap(),
        "--apply",
        "--yes",
        "--root",
        root_arg,
    ]);
    assert_eq!(
        exit_code(&out),
        11,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("SKIPPED           {}", deletes[0])),
        "{stdout}"
    );
    assert!(same_size.exists() && root.join(&deletes[1]).exists());
    for path in &deletes[2..] {
        assert!(!root.join(path).exists(), "{path}");
    }
}

#[test]
fn policy_shows_every_rule_and_a_policy_file_changes_decisions() {
    let out = run_ok(&["policy", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for id in [
        "wechat.group_file",
        "observe.72h",
        "qq.recycle_bin",
        "hold.ecommerce",
        "dingtalk.compliance_archive",
    ] {
        assert!(text.contains(id), "{id}");
    }
    let dump = run_ok(&["policy", "--dump"]);
    let dir = tempfile::tempdir().unwrap();
    let toml = String::from_utf8(dump.stdout).unwrap();
    assert!(toml.contains("observe.72h"));
    // Lengthen the observation period to 1000 days: nothing becomes deletable.
    let edited = dir.path().join("p.toml");
    std::fs::write(
        &edited,
        "[[rule]]\nid = \"observe.72h\"\nperiod = \"1000 days\"\n",
    )
    .unwrap();
    let root = source(dir.path());
    let base = plan(&root, &dir.path().join("a.json"), &[]);
    let strict = plan(
        &root,
        &dir.path().join("b.json"),
        &["--policy", edited.to_str().unwrap()],
    );
    assert!(!entries_by(&base, "delete").is_empty());
    assert!(entries_by(&strict, "delete").is_empty());
    assert_ne!(
        base["header"]["policy_sha256"],
        strict["header"]["policy_sha256"]
    );
}

/// Runs `chatvault ARGS` on a pseudo-terminal (util-linux `script`), typing `input`.
fn run_on_a_terminal(args: &[&str], input: &str) -> Option<std::process::Output> {
    let script = tool("script")?;
    let binary = assert_cmd::cargo::cargo_bin("chatvault");
    let command = std::iter::once(binary.to_str().unwrap().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = std::process::Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

#[test]
fn an_interactive_apply_asks_for_the_group_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let plan_path = dir.path().join("plan.json");
    let planned_json = plan(&root, &plan_path, &[]);
    let deletes = entries_by(&planned_json, "delete");
    let group_id = planned_json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "delete")
        .map(|e| e["group_id"].as_str().unwrap().to_string())
        .unwrap();
    let name = planned_json["header"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == group_id.as_str())
        .map(|g| g["name"].as_str().unwrap().to_string())
        .unwrap();
    let before = relative(&snapshot(&root), &root);
    let args = ["clean", plan_path.to_str().unwrap(), "--apply"];

    let Some(wrong) = run_on_a_terminal(&args, "not the name\n") else {
        return;
    };
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("Type the group name"));
    assert_eq!(
        relative(&snapshot(&root), &root),
        before,
        "a wrong name touched files"
    );

    // Then the root's directory name: the plan's root is confirmed by a person.
    let root_name = root.file_name().unwrap().to_str().unwrap();
    let Some(wrong_root) = run_on_a_terminal(&args, &format!("{name}\nnot-the-root\n")) else {
        return;
    };
    assert!(!wrong_root.status.success());
    assert_eq!(relative(&snapshot(&root), &root), before);
    let right = run_on_a_terminal(&args, &format!("{name}\n{root_name}\n")).unwrap();
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stdout)
    );
    for path in &deletes {
        assert!(!root.join(path).exists(), "{path}");
    }
}

/// `--hash` takes each regular file's stamp from the file it opens (no link followed);
/// links, a pipe and a linked directory are reviewed, never hashed or waited on, and every
/// entry is the same as without `--hash` but for the hash.
#[cfg(unix)]
#[test]
fn hashing_plans_stamp_what_they_hash_and_follow_no_link() {
    use std::os::unix::fs::{symlink, MetadataExt};
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let outside = dir.path().join("outside.txt");
    std::fs::write(&outside, b"not in the cache").unwrap();
    symlink(&outside, root.join("link-out.jpg")).unwrap();
    symlink(root.join("EnMicroMsg.db"), root.join("link-in.db")).unwrap();
    symlink(dir.path(), root.join("linked-dir")).unwrap();
    let fifo = root.join("pipe.amr");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let have_fifo = made.is_ok_and(|s| s.success());

    let plain = plan(&root, &dir.path().join("plain.json"), &[]);
    let hashed = plan(&root, &dir.path().join("hashed.json"), &["--hash"]);
    let plain = plain["entries"].as_array().unwrap();
    let hashed = hashed["entries"].as_array().unwrap();
    assert_eq!(plain.len(), hashed.len());
    let mut hashed_files = 0;
    for (p, h) in plain.iter().zip(hashed) {
        let path = h["path"].as_str().unwrap();
        let mut without_hash = h.clone();
        without_hash["sha256"] = serde_json::Value::Null;
        assert_eq!(&without_hash, p, "{path}");
        if path.contains('\u{FFFD}') {
            // A name that is not UTF-8: reviewed by hand, and not found by its lossy form.
            assert_eq!(h["action"], "review", "{path}");
            continue;
        }
        let meta = std::fs::symlink_metadata(root.join(path))
            .unwrap_or_else(|e| panic!("{path}: {e} under {}", root.display()));
        assert_eq!(h["ino"], meta.ino(), "{path}");
        assert_eq!(h["size"], meta.len(), "{path}");
        if meta.is_file() {
            assert_eq!(h["sha256"], sha256_file(&root.join(path)), "{path}");
            hashed_files += 1;
        } else {
            assert!(h["sha256"].is_null(), "{path}");
            assert_eq!(h["action"], "review", "{path}");
        }
    }
    assert!(hashed_files > 100);
    let reviewed: Vec<&str> = hashed
        .iter()
        .filter(|e| e["sha256"].is_null())
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for odd in ["link-out.jpg", "link-in.db", "linked-dir"] {
        assert!(reviewed.contains(&odd), "{odd}: {reviewed:?}");
    }
    assert_eq!(reviewed.contains(&"pipe.amr"), have_fifo);
    assert_eq!(std::fs::read(&outside).unwrap(), b"not in the cache");
}

/// A cache of more files than the plan decides in one window (16,384): entries come out
/// in path order, once each, with the header's totals those of the entries, and the files
/// check with tools that are not ours.
#[test]
fn a_large_cache_is_planned_window_by_window_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    for i in 0..20_000u32 {
        let name = format!("{:08x}", i.wrapping_mul(2_654_435_761));
        let sub = root.join("image2").join(&name[..2]);
        std::fs::create_dir_all(&sub).unwrap();
        let bytes: Vec<u8> = (0..(i % 700)).map(|b| (b ^ i) as u8).collect();
        std::fs::write(sub.join(format!("{name}.jpg")), bytes).unwrap();
    }
    let plan_path = dir.path().join("plan.json");
    let planned = plan(&root, &plan_path, &["--hash"]);
    let entries = planned["entries"].as_array().unwrap();

    let on_disk: BTreeSet<String> = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let rel = e.path().strip_prefix(&root).unwrap();
            rel.to_string_lossy().into_owned()
        })
        .collect();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(paths.len() > 20_000);
    assert!(paths.windows(2).all(|w| w[0] < w[1]), "not in path order");
    assert_eq!(
        paths.iter().map(|p| p.to_string()).collect::<BTreeSet<_>>(),
        on_disk
    );

    let mut by_action: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut by_category: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut hashed = 0;
    for e in entries {
        let size = e["size"].as_u64().unwrap();
        for (map, key) in [(&mut by_action, "action"), (&mut by_category, "category")] {
            let count = map.entry(e[key].as_str().unwrap().to_string()).or_default();
            count.0 += 1;
            count.1 += size;
        }
        if let Some(sha256) = e["sha256"].as_str() {
            let path = e["path"].as_str().unwrap();
            assert_eq!(sha256, sha256_file(&root.join(path)), "{path}");
            hashed += 1;
        }
    }
    assert!(hashed > 20_000, "{hashed}");
    let totals = &planned["header"]["totals"];
    for (name, (files, bytes)) in &by_action {
        assert_eq!(totals["by_action"][name]["files"], *files, "{name}");
        assert_eq!(totals["by_action"][name]["bytes"], *bytes, "{name}");
    }
    for (name, (files, bytes)) in &by_category {
        assert_eq!(totals["by_category"][name]["files"], *files, "{name}");
        assert_eq!(totals["by_category"][name]["bytes"], *bytes, "{name}");
    }
    assert_eq!(
        totals["by_category"].as_object().unwrap().len(),
        by_category.len()
    );
    assert_eq!(totals["all"]["files"], entries.len() as u64);

    let csv_rows = read_csv(&dir.path().join("plan.csv"));
    assert_eq!(csv_rows.len(), entries.len());
    for (row, e) in csv_rows.iter().zip(entries) {
        assert_eq!(row["path"], e["path"].as_str().unwrap());
        assert_eq!(row["sha256"], e["sha256"].as_str().unwrap_or_default());
        assert_eq!(row["action"], e["action"].as_str().unwrap());
    }

    if let Some(sha256sum) = tool("sha256sum") {
        let checked = std::process::Command::new(sha256sum)
            .args(["-c", "plan.json.sha256"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(checked.status.success(), "{checked:?}");
    }
    if let Some(python) = tool("python3") {
        let script = "import csv, json, sys\n\
            plan = json.load(open(sys.argv[1], encoding='utf-8'))\n\
            rows = list(csv.DictReader(open(sys.argv[2], encoding='utf-8-sig', newline='')))\n\
            assert len(rows) == len(plan['entries']) == plan['header']['totals']['all']['files']\n\
            assert [r['path'] for r in rows] == [e['path'] for e in plan['entries']]\n\
            print(len(rows))\n";
        let checked = std::process::Command::new(python)
            .args(["-c", script])
            .arg(&plan_path)
            .arg(dir.path().join("plan.csv"))
            .output()
            .unwrap();
        assert!(checked.status.success(), "{checked:?}");
        assert_eq!(
            String::from_utf8_lossy(&checked.stdout).trim(),
            entries.len().to_string()
        );
    }
}
