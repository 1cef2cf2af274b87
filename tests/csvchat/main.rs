//! A sixth platform from outside the crate, end to end: `platform.rs` is all there is to
//! it, and one `register` call is its registry line. It then goes through simulate,
//! inspect, export, anonymized export, plan and clean like a built-in platform, run
//! in-process through `chatvault::cli`.

mod platform;

use std::collections::BTreeMap;
use std::path::Path;

use chatvault::exit;

fn register() {
    chatvault::platform::register(&platform::CSVCHAT);
}

fn cli(args: &[&str]) -> u8 {
    chatvault::cli::run_args(std::iter::once("chatvault").chain(args.iter().copied()))
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Simulates a csvchat account of 2 groups and 30 messages (10 images), 40 days old.
fn simulated(dir: &Path) -> std::path::PathBuf {
    register();
    let root = dir.join("account");
    let code = cli(&[
        "simulate",
        "csvchat",
        "--out",
        root.to_str().unwrap(),
        "--groups",
        "2",
        "--messages",
        "30",
        "--days",
        "40",
        "--now",
        "2025-06-01T00:00:00Z",
    ]);
    assert_eq!(code, exit::OK);
    root
}

#[test]
fn detected_inspected_and_exported_like_a_built_in_platform() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulated(dir.path());
    let detected = chatvault::source::detect(&root).unwrap();
    assert_eq!(detected.name(), "csvchat");
    assert_eq!(cli(&["inspect", root.to_str().unwrap()]), exit::OK);
    let report = chatvault::inspect::inspect(&root, false).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["platform"], "csvchat", "{json}");

    let bundle = dir.path().join("bundle");
    assert_eq!(
        cli(&[
            "export",
            root.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap()
        ]),
        exit::OK
    );
    // Every source row is in messages.csv, with its exact text.
    let source_rows = read_csv(&root.join(platform::MESSAGES));
    let exported = read_csv(&bundle.join("data/messages.csv"));
    assert_eq!(exported.len(), source_rows.len());
    let by_id: BTreeMap<&str, &BTreeMap<String, String>> = exported
        .iter()
        .map(|row| (row["message_id"].as_str(), row))
        .collect();
    for want in &source_rows {
        let got = by_id[want["message_id"].as_str()];
        assert_eq!(got["group_id"], want["group_id"]);
        // The formula guard (outputs.md) quotes a cell that a spreadsheet would run.
        let text = &want["text"];
        let guarded = if text.starts_with(['=', '+', '-', '@']) {
            format!("'{text}")
        } else {
            text.clone()
        };
        assert_eq!(got["text"], guarded);
    }
    let media = read_csv(&bundle.join("data/media.csv"));
    assert_eq!(media.iter().filter(|m| m["status"] == "copied").count(), 10);
    let bag_info = std::fs::read_to_string(bundle.join("bag-info.txt")).unwrap();
    assert!(bag_info.contains("csvchat"), "{bag_info}");
    assert_eq!(cli(&["verify", bundle.to_str().unwrap()]), exit::OK);
    // A changed byte is found.
    let messages = bundle.join("data/messages.csv");
    let mut bytes = std::fs::read(&messages).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&messages, bytes).unwrap();
    assert_eq!(cli(&["verify", bundle.to_str().unwrap()]), exit::TAMPERED);
}

#[test]
fn anonymized_export_leaves_no_name_or_id() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulated(dir.path());
    let key = dir.path().join("case.key");
    let bundle = dir.path().join("anon");
    let code = cli(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
        "--anonymize",
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, exit::OK);
    let mut checked = 0;
    for entry in walkdir::WalkDir::new(&bundle) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
        for name in ["张伟", "李娜", "王芳", "u0", "u1", "u2"] {
            let leaked = if name.starts_with('u') {
                // Ids are whole cells in the CSVs; `u0` inside a hash or pseudonym is not one.
                text.contains(&format!(",{name},")) || text.contains(&format!("\"{name}\""))
            } else {
                text.contains(name)
            };
            assert!(!leaked, "{name} in {}", entry.path().display());
        }
        checked += 1;
    }
    assert!(checked >= 8, "{checked} files");
    let members = read_csv(&bundle.join("data/members.csv"));
    assert_eq!(members.len(), 6);
    assert!(members.iter().all(|m| m["member_id"].starts_with("m_")));
}

#[test]
fn plan_and_clean_follow_the_platforms_own_rule() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulated(dir.path());
    let plan = dir.path().join("plan.json");
    let code = cli(&[
        "plan",
        root.to_str().unwrap(),
        "--out",
        plan.to_str().unwrap(),
        "--now",
        "2025-06-10T00:00:00Z",
        "--dissolved-at",
        "g0=2025-06-01T00:00:00Z",
    ]);
    assert_eq!(code, exit::OK);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let entries = json["entries"].as_array().unwrap();
    let deletes: Vec<&str> = entries
        .iter()
        .filter(|e| e["action"] == "delete")
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    // g0 holds messages 0, 2, 4, …; its images are those whose number is 2 mod 3 and even.
    let expected: Vec<String> = (0..30)
        .filter(|n| n % 3 == 2 && n % 2 == 0)
        .map(|n| format!("media/{n}.jpg"))
        .collect();
    let mut sorted = deletes.clone();
    sorted.sort();
    let mut expected_sorted: Vec<&str> = expected.iter().map(String::as_str).collect();
    expected_sorted.sort();
    assert_eq!(sorted, expected_sorted);
    for entry in entries.iter().filter(|e| e["action"] == "delete") {
        assert_eq!(entry["rule"], "csvchat.media", "{entry}");
    }
    // g1 is active: its images are kept; the databases are never deleted.
    assert!(entries
        .iter()
        .filter(|e| e["path"] == "media/5.jpg" || e["path"] == "messages.csv")
        .all(|e| e["action"] == "keep"));

    let code = cli(&[
        "clean",
        plan.to_str().unwrap(),
        "--apply",
        "--yes",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code, exit::OK);
    for path in &expected {
        assert!(!root.join(path).exists(), "{path} should be deleted");
    }
    assert!(root.join("media/5.jpg").exists());
    assert!(root.join(platform::MESSAGES).exists());
    assert!(root.join(platform::MEMBERS).exists());
}

#[test]
fn an_unknown_platform_is_a_usage_error() {
    register();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let code = cli(&["simulate", "telegram", "--out", out.to_str().unwrap()]);
    assert_eq!(code, exit::USAGE);
    assert!(!out.exists());
}
