//! `chatvault demo`: a simulated account, exported, with what to try next.

use std::path::PathBuf;

use super::CliError;

pub const EXAMPLES: &str = "Example:\n  chatvault demo --out /tmp/chatvault-demo";

#[derive(clap::Args)]
pub struct Args {
    /// Where to put the simulated account and its export (a new directory).
    #[arg(long, default_value = "chatvault-demo")]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let report = crate::demo::run(&args.out)?;
    print!("{}", report.render());
    Ok(crate::exit::OK)
}
