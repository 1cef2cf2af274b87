//! Acting on files through directory handles, never through path strings.
//!
//! `clean` and `undo` open the root once, then walk down to each file's parent with
//! `openat(O_DIRECTORY | O_NOFOLLOW)` one component at a time, re-check the file with
//! `fstatat(AT_SYMLINK_NOFOLLOW)` on that same handle, and act on the final component with
//! `unlinkat` / `renameat`. A directory swapped for a symlink at any moment is either
//! refused (the open fails with `ELOOP`) or was already opened as the real directory, so
//! nothing outside the root can be named.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RenameFlags, Stat};
use rustix::io::Errno;

use super::plan::{unix_time as unix_stamp, FileStamp};
use crate::failpoint;

/// Why an entry cannot be acted on.
#[derive(Debug)]
pub(crate) enum Refusal {
    Missing,
    Changed(String),
}

pub(crate) fn io_error(errno: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno.raw_os_error())
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens a directory by path; the last component must not be a symlink.
pub(crate) fn open_dir_path(path: &Path) -> std::io::Result<OwnedFd> {
    rfs::open(path, DIR_FLAGS, Mode::empty()).map_err(io_error)
}

/// Opens a directory by path, following symlinks (for a quarantine directory given by the
/// user, whose resolved place is what gets checked).
pub(crate) fn open_dir_path_following(path: &Path) -> std::io::Result<OwnedFd> {
    rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_error)
}

pub(crate) fn stat_fd(fd: impl AsFd) -> std::io::Result<Stat> {
    rfs::fstat(fd).map_err(io_error)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn stat_at(dir: impl AsFd, name: &OsStr) -> Result<Stat, Errno> {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
}

pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

pub(crate) fn dev_ino(st: &Stat) -> (u64, u64) {
    #[allow(clippy::unnecessary_cast)]
    (st.st_dev as u64, st.st_ino as u64)
}

/// The identity of what a `stat` describes, as the plan records it.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn stamp_of(st: &Stat) -> FileStamp {
    let (dev, ino) = dev_ino(st);
    FileStamp {
        size: st.st_size as u64,
        mtime: unix_stamp(st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime: unix_stamp(st.st_ctime as i64, st.st_ctime_nsec as i64),
        dev,
        ino,
    }
}

/// A path's components, refusing absolute paths, `..`, `.` and empty names.
pub(crate) fn relative_components(rel: &str) -> Result<Vec<&OsStr>, String> {
    let mut parts = Vec::new();
    if rel.contains('\0') {
        return Err(format!("path {rel:?} contains a NUL byte"));
    }
    for component in Path::new(rel).components() {
        match component {
            Component::Normal(part) => parts.push(part),
            _ => {
                return Err(format!(
                    "path {rel:?} is not a plain relative path (absolute, `..` or `.`)"
                ))
            }
        }
    }
    if parts.is_empty() {
        return Err("empty path".to_string());
    }
    Ok(parts)
}

/// A new handle of the directory `dir` is a handle of.
pub(crate) fn reopen(dir: impl AsFd) -> Result<OwnedFd, Errno> {
    rfs::openat(dir, ".", DIR_FLAGS, Mode::empty())
}

/// Walks from `base` down `parts` (each a directory, never a symlink), returning a handle
/// of the last one; with `create`, missing directories are made under the handle above.
/// `shown` names the walk's start in messages (`""` for the root itself).
pub(crate) fn walk_dirs(
    base: impl AsFd,
    parts: &[&OsStr],
    create: bool,
) -> Result<OwnedFd, Refusal> {
    let mut current = reopen(base.as_fd())
        .map_err(|e| Refusal::Changed(format!("cannot reopen the directory: {e}")))?;
    let mut shown = std::path::PathBuf::new();
    for part in parts {
        shown.push(part);
        let opened = match rfs::openat(&current, *part, DIR_FLAGS, Mode::empty()) {
            Err(Errno::NOENT) if create => {
                match rfs::mkdirat(&current, *part, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(Refusal::Changed(format!(
                            "cannot create directory {}: {e}",
                            shown.display()
                        )))
                    }
                }
                rfs::openat(&current, *part, DIR_FLAGS, Mode::empty())
            }
            other => other,
        };
        current = match opened {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(Refusal::Missing),
            Err(errno) => {
                // What is there now, to say why.
                let why = match stat_at(&current, part) {
                    Ok(st) if file_type(&st) == FileType::Symlink => {
                        format!("directory {} was replaced by a symlink", shown.display())
                    }
                    Ok(st) if file_type(&st) != FileType::Directory => {
                        format!("{} is no longer a directory", shown.display())
                    }
                    _ => format!("cannot open directory {}: {errno}", shown.display()),
                };
                return Err(Refusal::Changed(why));
            }
        };
    }
    Ok(current)
}

/// Opens a regular file under `dir` for reading, never following a symlink and never
/// blocking on a FIFO swapped in.
pub(crate) fn open_file_at(dir: impl AsFd, name: &OsStr) -> Result<File, Errno> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// SHA-256 and length of an open file from its start, and its first 16 bytes.
pub(crate) fn hash_open(file: &mut File) -> std::io::Result<(String, u64, [u8; 16])> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = crate::digest::HeadOf::<_, 16>::new(&mut *file);
    let (digest, total) = crate::digest::sha256_reader(&mut reader)?;
    Ok((digest, total, reader.head()))
}

/// The first 16 bytes of an open file (fewer are zero-filled).
pub(crate) fn head_of(file: &mut File) -> std::io::Result<[u8; 16]> {
    let mut head = [0u8; 16];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(head)
}

pub(crate) fn sync_dir(dir: impl AsFd) -> std::io::Result<()> {
    rfs::fsync(dir).map_err(io_error)
}

/// Renames `from_dir/name` to `to_dir/name` without replacing anything there.
/// `Err(EXDEV)` when the two are on different devices.
pub(crate) fn rename_noreplace(
    from_dir: impl AsFd,
    to_dir: impl AsFd,
    name: &OsStr,
) -> Result<(), Errno> {
    match rfs::renameat_with(
        from_dir.as_fd(),
        name,
        to_dir.as_fd(),
        name,
        RenameFlags::NOREPLACE,
    ) {
        // A file system without RENAME_NOREPLACE: a hard link never replaces either.
        Err(Errno::INVAL) | Err(Errno::NOSYS) => {
            rfs::linkat(
                from_dir.as_fd(),
                name,
                to_dir.as_fd(),
                name,
                AtFlags::empty(),
            )?;
            rfs::unlinkat(from_dir, name, AtFlags::empty())
        }
        other => other,
    }
}

/// Moves `from_dir/name` to `to_dir/name` across devices: copies through the handles into
/// a temporary name beside the destination, sets the mtime and mode, syncs, verifies the
/// copy against `sha256` and `stamp.size`, renames it into place (never replacing), syncs
/// the directory, re-checks that the original is still the file planned, and only then
/// unlinks it. `point` prefixes the failpoint names (`clean` or `undo`).
pub(crate) fn copy_across(
    from_dir: impl AsFd,
    to_dir: impl AsFd,
    name: &OsStr,
    sha256: &str,
    stamp: FileStamp,
    point: &'static str,
) -> Result<(), String> {
    let (fp_synced, fp_placed) = match point {
        "undo" => ("undo.copy.synced", "undo.copy.renamed"),
        _ => ("clean.copy.synced", "clean.copy.renamed"),
    };
    let mut source = open_file_at(from_dir.as_fd(), name)
        .map_err(|e| format!("cannot open the original to copy it: {e}"))?;
    let source_stat = stat_fd(&source).map_err(|e| format!("cannot inspect the original: {e}"))?;
    let opened = stamp_of(&source_stat);
    if (opened.dev, opened.ino, opened.size) != (stamp.dev, stamp.ino, stamp.size) {
        return Err("the original changed before it could be copied".to_string());
    }
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".chatvault-partial");
    // A partial copy left by an interrupted run is ours to replace, if it is a plain file.
    if let Ok(st) = stat_at(to_dir.as_fd(), &temp_name) {
        if file_type(&st) == FileType::RegularFile {
            let _ = rfs::unlinkat(to_dir.as_fd(), &temp_name, AtFlags::empty());
        }
    }
    let temp_fd = rfs::openat(
        to_dir.as_fd(),
        &temp_name,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| format!("cannot create a temporary copy: {e}"))?;
    let mut temp = File::from(temp_fd);
    let remove_temp = |to_dir: &dyn AsFd| {
        let _ = rfs::unlinkat(to_dir.as_fd(), &temp_name, AtFlags::empty());
    };
    let copied = (|| -> std::io::Result<()> {
        source.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut source, &mut temp)?;
        temp.flush()?;
        let times = rfs::Timestamps {
            last_access: rfs::Timespec {
                tv_sec: source_stat.st_atime as _,
                tv_nsec: source_stat.st_atime_nsec as _,
            },
            last_modification: rfs::Timespec {
                tv_sec: source_stat.st_mtime as _,
                tv_nsec: source_stat.st_mtime_nsec as _,
            },
        };
        rfs::futimens(&temp, &times).map_err(io_error)?;
        rfs::fchmod(&temp, Mode::from_raw_mode(source_stat.st_mode & 0o7777)).map_err(io_error)?;
        temp.sync_all()
    })();
    if let Err(e) = copied {
        remove_temp(&to_dir);
        return Err(format!("cannot copy: {e}"));
    }
    failpoint::hit(fp_synced);
    match hash_open(&mut temp) {
        Ok((copy_sha, copy_size, _)) if copy_sha == sha256 && copy_size == stamp.size => {}
        Ok(_) => {
            remove_temp(&to_dir);
            return Err("the copy does not match the original; original left in place".into());
        }
        Err(e) => {
            remove_temp(&to_dir);
            return Err(format!("cannot verify the copy: {e}"));
        }
    }
    if let Err(e) = rfs::renameat_with(
        to_dir.as_fd(),
        &temp_name,
        to_dir.as_fd(),
        name,
        RenameFlags::NOREPLACE,
    ) {
        remove_temp(&to_dir);
        return Err(format!("cannot put the copy in place: {e}"));
    }
    let _ = sync_dir(to_dir.as_fd());
    failpoint::hit(fp_placed);
    // The original must still be the file that was copied.
    match stat_at(from_dir.as_fd(), name) {
        Ok(st) if stamp_of(&st) == opened => {}
        _ => {
            return Err(
                "copied, but the original changed meanwhile; both left in place".to_string(),
            )
        }
    }
    rfs::unlinkat(from_dir.as_fd(), name, AtFlags::empty())
        .map_err(|e| format!("copied, but cannot remove the original: {e}"))?;
    let _ = sync_dir(from_dir);
    Ok(())
}

/// Whether the directory `dir` is `ancestor` or lies under it, found by walking up with
/// `..` from the handle (so symlinks and `..` in the path it was opened by do not matter).
pub(crate) fn is_within(dir: impl AsFd, ancestor: (u64, u64)) -> std::io::Result<bool> {
    let mut current = reopen(dir).map_err(io_error)?;
    for _ in 0..4096 {
        let here = dev_ino(&stat_fd(&current)?);
        if here == ancestor {
            return Ok(true);
        }
        let parent = rfs::openat(&current, "..", DIR_FLAGS, Mode::empty()).map_err(io_error)?;
        if dev_ino(&stat_fd(&parent)?) == here {
            return Ok(false);
        }
        current = parent;
    }
    Err(std::io::Error::other("directory nesting too deep"))
}

/// SQLite's database header, and the two magic numbers of a write-ahead log.
pub(crate) fn looks_like_database(head: &[u8; 16]) -> bool {
    head == crate::source::sqlite::SQLITE_MAGIC
        || head[..4] == [0x37, 0x7f, 0x06, 0x82]
        || head[..4] == [0x37, 0x7f, 0x06, 0x83]
}
