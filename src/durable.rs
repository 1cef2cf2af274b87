//! Making writes durable: a file's bytes synced before it is renamed into place, and the
//! directory synced after, so a crash leaves the old name or the whole new file. The
//! writers that publish (bundles, sidecars, plans, journals) use these.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Creates (or truncates) `path`, writes `bytes` and syncs them to disk.
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Syncs directory `dir`, making the renames and removals in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
