//! `chatvault policy`: the retention policy, as a table, JSON or a TOML starting point.

use std::path::PathBuf;

use super::CliError;

pub const EXAMPLES: &str = "Examples:\n  chatvault policy\n  chatvault policy --json\n  chatvault policy --dump > my-policy.toml   # edit, then: chatvault plan … --policy my-policy.toml";

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    json: bool,
    /// Print the policy as TOML, a starting point for --policy files.
    #[arg(long, conflicts_with = "json")]
    dump: bool,
    /// Layer this TOML policy over the built-in one.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let policy = super::load_policy(args.policy.as_deref())?;
    if args.dump {
        print!("{}", policy.to_toml()?);
    } else if args.json {
        println!("{}", policy.to_json()?);
    } else {
        print!("{}", policy.to_table());
    }
    Ok(crate::exit::OK)
}
