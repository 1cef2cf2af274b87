//! Incremental exports on every platform: a simulated source is exported, continued by its
//! simulator (`simulate --continue`: more days of traffic, joins, a new group, then recalls
//! and deletions), and exported again with `--after`. The ground truth is the platform's
//! own reader of the source before and after each continuation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::*;
use crate::suite::{export, on_every};
use crate::truth::{Message, Source, Truth};

type Row = BTreeMap<String, String>;
/// (group id, message id) pairs.
type Keys = BTreeSet<(String, String)>;

fn rows_by_group(bundle: &Path, file: &str) -> BTreeMap<String, Vec<Row>> {
    let mut by_group: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for row in read_csv(&bundle.join("data").join(file)) {
        by_group
            .entry(row["group_id"].clone())
            .or_default()
            .push(row);
    }
    by_group
}

/// What `simulate --continue` reported, by the words of its summary line.
fn continue_source(p: &Source, root: &Path, extra: &[&str]) -> BTreeMap<String, usize> {
    let mut args = vec![
        "simulate",
        p.platform,
        "--out",
        root.to_str().unwrap(),
        "--continue",
    ];
    args.extend_from_slice(extra);
    let out = run_ok(&args);
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut counts = BTreeMap::new();
    let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    for (i, word) in words.iter().enumerate() {
        if let Ok(n) = word.parse::<usize>() {
            if let Some(what) = words.get(i + 1) {
                counts.insert(what.to_string(), n);
            }
        }
    }
    counts
}

/// Per group, the ids `after` has and `before` lacks, in `after`'s order.
fn new_ids(before: &Truth, after: &Truth) -> BTreeMap<String, Vec<String>> {
    let mut added = BTreeMap::new();
    for (group, messages) in &after.messages {
        let known: BTreeSet<&str> = before
            .messages
            .get(group)
            .map(|m| m.iter().map(|m| m.message_id.as_str()).collect())
            .unwrap_or_default();
        let ids: Vec<String> = messages
            .iter()
            .filter(|m| !known.contains(m.message_id.as_str()))
            .map(|m| m.message_id.clone())
            .collect();
        if !ids.is_empty() {
            added.insert(group.clone(), ids);
        }
    }
    added
}

/// What a recall or an edit changes, as far as the truth reader knows it.
fn seen(m: &Message) -> (&str, &str, Option<&str>, Option<&str>, Option<&str>) {
    (
        m.direction,
        &m.sender_id,
        m.kind,
        m.raw_type.as_deref(),
        m.text.as_deref(),
    )
}

/// The (group, id) pairs deleted between the two truths, and those that changed.
fn changed_ids(before: &Truth, after: &Truth) -> (Keys, Keys) {
    let (mut deleted, mut changed) = (BTreeSet::new(), BTreeSet::new());
    for (group, messages) in &before.messages {
        let now: BTreeMap<&str, &Message> = after
            .messages
            .get(group)
            .map(|m| m.iter().map(|m| (m.message_id.as_str(), m)).collect())
            .unwrap_or_default();
        for old in messages {
            let key = (group.clone(), old.message_id.clone());
            match now.get(old.message_id.as_str()) {
                None => {
                    deleted.insert(key);
                }
                Some(new) if seen(new) != seen(old) => {
                    changed.insert(key);
                }
                Some(_) => {}
            }
        }
    }
    (deleted, changed)
}

fn ids_of(rows: &BTreeMap<String, Vec<Row>>) -> BTreeMap<String, Vec<String>> {
    rows.iter()
        .map(|(g, rows)| {
            (
                g.clone(),
                rows.iter().map(|r| r["message_id"].clone()).collect(),
            )
        })
        .collect()
}

fn continues(p: &Source) -> bool {
    p.continues
}

#[test]
fn increments_hold_exactly_what_a_continued_source_added() {
    on_every(continues, |p| {
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
                "1500",
                "--edge-rate",
                "0.05",
                "--seed",
                "21",
            ],
        );
        let t1 = (p.read)(&root, false);
        let b1 = dir.path().join("b1");
        export(&root, &b1, &["--format", "csv"]);

        // More days of traffic, joins, one new group; nothing behind the mark changes.
        let report = continue_source(
            p,
            &root,
            &[
                "--messages",
                "400",
                "--days",
                "5",
                "--joins",
                "2",
                "--recalls",
                "0",
                "--deletions",
                "0",
                "--new-groups",
                "1",
                "--seed",
                "22",
            ],
        );
        let t2 = (p.read)(&root, false);
        let added = new_ids(&t1, &t2);
        assert_eq!(
            added.values().map(Vec::len).sum::<usize>(),
            report["group"],
            "{name}: the continuation's own count of new group messages"
        );
        assert_eq!(
            t2.messages.len(),
            t1.messages.len() + 1,
            "{name}: one new group"
        );
        assert_eq!(changed_ids(&t1, &t2), Default::default(), "{name}");

        let b2 = dir.path().join("b2");
        export(
            &root,
            &b2,
            &["--format", "csv", "--after", b1.to_str().unwrap()],
        );
        let increment = rows_by_group(&b2, "messages.csv");
        assert_eq!(
            ids_of(&increment),
            added,
            "{name}: exactly the new messages"
        );
        // Every copied file of the increment is the source's file, byte for byte.
        for row in read_csv(&b2.join("data/media.csv")) {
            if row["status"] == "copied" {
                assert_eq!(
                    std::fs::read(b2.join(&row["bundle_path"])).unwrap(),
                    std::fs::read(root.join(&row["source_path"])).unwrap(),
                    "{name}: {}",
                    row["source_path"]
                );
            }
        }
        assert!(
            !b2.join("data/changes.csv").exists()
                || read_csv(&b2.join("data/changes.csv")).is_empty(),
            "{name}: nothing changed behind the mark"
        );

        // Members: those who joined existing groups, and the new group whole.
        let members = rows_by_group(&b2, "members.csv");
        for (group, want) in &t2.members {
            let got = members.get(group).map_or(0, Vec::len);
            let before = t1.members.get(group).map_or(0, |m| m.count);
            assert_eq!(
                got,
                want.count - before,
                "{name}: member rows of {group} in B2"
            );
        }
        assert!(
            members.values().map(Vec::len).sum::<usize>() >= report["members"],
            "{name}: joins"
        );

        // A whole export of the source now is B1 and B2 joined, row for row: the timed
        // messages in the same order, those without a time (which no mark can place, so
        // each bundle holds those it saw) the same set.
        let whole = dir.path().join("whole");
        export(&root, &whole, &["--format", "csv"]);
        let first = rows_by_group(&b1, "messages.csv");
        let split = |rows: Vec<&Row>| -> (Vec<Row>, BTreeSet<Vec<(String, String)>>) {
            let (timed, untimed): (Vec<&Row>, Vec<&Row>) =
                rows.into_iter().partition(|r| !r["time_utc"].is_empty());
            (
                timed.into_iter().cloned().collect(),
                untimed
                    .into_iter()
                    .map(|r| r.clone().into_iter().collect())
                    .collect(),
            )
        };
        for (group, rows) in rows_by_group(&whole, "messages.csv") {
            let joined: Vec<&Row> = [first.get(&group), increment.get(&group)]
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            assert_eq!(rows.len(), joined.len(), "{name}: {group}");
            let (whole_timed, whole_untimed) = split(rows.iter().collect());
            let (joined_timed, joined_untimed) = split(joined);
            for (w, j) in whole_timed.iter().zip(&joined_timed) {
                assert_eq!(w, j, "{name}: {group}");
            }
            assert_eq!(whole_untimed, joined_untimed, "{name}: {group}");
        }

        // Then recalls and deletions behind the mark, and a little more traffic.
        let report = continue_source(
            p,
            &root,
            &[
                "--messages",
                "60",
                "--days",
                "1",
                "--joins",
                "0",
                "--recalls",
                "3",
                "--deletions",
                "2",
                "--new-groups",
                "0",
                "--seed",
                "23",
            ],
        );
        assert_eq!(report["recalled"], 3, "{name}");
        assert_eq!(report["deleted"], 2, "{name}");
        let t3 = (p.read)(&root, false);
        let (deleted, changed) = changed_ids(&t2, &t3);
        assert_eq!(deleted.len(), 2, "{name}: the truth sees both deletions");
        let b3 = dir.path().join("b3");
        export(
            &root,
            &b3,
            &["--format", "csv", "--after", b2.to_str().unwrap()],
        );
        let increment = rows_by_group(&b3, "messages.csv");
        let added = new_ids(&t2, &t3);
        assert_eq!(
            ids_of(&increment),
            added,
            "{name}: exactly the new messages"
        );
        // A recall is either a change behind the mark or a message of its own.
        let recall_records = increment
            .values()
            .flatten()
            .filter(|r| r["kind"] == "recall")
            .count();
        assert_eq!(changed.len() + recall_records, 3, "{name}: three recalls");

        let changes = read_csv(&b3.join("data/changes.csv"));
        let listed = |change: &str| -> Keys {
            changes
                .iter()
                .filter(|c| c["change"] == change)
                .map(|c| (c["group_id"].clone(), c["message_id"].clone()))
                .collect()
        };
        assert_eq!(
            listed("deleted"),
            deleted,
            "{name}: deletions in changes.csv"
        );
        assert_eq!(listed("changed"), changed, "{name}: recalls in changes.csv");
        assert!(listed("added_behind_mark").is_empty(), "{name}");

        // The three make one chain.
        let out = run(&[
            "verify",
            "--chain",
            b1.to_str().unwrap(),
            b2.to_str().unwrap(),
            b3.to_str().unwrap(),
        ]);
        assert_eq!(
            exit_code(&out),
            0,
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    });
}
