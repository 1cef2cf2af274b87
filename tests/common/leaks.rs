//! Leak search for anonymized bundles: our own PII detectors, and a byte-by-byte search of
//! every file (and its NFKC form) for names, ids and PII values.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

/// NFKC, then digits joined across single spaces or hyphens (`138 1234-5678`).
pub fn canonical(text: &str) -> String {
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
    sum.is_multiple_of(10)
}

/// PII planted in the source's texts, found by our own simple detectors.
pub fn planted_pii(texts: &[String]) -> BTreeSet<String> {
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

/// Keeps strings long enough to be searched for: 2+ characters, 3+ if ASCII-only
/// (shorter names are replaced only after `@`).
pub fn searchable(strings: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    strings
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
        .collect()
}

/// Every file of a bundle (directory or zip): (path inside, bytes).
pub fn bundle_files(bundle: &Path) -> Vec<(String, Vec<u8>)> {
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

pub fn assert_no_leaks(bundle: &Path, names: &BTreeSet<String>, pii: &BTreeSet<String>) {
    let files = bundle_files(bundle);
    assert!(files.len() >= 9, "{bundle:?} has {} files", files.len());
    let needles: Vec<&str> = names.iter().chain(pii).map(String::as_str).collect();
    let matcher = aho_corasick::AhoCorasick::new(&needles).unwrap();
    // A digits-only value counts where it stands alone, not inside a longer id or hash.
    let alone = |hay: &[u8], start: usize, end: usize| {
        let before = start.checked_sub(1).and_then(|i| hay.get(i));
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
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
                // Digits (PII, QQ numbers, DingTalk uids) count where they stand alone,
                // not inside a longer id, size or hash.
                let numeric = needle.chars().all(|c| c.is_ascii_digit() || c == 'X');
                if numeric && !alone(hay, m.start(), m.end()) {
                    continue;
                }
                panic!("{needle:?} leaked in {name}");
            }
        }
    }
}

/// Everything a source holds that names a person, read straight from its tables or JSON
/// (never through chatvault's readers), and the PII planted in its free text.
pub struct Originals {
    /// Ids, aliases, QQ numbers, every name field, phones and e-mails of profiles.
    pub names: BTreeSet<String>,
    pub pii: BTreeSet<String>,
}

/// The one leak test, run per platform: a plain export must show what the search looks
/// for (so its silence means something), and every anonymized bundle (directory and zip,
/// with and without `--with-media`) must hold none of it, in any byte or file name.
/// `originals` reads the platform's ground truth.
pub fn anonymized_exports_leak_nothing(platform: &str, originals: fn(&Path) -> Originals) {
    use super::{exit_code, read_csv, run, run_ok, simulate};
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        platform,
        dir.path(),
        "src",
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
    let Originals { names, pii } = originals(&root);
    assert!(names.len() > 50, "{platform}: {} names", names.len());
    let key = dir.path().join("case.key");
    run_ok(&["keygen", key.to_str().unwrap()]);

    // The search finds what a plain export holds, file names of documents included.
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
        "{platform}: the leak search found nothing in a plain export"
    );
    let titled = bundle_files(&plain)
        .into_iter()
        .filter(|(name, _)| name.contains("的简历"))
        .count();
    assert!(
        titled > 0,
        "{platform}: the simulator planted no document titled with a member's name"
    );

    let variants: [(&str, &[&str]); 5] = [
        ("dir", &[]),
        ("dir-media", &["--with-media"]),
        ("zipped", &["--zip"]),
        ("zipped-media", &["--zip", "--with-media"]),
        // One-to-one chats are named by the people in them.
        ("private-media", &["--include-private", "--with-media"]),
    ];
    for (name, extra) in variants {
        let out = dir.path().join(name);
        let mut args = vec![
            "export",
            root.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--anonymize",
            "--key-file",
            key.to_str().unwrap(),
            // Every output format, the report included.
            "--format",
            "csv,jsonl,txt,html",
            "--case-id",
            "case 7",
        ];
        args.extend_from_slice(extra);
        run_ok(&args);
        let bundle: PathBuf = if extra.contains(&"--zip") {
            dir.path().join(format!("{name}.zip"))
        } else {
            out
        };
        assert_no_leaks(&bundle, &names, &pii);
        assert_eq!(
            exit_code(&run(&["verify", bundle.to_str().unwrap()])),
            0,
            "{platform} {name}"
        );
    }
    // Copied media keep only message-id names: `<group dir>/<message id>_<n>[.ext]`.
    let media = read_csv(&dir.path().join("dir-media/data/media.csv"));
    let shape = Regex::new(r"^data/media/[^/]+/[^/]+_[0-9]+(\.[a-z0-9]{1,5})?$").unwrap();
    let mut copied = 0;
    for row in &media {
        if row["status"] == "copied" {
            copied += 1;
            assert!(
                shape.is_match(&row["bundle_path"]),
                "{platform}: {:?}",
                row["bundle_path"]
            );
            assert_eq!(
                row["source_path"], row["sha256"],
                "{platform}: path shown by its hash"
            );
        } else {
            assert_eq!(row["source_path"], "", "{platform}: {row:?}");
        }
    }
    assert!(copied > 0, "{platform}: no media copied with --with-media");
}
