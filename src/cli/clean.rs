//! `chatvault clean`: carries out a plan, a dry run unless `--apply`; every action is
//! re-checked against the file as it is now and journaled.

use std::path::PathBuf;

use super::CliError;
use crate::retention::{self, CleanOptions, PlanEntries, PlanFile, RetentionError};

pub const EXAMPLES: &str = "Examples:\n  chatvault clean /tmp/plan.json                       # dry run\n  chatvault clean /tmp/plan.json --apply --quarantine /tmp/q\n  chatvault clean /tmp/plan.json --apply --yes --root /tmp/wx   # scripts: no confirmation, the root given\n  chatvault clean /tmp/plan.json --apply --require-approvals 2 --trusted-keys /tmp/trusted";

#[derive(clap::Args)]
pub struct Args {
    /// The plan (PLAN.json, with its PLAN.json.sha256 beside it).
    plan: PathBuf,
    /// Act; without it nothing is touched.
    #[arg(long)]
    apply: bool,
    /// Move files under DIR (mirroring their paths) instead of deleting them.
    #[arg(long, value_name = "DIR")]
    quarantine: Option<PathBuf>,
    /// The journal (JSON lines); default PLAN.json.journal.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Do not ask for the group names before acting (then --root is required).
    #[arg(long)]
    yes: bool,
    /// The directory you mean to clean; the plan's root must be this very directory.
    /// Required with --apply --yes: a plan is a request, not an authority.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Refuse --apply unless N distinct keys of --trusted-keys signed this very plan
    /// (`chatvault approve`; the signatures are in PLAN.json.approvals/).
    #[arg(long, value_name = "N", requires = "trusted_keys")]
    require_approvals: Option<u32>,
    /// The directory of the signers' public keys (KEY.pub files) whose approvals count.
    #[arg(long, value_name = "DIR")]
    trusted_keys: Option<PathBuf>,
}

/// Checks the approvals before anything else happens: `Ok(Some)` is the record for the
/// journal, `Ok(None)` a run that needs none. A dry run reports too few approvals
/// without failing; a malformed or forged signature file fails it too.
fn check_approvals(
    plan: &PlanFile,
    plan_path: &std::path::Path,
    plan_sha256: &str,
    apply: bool,
    require_approvals: Option<u32>,
    trusted_keys: Option<&std::path::Path>,
) -> Result<Option<retention::ApprovalRecord>, CliError> {
    let (by_policy, why) = plan.approvals_required();
    let required = require_approvals.unwrap_or(0).max(by_policy);
    let because = if why.is_empty() {
        String::new()
    } else {
        format!(" (the plan's policy: {})", why.join("; "))
    };
    let Some(trusted_dir) = trusted_keys else {
        if required == 0 {
            return Ok(None);
        }
        let message = format!(
            "this plan needs {required} approval(s){because}: give --trusted-keys DIR, the directory of the signers' KEY.pub files"
        );
        if apply {
            return Err(CliError::Usage(message));
        }
        println!("approvals: {message}");
        return Ok(None);
    };
    if require_approvals.is_none() && by_policy == 0 {
        return Err(CliError::Usage(
            "--trusted-keys without --require-approvals N: say how many approvals this clean needs"
                .to_string(),
        ));
    }
    let trusted = retention::TrustedKeys::load(trusted_dir)?;
    let dir = retention::approval::approvals_dir(plan_path);
    let check = retention::approval::check_approvals(plan_sha256, &dir, &trusted)?;
    for line in check.lines() {
        println!("approval {line}");
    }
    match check.require(required) {
        Ok(record) => {
            println!(
                "approvals: {} of {required} required{because}",
                record.signatures.len()
            );
            Ok(Some(record))
        }
        Err(refusal) if !apply => {
            println!("approvals: --apply would be refused: {refusal}");
            Ok(None)
        }
        Err(refusal) => Err(refusal.into()),
    }
}

/// Asks for the names of the groups whose files will go, as WeChat asks before dissolving.
fn confirm_groups(plan: &PlanFile) -> Result<(), CliError> {
    use std::io::{BufRead, IsTerminal, Write};
    let mut names: Vec<String> = Vec::new();
    for id in plan.deleting_groups() {
        let shown = plan
            .header()
            .groups
            .iter()
            .find(|g| &g.group_id == id)
            .map(|g| {
                if g.name.is_empty() {
                    g.group_id.clone()
                } else {
                    g.name.clone()
                }
            })
            .unwrap_or_else(|| id.clone());
        if !names.contains(&shown) {
            names.push(shown);
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!("--apply deletes files of {} group(s); confirm with --yes --root DIR when not running interactively", names.len())));
    }
    let stdin = std::io::stdin();
    for name in &names {
        eprint!("Files of group \"{name}\" will be removed. Type the group name to confirm: ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        if line.trim_end_matches(['\r', '\n']) != name {
            return Err(CliError::NotConfirmed(format!(
                "confirmation did not match \"{name}\": nothing was touched"
            )));
        }
    }
    Ok(())
}

/// Asks for the root's name, since a plan names the directory it cleans and anyone can edit it.
fn confirm_root(plan: &PlanFile) -> Result<PathBuf, CliError> {
    use std::io::{BufRead, IsTerminal, Write};
    let root = PathBuf::from(&plan.header().source_root);
    if !std::io::stdin().is_terminal() {
        return Err(RetentionError::RootNotConfirmed { plan_root: root }.into());
    }
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string());
    eprint!(
        "The plan cleans {}. Type its directory name \"{name}\" to confirm: ",
        root.display()
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim_end_matches(['\r', '\n']) != name {
        return Err(CliError::NotConfirmed(format!(
            "confirmation did not match \"{name}\": nothing was touched"
        )));
    }
    Ok(root)
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let Args {
        plan: plan_path,
        apply,
        quarantine,
        journal,
        yes,
        root,
        require_approvals,
        trusted_keys,
    } = args;
    // The entries stay on disk, read as they are checked and acted on.
    let plan = PlanFile::open_verified(&plan_path)?;
    let plan_sha256 = plan.sha256()?;
    // Verify, then act: the approvals of the very bytes read are checked before any
    // question is asked or anything is opened for writing.
    let approvals = check_approvals(
        &plan,
        &plan_path,
        &plan_sha256,
        apply,
        require_approvals,
        trusted_keys.as_deref(),
    )?;
    let mut opts = CleanOptions::for_plan(&plan_path);
    opts.approvals = approvals;
    // Each path is printed as it is acted on; the summary needs only the counts.
    opts.list_paths = false;
    opts.expected_root = root;
    if apply && !yes {
        confirm_groups(&plan)?;
        if opts.expected_root.is_none() {
            opts.expected_root = Some(confirm_root(&plan)?);
        }
    }
    opts.apply = apply;
    opts.quarantine = quarantine;
    if let Some(journal) = journal {
        opts.journal = journal;
    }
    let mut on_event = |event: &retention::CleanEvent| {
        use retention::CleanEvent as E;
        match event {
            E::WouldDelete { path, size } => println!("would delete      {path} ({size} bytes)"),
            E::WouldQuarantine { path, to, .. } => {
                println!("would quarantine  {path} -> {}", to.display())
            }
            E::Deleted { path, .. } => println!("deleted           {path}"),
            E::Quarantined { path, to, .. } => {
                println!("quarantined       {path} -> {}", to.display())
            }
            E::Skipped { path, reason } => println!("SKIPPED           {path}: {reason}"),
            E::AlreadyDone { path } => println!("already done      {path}"),
        }
    };
    let report = retention::clean(&plan, &opts, &mut on_event)?;
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{verb} {} file(s), {} bytes; {} skipped because they changed or are gone; {} already done; {} kept, {} for review",
        report.counts.removed,
        report.bytes,
        report.counts.skipped_changed,
        report.counts.already_done,
        report.kept,
        report.reviewed
    );
    if report.dry_run {
        println!("dry run: nothing was touched (add --apply to act)");
    } else {
        println!("journal: {}", opts.journal.display());
    }
    Ok(if report.counts.skipped_changed == 0 {
        0
    } else {
        crate::exit::CLEAN_SKIPPED
    })
}
