//! `chatvault hash`: SHA-256 of files and directory trees, in parallel, printed and
//! checked in exactly the format of GNU `sha256sum`.

use std::io;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::tee;
use super::{io_err, EvidenceError};

/// Hashes files and directory trees. Output order: the inputs in the order given;
/// a directory's files (regular files only, symlinks not followed, like
/// `find -type f`) in sorted path order. `progress` receives byte counts as they
/// are hashed, from several threads.
pub fn hash_paths(
    paths: &[PathBuf],
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<Vec<(String, String)>, EvidenceError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in paths {
        let meta = path.metadata().map_err(io_err("read", path))?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        for entry in walkdir::WalkDir::new(path)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| {
                let at = e.path().unwrap_or(path).to_path_buf();
                io_err("list", &at)(e.into())
            })?;
            if entry.file_type().is_file() {
                files.push(entry.into_path());
            }
        }
    }
    files
        .par_iter()
        .map(|path| {
            let mut file = tee::open_regular(path).map_err(io_err("open", path))?;
            let (digest, _) = tee::with_buffer(|buf| tee::hash_reader(&mut file, buf, progress))
                .map_err(io_err("read", path))?;
            Ok((path.to_string_lossy().into_owned(), digest))
        })
        .collect()
}

/// `sha256sum` output: "<hex>  <path>\n". Like GNU coreutils, a name holding a
/// backslash, LF or CR is written escaped (\\, \n, \r) behind a leading backslash.
pub fn format_sha256sum(entries: &[(String, String)]) -> String {
    let mut out = String::new();
    for (path, digest) in entries {
        if path.contains(['\\', '\n', '\r']) {
            out.push('\\');
            out.push_str(digest);
            out.push_str("  ");
            for c in path.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(digest);
            out.push_str("  ");
            out.push_str(path);
        }
        out.push('\n');
    }
    out
}

/// Outcome of [`check_sha256sum`], per line in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub ok: Vec<String>,
    pub failed: Vec<String>,
    pub missing: Vec<String>,
    /// Present but unreadable: (path, error).
    pub unreadable: Vec<(String, String)>,
    /// 1-based numbers of lines that are not checksum lines.
    pub malformed_lines: Vec<usize>,
}

impl CheckReport {
    /// True when every listed file matched and every line was well-formed.
    pub fn all_ok(&self) -> bool {
        self.failed.is_empty()
            && self.missing.is_empty()
            && self.unreadable.is_empty()
            && self.malformed_lines.is_empty()
            && !self.ok.is_empty()
    }

    /// Lines like `sha256sum -c`: "path: OK", "path: FAILED", "path: FAILED open or read".
    pub fn render(&self) -> String {
        let mut out = String::new();
        for path in &self.ok {
            out.push_str(&format!("{path}: OK\n"));
        }
        for path in &self.failed {
            out.push_str(&format!("{path}: FAILED\n"));
        }
        for path in &self.missing {
            out.push_str(&format!("{path}: FAILED open or read (missing)\n"));
        }
        for (path, why) in &self.unreadable {
            out.push_str(&format!("{path}: FAILED open or read ({why})\n"));
        }
        if !self.malformed_lines.is_empty() {
            out.push_str(&format!(
                "WARNING: {} line(s) are improperly formatted\n",
                self.malformed_lines.len()
            ));
        }
        out
    }
}

/// One `sha256sum` line (GNU text or binary form, escaped names, or BSD `--tag` form):
/// `(name, lowercase digest)`. Every reader of checksum lines and sidecars uses this.
pub fn parse_line(line: &str) -> Option<(String, String)> {
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (digest, name) = if let Some(rest) = line.strip_prefix("SHA256 (") {
        // BSD / `--tag` form: SHA256 (name) = hex
        let (name, digest) = rest.rsplit_once(") = ")?;
        (digest, name)
    } else {
        let digest = line.get(..64)?;
        let rest = line.get(64..)?;
        // " " then ' ' (text) or '*' (binary), then the name.
        let marker = rest.as_bytes();
        if marker.len() < 3 || marker[0] != b' ' || !matches!(marker[1], b' ' | b'*') {
            return None;
        }
        let name = &rest[2..];
        (digest, name)
    };
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() {
        return None;
    }
    let name = if escaped {
        unescape(name)?
    } else {
        name.to_string()
    };
    Some((name, digest.to_ascii_lowercase()))
}

fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            _ => return None,
        }
    }
    Some(out)
}

/// Checks a `sha256sum` file (text "  " or binary " *" lines, or `--tag` lines);
/// paths are relative to the current directory, as with `sha256sum -c`.
pub fn check_sha256sum(file: &Path) -> Result<CheckReport, EvidenceError> {
    let mut bytes = Vec::new();
    tee::open_regular(file)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_err("read", file))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut report = CheckReport::default();
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (number, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Some(entry) => wanted.push(entry),
            None => report.malformed_lines.push(number + 1),
        }
    }
    enum Outcome {
        Ok,
        Failed,
        Missing,
        Unreadable(String),
    }
    let outcomes: Vec<Outcome> = wanted
        .par_iter()
        .map(|(name, expected)| {
            let hashed = tee::open_regular(Path::new(name))
                .and_then(|mut f| tee::with_buffer(|buf| tee::hash_reader(&mut f, buf, None)));
            match hashed {
                Ok((digest, _)) if digest == *expected => Outcome::Ok,
                Ok(_) => Outcome::Failed,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Missing,
                Err(e) => Outcome::Unreadable(e.to_string()),
            }
        })
        .collect();
    for ((name, _), outcome) in wanted.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Ok => report.ok.push(name),
            Outcome::Failed => report.failed.push(name),
            Outcome::Missing => report.missing.push(name),
            Outcome::Unreadable(why) => report.unreadable.push((name, why)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::process::Command;

    use super::super::testkit::{noise, run};
    use super::*;

    #[test]
    fn hash_output_matches_gnu_sha256sum_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        fs::create_dir_all(tree.join("b/c")).unwrap();
        fs::write(tree.join("b/c/z.bin"), noise(3 << 20, 9)).unwrap();
        fs::write(tree.join("a.txt"), b"abc").unwrap();
        fs::write(tree.join("b/1 space.txt"), b"").unwrap();
        fs::write(tree.join("b/back\\slash"), b"x").unwrap();
        fs::write(tree.join("b/new\nline"), b"y").unwrap();
        std::os::unix::fs::symlink("a.txt", tree.join("link")).unwrap();
        let single = tmp.path().join("single.dat");
        fs::write(&single, noise(1000, 4)).unwrap();

        let total = std::sync::atomic::AtomicU64::new(0);
        let progress = |n: u64| {
            total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        };
        let entries = hash_paths(&[single.clone(), tree.clone()], Some(&progress)).unwrap();
        assert_eq!(total.into_inner(), 1000 + 3 + (3 << 20) + 2);
        let ours = format_sha256sum(&entries);

        let mut cmd = Command::new("sha256sum");
        cmd.arg(&single);
        for (path, _) in entries.iter().skip(1) {
            cmd.arg(path);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        assert_eq!(ours, String::from_utf8(out.stdout).unwrap());
        assert_eq!(entries.len(), 6, "symlinks are not followed: {entries:?}");

        // Round trip: our file checks with GNU and with us.
        let sums = tmp.path().join("SHA256SUMS");
        fs::write(&sums, &ours).unwrap();
        let (ok, out) = run(Command::new("sha256sum")
            .arg("--strict")
            .arg("-c")
            .arg(&sums));
        assert!(ok, "{out}");
        let report = check_sha256sum(&sums).unwrap();
        assert!(report.all_ok(), "{}", report.render());
        assert_eq!(report.ok.len(), 6);
    }

    #[test]
    fn check_reports_failed_missing_and_malformed_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good");
        let bad = tmp.path().join("bad");
        fs::write(&good, b"abc").unwrap();
        fs::write(&bad, b"abd").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let text = format!(
            "{abc}  {}\n{abc} *{}\n{abc}  {}\nSHA256 ({}) = {abc}\nnot a line\n",
            good.display(),
            bad.display(),
            tmp.path().join("gone").display(),
            good.display()
        );
        let sums = tmp.path().join("sums");
        fs::write(&sums, text).unwrap();
        let report = check_sha256sum(&sums).unwrap();
        assert_eq!(report.ok.len(), 2);
        assert_eq!(report.failed, [bad.display().to_string()]);
        assert_eq!(report.missing.len(), 1);
        assert_eq!(report.malformed_lines, [5]);
        assert!(!report.all_ok());
        assert!(report.render().contains(": FAILED\n"));
    }
}
