//! `chatvault inspect`: a source's groups, with their members, messages, dates and media.

use std::path::PathBuf;

use super::CliError;

pub const EXAMPLES: &str =
    "Example:\n  chatvault inspect /tmp/wx\n  chatvault inspect /tmp/wx --json";

#[derive(clap::Args)]
pub struct Args {
    /// The account directory.
    source: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Also list one-to-one chats.
    #[arg(long)]
    include_private: bool,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let report = crate::inspect::inspect(&args.source, args.include_private)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(crate::exit::OK)
}
