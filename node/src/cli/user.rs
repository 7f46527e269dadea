//! `brook user create|passwd|delete|list`: SCRAM users (KIP-554) over
//! AlterUserScramCredentials and DescribeUserScramCredentials v0, what Kafka's
//! `kafka-configs.sh --entity-type users` does for SCRAM.
//!
//! The password never leaves this process: the node gets a fresh random salt and the salted
//! password (PBKDF2, Kafka's `ScramFormatter.saltedPassword`), as Kafka's admin client sends
//! them. It is never read from a prompt nor printed; `--password` shows in the process list,
//! so `--password-file` or `BROOK_USER_PASSWORD` is the better way to give it.

use std::path::PathBuf;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::describe_user_scram_credentials_response::DescribeUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest, RequestKind,
    ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::output::{error_text, render_table};
use crate::client::Client;
use crate::security::scram::{self, Mechanism};

/// Where the password comes from when no flag gives it.
const PASSWORD_ENV: &str = "BROOK_USER_PASSWORD";

/// The salt's length: as long as the longest hash, more than Kafka's 16-byte default.
const SALT_BYTES: usize = 32;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user, or replace its credentials if it exists (an upsertion, as in Kafka).
    Create(CredentialArgs),
    /// Change a user's password: a new salt and salted password for each mechanism.
    Passwd(CredentialArgs),
    /// Delete a user's credentials: every one it has, or one mechanism's.
    Delete {
        name: String,
        #[arg(long, value_enum, ignore_case = true, default_value_t = MechanismChoice::All)]
        mechanism: MechanismChoice,
    },
    /// List users with their mechanisms and iterations: every user, or those named.
    List { names: Vec<String> },
}

#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// The user name.
    name: String,
    /// The password (visible in the process list: prefer --password-file or
    /// BROOK_USER_PASSWORD).
    #[arg(long, conflicts_with = "password_file")]
    password: Option<String>,
    /// A file holding the password (trailing line breaks are dropped).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The mechanism to set a credential for.
    #[arg(long, value_enum, ignore_case = true, default_value_t = MechanismChoice::All)]
    mechanism: MechanismChoice,
    /// PBKDF2 iterations, within Kafka's bounds.
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(
        i64::from(brook_raft::MIN_ITERATIONS)..=i64::from(brook_raft::MAX_ITERATIONS)
    ))]
    iterations: u32,
}

/// The SCRAM mechanisms a command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MechanismChoice {
    #[value(name = "SCRAM-SHA-256")]
    Sha256,
    #[value(name = "SCRAM-SHA-512")]
    Sha512,
    /// Both.
    All,
}

impl MechanismChoice {
    fn mechanisms(self) -> Vec<Mechanism> {
        match self {
            MechanismChoice::Sha256 => vec![scram::SHA_256],
            MechanismChoice::Sha512 => vec![scram::SHA_512],
            MechanismChoice::All => vec![scram::SHA_256, scram::SHA_512],
        }
    }
}

pub async fn run(command: UserCommand, bootstrap: &str) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) | UserCommand::Passwd(args) => set(bootstrap, &args).await,
        UserCommand::Delete { name, mechanism } => delete(bootstrap, &name, mechanism).await,
        UserCommand::List { names } => list(bootstrap, &names).await,
    }
}

/// The password of `--password`, `--password-file` or the environment, in that order.
fn password(args: &CredentialArgs) -> anyhow::Result<String> {
    let password = if let Some(p) = &args.password {
        p.clone()
    } else if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the password file {}", path.display()))?;
        text.trim_end_matches(['\r', '\n']).to_string()
    } else {
        match std::env::var(PASSWORD_ENV) {
            Ok(p) => p,
            Err(std::env::VarError::NotPresent) => {
                bail!("give the password with --password-file FILE, --password or {PASSWORD_ENV}")
            }
            Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSWORD_ENV} is not UTF-8"),
        }
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

async fn set(bootstrap: &str, args: &CredentialArgs) -> anyhow::Result<()> {
    let password = password(args)?;
    let iterations = i32::try_from(args.iterations)?;
    let mut upsertions = Vec::new();
    for m in args.mechanism.mechanisms() {
        let salt = brook_raft::random_bytes::<SALT_BYTES>()?;
        let salted = m.salted_password(password.as_bytes(), &salt, args.iterations);
        upsertions.push(
            ScramCredentialUpsertion::default()
                .with_name(text(&args.name))
                .with_mechanism(i8::try_from(m.id)?)
                .with_iterations(iterations)
                .with_salt(Bytes::copy_from_slice(&salt))
                .with_salted_password(Bytes::from(salted)),
        );
    }
    let names = mechanism_names(&args.mechanism.mechanisms());
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(upsertions);
    alter(bootstrap, &args.name, request).await?;
    println!(
        "Set the {names} credentials of user {} ({} iterations).",
        args.name, args.iterations
    );
    Ok(())
}

async fn delete(bootstrap: &str, name: &str, choice: MechanismChoice) -> anyhow::Result<()> {
    let mut client = Client::admin(bootstrap).await?;
    let mechanisms = match choice {
        // Only the mechanisms the user has: deleting one it lacks is RESOURCE_NOT_FOUND.
        MechanismChoice::All => {
            let results = describe(&mut client, Some(&[name.to_string()])).await?;
            let mut mechanisms = Vec::new();
            for r in &results {
                if r.error_code != 0 {
                    bail!(
                        "user {name}: {}",
                        error_text(r.error_code, r.error_message.as_ref())
                    );
                }
                mechanisms.extend(r.credential_infos.iter().map(|c| c.mechanism));
            }
            if mechanisms.is_empty() {
                bail!("user {name} has no SCRAM credential");
            }
            mechanisms
        }
        one => one
            .mechanisms()
            .iter()
            .map(|m| i8::try_from(m.id))
            .collect::<Result<_, _>>()?,
    };
    let deletions = mechanisms
        .iter()
        .map(|m| {
            ScramCredentialDeletion::default()
                .with_name(text(name))
                .with_mechanism(*m)
        })
        .collect();
    let request = AlterUserScramCredentialsRequest::default().with_deletions(deletions);
    alter_with(&mut client, name, request).await?;
    let names: Vec<String> = mechanisms.iter().map(|m| mechanism_name(*m)).collect();
    println!(
        "Deleted the {} credentials of user {name}.",
        names.join(", ")
    );
    Ok(())
}

async fn list(bootstrap: &str, names: &[String]) -> anyhow::Result<()> {
    let mut client = Client::admin(bootstrap).await?;
    let asked = (!names.is_empty()).then_some(names);
    let results = describe(&mut client, asked).await?;
    let mut rows = Vec::new();
    let mut failed = 0;
    for r in &results {
        if r.error_code != 0 {
            failed += 1;
            eprintln!(
                "user {}: {}",
                r.user.as_str(),
                error_text(r.error_code, r.error_message.as_ref())
            );
            continue;
        }
        for c in &r.credential_infos {
            rows.push(vec![
                r.user.to_string(),
                mechanism_name(c.mechanism),
                c.iterations.to_string(),
            ]);
        }
    }
    rows.sort();
    if rows.is_empty() {
        println!("No SCRAM users.");
    } else {
        print!(
            "{}",
            render_table(&["USER", "MECHANISM", "ITERATIONS"], &rows)
        );
    }
    if failed > 0 {
        bail!("{failed} user(s) could not be described");
    }
    Ok(())
}

/// DescribeUserScramCredentials of `users` (`None`: every user); fails on a top-level error.
async fn describe(
    client: &mut Client,
    users: Option<&[String]>,
) -> anyhow::Result<Vec<DescribeUserScramCredentialsResult>> {
    let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|names| {
        names
            .iter()
            .map(|n| UserName::default().with_name(text(n)))
            .collect()
    }));
    let ResponseKind::DescribeUserScramCredentials(response) = client
        .call(
            ApiKey::DescribeUserScramCredentials,
            0,
            RequestKind::DescribeUserScramCredentials(request),
        )
        .await?
    else {
        bail!("unexpected response to DescribeUserScramCredentials");
    };
    if response.error_code != 0 {
        bail!(
            "describing users: {}",
            error_text(response.error_code, response.error_message.as_ref())
        );
    }
    Ok(response.results)
}

async fn alter(
    bootstrap: &str,
    name: &str,
    request: AlterUserScramCredentialsRequest,
) -> anyhow::Result<()> {
    let mut client = Client::admin(bootstrap).await?;
    alter_with(&mut client, name, request).await
}

/// AlterUserScramCredentials for the one user `name`; fails with its error.
async fn alter_with(
    client: &mut Client,
    name: &str,
    request: AlterUserScramCredentialsRequest,
) -> anyhow::Result<()> {
    let ResponseKind::AlterUserScramCredentials(response) = client
        .call(
            ApiKey::AlterUserScramCredentials,
            0,
            RequestKind::AlterUserScramCredentials(request),
        )
        .await?
    else {
        bail!("unexpected response to AlterUserScramCredentials");
    };
    let mut answered = false;
    for r in &response.results {
        answered |= r.user.as_str() == name;
        if r.error_code != 0 {
            bail!(
                "user {}: {}",
                r.user.as_str(),
                error_text(r.error_code, r.error_message.as_ref())
            );
        }
    }
    if !answered {
        bail!("AlterUserScramCredentials gave no result for user {name}");
    }
    Ok(())
}

fn mechanism_names(mechanisms: &[Mechanism]) -> String {
    mechanisms
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Kafka mechanism number's name, or the number.
fn mechanism_name(code: i8) -> String {
    u8::try_from(code)
        .ok()
        .and_then(scram::by_id)
        .map_or_else(|| format!("UNKNOWN({code})"), |m| m.name.to_string())
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}
