//! `prisma-streams`: parse the command line, set up logging, run the chosen mode.
//! Commands other than the servers print their answer on stdout (the servers print only
//! their readiness line, through `app::announce`).
#![allow(clippy::print_stdout)]

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;
use prisma_streams::cli::{Cli, Command, LocalCommand};
use prisma_streams::clock::SystemClock;
use prisma_streams::config::{Config, Env};
use prisma_streams::local::{self, LocalError};
use prisma_streams::{app, telemetry};

#[global_allocator]
static GLOBAL: prisma_streams::alloc::Hybrid = prisma_streams::alloc::Hybrid;

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit with code 2, --help/--version with 0
    let env = Env::from_process();
    let files = match env.log_files() {
        Ok(f) => f,
        Err(e) => return fail(&e, 2),
    };
    let _logs = telemetry::init(&env.log_filter(), files);
    let unknown = env.unknown_ds_vars();
    if !unknown.is_empty() {
        tracing::warn!(vars = %unknown.join(","), "unknown DS_* environment variables");
    }
    match cli.command {
        Command::Server(args) => {
            let config = match Config::for_server(&args, &env) {
                Ok(c) => c,
                Err(e) => return fail(&e, 2),
            };
            if let Some(t) = &config.auto_tune {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "{}", t.describe());
            }
            let served = block_on(async move {
                let stop = app::shutdown_signal(config.exit_on_stdin_eof);
                app::run_server(config, Arc::new(SystemClock), stop).await
            });
            match served {
                Ok(Ok(())) => ExitCode::SUCCESS,
                Ok(Err(e)) => {
                    let code = e.exit_code();
                    fail(&anyhow::Error::from(e), code)
                }
                Err(e) => fail(&e, 1),
            }
        }
        Command::Local(cmd) => local_command(cmd, &env),
        Command::SelfUpdate(a) => {
            let exe = std::env::current_exe().ok();
            let npm = prisma_streams::update::npm_owner(env.managed_by(), exe.as_deref());
            match prisma_streams::update::run(a.check, &env.update_api(), npm) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e, e.exit_code()),
            }
        }
    }
}

fn local_command(cmd: LocalCommand, env: &Env) -> ExitCode {
    let result = match cmd {
        LocalCommand::Start(a) => run_local(env, a, false),
        LocalCommand::Daemon(a) => run_local(env, a, true),
        LocalCommand::Status(a) => match local::status(env, a.name.as_deref(), a.json) {
            Ok(report) => {
                print(report.text);
                return if report.running {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(local::STATUS_NOT_RUNNING)
                };
            }
            Err(e) => Err(e),
        },
        LocalCommand::Stop(a) => local::stop(env, a.name.as_deref()).map(print),
        LocalCommand::Reset(a) => local::reset(env, a.name.as_deref()).map(print),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e, e.exit_code()),
    }
}

fn run_local(
    env: &Env,
    a: prisma_streams::cli::LocalServerArgs,
    daemon: bool,
) -> Result<(), LocalError> {
    let clock = Arc::new(SystemClock);
    match block_on(local::run(env, clock, &a, daemon)) {
        Ok(r) => r,
        Err(e) => Err(LocalError::Failed(e)),
    }
}

fn print(s: String) {
    println!("{s}");
}

fn fail(e: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("prisma-streams: {e:#}");
    ExitCode::from(code)
}

/// Runs a future on a multi-threaded runtime; `Err` if the runtime cannot start.
fn block_on<T>(f: impl Future<Output = T>) -> Result<T, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let out = rt.block_on(f);
    // Blocking helpers may still sit in a read (the stdin watcher when stopped by a
    // signal); everything that matters is done, so do not wait for them.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(out)
}
