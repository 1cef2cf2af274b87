//! `chatvault check`: is a group ready to be dissolved? A checklist per group.

use std::path::PathBuf;

use super::CliError;
use crate::check::{self, CheckOptions, GroupType};
use crate::timefmt;

pub const EXAMPLES: &str = "Examples:\n  chatvault check /tmp/wx --group 123@chatroom --dissolve-at 2025-06-30T12:00:00+08:00 --bundle /tmp/bundle\n  chatvault check /tmp/wx --group-type 123@chatroom=education --announcement notice.txt --json\n\nStatuses: ok, warn, n/a, block. Exit 14 when anything blocks.";

#[derive(clap::Args)]
pub struct Args {
    /// The account directory.
    source: PathBuf,
    /// Check only this group (repeatable; default: every group chat).
    #[arg(long = "group", value_name = "ID")]
    groups: Vec<String>,
    /// When the group is to be dissolved (for the notice periods).
    #[arg(long, value_name = "T")]
    dissolve_at: Option<String>,
    /// What a group is: ordinary, commercial, education, ecommerce, ip_content (repeatable).
    #[arg(long = "group-type", value_name = "ID=TYPE")]
    group_types: Vec<String>,
    /// A bundle exported from this source (repeatable): it must verify and hold the group.
    #[arg(long = "bundle", value_name = "B")]
    bundles: Vec<PathBuf>,
    /// The dissolution announcement's text, to find it in the messages by its hash.
    #[arg(long, value_name = "FILE")]
    announcement: Option<PathBuf>,
    /// Reference time (red packets younger than 24 h before it); default now.
    #[arg(long, value_name = "T")]
    now: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let mut group_types = Vec::new();
    for spec in &args.group_types {
        let parsed = spec
            .rsplit_once('=')
            .and_then(|(id, ty)| Some((id.to_string(), GroupType::parse(ty)?)));
        match parsed {
            Some(pair) => group_types.push(pair),
            None => {
                let known: Vec<&str> = GroupType::ALL.iter().map(|t| t.name()).collect();
                return Err(CliError::Usage(format!(
                    "--group-type {spec}: give ID=TYPE, TYPE one of {}",
                    known.join(", ")
                )));
            }
        }
    }
    let announcement = match &args.announcement {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            CliError::NotFound(format!(
                "cannot read the announcement {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    let opts = CheckOptions {
        source: args.source,
        groups: args.groups,
        dissolve_at: args
            .dissolve_at
            .as_deref()
            .map(timefmt::parse_time)
            .transpose()?,
        group_types,
        bundles: args.bundles,
        announcement,
        now: match args.now.as_deref() {
            Some(t) => timefmt::parse_time(t)?,
            None => chrono::Utc::now(),
        },
    };
    let report = check::check(&opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.blocked() {
        crate::exit::BLOCKED
    } else {
        crate::exit::OK
    })
}
