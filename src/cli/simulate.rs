//! `chatvault simulate`: writes a simulated account directory of any registered platform.

use std::path::PathBuf;

use super::CliError;
use crate::platform::{PlatformParser, PlatformRef};
use crate::simulate::{MoreOptions, SimOptions};
use crate::timefmt;

pub const EXAMPLES: &str = "Examples:
  chatvault simulate wechat --out /tmp/wx --groups 5 --messages 100000 --seed 7
  # a week later: 2000 more messages, 3 joins per group, 4 recalls, 1 deletion, 1 new group
  chatvault simulate wechat --out /tmp/wx --continue --messages 2000 --days 7 \\
      --joins 3 --recalls 4 --deletions 1 --new-groups 1 --seed 8";

#[derive(clap::Args)]
pub struct Args {
    /// Platform to simulate.
    #[arg(value_parser = PlatformParser)]
    platform: PlatformRef,
    /// The account directory to create (with --continue: to add to).
    #[arg(long)]
    out: PathBuf,
    /// Add to the simulated account at --out instead of creating one: --messages more
    /// messages over --days days after its newest message, and the joins, recalls,
    /// deletions and new groups asked for. Use another --seed than before.
    #[arg(long = "continue")]
    continue_source: bool,
    /// With --continue: members who join each existing group.
    #[arg(long, default_value_t = 2, requires = "continue_source")]
    joins: usize,
    /// With --continue: existing messages their senders recall.
    #[arg(long, default_value_t = 3, requires = "continue_source")]
    recalls: usize,
    /// With --continue: existing messages deleted from the device.
    #[arg(long, default_value_t = 2, requires = "continue_source")]
    deletions: usize,
    /// With --continue: group chats that appear.
    #[arg(long, default_value_t = 1, requires = "continue_source")]
    new_groups: usize,
    #[arg(long, default_value_t = 5)]
    groups: usize,
    /// Members per group.
    #[arg(long, default_value_t = 30)]
    members: usize,
    /// Group messages in all.
    #[arg(long, default_value_t = 5000)]
    messages: usize,
    /// Spread messages over this many days before --now.
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Reference time (RFC 3339, date or Unix seconds); default now.
    #[arg(long)]
    now: Option<String>,
    /// Fraction of rows and files that get an edge case.
    #[arg(long, default_value_t = 0.05)]
    edge_rate: f64,
    /// Reference media in rows but write no media files.
    #[arg(long)]
    no_media_files: bool,
    /// Leave the newest messages only in the database's -wal file.
    #[arg(long)]
    wal: bool,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    if args.continue_source {
        return run_more(args);
    }
    let mut opts = SimOptions::new(args.out);
    opts.groups = args.groups;
    opts.members = args.members;
    opts.messages = args.messages;
    opts.days = args.days;
    opts.seed = args.seed;
    if let Some(now) = args.now {
        opts.now_ms = timefmt::parse_time(&now)?.timestamp_millis();
    }
    opts.edge_rate = args.edge_rate;
    opts.media_files = !args.no_media_files;
    opts.wal = args.wal;
    let report = args.platform.simulate(&opts)?;
    println!(
        "simulated {} account at {}: {} groups, {} members, {} group messages, {} private chats, {} media files in {:.1}s",
        report.platform,
        report.root.display(),
        report.groups,
        report.members,
        report.messages,
        report.private_chats,
        report.media_files,
        report.elapsed.as_secs_f64()
    );
    Ok(crate::exit::OK)
}

fn run_more(args: Args) -> Result<u8, CliError> {
    let mut opts = MoreOptions::new(args.out);
    opts.messages = args.messages;
    opts.days = args.days;
    opts.joins = args.joins;
    opts.recalls = args.recalls;
    opts.deletions = args.deletions;
    opts.new_groups = args.new_groups;
    opts.seed = args.seed;
    opts.media_files = !args.no_media_files;
    opts.validate()?;
    let report = args.platform.simulate_more(&opts)?;
    println!(
        "continued {} account at {}: {} group messages added, {} members joined, {} recalled, {} deleted, {} new groups, {} media files in {:.1}s",
        report.platform,
        report.root.display(),
        report.messages,
        report.joined,
        report.recalled,
        report.deleted,
        report.new_groups,
        report.media_files,
        report.elapsed.as_secs_f64()
    );
    Ok(crate::exit::OK)
}
