//! Opening chat databases without changing them.
//!
//! A database with a `-wal` (or a hot `-journal`) cannot be read through a read-only
//! connection without SQLite writing beside it, so such a database is copied, with its
//! journal, into a private temporary directory and read there.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{wal, SourceError};
use crate::records::Warning;

/// The first 16 bytes of every SQLite database file.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// True when the file starts with the SQLite header.
pub fn is_sqlite(path: &Path) -> Result<bool, SourceError> {
    let mut header = [0u8; 16];
    let mut file = File::open(path).map_err(|e| SourceError::io(path, e))?;
    match file.read_exact(&mut header) {
        Ok(()) => Ok(&header == SQLITE_MAGIC),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(SourceError::io(path, e)),
    }
}

/// Checks the header's own size against the file, so a truncated copy fails up front
/// instead of half-way through an export.
fn check_header(path: &Path, has_wal: bool) -> Result<bool, SourceError> {
    let mut header = [0u8; 100];
    let mut file = File::open(path).map_err(|e| SourceError::io(path, e))?;
    let actual = file.metadata().map_err(|e| SourceError::io(path, e))?.len();
    if file.read_exact(&mut header).is_err() || &header[..16] != SQLITE_MAGIC {
        return Err(SourceError::NotSqlite {
            path: path.to_path_buf(),
        });
    }
    let raw_page = u16::from_be_bytes([header[16], header[17]]) as u64;
    let page_size = if raw_page == 1 { 65536 } else { raw_page };
    let page_count = u32::from_be_bytes([header[28], header[29], header[30], header[31]]) as u64;
    let change_counter = &header[24..28];
    let version_valid_for = &header[92..96];
    // The in-header size is only trustworthy when it was written by the same change.
    if !has_wal && change_counter == version_valid_for && page_count > 0 {
        let expected = page_count * page_size;
        if actual < expected {
            return Err(SourceError::Truncated {
                path: path.to_path_buf(),
                expected,
                actual,
            });
        }
    }
    // Bytes 18/19 are 2 in WAL mode.
    Ok(header[18] == 2 || header[19] == 2)
}

/// A database opened for reading, and what was read to open it.
pub struct Database {
    /// The path connections should open: the source itself or the private copy.
    pub open_path: PathBuf,
    /// The source files that make up the database (db, -wal, -shm, -journal present).
    pub files: Vec<PathBuf>,
    /// The source database, named in errors (never the private copy's temporary path).
    pub source_path: PathBuf,
    /// What SQLite will not replay of the `-wal`, when there is one and it is damaged
    /// (read from the source's log, once, before the copy is used).
    pub wal_problem: Option<WalProblem>,
    /// Keeps the private copy alive as long as the database is in use.
    _private_copy: Option<tempfile::TempDir>,
}

/// A `-wal` of which SQLite will replay less than the file holds.
#[derive(Debug, Clone)]
pub struct WalProblem {
    pub path: PathBuf,
    pub frames_present: u64,
    pub frames_ignored: u64,
    pub problem: String,
}

impl WalProblem {
    /// The warning, naming the log relative to the source root.
    pub fn warning(&self, root: &Path) -> Warning {
        let rel = self.path.strip_prefix(root).unwrap_or(&self.path);
        Warning {
            location: rel.to_string_lossy().into_owned(),
            message: format!(
                "damaged write-ahead log: {} of its {} frames ignored ({}); the export holds \
                 only what SQLite can read, so copy the database and its -wal again from the \
                 device if you can",
                self.frames_ignored, self.frames_present, self.problem
            ),
        }
    }
}

impl Database {
    /// The warning about a damaged `-wal`, if any (see [`WalProblem::warning`]).
    pub fn wal_warning(&self, root: &Path) -> Option<Warning> {
        self.wal_problem.as_ref().map(|w| w.warning(root))
    }

    pub fn open(path: &Path) -> Result<Database, SourceError> {
        let companion = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        let wal = companion("-wal");
        let shm = companion("-shm");
        let journal = companion("-journal");
        let has_wal = wal.exists();
        let wal_mode = check_header(path, has_wal)?;
        let mut files = vec![path.to_path_buf()];
        for extra in [&wal, &shm, &journal] {
            if extra.exists() {
                files.push(extra.clone());
            }
        }
        if !(has_wal || wal_mode || journal.exists()) {
            return Ok(Database {
                open_path: path.to_path_buf(),
                files,
                source_path: path.to_path_buf(),
                wal_problem: None,
                _private_copy: None,
            });
        }
        let wal_problem = if has_wal {
            let scan = wal::scan(&wal).map_err(|e| SourceError::io(&wal, e))?;
            scan.problem.map(|problem| WalProblem {
                path: wal.clone(),
                frames_present: scan.frames_present,
                frames_ignored: scan.frames_ignored,
                problem,
            })
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("chatvault-db-")
            .tempdir()
            .map_err(|e| SourceError::io(Path::new("temporary directory"), e))?;
        let name = path.file_name().unwrap_or_else(|| "db".as_ref());
        let copy = dir.path().join(name);
        std::fs::copy(path, &copy).map_err(|e| SourceError::io(path, e))?;
        for (from, suffix) in [(&wal, "-wal"), (&journal, "-journal")] {
            if from.exists() {
                let mut to = copy.as_os_str().to_owned();
                to.push(suffix);
                std::fs::copy(from, PathBuf::from(to)).map_err(|e| SourceError::io(from, e))?;
            }
        }
        Ok(Database {
            open_path: copy,
            files,
            source_path: path.to_path_buf(),
            wal_problem,
            _private_copy: Some(dir),
        })
    }

    /// A new connection; each stream thread opens its own.
    pub fn connect(&self) -> Result<Connection, SourceError> {
        let private = self._private_copy.is_some();
        // The private copy may need to replay its WAL, which takes a writable connection;
        // the source itself is only ever opened read-only.
        let flags = if private {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&self.open_path, flags)
            .map_err(|e| map_sqlite_error(&self.source_path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(|e| map_sqlite_error(&self.source_path, e))?;
        if !private {
            let _ = conn.pragma_update(None, "query_only", true);
        }
        // Fail now on a file that is not a database, rather than at the first query.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| map_sqlite_error(&self.source_path, e))?;
        Ok(conn)
    }

    /// Names of all tables.
    pub fn tables(conn: &Connection, path: &Path) -> Result<Vec<String>, SourceError> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(|e| map_sqlite_error(path, e))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| map_sqlite_error(path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| map_sqlite_error(path, e))?;
        Ok(names)
    }

    /// Column names of a table, as declared.
    pub fn columns(
        conn: &Connection,
        path: &Path,
        table: &str,
    ) -> Result<Vec<String>, SourceError> {
        let mut stmt = conn
            .prepare(&format!(
                "PRAGMA table_info(\"{}\")",
                table.replace('"', "\"\"")
            ))
            .map_err(|e| map_sqlite_error(path, e))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(1))
            .map_err(|e| map_sqlite_error(path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| map_sqlite_error(path, e))?;
        Ok(names)
    }
}

/// Turns SQLite's error codes into errors a user can act on.
pub fn map_sqlite_error(path: &Path, error: rusqlite::Error) -> SourceError {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(ref failure, _) = error {
        match failure.code {
            ErrorCode::NotADatabase => {
                return SourceError::NotSqlite {
                    path: path.to_path_buf(),
                }
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return SourceError::Locked {
                    path: path.to_path_buf(),
                }
            }
            _ => {}
        }
    }
    SourceError::Corrupt {
        path: path.to_path_buf(),
        detail: error.to_string(),
    }
}

/// An integer stored as INTEGER, REAL or a numeric string, as apps do not always store what
/// the schema declares.
pub fn lenient_int(value: ValueRef) -> Option<i64> {
    match value {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Text stored as TEXT or BLOB (invalid UTF-8 replaced, and flagged through `lossy`), or a
/// number written in decimal (ids stored as numbers).
pub fn lenient_text(value: ValueRef, lossy: &mut bool) -> Option<String> {
    match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => match std::str::from_utf8(t) {
            Ok(s) => Some(s.to_string()),
            Err(_) => {
                *lossy = true;
                Some(String::from_utf8_lossy(t).into_owned())
            }
        },
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Null => None,
    }
}

/// [`lenient_text`] where a replaced byte does not matter (names, ids in side tables).
pub fn lenient_text_lossy(value: ValueRef) -> Option<String> {
    lenient_text(value, &mut false)
}
