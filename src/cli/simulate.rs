//! `chatvault simulate`: writes a simulated account directory of any registered platform.

use std::path::PathBuf;

use super::CliError;
use crate::platform::{PlatformParser, PlatformRef};
use crate::simulate::SimOptions;
use crate::timefmt;

pub const EXAMPLES: &str =
    "Example:\n  chatvault simulate wechat --out /tmp/wx --groups 5 --messages 100000 --seed 7";

#[derive(clap::Args)]
pub struct Args {
    /// Platform to simulate.
    #[arg(value_parser = PlatformParser)]
    platform: PlatformRef,
    /// The account directory to create.
    #[arg(long)]
    out: PathBuf,
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
