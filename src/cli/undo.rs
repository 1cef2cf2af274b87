//! `chatvault undo`: moves quarantined files back, as a clean journal records them.

use std::path::PathBuf;

use super::CliError;

pub const EXAMPLES: &str = "Example:\n  chatvault undo /tmp/plan.json.journal";

#[derive(clap::Args)]
pub struct Args {
    /// The journal written by `chatvault clean --apply --quarantine`.
    journal: PathBuf,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let report = crate::retention::undo(&args.journal)?;
    for path in &report.restored {
        println!("restored  {path}");
    }
    for (path, why) in &report.skipped {
        println!("SKIPPED   {path}: {why}");
    }
    println!(
        "restored {} file(s), {} skipped, {} restored earlier, {} never moved by an interrupted clean",
        report.restored.len(),
        report.skipped.len(),
        report.already_restored,
        report.never_moved
    );
    Ok(if report.skipped.is_empty() {
        crate::exit::OK
    } else {
        crate::exit::CLEAN_SKIPPED
    })
}
