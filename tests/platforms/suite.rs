//! Every check written once, run on every platform of `PLATFORMS` (each in its own thread;
//! a failure names its platform, and every platform runs even when one fails).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use serde_json::Value;

use crate::common::leaks::*;
use crate::common::*;
use crate::truth::{BadInput, Base, Breakage, Cond, Fact, Outcome, Source, Truth};
use crate::PLATFORMS;

type Row = BTreeMap<String, String>;

/// Runs `check` on every platform `filter` keeps, in parallel; fails naming each platform
/// that failed.
pub fn on_every(filter: fn(&Source) -> bool, check: fn(&'static Source)) {
    let chosen: Vec<&'static Source> = PLATFORMS.iter().copied().filter(|p| filter(p)).collect();
    assert!(!chosen.is_empty(), "no platform to check");
    let failed: Vec<&str> = std::thread::scope(|scope| {
        let running: Vec<_> = chosen
            .iter()
            .map(|p| (p.platform, scope.spawn(move || check(p))))
            .collect();
        running
            .into_iter()
            .filter_map(|(name, handle)| handle.join().is_err().then_some(name))
            .collect()
    });
    assert!(failed.is_empty(), "failed on {failed:?} (see above)");
}

fn all(_: &Source) -> bool {
    true
}

pub fn export(root: &Path, bundle: &Path, extra: &[&str]) {
    let mut args = vec![
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

pub fn evidence(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("evidence.json")).unwrap()).unwrap()
}

impl Cond {
    fn holds(&self, row: &Row) -> bool {
        let get = |column: &str| {
            row.get(column)
                .unwrap_or_else(|| panic!("no column {column} in {row:?}"))
                .as_str()
        };
        match *self {
            Cond::Eq(c, v) => get(c) == v,
            Cond::Prefix(c, v) => get(c).starts_with(v),
            Cond::Suffix(c, v) => get(c).ends_with(v),
            Cond::NotSuffix(c, v) => !get(c).ends_with(v),
            Cond::Contains(c, v) => get(c).contains(v),
            Cond::In(c, vs) => vs.contains(&get(c)),
            Cond::NonEmpty(c) => !get(c).is_empty(),
            Cond::U64(c) => get(c).parse::<u64>().is_ok(),
            Cond::StartsWithDigit(c) => get(c).starts_with(|ch: char| ch.is_ascii_digit()),
        }
    }
}

fn holds_all(conds: &[Cond], row: &Row) -> bool {
    conds.iter().all(|c| c.holds(row))
}

/// The rows a fact speaks of: a CSV of the bundle, or the evidence's sources.
fn fact_rows(bundle: &Path, file: &str) -> Vec<Row> {
    if file == "sources" {
        return evidence(bundle)["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .collect();
    }
    read_csv(&bundle.join(format!("data/{file}.csv")))
}

fn check_facts(p: &Source, bundle: &Path) {
    for fact in p.facts {
        let (file, need, when, then): (&str, usize, &[Cond], &[Cond]) = match *fact {
            Fact::Some(file, conds) => (file, 1, conds, &[]),
            Fact::AtLeast(n, file, conds) => (file, n, conds, &[]),
            Fact::All(file, when, then) => (file, 1, when, then),
        };
        let rows = fact_rows(bundle, file);
        let meeting: Vec<&Row> = rows.iter().filter(|r| holds_all(when, r)).collect();
        assert!(
            meeting.len() >= need,
            "{}: {} rows of {file} with {when:?}, expected at least {need}",
            p.platform,
            meeting.len()
        );
        if let Some(bad) = meeting.iter().find(|r| !holds_all(then, r)) {
            panic!(
                "{}: a row of {file} with {when:?} lacks {then:?}: {bad:?}",
                p.platform
            );
        }
    }
}

/// messages.csv against the ground truth, field by field where the source says, and the
/// source had something to compare: 100+ exact texts, edge-case texts among them (and
/// malformed rows where the platform's sources have them). Returns the truth.
pub fn assert_matches_truth(
    p: &Source,
    root: &Path,
    bundle: &Path,
    include_private: bool,
) -> Truth {
    let truth = (p.read)(root, include_private);
    let by_group = messages_by_group(bundle, p.platform, &truth.messages);
    let name = p.platform;
    let (mut texts_checked, mut nasty_texts, mut others) = (0, 0, 0);
    for (group, want) in &truth.messages {
        let got = &by_group[group];
        assert_eq!(got.len(), want.len(), "{name}: message count of {group}");
        for (g, w) in got.iter().zip(want) {
            let id = &w.message_id;
            assert_eq!(g["message_id"], *id, "{name}: {group}");
            assert_eq!(g["time_utc"], w.time_utc, "{name}: {group} {id}");
            assert_eq!(g["direction"], w.direction, "{name}: {group} {id}");
            assert_eq!(g["sender_id"], w.sender_id, "{name}: {group} {id}");
            if let Some(sender_name) = &w.sender_name {
                assert_eq!(&g["sender_name"], sender_name, "{name}: {group} {id}");
            }
            if let Some(kind) = w.kind {
                assert_eq!(g["kind"], kind, "{name}: {group} {id}");
            }
            if let Some(raw_type) = &w.raw_type {
                assert_eq!(&g["raw_type"], raw_type, "{name}: {group} {id}");
            }
            others += usize::from(w.kind == Some("other"));
            if let Some(text) = &w.text {
                assert_eq!(&g["text"], text, "{name}: {group} {id}");
                texts_checked += 1;
                if text.contains(['\r', '\n', '"', ',', '\0']) || text.chars().count() >= 10_000 {
                    nasty_texts += 1;
                }
            }
        }
    }
    assert!(
        texts_checked > 100,
        "{name}: only {texts_checked} texts compared"
    );
    assert!(
        nasty_texts > 0,
        "{name}: the source had no edge-case texts to compare"
    );
    if p.malformed_rows {
        assert!(
            others > 0,
            "{name}: the source had no malformed or unknown rows"
        );
    }
    truth
}

/// No row lost: as many messages as the ground truth has.
pub fn assert_counts_match(p: &Source, root: &Path, bundle: &Path) {
    let rows = read_csv(&bundle.join("data/messages.csv"));
    assert_eq!(rows.len(), (p.read)(root, false).total(), "{}", p.platform);
}

/// Every source file the truth names is recorded with the hash it has now, before and
/// after alike; so is every other file recorded.
fn assert_sources_recorded(p: &Source, root: &Path, bundle: &Path, truth: &Truth) {
    let evidence = evidence(bundle);
    let sources = evidence["sources"].as_array().unwrap();
    for path in &truth.sources {
        let entry = sources
            .iter()
            .find(|s| s["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{}: {path} is not recorded: {sources:?}", p.platform));
        assert_eq!(
            entry["sha256_before"].as_str().unwrap(),
            sha256_file(&root.join(path)),
            "{}: {path}",
            p.platform
        );
    }
    for s in sources {
        assert_eq!(
            s["sha256_before"], s["sha256_after"],
            "{}: {}",
            p.platform, s["path"]
        );
    }
}

/// Nothing outside the root was read into the bundle.
fn assert_no_outside_bytes(bundle: &Path) {
    let secret = std::fs::read("/etc/hostname").unwrap_or_default();
    if secret.len() > 4 {
        for entry in walkdir::WalkDir::new(bundle.join("data/media")) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                assert_ne!(std::fs::read(entry.path()).unwrap(), secret);
            }
        }
    }
}

// ------------------------------------------------------------------ round trip

#[test]
fn exports_match_the_ground_truth_and_copy_media_exactly() {
    on_every(all, |p| {
        let name = p.platform;
        let dir = tempfile::tempdir().unwrap();
        let root = simulate(
            name,
            dir.path(),
            p.dir_name,
            &[
                "--groups",
                "4",
                "--messages",
                "3000",
                "--edge-rate",
                "0.1",
                "--seed",
                "7",
            ],
        );
        for path in p.layout {
            assert!(root.join(path).exists(), "{name}: the source has no {path}");
        }
        let before = snapshot(&root);
        let bundle = dir.path().join("bundle");
        export(&root, &bundle, &[]);
        assert_eq!(
            snapshot(&root),
            before,
            "{name}: the export changed the source"
        );

        let truth = assert_matches_truth(p, &root, &bundle, false);

        let raw = std::fs::read(bundle.join("data/messages.csv")).unwrap();
        assert!(
            raw.starts_with("\u{FEFF}platform,group_id".as_bytes()),
            "{name}: BOM and header"
        );
        assert!(raw.ends_with(b"\r\n"), "{name}: CRLF line ends");
        let messages = read_csv(&bundle.join("data/messages.csv"));
        let mut ids = HashSet::new();
        assert!(
            messages.iter().all(|m| ids.insert(m["message_id"].clone())),
            "{name}: a message id exported twice"
        );

        // Media: copies are byte-identical; refused and missing files carry their status.
        check_media_rows(&root, &bundle, p.media_statuses);
        assert_no_outside_bytes(&bundle);

        // groups.csv: the groups of the source, with the counts messages.csv has.
        let groups = read_csv(&bundle.join("data/groups.csv"));
        assert_eq!(groups.len(), 4, "{name}: --groups 4");
        assert_eq!(
            groups
                .iter()
                .map(|g| &g["group_id"])
                .collect::<BTreeSet<_>>(),
            truth.messages.keys().collect::<BTreeSet<_>>(),
            "{name}: the groups"
        );
        for g in &groups {
            let n = messages
                .iter()
                .filter(|m| m["group_id"] == g["group_id"])
                .count();
            assert_eq!(g["message_count"], n.to_string(), "{name}");
        }

        // members.csv: the member tables' rows, roles the platform has, one owner at most.
        let members = read_csv(&bundle.join("data/members.csv"));
        assert!(!truth.members.is_empty(), "{name}: no member tables");
        for (group, want) in &truth.members {
            let of_group: Vec<_> = members.iter().filter(|m| m["group_id"] == *group).collect();
            assert_eq!(of_group.len(), want.count, "{name}: members of {group}");
            if let Some(left) = want.left {
                assert_eq!(
                    of_group.iter().filter(|m| m["left"] == "true").count(),
                    left,
                    "{name}: left members of {group}"
                );
            }
            assert!(of_group.iter().filter(|m| m["role"] == "owner").count() <= 1);
        }
        assert!(
            members
                .iter()
                .all(|m| p.roles.contains(&m["role"].as_str())),
            "{name}: roles"
        );

        // evidence.json: every file read, hashed the same before and after; the warnings.
        assert_sources_recorded(p, &root, &bundle, &truth);
        let warnings = evidence(&bundle)["warnings"].to_string();
        for word in p.warnings {
            assert!(warnings.contains(word), "{name}: no {word:?} in {warnings}");
        }
        check_facts(p, &bundle);
    });
}

/// A database with a write-ahead log: the rows only in the log are exported, and neither
/// the database nor its log changes.
#[test]
fn sources_with_a_wal_are_exported_whole_and_left_untouched() {
    on_every(
        |p| p.wal_db.is_some(),
        |p| {
            let name = p.platform;
            let db = p.wal_db.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let root = simulate(
                name,
                dir.path(),
                p.dir_name,
                &[
                    "--groups",
                    "3",
                    "--messages",
                    "1500",
                    "--wal",
                    "--seed",
                    "3",
                ],
            );
            assert!(
                root.join(format!("{db}-wal")).exists(),
                "{name}: the simulator left no WAL"
            );
            // The database file alone, without its WAL, lacks the newest rows.
            let alone = tempfile::tempdir().unwrap();
            let alone_root = alone.path().join(p.dir_name);
            std::fs::create_dir_all(alone_root.join(db).parent().unwrap()).unwrap();
            std::fs::copy(root.join(db), alone_root.join(db)).unwrap();
            let main_only: HashSet<String> = (p.read)(&alone_root, false)
                .messages
                .into_values()
                .flatten()
                .map(|m| m.message_id)
                .collect();

            let before = snapshot(&root);
            let bundle = dir.path().join("bundle");
            export(&root, &bundle, &["--no-media"]);
            assert_eq!(
                snapshot(&root),
                before,
                "{name}: the export changed the source"
            );
            let truth = assert_matches_truth(p, &root, &bundle, false);
            assert!(
                truth.sources.contains(&format!("{db}-wal")),
                "{name}: the WAL is a source"
            );
            assert_sources_recorded(p, &root, &bundle, &truth);

            let messages = read_csv(&bundle.join("data/messages.csv"));
            let only_in_wal = messages
                .iter()
                .filter(|m| !main_only.contains(&m["message_id"]))
                .count();
            assert!(
                only_in_wal >= 30,
                "{name}: {only_in_wal} exported rows came from the WAL"
            );
        },
    );
}

/// `--group`, `--since`, `--no-bom`, `--csv-raw`, `--tz`, `--no-media`, and one-to-one
/// chats only with `--include-private`.
#[test]
fn filters_csv_options_and_private_chats() {
    on_every(all, |p| {
        let name = p.platform;
        let dir = tempfile::tempdir().unwrap();
        let root = simulate(
            name,
            dir.path(),
            p.dir_name,
            &["--groups", "3", "--messages", "1500", "--seed", "11"],
        );
        let all = dir.path().join("all");
        export(&root, &all, &["--no-media"]);
        let rows = read_csv(&all.join("data/messages.csv"));
        let group = rows[0]["group_id"].clone();
        let times: Vec<&String> = rows
            .iter()
            .filter(|r| r["group_id"] == group && !r["time_utc"].is_empty())
            .map(|r| &r["time_utc"])
            .collect();
        let mid = times[times.len() / 2].clone();

        let some = dir.path().join("some");
        export(
            &root,
            &some,
            &[
                "--group",
                &group,
                "--since",
                &mid,
                "--no-bom",
                "--csv-raw",
                "--tz",
                "-05:00",
                "--no-media",
            ],
        );
        let raw = std::fs::read(some.join("data/messages.csv")).unwrap();
        assert!(raw.starts_with(b"platform,"), "{name}: --no-bom");
        let got = read_csv(&some.join("data/messages.csv"));
        // A message with no time it can be placed by is kept (README, Sources).
        let want: Vec<&String> = rows
            .iter()
            .filter(|r| {
                r["group_id"] == group && (r["time_utc"] >= mid || r["time_utc"].is_empty())
            })
            .map(|r| &r["message_id"])
            .collect();
        assert_eq!(
            got.iter().map(|r| &r["message_id"]).collect::<Vec<_>>(),
            want,
            "{name}: --group and --since"
        );
        assert!(
            got.iter().any(|r| !r["time_utc"].is_empty()) && got.len() < times.len(),
            "{name}: --since {mid} kept none or all of {group}"
        );
        assert!(
            got.iter()
                .all(|r| r["time_local"].ends_with("-05:00") || r["time_utc"].is_empty()),
            "{name}: --tz"
        );
        let media = read_csv(&some.join("data/media.csv"));
        assert!(
            media.iter().all(|m| m["status"] != "copied"),
            "{name}: --no-media copies nothing"
        );

        let private = dir.path().join("private");
        export(&root, &private, &["--no-media", "--include-private"]);
        let with_private = read_csv(&private.join("data/messages.csv"));
        match p.private {
            Some(is_private) => {
                assert!(
                    rows.iter().all(|r| !is_private.holds(r)),
                    "{name}: a one-to-one chat without --include-private"
                );
                assert!(
                    with_private.iter().any(|r| is_private.holds(r)),
                    "{name}: no one-to-one chat with --include-private"
                );
                if p.reads_private {
                    assert_matches_truth(p, &root, &private, true);
                }
            }
            None => assert_eq!(
                with_private.len(),
                rows.len(),
                "{name}: no one-to-one chats to add"
            ),
        }
        let media = read_csv(&private.join("data/media.csv"));
        assert!(
            media.iter().all(|m| m["status"] != "copied"),
            "{name}: --no-media copies nothing"
        );
    });
}

#[test]
fn inspect_detects_the_platform_and_counts_the_groups() {
    on_every(all, |p| {
        let name = p.platform;
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(p, dir.path());
        let out = run_ok(&["inspect", root.to_str().unwrap(), "--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["platform"], name);
        let groups = report["groups"].as_array().unwrap();
        let is_private = |g: &Value| {
            let row: Row = [(
                "group_id".to_string(),
                g["id"].as_str().unwrap().to_string(),
            )]
            .into();
            p.private.is_some_and(|c| c.holds(&row))
        };
        let shared: Vec<&Value> = groups.iter().filter(|g| !is_private(g)).collect();
        assert!(shared.len() >= 4, "{name}: {} groups", shared.len());
        let total: u64 = shared.iter().map(|g| g["messages"].as_u64().unwrap()).sum();
        let truth = (p.read)(&root, false);
        assert_eq!(total as usize, truth.total(), "{name}: messages");
        if p.dissolves {
            assert!(
                groups.iter().any(|g| g["state"] == "dissolved"),
                "{name}: a dissolved group"
            );
        } else {
            assert!(
                groups.iter().all(|g| g["state"] != "dissolved"),
                "{name}: no dissolution the source cannot tell"
            );
        }
        let text = run_ok(&["inspect", root.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&text.stdout);
        for group in truth.messages.keys() {
            assert!(text.contains(group.as_str()), "{name}: {group} not listed");
        }
    });
}

// ------------------------------------------------------------------ bundles, leaks, retention

/// The source the bundle, leak and retention checks start from.
fn simulated(p: &Source, dir: &Path) -> PathBuf {
    simulate(
        p.platform,
        dir,
        p.dir_name,
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

#[test]
fn bundles_validate_with_independent_tools() {
    on_every(all, |p| {
        let name = p.platform;
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(p, dir.path());
        let before = snapshot(&root);
        let bundle = dir.path().join("case");
        export(&root, &bundle, &[]);
        export(&root, &bundle, &["--zip"]);
        assert_eq!(
            snapshot(&root),
            before,
            "{name}: the export changed the source"
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
                "{name}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let media = read_csv(&bundle.join("data/media.csv"));
        assert!(
            media.iter().any(|m| m["status"] == "copied"),
            "{name}: no media copied"
        );
    });
}

#[test]
fn anonymized_exports_leak_nothing() {
    on_every(all, |p| {
        let name = p.platform;
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(p, dir.path());
        let plain = dir.path().join("plain");
        export(&root, &plain, &["--include-private"]);
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
        assert!(names.len() > 20, "{name}: {} names", names.len());
        assert!(!pii.is_empty(), "{name}: no planted PII");
        let caught = std::panic::catch_unwind(|| assert_no_leaks(&plain, &names, &BTreeSet::new()));
        assert!(
            caught.is_err(),
            "{name}: the search finds nothing in a plain export"
        );

        let key = dir.path().join("k");
        for (out, extra) in [
            ("anon", vec![]),
            ("anon-zip", vec!["--zip", "--with-media"]),
            (
                "anon-formats",
                vec![
                    "--format",
                    "csv,jsonl,txt",
                    "--with-media",
                    "--include-private",
                ],
            ),
        ] {
            let mut args = vec!["--anonymize", "--key-file", key.to_str().unwrap()];
            args.extend(extra);
            export(&root, &dir.path().join(out), &args);
        }
        assert_no_leaks(&dir.path().join("anon"), &names, &pii);
        assert_no_leaks(&dir.path().join("anon-zip.zip"), &names, &pii);
        // Every format, one-to-one chats (named by people) included.
        let formats = dir.path().join("anon-formats");
        assert!(formats.join("data/messages.jsonl").is_file(), "{name}");
        assert!(
            std::fs::read_dir(formats.join("data/txt")).unwrap().count() >= 2,
            "{name}: txt files"
        );
        assert_no_leaks(&formats, &names, &pii);
        let anon_messages = read_csv(&dir.path().join("anon/data/messages.csv"));
        let plain_group_messages = messages.iter().filter(|m| {
            // The plain export above included private chats; the anonymized ones did not.
            anon_messages.iter().any(|a| a["group_id"] == m["group_id"])
        });
        assert_eq!(plain_group_messages.count(), anon_messages.len(), "{name}");
    });
}

#[test]
fn retention_plans_clean_exactly_what_they_say() {
    on_every(all, |p| {
        let name = p.platform;
        let dir = tempfile::tempdir().unwrap();
        let root = simulated(p, dir.path());
        let groups = read_groups(&root);
        let plan = dir.path().join("plan.json");
        let mut args: Vec<String> = vec![
            "plan".into(),
            root.to_str().unwrap().into(),
            "--out".into(),
            plan.to_str().unwrap().into(),
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
        let planned: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
        let mut deletes = BTreeSet::new();
        for e in planned["entries"].as_array().unwrap() {
            let path = e["path"].as_str().unwrap();
            if e["action"] == "delete" {
                assert!(
                    !e["group_id"].is_null() || e["category"] == "recycle_bin",
                    "{name}: unreferenced {path} deleted"
                );
                deletes.insert(path.to_string());
            }
        }
        assert!(!deletes.is_empty(), "{name}: nothing to delete");
        let before = snapshot(&root);
        run_ok(&[
            "clean",
            plan.to_str().unwrap(),
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
                    "{name}: {rel} deleted but not planned"
                ),
                Some(now) => {
                    assert!(!deletes.contains(&rel), "{name}: {rel} planned but kept");
                    assert_eq!(now, state, "{name}: {rel} changed");
                }
            }
        }
        // The source still opens: no database was touched.
        run_ok(&["inspect", root.to_str().unwrap()]);
    });
}

fn read_groups(root: &Path) -> Vec<String> {
    let out = run_ok(&[
        "inspect",
        root.to_str().unwrap(),
        "--json",
        "--include-private",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect()
}

// ------------------------------------------------------------------ bad inputs

/// The files a bad input's path names: one, or every `*.<ext>` of a directory.
fn matching(root: &Path, path: &str) -> Vec<PathBuf> {
    let Some((dir, ext)) = path.split_once("/*") else {
        return vec![root.join(path)];
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {path} to break");
    files
}

/// Breaks the source as the case says; returns the connections that hold locks.
fn break_source(root: &Path, case: &BadInput) -> Vec<rusqlite::Connection> {
    let mut locks = Vec::new();
    for (path, how) in case.breaks {
        let files = matching(root, path);
        if let Breakage::CutLastLine = how {
            let file = files.last().unwrap();
            let bytes = std::fs::read(file).unwrap();
            let last_line_start = bytes[..bytes.len() - 1]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            let cut = last_line_start + (bytes.len() - last_line_start) / 2;
            std::fs::write(file, &bytes[..cut]).unwrap();
            continue;
        }
        for file in files {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            match *how {
                Breakage::Noise(len) => std::fs::write(
                    &file,
                    (0..len as u32)
                        .map(|i| (i * 7919 % 251) as u8)
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
                Breakage::Bytes(bytes) => std::fs::write(&file, bytes).unwrap(),
                Breakage::Truncate => {
                    let mut wal = file.clone().into_os_string();
                    wal.push("-wal");
                    assert!(!Path::new(&wal).exists(), "{file:?} has a WAL");
                    let len = std::fs::metadata(&file).unwrap().len();
                    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
                    f.set_len(len / 2).unwrap();
                }
                Breakage::Remove => std::fs::remove_file(&file).unwrap(),
                Breakage::RemoveDir => std::fs::remove_dir_all(&file).unwrap(),
                Breakage::Sqlite(statements) => {
                    let conn = rusqlite::Connection::open(&file).unwrap();
                    for sql in statements {
                        conn.execute_batch(sql).unwrap();
                    }
                }
                Breakage::Lock => {
                    let conn = rusqlite::Connection::open(&file).unwrap();
                    conn.execute_batch("PRAGMA journal_mode=DELETE; BEGIN EXCLUSIVE;")
                        .unwrap();
                    locks.push(conn);
                }
                Breakage::CutLastLine => unreachable!(),
            }
        }
    }
    locks
}

fn bad_input(p: &Source, case: &BadInput) {
    let dir = tempfile::tempdir().unwrap();
    let root = match case.base {
        Base::Small => simulate(p.platform, dir.path(), p.dir_name, p.small),
        Base::Empty => {
            let root = dir.path().join(p.dir_name);
            std::fs::create_dir_all(&root).unwrap();
            root
        }
    };
    let locks = break_source(&root, case);
    match case.outcome {
        Outcome::Refused { code, message } => {
            export_fails(&root, dir.path(), code, message);
            let inspected = run(&["inspect", root.to_str().unwrap()]);
            assert_eq!(exit_code(&inspected), code, "inspect");
        }
        Outcome::Exported {
            warning,
            senders_named_by_id,
        } => {
            let bundle = dir.path().join("bundle");
            export(&root, &bundle, &["--no-media"]);
            assert_counts_match(p, &root, &bundle);
            let warnings = evidence(&bundle)["warnings"].to_string();
            assert!(warnings.contains(warning), "no {warning:?} in {warnings}");
            if senders_named_by_id {
                let rows = read_csv(&bundle.join("data/messages.csv"));
                assert!(!rows.is_empty());
                assert!(
                    rows.iter().all(|r| r["sender_name"] == r["sender_id"]),
                    "without the directory, senders are named by id"
                );
            }
        }
    }
    drop(locks);
}

/// Each platform's bad inputs (truth/<platform>.rs): a clear message and its exit code,
/// nothing left behind; or, for what a source may lack, an export with a warning.
#[test]
fn bad_inputs_are_refused_clearly_or_exported_with_a_warning() {
    on_every(all, |p| {
        assert!(!p.bad_inputs.is_empty());
        let failed: Vec<&str> = p
            .bad_inputs
            .iter()
            .filter(|case| std::panic::catch_unwind(|| bad_input(p, case)).is_err())
            .map(|case| case.what)
            .collect();
        assert!(failed.is_empty(), "{}: failed: {failed:?}", p.platform);
    });
}
