//! The whole pipeline on every platform: bundles that validate, anonymized exports that
//! leak nothing, retention plans that clean exactly what they say. Each platform's own
//! round-trip and bad-input tests live in `<platform>_export.rs`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::leaks::*;
use common::*;

/// (platform, directory name: DingTalk takes the owner's uid from `<uid>_v2`).
const PLATFORMS: &[(&str, &str)] = &[
    ("wechat", "wx"),
    ("qq", "qq"),
    ("wecom", "wecom"),
    ("dingtalk", "20461_v2"),
];

fn simulated(platform: &str, name: &str, dir: &Path) -> PathBuf {
    simulate(
        platform,
        dir,
        name,
        &[
            "--groups",
            "4",
            "--messages",
            "2000",
            "--edge-rate",
            "0.1",
            "--seed",
            "9",
        ],
    )
}

fn shell_ok(cmd: &mut Process) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn inspect_detects_every_platform() {
    for (platform, name) in PLATFORMS {
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(platform, name, dir.path());
        let out = run_ok(&["inspect", root.to_str().unwrap(), "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["platform"], *platform);
        assert!(
            report["groups"].as_array().unwrap().len() >= 4,
            "{platform}"
        );
    }
}

#[test]
fn bundles_validate_on_every_platform() {
    for (platform, name) in PLATFORMS {
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(platform, name, dir.path());
        let before = snapshot(&root);
        let bundle = dir.path().join("case");
        run_ok(&[
            "export",
            root.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ]);
        run_ok(&[
            "export",
            root.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
            "--zip",
        ]);
        assert_eq!(
            snapshot(&root),
            before,
            "{platform}: the export changed the source"
        );
        shell_ok(
            Process::new("sha256sum")
                .args(["-c", "--quiet", "manifest-sha256.txt"])
                .current_dir(&bundle),
        );
        shell_ok(
            Process::new("sha256sum")
                .args(["-c", "case.sha256", "case.zip.sha256"])
                .current_dir(dir.path()),
        );
        shell_ok(
            Process::new("unzip")
                .args(["-tq", "case.zip"])
                .current_dir(dir.path()),
        );
        if let Some(bagit) = tool("bagit.py") {
            shell_ok(Process::new(bagit).args(["--validate", bundle.to_str().unwrap()]));
        }
        for b in [bundle.clone(), dir.path().join("case.zip")] {
            let out = run(&[
                "verify",
                b.to_str().unwrap(),
                "--source",
                root.to_str().unwrap(),
            ]);
            assert_eq!(
                exit_code(&out),
                0,
                "{platform}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let media = read_csv(&bundle.join("data/media.csv"));
        assert!(
            media.iter().any(|m| m["status"] == "copied"),
            "{platform}: no media copied"
        );
    }
}

#[test]
fn anonymized_exports_leak_nothing_on_every_platform() {
    for (platform, name) in PLATFORMS {
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(platform, name, dir.path());
        let plain = dir.path().join("plain");
        run_ok(&[
            "export",
            root.to_str().unwrap(),
            "--out",
            plain.to_str().unwrap(),
            "--include-private",
        ]);
        // What the plain export shows of people is what the anonymized one must hide.
        let mut strings = Vec::new();
        for m in read_csv(&plain.join("data/members.csv")) {
            strings.extend([
                m["member_id"].clone(),
                m["display_name"].clone(),
                m["group_nickname"].clone(),
            ]);
        }
        let messages = read_csv(&plain.join("data/messages.csv"));
        let mut texts = Vec::new();
        for m in &messages {
            strings.extend([m["sender_id"].clone(), m["sender_name"].clone()]);
            if m["kind"] == "text" {
                texts.push(m["text"].clone());
            }
        }
        let names = searchable(strings);
        let pii = planted_pii(&texts);
        assert!(names.len() > 20, "{platform}: {} names", names.len());
        assert!(!pii.is_empty(), "{platform}: no planted PII");
        let caught = std::panic::catch_unwind(|| assert_no_leaks(&plain, &names, &BTreeSet::new()));
        assert!(
            caught.is_err(),
            "{platform}: the search finds nothing in a plain export"
        );

        let key = dir.path().join("k");
        for (out, extra) in [
            ("anon", vec![]),
            ("anon-zip", vec!["--zip", "--with-media"]),
        ] {
            let out = dir.path().join(out);
            let mut args = vec![
                "export",
                root.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--anonymize",
                "--key-file",
                key.to_str().unwrap(),
            ];
            args.extend(extra.iter().copied());
            run_ok(&args);
        }
        assert_no_leaks(&dir.path().join("anon"), &names, &pii);
        assert_no_leaks(&dir.path().join("anon-zip.zip"), &names, &pii);
        let anon_messages = read_csv(&dir.path().join("anon/data/messages.csv"));
        let plain_group_messages = messages.iter().filter(|m| {
            // The plain export above included private chats; the anonymized ones did not.
            anon_messages.iter().any(|a| a["group_id"] == m["group_id"])
        });
        assert_eq!(
            plain_group_messages.count(),
            anon_messages.len(),
            "{platform}"
        );
    }
}

#[test]
fn retention_plans_clean_exactly_what_they_say_on_every_platform() {
    for (platform, name) in PLATFORMS {
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(platform, name, dir.path());
        let groups = read_groups(&root);
        let mut args: Vec<String> = vec![
            "plan".into(),
            root.to_str().unwrap().into(),
            "--out".into(),
            dir.path().join("plan.json").to_str().unwrap().into(),
            "--now".into(),
            "2030-01-01T00:00:00Z".into(),
            "--hash".into(),
        ];
        for g in &groups {
            args.push("--dissolved-at".into());
            args.push(format!("{g}={NOW}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&args);
        let plan: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("plan.json")).unwrap()).unwrap();
        let entries = plan["entries"].as_array().unwrap();
        let mut deletes = BTreeSet::new();
        for e in entries {
            let path = e["path"].as_str().unwrap();
            if e["action"] == "delete" {
                assert!(
                    !e["group_id"].is_null() || e["category"] == "recycle_bin",
                    "{platform}: unreferenced {path} deleted"
                );
                deletes.insert(path.to_string());
            }
        }
        assert!(!deletes.is_empty(), "{platform}: nothing to delete");
        let before = snapshot(&root);
        run_ok(&[
            "clean",
            dir.path().join("plan.json").to_str().unwrap(),
            "--apply",
            "--yes",
            "--root",
            root.to_str().unwrap(),
        ]);
        let after = snapshot(&root);
        for (path, state) in &before {
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            match after.get(path) {
                None => assert!(
                    deletes.contains(&rel),
                    "{platform}: {rel} deleted but not planned"
                ),
                Some(now) => {
                    assert!(
                        !deletes.contains(&rel),
                        "{platform}: {rel} planned but kept"
                    );
                    assert_eq!(now, state, "{platform}: {rel} changed");
                }
            }
        }
        // The source still opens: no database was touched.
        run_ok(&["inspect", root.to_str().unwrap()]);
    }
}

fn read_groups(root: &Path) -> Vec<String> {
    let out = run_ok(&[
        "inspect",
        root.to_str().unwrap(),
        "--json",
        "--include-private",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect()
}
