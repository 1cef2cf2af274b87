//! `chatvault undo`: moves quarantined files back, as a clean journal records them.

use std::path::PathBuf;

use super::CliError;
use crate::retention::{RetentionError, UndoEvent};
use crate::spill::{Fields, RecordBuf, SpillLog};

pub const EXAMPLES: &str = "Example:\n  chatvault undo /tmp/plan.json.journal";

#[derive(clap::Args)]
pub struct Args {
    /// The journal written by `chatvault clean --apply --quarantine`.
    journal: PathBuf,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    // Restored files are printed as they are restored; skipped ones, listed after them,
    // wait on disk beside the journal (1,000,000 paths would be 100s of MB in memory).
    let mut skipped = SpillLog::new(&crate::retention::spill_dir_for(&args.journal));
    let mut spill_error = None;
    let report = crate::retention::undo_with(&args.journal, false, &mut |event| match event {
        UndoEvent::Restored { path } => println!("restored  {path}"),
        UndoEvent::Skipped { path, why } => {
            if spill_error.is_none() {
                let mut record = RecordBuf::new();
                record.str(path).str(why);
                spill_error = skipped.push(record.as_slice()).err();
            }
        }
    })?;
    let spill = |e: std::io::Error| {
        CliError::from(RetentionError::io(
            "keep the list of skipped files beside journal",
            &args.journal,
            e,
        ))
    };
    if let Some(e) = spill_error {
        return Err(spill(e));
    }
    for record in skipped.iter().map_err(spill)? {
        let record = record.map_err(spill)?;
        let mut fields = Fields::new(&record);
        let path = fields.str().map_err(spill)?;
        let why = fields.str().map_err(spill)?;
        println!("SKIPPED   {path}: {why}");
    }
    println!(
        "restored {} file(s), {} skipped, {} restored earlier, {} never moved by an interrupted clean",
        report.restored_count,
        report.skipped_count,
        report.already_restored,
        report.never_moved
    );
    Ok(if report.skipped_count == 0 {
        crate::exit::OK
    } else {
        crate::exit::CLEAN_SKIPPED
    })
}
