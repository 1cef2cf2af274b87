//! `chatvault plan`: per cached file, whether and when it may be deleted, and why.

use std::path::PathBuf;

use super::CliError;
use crate::cleanup::{self, PlanOptions};
use crate::{retention, timefmt};

pub const EXAMPLES: &str = "Example:\n  chatvault plan /tmp/wx --out /tmp/plan.json --dissolved-at 123@chatroom=2025-06-01T00:00:00Z --group-type 123@chatroom=education --hash";

#[derive(clap::Args)]
pub struct Args {
    /// The account directory.
    source: PathBuf,
    /// Where to write the plan (PLAN.json; PLAN.csv and PLAN.json.sha256 beside it).
    #[arg(long)]
    out: PathBuf,
    /// Reference time; default now.
    #[arg(long, value_name = "T")]
    now: Option<String>,
    /// A group's dissolution time, GROUP=TIME (repeatable; split at the last `=`).
    #[arg(long = "dissolved-at", value_name = "GROUP=T", value_parser = cleanup::parse_dissolved_at)]
    dissolved_at: Vec<(String, chrono::DateTime<chrono::Utc>)>,
    /// A group's type, GROUP=education|ecommerce|commercial|family|work|other (repeatable).
    #[arg(long = "group-type", value_name = "GROUP=TYPE", value_parser = cleanup::parse_group_type)]
    group_types: Vec<(String, retention::GroupType)>,
    /// Keep every file whose SHA-256 is not in this (verified) evidence bundle.
    #[arg(long, value_name = "BUNDLE")]
    require_bundle: Option<PathBuf>,
    /// Record each file's SHA-256 (clean then re-checks content, not only metadata).
    #[arg(long)]
    hash: bool,
    /// Layer this TOML policy over the built-in one.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let now = match &args.now {
        Some(t) => timefmt::parse_time(t)?,
        None => chrono::Utc::now(),
    };
    let opts = PlanOptions {
        source: args.source,
        now,
        dissolved_at: args.dissolved_at,
        group_types: args.group_types,
        require_bundle: args.require_bundle,
        hash: args.hash,
        policy: super::load_policy(args.policy.as_deref())?,
        progress: true,
    };
    let plan = cleanup::make_plan(&opts, &args.out)?;
    print!("{}", plan.summary());
    let files = plan.files;
    println!("plan: {} (sha256 {})", files.json.display(), files.sha256);
    println!("for people: {}", files.csv.display());
    println!("next: chatvault clean {}   # dry run", files.json.display());
    Ok(crate::exit::OK)
}
