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
    let code = match rt.block_on(server::run::run(cfg)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            // Not eprintln!: it panics when stderr cannot be written (a log
            // file on the disk that just filled up), and the exit status
            // would be 101 instead of 1.
            let _ = writeln!(std::io::stderr(), "silverback: {e:#}");
            1
        }
    };
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    leave(code)
}

/// Ends the process with `code` without running C++ static destructors.
///
/// By now everything acknowledged is durable: checkpointed and synced on a
/// graceful stop, in the fsynced Raft log on a fail-stop. RocksDB's static
/// destructors, run by `exit`, tear down mutexes that its own threads (its
/// periodic-task timer, or those of a DB some task still holds) may still
/// take, and the process then aborts ("pthread lock: Invalid argument",
/// SIGABRT) instead of exiting with `code`; about one graceful stop in 20
/// did under load. `_exit` leaves at once.
fn leave(code: i32) -> ExitCode {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` takes a plain int, has no preconditions on memory or
    // threads, and never returns; all it skips are atexit handlers and
    // static destructors, which is the point (see above). Rust's own
    // buffered stdout/stderr were flushed just before.
    unsafe { libc::_exit(code) }
}
