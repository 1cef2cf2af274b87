//! `chatvault hash`: SHA-256 of files and trees in sha256sum format, or `--check` a list.

use std::path::PathBuf;

use super::CliError;
use crate::evidence;

pub const EXAMPLES: &str = "Examples:\n  chatvault hash screenshots/ call.m4a > evidence.sha256\n  chatvault hash --check evidence.sha256";

#[derive(clap::Args)]
pub struct Args {
    /// Files or directories to hash.
    paths: Vec<PathBuf>,
    /// Check the hashes listed in a sha256sum file instead.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    check: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    if let Some(list) = args.check {
        let report = evidence::check_sha256sum(&list)?;
        print!("{}", report.render());
        return Ok(if report.all_ok() {
            crate::exit::OK
        } else {
            crate::exit::TAMPERED
        });
    }
    if args.paths.is_empty() {
        return Err(CliError::Usage(
            "give files or directories to hash, or --check FILE".into(),
        ));
    }
    let entries = evidence::hash_paths(&args.paths, None)?;
    print!("{}", evidence::format_sha256sum(&entries));
    Ok(crate::exit::OK)
}
