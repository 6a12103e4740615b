//! Installs the test environment's parts from the package registries, cached by version.
//!
//! - Debian packages (`apt-get`): PostgreSQL; Redis (for the Centrifugo Redis-engine test).
//! - PyPI (`pip` into a private virtualenv): moto server.
//! - Go module proxy (`go build`/`go install`): Kubernetes control plane, kubectl, etcd, kwok,
//!   Centrifugo and helm. Nothing is downloaded from anywhere else.
//!
//! Each part is built into a temporary directory and renamed into place when complete, so an
//! interrupted build is never mistaken for a cached one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::paths;

/// Kubernetes release built from `tests/env/go/kubernetes` (which pins its staging modules;
/// keep the two in step).
pub const KUBERNETES_VERSION: &str = "v1.36.3";
pub const KWOK_MODULE: &str = "sigs.k8s.io/kwok";
pub const KWOK_VERSION: &str = "v0.8.0";
/// Centrifugo v6 is refused by the Go module proxy ("403 Forbidden: This module version is
/// not available"), so the environment runs the newest v5 it serves (built from
/// `tests/env/go/centrifugo`). The HTTP API (`/api/publish`, `/api/history`, `/api/batch`),
/// the client protocol and the HMAC tokens the product uses are the same in both.
pub const CENTRIFUGO_VERSION: &str = "v5.4.9";
pub const HELM_MODULE: &str = "helm.sh/helm/v4/cmd/helm";
pub const HELM_VERSION: &str = "v4.3.1";
pub const MOTO_VERSION: &str = "5.2.5";

/// Paths of every installed part.
#[derive(Debug, Clone)]
pub struct Installed {
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kubectl: PathBuf,
    pub etcd: PathBuf,
    pub kwok: PathBuf,
    /// kwok's own node and pod lifecycle stages, taken from the kwok module.
    pub kwok_stages: PathBuf,
    pub centrifugo: PathBuf,
    pub helm: PathBuf,
    pub moto_server: PathBuf,
    pub postgres_bin: PathBuf,
    pub redis_server: PathBuf,
}

pub fn install_all() -> Result<Installed> {
    let postgres_bin = install_postgres()?;
    let redis_server = install_redis()?;
    let moto_server = install_moto()?;
    let kubernetes = build_go_module("kubernetes", KUBERNETES_VERSION, &kubernetes_version_ldflags())?;
    let kwok = go_install("kwok", KWOK_MODULE, "/cmd/kwok", KWOK_VERSION)?;
    let kwok_stages = kwok_stages()?;
    let centrifugo = build_go_module(
        "centrifugo",
        CENTRIFUGO_VERSION,
        &format!(
            "-X github.com/centrifugal/centrifugo/v5/internal/build.Version={}",
            &CENTRIFUGO_VERSION[1..]
        ),
    )?;
    let helm = go_install("helm", HELM_MODULE, "", HELM_VERSION)?;
    Ok(Installed {
        kube_apiserver: kubernetes.join("kube-apiserver"),
        kube_controller_manager: kubernetes.join("kube-controller-manager"),
        kube_scheduler: kubernetes.join("kube-scheduler"),
        kubectl: kubernetes.join("kubectl"),
        etcd: kubernetes.join("etcd"),
        kwok: kwok.join("kwok"),
        kwok_stages,
        centrifugo: centrifugo.join("centrifugo"),
        helm: helm.join("helm"),
        moto_server,
        postgres_bin,
        redis_server,
    })
}

/// PostgreSQL server binaries from Debian (`postgresql`), installed only when missing.
fn install_postgres() -> Result<PathBuf> {
    if let Some(bin) = find_postgres_bin() {
        return Ok(bin);
    }
    apt_install(&["postgresql", "postgresql-contrib"])?;
    find_postgres_bin().context("PostgreSQL is installed but no /usr/lib/postgresql/*/bin/postgres was found")
}

/// `redis-server` from Debian, installed only when missing; tests start their own on loopback.
fn install_redis() -> Result<PathBuf> {
    let server = PathBuf::from("/usr/bin/redis-server");
    if !server.is_file() {
        apt_install(&["redis-server"])?;
    }
    server
        .is_file()
        .then_some(server)
        .context("redis-server is installed but /usr/bin/redis-server was not found")
}

fn find_postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").is_file() && bin.join("pgbench").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn apt_install(packages: &[&str]) -> Result<()> {
    eprintln!("installing Debian packages: {}", packages.join(" "));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// moto server in a virtualenv of its own (so nothing touches the system Python). A virtualenv
/// records its own path in its scripts, so it is created in place and marked complete last.
fn install_moto() -> Result<PathBuf> {
    let venv = paths::cache_dir().join(format!("moto-{MOTO_VERSION}"));
    let server = venv.join("bin").join("moto_server");
    let complete = venv.join(".complete");
    if complete.is_file() && server.is_file() {
        return Ok(server);
    }
    eprintln!("installing moto[server]=={MOTO_VERSION} from PyPI");
    if venv.exists() {
        fs::remove_dir_all(&venv)?;
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("moto[server]=={MOTO_VERSION}")))?;
    if !server.is_file() {
        bail!("moto installed but {} is missing", server.display());
    }
    fs::write(&complete, MOTO_VERSION)?;
    Ok(server)
}

/// Builds the `tool` directives of our Go module `tests/env/go/<name>`, which pins the
/// release and its dependencies; cached under a key derived from its go.mod and go.sum.
fn build_go_module(name: &str, version: &str, version_ldflags: &str) -> Result<PathBuf> {
    let module = paths::workspace_root().join("tests/env/go").join(name);
    let mut pinned = fs::read(module.join("go.mod")).with_context(|| format!("reading {name}/go.mod"))?;
    pinned.extend(fs::read(module.join("go.sum")).with_context(|| format!("reading {name}/go.sum"))?);
    pinned.extend(version_ldflags.as_bytes());
    let dir = paths::cache_dir()
        .join("bin")
        .join(format!("{name}-{version}-{:016x}", fnv1a(&pinned)));
    if dir.is_dir() {
        return Ok(dir);
    }
    eprintln!("building {name} {version} from the Go module proxy (the first build takes minutes)");
    let tmp = fresh_tmp_dir(&dir)?;
    run(go()
        .args([
            "build",
            "-trimpath",
            &format!("-ldflags=-s -w {version_ldflags}"),
            "-o",
        ])
        .arg(format!("{}/", tmp.display()))
        .arg("tool")
        .current_dir(&module))?;
    // etcd's main package is the module go.etcd.io/etcd/server/v3, so Go names it `server`.
    if tmp.join("server").is_file() {
        fs::rename(tmp.join("server"), tmp.join("etcd")).context("renaming the etcd binary")?;
    }
    publish(&tmp, &dir)?;
    Ok(dir)
}

/// Release builds of Kubernetes stamp their version with -X; without it the binaries report
/// `v0.0.0-master` and kubectl warns about version skew.
fn kubernetes_version_ldflags() -> String {
    let (major, minor) = KUBERNETES_VERSION[1..]
        .split_once('.')
        .map(|(major, rest)| (major, rest.split('.').next().unwrap_or_default()))
        .unwrap_or_default();
    ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]
        .iter()
        .map(|pkg| {
            format!(
                "-X {pkg}.gitVersion={KUBERNETES_VERSION} -X {pkg}.gitMajor={major} -X {pkg}.gitMinor={minor} \
                 -X {pkg}.gitTreeState=clean"
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `go install module@version` into a versioned cache directory.
fn go_install(name: &str, module: &str, package_suffix: &str, version: &str) -> Result<PathBuf> {
    let dir = paths::cache_dir().join("bin").join(format!("{name}-{version}"));
    if dir.join(name).is_file() {
        return Ok(dir);
    }
    eprintln!("building {name} {version} from the Go module proxy");
    let tmp = fresh_tmp_dir(&dir)?;
    run(go()
        .args(["install", "-trimpath", "-ldflags=-s -w"])
        .arg(format!("{module}{package_suffix}@{version}"))
        .env("GOBIN", &tmp))?;
    publish(&tmp, &dir)?;
    Ok(dir)
}

/// kwok simulates nodes and pods by "stages"; its module ships the standard ones. They are
/// read from the Go module cache (filled by the kwok build above) into one config file.
fn kwok_stages() -> Result<PathBuf> {
    let file = paths::cache_dir().join(format!("kwok-{KWOK_VERSION}-stages.yaml"));
    if file.is_file() {
        return Ok(file);
    }
    let output = go()
        .args(["env", "GOMODCACHE"])
        .output()
        .context("running `go env GOMODCACHE`")?;
    let modcache = String::from_utf8(output.stdout)?.trim().to_owned();
    let module = PathBuf::from(modcache).join(format!("{KWOK_MODULE}@{KWOK_VERSION}"));
    if !module.is_dir() {
        // The kwok binary came from the cache while the module cache was cleaned: fetch it again.
        run(go().args(["mod", "download", &format!("{KWOK_MODULE}@{KWOK_VERSION}")]))?;
    }
    let stages = [
        "kustomize/stage/node/fast/node-initialize.yaml",
        "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "kustomize/stage/pod/fast/pod-ready.yaml",
        "kustomize/stage/pod/fast/pod-complete.yaml",
        "kustomize/stage/pod/fast/pod-delete.yaml",
    ];
    let mut config = String::new();
    for stage in stages {
        let text =
            fs::read_to_string(module.join(stage)).with_context(|| format!("reading kwok stage {stage}"))?;
        config.push_str("---\n");
        config.push_str(&text);
        config.push('\n');
    }
    fs::create_dir_all(paths::cache_dir())?;
    fs::write(&file, config)?;
    Ok(file)
}

fn go() -> Command {
    let mut cmd = Command::new("go");
    // Never fetch a different Go toolchain: the machine's Go builds everything.
    cmd.env("GOTOOLCHAIN", "local").env("CGO_ENABLED", "0");
    cmd
}

fn fresh_tmp_dir(final_dir: &Path) -> Result<PathBuf> {
    let tmp = final_dir.with_extension("partial");
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    Ok(tmp)
}

fn publish(tmp: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::rename(tmp, dir).with_context(|| format!("moving {} into place", dir.display()))
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", cmd);
    }
    Ok(())
}

/// FNV-1a: a stable content hash for cache keys (std's hasher is not stable across releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
