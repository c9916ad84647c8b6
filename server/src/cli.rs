//! The command line: `silverback [FLAGS]` runs the server; subcommands are
//! tools (`silverback rules check|test`, provided by the rules module).

use clap::{Parser, Subcommand};

use crate::config::RunArgs;

/// Silverback: a Prometheus-compatible, horizontally scaled time-series
/// database. Remote write in, PromQL over the Prometheus HTTP API out.
#[derive(Parser, Debug)]
#[command(name = "silverback", version, about, long_about = None)]
pub struct Cli {
    /// A tool to run instead of the server.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server flags (also settable in the --config file).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the version and exit.
    Version,
    /// Tools for Prometheus rule files.
    Rules {
        /// What to do.
        #[command(subcommand)]
        cmd: RulesCommand,
    },
}

/// `silverback rules ...`.
#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Check rule files (YAML, PromQL, templates) like `promtool check
    /// rules`; exits 1 when any file is invalid.
    Check {
        /// Rule files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Run rule unit tests in `promtool test rules` format; exits 1 when any
    /// test fails.
    Test {
        /// Test files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

/// Runs `silverback rules check`: one report per file on stdout (errors on
/// stderr), and whether every file was valid.
pub fn rules_check(files: &[std::path::PathBuf]) -> bool {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match crate::rules::model::load_file(f) {
            Ok(groups) => {
                let n: usize = groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {n} rules found");
            }
            Err(errs) => {
                ok = false;
                eprintln!("  FAILED:");
                for e in errs {
                    eprintln!("{e}");
                }
            }
        }
        println!();
    }
    ok
}
