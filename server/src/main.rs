//! `chatsdk-server`: the ChatSDK chat API.

use clap::Parser;

/// ChatSDK chat API server (drop-in replacement for the upstream TypeScript server).
#[derive(Debug, Parser)]
#[command(name = "chatsdk-server", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
