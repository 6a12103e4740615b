//! The local test environment: every part a cluster admin runs, on 127.0.0.1 at free ports.

mod centrifugo;
mod kubernetes;
mod moto;
mod postgres;

use std::fs;

use anyhow::{Context, Result};

#[path = "../../../tests/src/endpoints.rs"]
pub mod endpoints;

use endpoints::{Endpoints, ToolPaths};

use crate::{install, paths, pki, process};

/// Starts the environment, or reuses it when every part of a previous `up` still runs.
pub fn up() -> Result<Endpoints> {
    if let Some(endpoints) = running()? {
        eprintln!(
            "test environment already running ({})",
            paths::endpoints_file().display()
        );
        return Ok(endpoints);
    }
    let installed = install::install_all()?;
    let state = paths::state_dir();
    // Leftovers of an earlier run that died half-way: stop and forget them.
    process::stop_all(&state)?;
    if state.exists() {
        fs::remove_dir_all(&state).with_context(|| format!("removing {}", state.display()))?;
    }
    fs::create_dir_all(&state)?;

    match start(&installed, &state) {
        Ok(endpoints) => {
            fs::write(paths::endpoints_file(), serde_json::to_string_pretty(&endpoints)?)?;
            Ok(endpoints)
        }
        Err(err) => {
            let _ = process::stop_all(&state);
            Err(err)
        }
    }
}

fn start(installed: &install::Installed, state: &std::path::Path) -> Result<Endpoints> {
    let started = std::time::Instant::now();
    let pki = pki::generate(&state.join("pki"))?;
    // Independent parts first, so the slow control-plane start overlaps nothing fragile.
    let postgres = postgres::start(installed, &pki, state)?;
    let aws = moto::start(installed, state)?;
    let centrifugo = centrifugo::start(installed, state)?;
    let kubernetes = kubernetes::start(installed, &pki, state)?;
    eprintln!("test environment up in {:.1}s", started.elapsed().as_secs_f64());
    Ok(Endpoints {
        state_dir: state.to_owned(),
        kubernetes,
        postgres,
        aws,
        centrifugo,
        tools: ToolPaths {
            helm: installed.helm.clone(),
            kubectl: installed.kubectl.clone(),
            moto_server: installed.moto_server.clone(),
            centrifugo: installed.centrifugo.clone(),
            redis_server: installed.redis_server.clone(),
        },
    })
}

/// The endpoints of a running environment, if every recorded process is alive.
fn running() -> Result<Option<Endpoints>> {
    let file = paths::endpoints_file();
    let Ok(text) = fs::read_to_string(&file) else {
        return Ok(None);
    };
    let Ok(endpoints) = serde_json::from_str::<Endpoints>(&text) else {
        return Ok(None);
    };
    let pids = paths::state_dir().join("pids");
    let all_alive = fs::read_dir(&pids)
        .map(|entries| {
            entries.filter_map(Result::ok).all(|entry| {
                fs::read_to_string(entry.path())
                    .ok()
                    .and_then(|pid| pid.trim().parse::<u32>().ok())
                    .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
            })
        })
        .unwrap_or(false);
    Ok(all_alive.then_some(endpoints))
}

pub fn down() -> Result<()> {
    let state = paths::state_dir();
    process::stop_all(&state)?;
    if state.exists() {
        fs::remove_dir_all(&state).with_context(|| format!("removing {}", state.display()))?;
    }
    eprintln!("test environment stopped");
    Ok(())
}

pub fn status() -> Result<()> {
    match running()? {
        Some(endpoints) => {
            println!("{}", serde_json::to_string_pretty(&endpoints)?);
            Ok(())
        }
        None => anyhow::bail!("the test environment is not running: start it with `cargo xtask testenv up`"),
    }
}

pub fn print_usage(endpoints: &Endpoints) {
    let k = &endpoints.kubernetes;
    println!("ChatSDK test environment is running (all on 127.0.0.1):");
    println!(
        "  Kubernetes {}  {}   nodes: {}",
        k.version,
        k.server,
        k.nodes.join(", ")
    );
    println!("    export KUBECONFIG={}", k.kubeconfig.display());
    println!("    {} get nodes", endpoints.tools.kubectl.display());
    println!("  PostgreSQL (TLS)   {}", endpoints.postgres.url);
    println!(
        "  AWS (moto)         AWS_ENDPOINT_URL={}",
        endpoints.aws.endpoint_url
    );
    println!(
        "  Centrifugo {}  {} (API key and token secret in the endpoints file)",
        endpoints.centrifugo.version, endpoints.centrifugo.url
    );
    println!("  helm               {}", endpoints.tools.helm.display());
    println!("Endpoints file: {}", paths::endpoints_file().display());
    println!("Stop it with: cargo xtask testenv down");
}

/// Random hex for passwords and keys of the throwaway environment.
pub fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
