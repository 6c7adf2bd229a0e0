//! `prisma-streams`: parse the command line, set up logging, run the chosen mode.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;
use prisma_streams::cli::{Cli, Command};
use prisma_streams::clock::SystemClock;
use prisma_streams::config::{Config, Env};
use prisma_streams::{app, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit with code 2, --help/--version with 0
    let env = Env::from_process();
    telemetry::init(&env.log_filter());
    let unknown = env.unknown_ds_vars();
    if !unknown.is_empty() {
        tracing::warn!(vars = %unknown.join(","), "unknown DS_* environment variables");
    }
    match cli.command {
        Command::Server(args) => {
            let config = match Config::for_server(&args, &env) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("prisma-streams: {e}");
                    return ExitCode::from(2);
                }
            };
            run(|| async move {
                let stop = app::shutdown_signal(config.exit_on_stdin_eof);
                app::run_server(config, Arc::new(SystemClock), stop).await
            })
        }
    }
}

fn run<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), app::AppError>>,
{
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("prisma-streams: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(f()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("prisma-streams: {e:#}");
            ExitCode::from(1)
        }
    }
}
