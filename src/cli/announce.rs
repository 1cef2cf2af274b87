//! `chatvault announce`: a dissolution announcement drafted, hashed, and found again in
//! the sources of every platform it was posted on.

use std::path::PathBuf;

use super::CliError;
use crate::check::{announcement, bundles};
use crate::timefmt;

pub const EXAMPLES: &str = "Examples:\n  chatvault announce draft --group 123@chatroom --dissolve-at 2025-06-30T12:00:00+08:00 --bundle /tmp/bundle > notice.txt\n  chatvault announce hash notice.txt\n  chatvault announce find /tmp/wx /tmp/dingtalk_v2 --announcement notice.txt\n\nfind exits 0 when every source holds an identical copy, 8 when a changed copy is found, 3 when a source holds none.";

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Write a dissolution announcement (Chinese, with an English line) to standard output.
    Draft {
        #[arg(long, value_name = "ID")]
        group: String,
        /// When the group will be dissolved.
        #[arg(long, value_name = "T")]
        dissolve_at: Option<String>,
        /// The bundle the history was exported to: its bag digest goes into the text.
        #[arg(long, value_name = "B")]
        bundle: Option<PathBuf>,
        /// Offset the date is shown in.
        #[arg(long, default_value = "+08:00", allow_hyphen_values = true)]
        tz: String,
    },
    /// SHA-256 of an announcement's text as compared (NFC, line endings unified, trimmed).
    Hash { file: PathBuf },
    /// Search sources (any platforms) for the announcement: identical, changed or no copy.
    Find {
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        #[arg(long, value_name = "FILE")]
        announcement: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn read_text(path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::NotFound(format!("cannot read {}: {e}", path.display())))
}

pub fn run(args: Args) -> Result<u8, CliError> {
    match args.action {
        Action::Hash { file } => {
            println!(
                "{}  {}",
                announcement::hash(&read_text(&file)?),
                file.display()
            );
            Ok(crate::exit::OK)
        }
        Action::Draft {
            group,
            dissolve_at,
            bundle,
            tz,
        } => {
            let tz = timefmt::parse_offset(&tz)?;
            let when = match dissolve_at.as_deref() {
                Some(t) => timefmt::parse_time(t)?
                    .with_timezone(&tz)
                    .format("%Y-%m-%d %H:%M (UTC%:z)")
                    .to_string(),
                None => "（日期待定）".to_string(),
            };
            let (name, digest) = match &bundle {
                Some(b) => {
                    let facts = bundles::read(b).map_err(crate::check::CheckError::from)?;
                    if let Some(failed) = &facts.failed {
                        return Err(CliError::Usage(format!(
                            "{}: {failed}; an announcement must not cite a bundle that does not verify",
                            b.display()
                        )));
                    }
                    let name = facts.group_names.get(&group).cloned();
                    if name.is_none() {
                        return Err(CliError::Usage(format!(
                            "{} does not hold group {group}",
                            b.display()
                        )));
                    }
                    (name, facts.bag_digest)
                }
                None => (None, None),
            };
            let shown = name.unwrap_or_else(|| group.clone());
            let mut text = format!("【解散公告】本群「{shown}」将于 {when} 解散。");
            match &digest {
                Some(d) => text.push_str(&format!(
                    "群聊记录（消息、成员、文件）已完整导出并封存，证据包摘要 SHA-256：{d}。如需副本，请在解散前联系群主。\n\
                     Notice: this group will be dissolved on {when}. Its history has been exported and sealed; bag digest (SHA-256) {d}.\n"
                )),
                None => text.push_str(
                    "请在解散前保存需要的聊天记录和文件。\n\
                     Notice: this group will be dissolved on {when}. Please save what you need before then.\n",
                ),
            }
            let text = text.replace("{when}", &when);
            print!("{text}");
            eprintln!("announcement hash: {}", announcement::hash(&text));
            Ok(crate::exit::OK)
        }
        Action::Find {
            sources,
            announcement: file,
            json,
        } => {
            let text = read_text(&file)?;
            let roots: Vec<&std::path::Path> = sources.iter().map(PathBuf::as_path).collect();
            let found = announcement::find(&roots, &text)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                println!("announcement hash {}", announcement::hash(&text));
                for g in &found {
                    println!(
                        "{:<9} {} {} {} ({})",
                        g.verdict,
                        g.platform,
                        g.source.display(),
                        g.group_id,
                        g.group_name
                            .chars()
                            .filter(|c| !c.is_control())
                            .collect::<String>()
                    );
                    for c in &g.identical {
                        println!(
                            "          same hash: message {} by {} at {}",
                            c.message_id, c.sender_id, c.time_utc
                        );
                    }
                    for c in &g.changed {
                        println!(
                            "          changed:   message {} by {} at {}: {}",
                            c.message_id,
                            c.sender_id,
                            c.time_utc,
                            c.difference.as_deref().unwrap_or_default()
                        );
                    }
                }
            }
            let changed = found
                .iter()
                .any(|g| !g.changed.is_empty() && g.identical.is_empty());
            let missing = sources.iter().any(|s| {
                !found
                    .iter()
                    .any(|g| &g.source == s && g.verdict == "identical")
            });
            Ok(if changed {
                crate::exit::TAMPERED
            } else if missing {
                crate::exit::NOT_FOUND
            } else {
                crate::exit::OK
            })
        }
    }
}
