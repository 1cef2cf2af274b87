//! Anonymized exports: nothing that names a member, and no planted PII, survives anywhere
//! in the bundle (directory or zip, with or without media), also after NFKC.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;
use regex::Regex;
use unicode_normalization::UnicodeNormalization;

/// NFKC, then digits joined across single spaces or hyphens (`138 1234-5678`).
fn canonical(text: &str) -> String {
    let nfkc: String = text.nfkc().collect();
    let chars: Vec<char> = nfkc.chars().collect();
    let mut out = String::with_capacity(nfkc.len());
    for (i, &c) in chars.iter().enumerate() {
        let joins_digits = (c == ' ' || c == '-')
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if !joins_digits {
            out.push(c);
        }
    }
    out
}

fn gb11643_valid(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = id.as_bytes();
    let sum: u32 = (0..17).map(|i| (b[i] - b'0') as u32 * WEIGHTS[i]).sum();
    CHECK[(sum % 11) as usize] == b[17]
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = (d - b'0') as u32;
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// PII planted in the source's texts, found by our own simple detectors.
fn planted_pii(texts: &[String]) -> BTreeSet<String> {
    let prefix = Regex::new(r"(\+86|0086)").unwrap();
    let digits = Regex::new(r"\d+X?").unwrap();
    let email = Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").unwrap();
    let qq = Regex::new(r"(?:QQ|qq|扣扣)\s*(\d{5,11})").unwrap();
    let wxid = Regex::new(r"wxid_[A-Za-z0-9_-]{3,}").unwrap();
    let mut found = BTreeSet::new();
    for text in texts {
        let text = prefix.replace_all(&canonical(text), " ").into_owned();
        for m in digits.find_iter(&text) {
            let run = m.as_str();
            let phone = run.len() == 11
                && run.starts_with('1')
                && (b'3'..=b'9').contains(&run.as_bytes()[1]);
            let id = run.len() == 18 && gb11643_valid(run);
            let card = (16..=19).contains(&run.len()) && !run.ends_with('X') && luhn_valid(run);
            if phone || id || card {
                found.insert(run.to_string());
            }
        }
        found.extend(email.find_iter(&text).map(|m| m.as_str().to_string()));
        found.extend(qq.captures_iter(&text).map(|c| c[1].to_string()));
        found.extend(wxid.find_iter(&text).map(|m| m.as_str().to_string()));
    }
    found
}

/// Every member id, alias and name the source knows (2+ characters, 3+ if ASCII-only).
fn originals(root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let (_dir, conn) = ground_truth_db(root, "EnMicroMsg.db");
    let mut strings = BTreeSet::new();
    let mut stmt = conn
        .prepare("SELECT username, alias, conRemark, nickname FROM rcontact WHERE username NOT LIKE '%@chatroom'")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok([0, 1, 2, 3].map(|i| {
                r.get::<_, Option<String>>(i)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }))
        })
        .unwrap();
    for row in rows {
        strings.extend(row.unwrap());
    }
    let mut stmt = conn
        .prepare("SELECT memberlist, displayname FROM chatroom")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (members, names) = row.unwrap();
        strings.extend(members.unwrap_or_default().split(';').map(str::to_string));
        // Nicknames with `、` make the split ambiguous; the whole entries are checked too.
        strings.extend(names.unwrap_or_default().split('、').map(str::to_string));
    }
    let owner: String = conn
        .query_row("SELECT value FROM userinfo WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    strings.insert(owner);
    // Free text only: XML payloads carry server ids (quoted `svrid`s) that are message ids, not PII.
    let mut stmt = conn
        .prepare("SELECT CAST(content AS BLOB) FROM message WHERE type IN (1, 10000)")
        .unwrap();
    let texts: Vec<String> = stmt
        .query_map([], |r| r.get::<_, Option<Vec<u8>>>(0))
        .unwrap()
        .filter_map(|c| c.unwrap().map(|b| String::from_utf8_lossy(&b).into_owned()))
        .collect();
    let names: BTreeSet<String> = strings
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| {
            let n = s.chars().count();
            if s.is_ascii() {
                n >= 3
            } else {
                n >= 2
            }
        })
        .collect();
    (names, planted_pii(&texts))
}

/// Every file of a bundle (directory or zip): (path inside, bytes).
fn bundle_files(bundle: &Path) -> Vec<(String, Vec<u8>)> {
    if bundle.is_dir() {
        let parent = bundle.parent().unwrap();
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(bundle) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                let name = entry
                    .path()
                    .strip_prefix(parent)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push((name, std::fs::read(entry.path()).unwrap()));
            }
        }
        files
    } else {
        let mut archive = zip::ZipArchive::new(std::fs::File::open(bundle).unwrap()).unwrap();
        (0..archive.len())
            .map(|i| {
                let mut file = archive.by_index(i).unwrap();
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).unwrap();
                (file.name().to_string(), bytes)
            })
            .collect()
    }
}

fn assert_no_leaks(bundle: &Path, names: &BTreeSet<String>, pii: &BTreeSet<String>) {
    let files = bundle_files(bundle);
    assert!(files.len() >= 9, "{bundle:?} has {} files", files.len());
    let needles: Vec<&str> = names.iter().chain(pii).map(String::as_str).collect();
    let matcher = aho_corasick::AhoCorasick::new(&needles).unwrap();
    // A digits-only value counts where it stands alone, not inside a longer id or hash.
    let alone = |hay: &[u8], start: usize, end: usize| {
        !(start > 0 && hay[start - 1].is_ascii_alphanumeric())
            && !hay.get(end).is_some_and(|c| c.is_ascii_alphanumeric())
    };
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        let variants = [
            name.clone().into_bytes(),
            bytes.clone(),
            canonical(name).into_bytes(),
            canonical(&text).into_bytes(),
        ];
        for hay in &variants {
            for m in matcher.find_overlapping_iter(hay.as_slice()) {
                let needle = needles[m.pattern().as_usize()];
                let numeric = needle.chars().all(|c| c.is_ascii_digit() || c == 'X');
                if numeric && pii.contains(needle) && !alone(hay, m.start(), m.end()) {
                    continue;
                }
                panic!("{needle:?} leaked in {name}");
            }
        }
    }
}

fn anonymized_export(root: &Path, out: &Path, key: &Path, extra: &[&str]) {
    let mut args = vec![
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--anonymize",
        "--key-file",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

fn column(path: &Path, name: &str) -> Vec<String> {
    read_csv(path)
        .into_iter()
        .map(|r| r[name].clone())
        .collect()
}

#[test]
fn anonymized_bundles_leak_no_names_ids_or_pii() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
        &[
            "--groups",
            "4",
            "--messages",
            "3000",
            "--edge-rate",
            "0.15",
            "--seed",
            "21",
        ],
    );
    let (names, pii) = originals(&root);
    assert!(names.len() > 50, "{} names", names.len());
    assert!(
        pii.len() > 10,
        "only {} planted PII values: {pii:?}",
        pii.len()
    );
    let key = dir.path().join("case.key");
    run_ok(&["keygen", key.to_str().unwrap()]);

    // The search finds what a plain export holds, so its silence below means something.
    let plain = dir.path().join("plain");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        plain.to_str().unwrap(),
    ]);
    let caught = std::panic::catch_unwind(|| assert_no_leaks(&plain, &names, &pii));
    assert!(
        caught.is_err(),
        "the leak search found nothing in a plain export"
    );
    let caught_pii = std::panic::catch_unwind(|| assert_no_leaks(&plain, &BTreeSet::new(), &pii));
    assert!(
        caught_pii.is_err(),
        "the PII search found nothing in a plain export"
    );

    let variants: [(&str, &[&str]); 4] = [
        ("dir", &[]),
        ("dir-media", &["--with-media"]),
        ("zipped", &["--zip"]),
        ("zipped-media", &["--zip", "--with-media"]),
    ];
    for (name, extra) in variants {
        let out = dir.path().join(name);
        anonymized_export(&root, &out, &key, extra);
        let bundle: PathBuf = if extra.contains(&"--zip") {
            dir.path().join(format!("{name}.zip"))
        } else {
            out
        };
        assert_no_leaks(&bundle, &names, &pii);
        assert_eq!(
            exit_code(&run(&["verify", bundle.to_str().unwrap()])),
            0,
            "{name}"
        );
    }

    // Media copied with --with-media keep only message-id names, and bag-info says so.
    let media = read_csv(&dir.path().join("dir-media/data/media.csv"));
    assert!(media.iter().any(|m| m["status"] == "copied"));
    let plain = read_csv(&dir.path().join("dir/data/media.csv"));
    assert!(
        plain.iter().all(|m| m["status"] != "copied"),
        "media are left out by default"
    );
    let bag_info = std::fs::read_to_string(dir.path().join("dir/bag-info.txt")).unwrap();
    assert!(bag_info.contains("Chatvault-Anonymized: yes"));
    let fingerprint = run_ok(&["keygen", dir.path().join("other.key").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&fingerprint.stdout).contains("fingerprint"));
    let key_bytes = std::fs::read(&key).unwrap();
    let expected = sha256_hex(&key_bytes);
    assert!(bag_info.contains(&format!("Chatvault-Key-Fingerprint: {}", &expected[..16])));
    let evidence = std::fs::read(dir.path().join("dir/evidence.json")).unwrap();
    assert!(
        !evidence
            .windows(key_bytes.len())
            .any(|w| w == key_bytes.as_slice()),
        "the key itself"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

#[test]
fn pseudonyms_are_stable_per_key_and_counts_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "3", "--messages", "900", "--edge-rate", "0.1"],
    );
    let (k1, k2) = (dir.path().join("k1"), dir.path().join("k2"));
    run_ok(&["keygen", k1.to_str().unwrap()]);
    run_ok(&["keygen", k2.to_str().unwrap()]);
    // keygen refuses to overwrite.
    assert!(!run(&["keygen", k1.to_str().unwrap()]).status.success());

    let plain = dir.path().join("plain");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        plain.to_str().unwrap(),
        "--no-media",
    ]);
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    anonymized_export(&root, &a, &k1, &[]);
    anonymized_export(&root, &b, &k1, &[]);
    anonymized_export(&root, &c, &k2, &[]);

    let ids = |bundle: &Path| column(&bundle.join("data/members.csv"), "member_id");
    assert_eq!(ids(&a), ids(&b), "same key, same pseudonyms");
    let re = Regex::new("^m_[a-z2-7]{12}$").unwrap();
    assert!(ids(&a).iter().all(|p| re.is_match(p)));
    let different: usize = ids(&a).iter().zip(ids(&c)).filter(|(x, y)| *x != y).count();
    assert_eq!(
        different,
        ids(&a).len(),
        "a different key gives different pseudonyms"
    );

    // Same messages in the same order.
    let msgs = |bundle: &Path| column(&bundle.join("data/messages.csv"), "message_id");
    assert_eq!(msgs(&a), msgs(&plain));

    // `chatvault pseudonym` answers "which rows are mine?" without a mapping.
    let plain_members = read_csv(&plain.join("data/members.csv"));
    let anon_members = read_csv(&a.join("data/members.csv"));
    let someone = &plain_members[3]["member_id"];
    let out = run_ok(&[
        "pseudonym",
        "--key-file",
        k1.to_str().unwrap(),
        "--platform",
        "wechat",
        someone,
    ]);
    let printed = String::from_utf8(out.stdout).unwrap();
    let pseudonym = printed.split('\t').next().unwrap();
    assert_eq!(anon_members[3]["member_id"], pseudonym);
    let senders = column(&a.join("data/messages.csv"), "sender_id");
    let plain_senders = column(&plain.join("data/messages.csv"), "sender_id");
    let mine = plain_senders.iter().filter(|s| *s == someone).count();
    assert_eq!(senders.iter().filter(|s| *s == pseudonym).count(), mine);

    // The formula guard still applies to replaced text: no raw cell starts a formula.
    let raw = std::fs::read(a.join("data/messages.csv")).unwrap();
    let mut reader = csv::ReaderBuilder::new().from_reader(&raw[3..]);
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell:?}");
        }
    }
}
