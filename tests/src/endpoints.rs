//! The file `cargo xtask testenv up` writes to describe the running test environment.
//!
//! Shared verbatim by the xtask (which writes it) and the test support library (which reads
//! it), so the two can never disagree about its shape.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything a test needs to reach the local test environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoints {
    /// Directory holding the environment's state, logs and generated certificates.
    pub state_dir: PathBuf,
    pub kubernetes: KubernetesEndpoints,
    pub postgres: PostgresEndpoints,
    pub aws: AwsEndpoints,
    pub centrifugo: CentrifugoEndpoints,
    pub tools: ToolPaths,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesEndpoints {
    /// Kubeconfig with a cluster-admin (`system:masters`) client certificate.
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>` of kube-apiserver.
    pub server: String,
    /// The API server's audit log (JSON lines, `RequestResponse` stage only), for counting writes.
    pub audit_log: PathBuf,
    /// Version of the control plane binaries, e.g. `v1.36.3`.
    pub version: String,
    /// Names of the kwok fake nodes that run the pods.
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostgresEndpoints {
    pub host: String,
    pub port: u16,
    /// Superuser connection over TLS (`sslmode=require`).
    pub admin_url: String,
    /// Database `chatsdk` owned by the non-superuser role `chatsdk`, over TLS.
    pub url: String,
    /// The server's self-signed certificate (PEM), for `sslmode=verify-full` checks.
    pub ca_cert: PathBuf,
    /// Directory of the PostgreSQL binaries (`pgbench`, `psql`).
    pub bin_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsEndpoints {
    /// moto server, to be used as `AWS_ENDPOINT_URL`.
    pub endpoint_url: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CentrifugoEndpoints {
    /// `http://127.0.0.1:<port>`: HTTP API under `/api`, WebSocket under `/connection/websocket`.
    pub url: String,
    pub api_url: String,
    pub websocket_url: String,
    pub api_key: String,
    pub token_hmac_secret: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolPaths {
    pub helm: PathBuf,
    pub kubectl: PathBuf,
    /// moto's `moto_server`, for tests that need a moto of their own (e.g. with IAM enforced).
    pub moto_server: PathBuf,
    /// The Centrifugo binary the environment runs, for tests that run one with a config of their own.
    pub centrifugo: PathBuf,
    /// Debian's `redis-server`, for tests that start a Redis of their own.
    pub redis_server: PathBuf,
}
