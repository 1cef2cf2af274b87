//! `chatvault approve`: signs a plan's SHA-256 with an Ed25519 key, as one person of a
//! two-person review (rule `review.two_person`).

use std::path::PathBuf;

use super::CliError;
use crate::retention::approval;

pub const EXAMPLES: &str = "Examples:\n  chatvault keygen --sign ~/.chatvault/li-wei.key   # once; li-wei.key.pub goes to the trusted keys\n  chatvault approve /tmp/plan.json --key ~/.chatvault/li-wei.key --name li-wei\n  chatvault clean /tmp/plan.json --apply --require-approvals 2 --trusted-keys /tmp/trusted";

#[derive(clap::Args)]
pub struct Args {
    /// The plan (PLAN.json, with its PLAN.json.sha256 beside it); read it before approving.
    plan: PathBuf,
    /// Your signing key (from `chatvault keygen --sign KEY`; mode 0600).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// Your name, as the approval records it; the file is PLAN.json.approvals/NAME.sig.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Replace an existing NAME.sig (e.g. your approval of an earlier version of the plan).
    #[arg(long)]
    replace: bool,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    let approved = approval::approve(&args.plan, &args.key, &args.name, args.replace)?;
    print!("{}", approved.plan.summary());
    let (required, why) = approved.plan.approvals_required();
    if required > 0 {
        println!(
            "\nits policy requires {required} approval(s): {}",
            why.join("; ")
        );
    }
    let verb = if approved.already {
        "already approved"
    } else {
        "approved"
    };
    println!(
        "\n{verb}: plan sha256 {} by {:?} (key {}, signed at {})",
        approved.plan_sha256,
        approved.approval.signer,
        approved.public_key.fingerprint(),
        approved.approval.signed_at
    );
    println!("signature: {}", approved.path.display());
    Ok(crate::exit::OK)
}
