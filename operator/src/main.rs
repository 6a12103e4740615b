//! `chatsdk-operator`: reconciles `ChatSDKDeployment` resources into a running chat backend.

use clap::Parser;

/// Kubernetes operator for a HIPAA-ready ChatSDK chat backend.
#[derive(Debug, Parser)]
#[command(name = "chatsdk-operator", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
