//! `chatvault keygen`: a new pseudonym key.

use std::path::PathBuf;

use super::CliError;

pub const EXAMPLES: &str = "Example:\n  chatvault keygen ~/.chatvault/case-001.key";

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the key.
    keyfile: PathBuf,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let key = crate::anonymize::Key::generate(&args.keyfile)?;
    println!(
        "wrote {} (fingerprint {}); keep it safe: the same key gives the same pseudonyms",
        args.keyfile.display(),
        key.fingerprint()
    );
    Ok(crate::exit::OK)
}
