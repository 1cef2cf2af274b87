//! `chatvault verify`: a bundle's structure and every hash; with `--source`, the source's too.

use std::path::PathBuf;

use super::CliError;
use crate::evidence;

pub const EXAMPLES: &str = "Examples:\n  chatvault verify /tmp/bundle\n  chatvault verify /tmp/bundle.zip --source /tmp/wx --json";

#[derive(clap::Args)]
pub struct Args {
    /// The bundle directory or zip.
    bundle: PathBuf,
    /// Also check that the source files still hash as recorded in evidence.json.
    #[arg(long)]
    source: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let report = evidence::verify(
        &args.bundle,
        &evidence::VerifyOptions {
            source_root: args.source,
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.ok() {
        crate::exit::OK
    } else {
        crate::exit::TAMPERED
    })
}
