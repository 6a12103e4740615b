//! Project tooling, run as `cargo xtask <command>`.
//!
//! - `testenv up|down|status`: the local test environment of real parts (Kubernetes control
//!   plane + kwok, PostgreSQL with TLS, moto, Centrifugo, helm), built from the package
//!   registries and cached outside the repository.
//! - `test`: everything CI runs (formatting, clippy, every test against the environment).

mod demo;
mod install;
mod paths;
mod pki;
mod process;
mod testenv;

use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "ChatSDK operator project tooling")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Install, start, inspect or stop the local test environment.
    Testenv {
        #[command(subcommand)]
        action: TestenvAction,
    },
    /// Run every check CI runs: set-up, fmt, clippy and all tests against the test environment.
    Test {
        /// Extra arguments passed to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        cargo_test_args: Vec<String>,
    },
    /// The operator's local demo: environment, CRD, operator, examples/minimal.yaml to Ready.
    Demo,
}

#[derive(Debug, Subcommand)]
enum TestenvAction {
    /// Install what is missing (cached), start every part on 127.0.0.1 and write the endpoints file.
    Up,
    /// Stop every part and remove the environment's state.
    Down,
    /// Print the endpoints file of the running environment.
    Status,
    /// Only install and build the parts (cached), start nothing.
    Install,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Testenv { action } => match action {
            TestenvAction::Up => testenv::up().map(|endpoints| testenv::print_usage(&endpoints)),
            TestenvAction::Down => testenv::down(),
            TestenvAction::Status => testenv::status(),
            TestenvAction::Install => install::install_all().map(|_| ()),
        },
        Cmd::Test { cargo_test_args } => test(&cargo_test_args),
        Cmd::Demo => demo::demo(),
    }
}

/// The README's test command: the environment is started here and always stopped again.
fn test(cargo_test_args: &[String]) -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"]).context("cargo fmt found unformatted code")?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    let endpoints = testenv::up()?;
    let mut args = vec!["test", "--workspace", "--no-fail-fast"];
    args.extend(cargo_test_args.iter().map(String::as_str));
    let result = cargo_with_env(&args, &[("CHATSDK_TESTENV", paths::endpoints_file().as_os_str())]);
    if let Err(err) = testenv::down() {
        eprintln!("warning: stopping the test environment failed: {err:#}");
    }
    drop(endpoints);
    result
}

pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    cargo_with_env(args, &[])
}

fn cargo_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("+ cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(paths::workspace_root())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
