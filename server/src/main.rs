//! The `silverback` binary.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use server::cli::{rules_check, Cli, Command, RulesCommand};
use server::config::Config;

/// mimalloc instead of glibc's malloc: the ingest path allocates per
/// request and per new series from many threads, where glibc's arenas
/// spent a third of the CPU (issue 12's profile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(cmd) = cli.command {
        return match cmd {
            Command::Version => {
                println!("silverback {}", env!("CARGO_PKG_VERSION"));
                ExitCode::SUCCESS
            }
            Command::Rules { cmd } => {
                let ok = match cmd {
                    RulesCommand::Check { files } => rules_check(&files),
                    RulesCommand::Test { files } => server::rules::unittest::run_files(&files),
                };
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
        };
    }
    let cfg = match Config::resolve(&cli.run) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("silverback: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.run.check_config {
        print!("{}", cfg.to_yaml());
        eprintln!("silverback: configuration is valid");
        return ExitCode::SUCCESS;
    }
    server::run::init_logging(&cfg);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("silverback: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(server::run::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            // Not eprintln!: it panics when stderr cannot be written (a log
            // file on the disk that just filled up), and the exit status
            // would be 101 instead of 1.
            let _ = writeln!(std::io::stderr(), "silverback: {e:#}");
            ExitCode::FAILURE
        }
    }
}
