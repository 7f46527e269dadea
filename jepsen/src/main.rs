//! The `brook-jepsen` command line; see JEPSEN.md for what each subcommand does.

use std::path::PathBuf;
use std::process::ExitCode;

use brook_jepsen::analyze::analyze;
use brook_jepsen::checker::{CheckOptions, Validity};
use brook_jepsen::runner::{self, RunOpts};
use brook_jepsen::{EXIT_BAD_ARGS, EXIT_HARNESS_ERROR};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "brook-jepsen", about = "Chaos tests for brook, after Jepsen")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a test: a cluster, a workload, a nemesis; prints the verdict.
    Run {
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Runs the matrix of workloads x nemeses, one test each, and prints a table.
    TestAll {
        #[command(flatten)]
        opts: RunOpts,
        /// Comma-separated workloads.
        #[arg(long, default_value = "queue,group-offsets,metadata,list-append")]
        workloads: String,
        /// Comma-separated nemeses (each entry may itself be `a+b` for a mix); `partition` is
        /// skipped in --local mode.
        #[arg(long, default_value = "none,kill,pause,partition,all")]
        nemeses: String,
    },
    /// Re-runs the checkers on DIR/history.jsonl; writes DIR/results.json and DIR/timeline.svg.
    Check {
        dir: PathBuf,
        /// The workload, when DIR has no test.json saying it.
        #[arg(long)]
        workload: Option<String>,
        /// Treat producers as idempotent (duplicates are bugs), overriding test.json.
        #[arg(long)]
        idempotent: bool,
    },
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit(EXIT_BAD_ARGS)
            } else {
                exit(0)
            };
        }
    };
    match cli.command {
        Command::Run { opts } => {
            if let Err(e) = runner::validate(&opts) {
                eprintln!("brook-jepsen: {e:#}");
                return exit(EXIT_BAD_ARGS);
            }
            match runner::run(&opts) {
                Ok(v) => exit(v.exit_code()),
                Err(e) => {
                    eprintln!("brook-jepsen: {e:#}");
                    exit(EXIT_HARNESS_ERROR)
                }
            }
        }
        Command::TestAll {
            opts,
            workloads,
            nemeses,
        } => {
            let list = |s: &str| -> Vec<String> {
                s.split(',')
                    .map(|x| x.trim().replace('+', ","))
                    .filter(|x| !x.is_empty())
                    .collect()
            };
            let nemeses: Vec<String> = list(&nemeses)
                .into_iter()
                .filter(|n| !(opts.local && n == "partition"))
                .collect();
            match runner::test_all(&opts, &list(&workloads), &nemeses) {
                Ok(rows) => {
                    let mut worst = Validity::Valid;
                    for r in &rows {
                        match r.verdict {
                            Ok(v) => worst = worst.and(v),
                            Err(_) => return exit(EXIT_HARNESS_ERROR),
                        }
                    }
                    exit(worst.exit_code())
                }
                Err(e) => {
                    eprintln!("brook-jepsen: {e:#}");
                    exit(EXIT_HARNESS_ERROR)
                }
            }
        }
        Command::Check {
            dir,
            workload,
            idempotent,
        } => {
            let opts = idempotent.then_some(CheckOptions { idempotent });
            match analyze(&dir, workload.as_deref(), opts) {
                Ok(report) => {
                    println!("{}", report.summary());
                    exit(report.valid.exit_code())
                }
                Err(e) => {
                    eprintln!("brook-jepsen: {e:#}");
                    exit(EXIT_HARNESS_ERROR)
                }
            }
        }
    }
}
