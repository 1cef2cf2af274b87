//! Leak search for anonymized bundles: our own PII detectors, and a byte-by-byte search of
//! every file (and its NFKC form) for names, ids and PII values.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

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
                let numeric = needle.chars().all(|c| c.is_ascii_digit() || c == 'X');
                if numeric && pii.contains(needle) && !alone(hay, m.start(), m.end()) {
                    continue;
                }
                panic!("{needle:?} leaked in {name}");
            }
        }
    }
}
