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
}
