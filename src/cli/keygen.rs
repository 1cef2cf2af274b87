//! `chatvault keygen`: a new pseudonym key, or with `--sign` an Ed25519 signing key pair.

use std::path::PathBuf;

use super::CliError;
use crate::retention::approval::SecretKey;

pub const EXAMPLES: &str = "Examples:\n  chatvault keygen ~/.chatvault/case-001.key          # pseudonym key\n  chatvault keygen --sign ~/.chatvault/li-wei.key     # for approve: li-wei.key, li-wei.key.pub";

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["keyfile", "sign"])))]
pub struct Args {
    /// Where to write the pseudonym key.
    keyfile: Option<PathBuf>,
    /// Make an Ed25519 signing key for `approve` instead: KEY (mode 0600) and KEY.pub.
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<u8, CliError> {
    if let Some(path) = args.sign {
        let (key, public_path) = SecretKey::generate(&path)?;
        println!(
            "wrote {} (signing key, mode 0600; keep it to yourself) and {} (public key {}, fingerprint {}): put the .pub into the trusted-keys directory of whoever runs `chatvault clean`",
            path.display(),
            public_path.display(),
            key.public_key().to_hex(),
            key.public_key().fingerprint()
        );
        return Ok(crate::exit::OK);
    }
    let Some(keyfile) = args.keyfile else {
        return Err(CliError::Usage(
            "give a key file, or --sign KEY".to_string(),
        ));
    };
    let key = crate::anonymize::Key::generate(&keyfile)?;
    println!(
        "wrote {} (fingerprint {}); keep it safe: the same key gives the same pseudonyms",
        keyfile.display(),
        key.fingerprint()
    );
    Ok(crate::exit::OK)
}
