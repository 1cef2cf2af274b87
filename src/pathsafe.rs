//! Resolving paths a source names (media, device paths) without ever leaving its root.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A regular file inside the root: the path to open and the path relative to the root.
    Inside { path: PathBuf, rel: String },
    /// The path escapes the root (`..`, an absolute path elsewhere, a symlink pointing out).
    Outside,
    /// Nothing there (or not a regular file).
    Missing { rel: String },
}

/// Resolves `named` (relative to `root`, or absolute inside it) to a regular file inside
/// `root`. Symlinks are followed only when their target stays inside the root.
pub fn resolve(root: &Path, named: &str) -> Resolved {
    let named_path = Path::new(named);
    let relative: PathBuf = if named_path.is_absolute() {
        match absolute_inside(root, named_path) {
            Some(rel) => rel,
            None => return Resolved::Outside,
        }
    } else {
        named_path.to_path_buf()
    };
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Resolved::Outside
            }
        }
    }
    let rel = clean.to_string_lossy().into_owned();
    if rel.is_empty() {
        return Resolved::Missing { rel };
    }
    let mut path = root.to_path_buf();
    let mut crossed_link = false;
    for component in clean.components() {
        path.push(component);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => crossed_link = true,
            Ok(_) => {}
            Err(_) => return Resolved::Missing { rel },
        }
    }
    if crossed_link {
        let (Ok(real), Ok(real_root)) = (path.canonicalize(), root.canonicalize()) else {
            // A dangling link: nothing to read, and where it pointed does not matter.
            return Resolved::Missing { rel };
        };
        if !real.starts_with(&real_root) {
            return Resolved::Outside;
        }
        path = real;
    }
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Resolved::Inside { path, rel },
        _ => Resolved::Missing { rel },
    }
}

/// For an absolute path, the part below `root` (compared after resolving both).
fn absolute_inside(root: &Path, absolute: &Path) -> Option<PathBuf> {
    if let Ok(rel) = absolute.strip_prefix(root) {
        return Some(rel.to_path_buf());
    }
    let real_root = root.canonicalize().ok()?;
    absolute
        .strip_prefix(&real_root)
        .ok()
        .map(Path::to_path_buf)
}

/// A readable file-name component: no separators, `%`, control characters or leading dot,
/// at most `max_chars` characters. Bundle paths built from it never need escaping.
pub fn sanitize_component(name: &str, max_chars: usize) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | '%' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}' => '_',
            c => c,
        })
        .collect();
    if out.chars().count() > max_chars {
        // Keep the extension, which tells people (and the zip writer) what the file is.
        let ext: String = match out.rfind('.') {
            Some(dot) if out.len() - dot <= 10 => out[dot..].to_string(),
            _ => String::new(),
        };
        let keep = max_chars.saturating_sub(ext.chars().count());
        out = out.chars().take(keep).collect::<String>() + &ext;
    }
    let trimmed = out.trim().trim_start_matches('.');
    if trimmed.is_empty() {
        "file".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/f.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("a/link")).unwrap();
        std::os::unix::fs::symlink(root.join("a/f.jpg"), root.join("a/inner")).unwrap();

        assert!(matches!(resolve(&root, "a/f.jpg"), Resolved::Inside { .. }));
        assert!(matches!(
            resolve(&root, "./a/f.jpg"),
            Resolved::Inside { .. }
        ));
        let absolute = root.join("a/f.jpg");
        assert!(matches!(
            resolve(&root, absolute.to_str().unwrap()),
            Resolved::Inside { .. }
        ));
        assert_eq!(resolve(&root, "../secret"), Resolved::Outside);
        assert_eq!(resolve(&root, "a/../../secret"), Resolved::Outside);
        assert_eq!(resolve(&root, "/etc/passwd"), Resolved::Outside);
        assert_eq!(resolve(&root, "a/link"), Resolved::Outside);
        assert!(matches!(resolve(&root, "a/inner"), Resolved::Inside { .. }));
        assert!(matches!(resolve(&root, "a/none"), Resolved::Missing { .. }));
        assert!(matches!(resolve(&root, "a"), Resolved::Missing { .. }));
    }

    #[test]
    fn sanitized_names_are_safe_and_readable() {
        assert_eq!(sanitize_component("报价单.xlsx", 80), "报价单.xlsx");
        assert_eq!(sanitize_component("../a%b\r\n.pdf", 80), "_a_b__.pdf");
        assert_eq!(sanitize_component("...", 80), "file");
        let long = "名".repeat(200) + ".pdf";
        let short = sanitize_component(&long, 80);
        assert_eq!(short.chars().count(), 80);
        assert!(short.ends_with(".pdf"));
    }
}
