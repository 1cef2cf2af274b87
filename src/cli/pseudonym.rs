//! `chatvault pseudonym`: members' pseudonyms under a key, without a stored mapping.

use std::path::PathBuf;

use super::CliError;
use crate::anonymize;
use crate::platform::{PlatformParser, PlatformRef};

pub const EXAMPLES: &str =
    "Example:\n  chatvault pseudonym --key-file case.key --platform wechat wxid_abc123 wxid_def456";

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "KEYFILE")]
    key_file: PathBuf,
    #[arg(long, value_parser = PlatformParser)]
    platform: PlatformRef,
    /// Member ids as the platform stores them.
    #[arg(required = true)]
    ids: Vec<String>,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let key = anonymize::Key::load_or_create(&args.key_file)?;
    for id in args.ids {
        println!(
            "{}\t{id}",
            anonymize::pseudonym(&key, args.platform.name(), &id)
        );
    }
    Ok(crate::exit::OK)
}
