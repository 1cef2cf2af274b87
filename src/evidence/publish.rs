//! Where a bundle may be written, and how it replaces an older one without ever
//! leaving less than one complete bundle with its matching sidecar.
//!
//! A bundle NAME (or NAME.zip) is built under names of its own beside the target, and
//! nothing else in the output's directory is touched:
//!
//! | name | what |
//! |---|---|
//! | `NAME.partial` / `NAME.zip.partial` | the bag or zip being built |
//! | `NAME.zip.partial.d` | a zip's staging area |
//! | `NAME.sha256.partial` | the new sidecar, written and synced before the bundle moves |
//! | `NAME.replaced-PID` | an old bundle moved aside (only where rename cannot swap) |
//! | `NAME.lock` | held for the whole run ([`crate::lockfile`]) |
//!
//! Publishing: the sidecar is written to `NAME.sha256.partial` and synced; the new bag
//! is swapped with the old one in one `renameat2(RENAME_EXCHANGE)` (or moved into place
//! with `RENAME_NOREPLACE` when there is none); then the sidecar is renamed over the old
//! one, and last the old bag (now under the partial name) is removed. A crash between
//! the swap and the sidecar's rename leaves the new bag with `NAME.sha256.partial`
//! beside it: the next run to that name sees that the partial sidecar matches the bag in
//! place and finishes the rename; in every other state the old bag and its sidecar are
//! untouched and the next run removes what the crash left.
//!
//! Only what is recognisably chatvault's is ever removed or replaced: a bag whose
//! `bag-info.txt` names chatvault as its agent, a zip holding one, our partial names
//! carrying our `bagit.txt`. Anything else under those names is refused, never deleted.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use rustix::fs::{renameat_with, RenameFlags, CWD};

use super::bag::{BAGIT_DECLARATION, BAGIT_TXT, BAG_INFO_TXT, TAGMANIFEST_TXT};
use super::{io_err, tee, EvidenceError};
use crate::failpoint;

/// The label and value prefix that marks a bag as written by chatvault.
const AGENT_PREFIX: &str = "Bag-Software-Agent: chatvault";
/// Tag files read to recognise a bag are small; a larger one is not ours.
const MAX_TAG_READ: u64 = 1 << 20;

/// The names a bundle is built and published under (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The output's directory, as given (for messages and the summary).
    pub parent: PathBuf,
    /// NAME, the bag's top-level directory.
    pub name: String,
    pub zip: bool,
}

impl Target {
    /// NAME or NAME.zip.
    pub fn final_name(&self) -> String {
        if self.zip {
            format!("{}.zip", self.name)
        } else {
            self.name.clone()
        }
    }

    pub fn final_path(&self) -> PathBuf {
        self.parent.join(self.final_name())
    }

    /// The bag (directory) or zip file being built.
    pub fn partial_path(&self) -> PathBuf {
        self.parent.join(format!("{}.partial", self.final_name()))
    }

    /// A zip's staging directory (the directory bag is built in place).
    pub fn staging_path(&self) -> Option<PathBuf> {
        self.zip
            .then(|| self.parent.join(format!("{}.zip.partial.d", self.name)))
    }

    pub fn sidecar_path(&self) -> PathBuf {
        self.parent.join(format!("{}.sha256", self.final_name()))
    }

    fn sidecar_partial_path(&self) -> PathBuf {
        self.parent
            .join(format!("{}.sha256.partial", self.final_name()))
    }

    fn replaced_prefix(&self) -> String {
        format!("{}.replaced-", self.final_name())
    }

    /// Every path a run may create, replace or remove.
    fn touched_paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![
            self.final_path(),
            self.partial_path(),
            self.sidecar_path(),
            self.sidecar_partial_path(),
            crate::lockfile::lock_path(&self.final_path()),
            self.parent
                .join(format!("{}{}", self.replaced_prefix(), std::process::id())),
        ];
        paths.extend(self.staging_path());
        paths
    }

    /// Refuses an output that is, lies inside, or contains one of the `protected` paths
    /// (the source being exported), and an output directory that does not exist.
    pub fn check_location(&self, protected: &[PathBuf]) -> Result<(), EvidenceError> {
        let parent = match fs::canonicalize(&self.parent) {
            Ok(p) if p.is_dir() => p,
            Ok(_) | Err(_) => {
                return Err(EvidenceError::OutputParentMissing(self.parent.clone()));
            }
        };
        for guarded in protected {
            let guarded_real = fs::canonicalize(guarded).unwrap_or_else(|_| guarded.clone());
            for touched in self.touched_paths() {
                let Some(file_name) = touched.file_name() else {
                    continue;
                };
                let real = parent.join(file_name);
                let relation = if real == guarded_real {
                    "is"
                } else if real.starts_with(&guarded_real) {
                    "lies inside"
                } else if guarded_real.starts_with(&real) {
                    "contains"
                } else {
                    continue;
                };
                return Err(EvidenceError::OutputOverlapsSource {
                    out: self.final_path(),
                    protected: guarded.clone(),
                    relation,
                });
            }
        }
        Ok(())
    }

    /// Finishes or rolls back what an interrupted run left, and removes its leftovers.
    /// Refuses (and touches nothing more) when one of our names holds something else.
    pub fn recover(&self) -> Result<(), EvidenceError> {
        let final_path = self.final_path();
        let sidecar_partial = self.sidecar_partial_path();
        if exists(&sidecar_partial) {
            let Some((digest, _)) = read_sidecar(&sidecar_partial)? else {
                return Err(self.not_ours(
                    &sidecar_partial,
                    "it is not a chatvault sidecar (one sha256sum line)",
                ));
            };
            let matches = self.bundle_digest(&final_path)? == Some(digest);
            if matches {
                // Crashed after the swap, before the sidecar's rename: finish it.
                fs::rename(&sidecar_partial, self.sidecar_path())
                    .map_err(io_err("rename into place", &sidecar_partial))?;
                sync_dir(&self.parent)?;
            } else {
                remove_file(&sidecar_partial)?;
            }
        }
        let mut replaced = self.replaced_leftovers()?;
        replaced.sort();
        for old in &replaced {
            self.require_ours(old)?;
        }
        if !exists(&final_path) && !replaced.is_empty() {
            // Crashed between moving the old bundle aside and the new one in: the old
            // one's sidecar was not touched yet, so the bundle to put back is the one it
            // names. With no sidecar to tell, only a single leftover can be put back.
            let recorded = read_sidecar(&self.sidecar_path())?.map(|(digest, _)| digest);
            let mut chosen = None;
            for (index, old) in replaced.iter().enumerate() {
                if recorded.is_some() && self.bundle_digest(old)? == recorded {
                    chosen = Some(index);
                }
            }
            if chosen.is_none() && recorded.is_none() && replaced.len() == 1 {
                chosen = Some(0);
            }
            let Some(index) = chosen else {
                return Err(self.not_ours(
                    &replaced[0],
                    "several bundles were moved aside by interrupted runs and the sidecar names none of them; choose one and rename it to the bundle's name",
                ));
            };
            let old = replaced.remove(index);
            fs::rename(&old, &final_path).map_err(io_err("restore", &old))?;
            sync_dir(&self.parent)?;
        }
        for old in &replaced {
            remove_tree(old)?;
        }
        let partial = self.partial_path();
        if exists(&partial) {
            self.require_partial_ours(&partial)?;
            remove_tree(&partial)?;
        }
        if let Some(staging) = self.staging_path() {
            if exists(&staging) {
                if !is_marked_dir(&staging) {
                    return Err(self.not_ours(&staging, "it does not hold chatvault's bagit.txt"));
                }
                remove_tree(&staging)?;
            }
        }
        Ok(())
    }

    /// With `force`, what is at the final name must be a chatvault bundle of this kind;
    /// without it, nothing may be there. A sidecar name holding something other than a
    /// sidecar line is never overwritten.
    pub fn check_existing(&self, force: bool) -> Result<(), EvidenceError> {
        let final_path = self.final_path();
        if exists(&final_path) {
            if !force {
                return Err(EvidenceError::ExistingOutput(final_path));
            }
            self.require_ours(&final_path)?;
        }
        let sidecar = self.sidecar_path();
        if exists(&sidecar) && read_sidecar(&sidecar)?.is_none() {
            return Err(self.not_ours(
                &sidecar,
                "it is not a chatvault sidecar (one sha256sum line)",
            ));
        }
        Ok(())
    }

    /// Moves the finished bag from its partial name to the final name, with the sidecar
    /// (see the module documentation for the order and what a crash leaves).
    pub fn publish(&self, sidecar_line: &str) -> Result<(), EvidenceError> {
        let partial = self.partial_path();
        let final_path = self.final_path();
        let sidecar_partial = self.sidecar_partial_path();
        write_synced(&sidecar_partial, sidecar_line.as_bytes())?;
        sync_dir(&self.parent)?;
        failpoint::hit("export.publish.sidecar_written");
        let old = if exists(&final_path) {
            Some(self.swap_in(&partial, &final_path)?)
        } else {
            move_in(&partial, &final_path)?;
            None
        };
        sync_dir(&self.parent)?;
        failpoint::hit("export.publish.bundle_in_place");
        fs::rename(&sidecar_partial, self.sidecar_path())
            .map_err(io_err("rename into place", &sidecar_partial))?;
        sync_dir(&self.parent)?;
        failpoint::hit("export.publish.sidecar_in_place");
        if let Some(old) = old {
            // The new bundle is complete and in place; an old one that cannot be removed
            // now is recognisably ours and removed by the next run. What was swapped out
            // is checked again: something may have replaced our bundle since the start.
            if self.require_partial_ours(&old).is_ok() {
                let _ = remove_tree(&old);
            }
            let _ = sync_dir(&self.parent);
            failpoint::hit("export.publish.old_removed");
        }
        Ok(())
    }

    /// Swaps `partial` and `final_path` atomically; returns where the old bundle is now.
    /// Where the filesystem cannot swap, the old one is moved aside first.
    fn swap_in(&self, partial: &Path, final_path: &Path) -> Result<PathBuf, EvidenceError> {
        let swapped = if failpoint::flag("no_rename_exchange") {
            Err(rustix::io::Errno::INVAL)
        } else {
            renameat_with(CWD, partial, CWD, final_path, RenameFlags::EXCHANGE)
        };
        match swapped {
            Ok(()) => Ok(partial.to_path_buf()),
            Err(e) if swap_unsupported(e) => {
                let aside =
                    self.parent
                        .join(format!("{}{}", self.replaced_prefix(), std::process::id()));
                fs::rename(final_path, &aside).map_err(io_err("move aside", final_path))?;
                sync_dir(&self.parent)?;
                failpoint::hit("export.publish.old_moved_aside");
                if let Err(e) = fs::rename(partial, final_path) {
                    // Put the old bundle back rather than leave nothing; if even that
                    // fails, say where it is (the next run puts it back too).
                    if fs::rename(&aside, final_path).is_err() {
                        let action = "rename into place (the old bundle waits as NAME.replaced-PID; the next run puts it back)";
                        return Err(io_err(action, partial)(e));
                    }
                    return Err(io_err("rename into place", partial)(e));
                }
                Ok(aside)
            }
            Err(e) => Err(io_err("swap into place", partial)(e.into())),
        }
    }

    /// SHA-256 that the sidecar records for the bundle at `path`: of its
    /// tagmanifest (directory) or of the whole zip; `None` when there is none to hash.
    fn bundle_digest(&self, path: &Path) -> Result<Option<String>, EvidenceError> {
        let hashed = if self.zip {
            path.to_path_buf()
        } else {
            path.join(TAGMANIFEST_TXT)
        };
        match hashed.symlink_metadata() {
            Ok(meta) if meta.is_file() => {}
            _ => return Ok(None),
        }
        let mut file = File::open(&hashed).map_err(io_err("open", &hashed))?;
        let (digest, _) = tee::with_buffer(|buf| tee::hash_reader(&mut file, buf, None))
            .map_err(io_err("read", &hashed))?;
        Ok(Some(digest))
    }

    fn replaced_leftovers(&self) -> Result<Vec<PathBuf>, EvidenceError> {
        let prefix = self.replaced_prefix();
        let entries = fs::read_dir(&self.parent).map_err(io_err("list", &self.parent))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.parent))?;
            let name = entry.file_name();
            if let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) {
                if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                    found.push(entry.path());
                }
            }
        }
        Ok(found)
    }

    /// A chatvault bundle of this target's kind (directory bag or zip).
    fn require_ours(&self, path: &Path) -> Result<(), EvidenceError> {
        let verdict = if self.zip {
            zip_bundle_verdict(path)
        } else {
            dir_bundle_verdict(path)
        };
        verdict.map_err(|reason| self.not_ours(path, reason))
    }

    fn require_partial_ours(&self, path: &Path) -> Result<(), EvidenceError> {
        // After a swap the partial name holds the old bundle, which is ours too.
        let ours = if self.zip {
            is_zip_partial(path, &self.name) || zip_bundle_verdict(path).is_ok()
        } else {
            is_marked_dir(path) || dir_bundle_verdict(path).is_ok()
        };
        if ours {
            Ok(())
        } else {
            Err(self.not_ours(path, "it is not a bundle chatvault was building"))
        }
    }

    fn not_ours(&self, path: &Path, reason: &'static str) -> EvidenceError {
        EvidenceError::NotOurs {
            path: path.to_path_buf(),
            reason,
        }
    }
}

/// Creates the directory a bundle is built in, marked with our bagit.txt so that a
/// leftover can be told from a stranger's directory.
pub(crate) fn create_marked_dir(path: &Path) -> Result<(), EvidenceError> {
    fs::create_dir(path).map_err(io_err("create", path))?;
    fs::create_dir(path.join("data")).map_err(io_err("create", path))?;
    let marker = path.join(BAGIT_TXT);
    fs::write(&marker, BAGIT_DECLARATION).map_err(io_err("write", &marker))
}

fn swap_unsupported(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    e == Errno::INVAL || e == Errno::NOSYS || e == Errno::NOTSUP || e == Errno::OPNOTSUPP
}

/// Renames without replacing anything that appeared meanwhile.
fn move_in(partial: &Path, final_path: &Path) -> Result<(), EvidenceError> {
    match renameat_with(CWD, partial, CWD, final_path, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::EXIST => {
            Err(EvidenceError::ExistingOutput(final_path.to_path_buf()))
        }
        Err(e) if swap_unsupported(e) => {
            if exists(final_path) {
                return Err(EvidenceError::ExistingOutput(final_path.to_path_buf()));
            }
            fs::rename(partial, final_path).map_err(io_err("rename into place", partial))
        }
        Err(e) => Err(io_err("rename into place", partial)(e.into())),
    }
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// Up to `MAX_TAG_READ` bytes of a regular file (never through a symlink).
fn read_small(path: &Path) -> Option<Vec<u8>> {
    let meta = path.symlink_metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_TAG_READ {
        return None;
    }
    fs::read(path).ok()
}

fn names_chatvault(bag_info: &[u8]) -> bool {
    String::from_utf8_lossy(bag_info)
        .lines()
        .any(|line| line.starts_with(AGENT_PREFIX))
}

fn dir_bundle_verdict(path: &Path) -> Result<(), &'static str> {
    let meta = path.symlink_metadata().map_err(|_| "it cannot be read")?;
    if !meta.is_dir() {
        return Err("it is not a directory bundle");
    }
    let declared = read_small(&path.join(BAGIT_TXT)).ok_or("it has no bagit.txt")?;
    if !declared.starts_with(b"BagIt-Version:") {
        return Err("its bagit.txt is not a BagIt declaration");
    }
    let info = read_small(&path.join(BAG_INFO_TXT)).ok_or("it has no bag-info.txt")?;
    if !names_chatvault(&info) {
        return Err("its bag-info.txt does not name chatvault as the bag's software agent");
    }
    Ok(())
}

fn zip_bundle_verdict(path: &Path) -> Result<(), &'static str> {
    let meta = path.symlink_metadata().map_err(|_| "it cannot be read")?;
    if !meta.is_file() {
        return Err("it is not a zip file");
    }
    let file = File::open(path).map_err(|_| "it cannot be read")?;
    let mut archive = zip::ZipArchive::new(file).map_err(|_| "it is not a zip file")?;
    let info_name = archive
        .file_names()
        .find(|n| {
            n.strip_suffix(BAG_INFO_TXT)
                .and_then(|dir| dir.strip_suffix('/'))
                .is_some_and(|dir| !dir.is_empty() && !dir.contains('/'))
        })
        .map(str::to_string)
        .ok_or("it holds no bag (no NAME/bag-info.txt)")?;
    let mut entry = archive
        .by_name(&info_name)
        .map_err(|_| "its bag-info.txt cannot be read")?;
    let mut info = Vec::new();
    (&mut entry)
        .take(MAX_TAG_READ)
        .read_to_end(&mut info)
        .map_err(|_| "its bag-info.txt cannot be read")?;
    if !names_chatvault(&info) {
        return Err("its bag-info.txt does not name chatvault as the bag's software agent");
    }
    Ok(())
}

/// A directory holding our bagit.txt (a bag being built, or a zip's staging area).
fn is_marked_dir(path: &Path) -> bool {
    path.symlink_metadata().is_ok_and(|m| m.is_dir())
        && read_small(&path.join(BAGIT_TXT)).is_some_and(|b| b == BAGIT_DECLARATION.as_bytes())
}

/// A zip being built: empty (killed before its first entry) or starting with the local
/// header of NAME/bagit.txt, which every chatvault zip writes first.
fn is_zip_partial(path: &Path, name: &str) -> bool {
    let Ok(meta) = path.symlink_metadata() else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    if meta.len() == 0 {
        return true;
    }
    let expected = format!("{name}/{BAGIT_TXT}");
    let mut head = vec![0u8; 30 + expected.len()];
    let read = File::open(path).and_then(|mut f| f.read_exact(&mut head));
    read.is_ok()
        && head.starts_with(b"PK\x03\x04")
        && usize::from(u16::from_le_bytes([head[26], head[27]])) == expected.len()
        && &head[30..] == expected.as_bytes()
}

/// The (digest, name) of a sidecar file: one `sha256sum` line; `None` when the file is
/// something else.
fn read_sidecar(path: &Path) -> Result<Option<(String, String)>, EvidenceError> {
    let Some(bytes) = path
        .symlink_metadata()
        .ok()
        .filter(|m| m.is_file() && m.len() <= 4096)
        .and_then(|_| fs::read(path).ok())
    else {
        return Ok(None);
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(None);
    };
    let Some(line) = text.strip_suffix('\n').filter(|l| !l.contains('\n')) else {
        return Ok(None);
    };
    // Only the form chatvault writes, `<64 hex>  name`: a user's own `sha256sum -b`,
    // `--tag` or escaped line under this name is not ours to replace.
    if line.starts_with('\\') || line.get(64..66) != Some("  ") {
        return Ok(None);
    }
    Ok(super::hashsum::parse_line(line).map(|(name, digest)| (digest, name)))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), EvidenceError> {
    crate::durable::write_synced(path, bytes).map_err(io_err("write", path))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), EvidenceError> {
    crate::durable::sync_dir(dir).map_err(io_err("sync", dir))
}

fn remove_file(path: &Path) -> Result<(), EvidenceError> {
    fs::remove_file(path).map_err(io_err("remove", path))
}

/// Removes a file or directory tree (never following a symlink).
pub(crate) fn remove_tree(path: &Path) -> Result<(), EvidenceError> {
    let meta = match path.symlink_metadata() {
        Ok(meta) => meta,
        Err(_) => return Ok(()),
    };
    let result = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    result.map_err(io_err("remove", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the line chatvault writes is recognised as its sidecar; a user's own checksum
    /// file under that name, in any other form, is not ours to replace.
    #[test]
    fn only_our_sidecar_form_is_ours() {
        let dir = tempfile::tempdir().unwrap();
        let digest = "ab".repeat(32);
        let path = dir.path().join("b.sha256");
        for (text, ours) in [
            (format!("{digest}  b\n"), true),
            (format!("{digest} *b\n"), false),
            (format!("SHA256 (b) = {digest}\n"), false),
            (format!("\\{digest}  b\\nc\n"), false),
            (format!("{digest}  b"), false),
            (format!("{digest}  b\n{digest}  c\n"), false),
        ] {
            std::fs::write(&path, &text).unwrap();
            let read = read_sidecar(&path).unwrap();
            assert_eq!(read.is_some(), ours, "{text:?}");
            if ours {
                assert_eq!(read.unwrap(), (digest.clone(), "b".to_string()));
            }
        }
    }
}
