//! Support library for tests that run against the local test environment
//! (`cargo xtask testenv up`): real Kubernetes, PostgreSQL, AWS (moto) and Centrifugo.
//!
//! Tests call [`TestEnv::get`] and then ask for clients. When the environment is not running,
//! it panics with a message naming the command to run, so a test is never silently skipped.

pub mod endpoints;

use std::path::PathBuf;
use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use kube::config::{KubeConfigOptions, Kubeconfig};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub use endpoints::{CentrifugoEndpoints, Endpoints};

/// Environment variable naming the endpoints file (set by `cargo xtask test`).
pub const ENDPOINTS_VAR: &str = "CHATSDK_TESTENV";

#[derive(Debug, thiserror::Error)]
pub enum TestEnvError {
    #[error(
        "the test environment is not running (no {path}): start it with `cargo xtask testenv up`, \
         or run everything with `cargo xtask test`"
    )]
    NotRunning { path: PathBuf },
    #[error("the endpoints file {path} is unreadable: {source}")]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("kubeconfig of the test environment: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
}

/// The running test environment.
#[derive(Debug)]
pub struct TestEnv {
    pub endpoints: Endpoints,
}

impl TestEnv {
    /// The environment described by the endpoints file, loaded once per test binary.
    ///
    /// # Panics
    /// When the environment is not running: the message says how to start it.
    pub fn get() -> &'static TestEnv {
        static ENV: OnceLock<TestEnv> = OnceLock::new();
        ENV.get_or_init(|| match Self::load() {
            Ok(env) => env,
            Err(err) => panic!("{err}"),
        })
    }

    pub fn load() -> Result<TestEnv, TestEnvError> {
        let path = endpoints_path();
        let text =
            std::fs::read_to_string(&path).map_err(|_| TestEnvError::NotRunning { path: path.clone() })?;
        let endpoints =
            serde_json::from_str(&text).map_err(|source| TestEnvError::Malformed { path, source })?;
        Ok(TestEnv { endpoints })
    }

    /// Client configuration for the cluster-admin identity.
    pub async fn kube_config(&self) -> Result<kube::Config, TestEnvError> {
        let kubeconfig = Kubeconfig::read_from(&self.endpoints.kubernetes.kubeconfig)?;
        Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
    }

    /// A `kube::Client` with cluster-admin rights.
    pub async fn kube_client(&self) -> Result<kube::Client, TestEnvError> {
        Ok(kube::Client::try_from(self.kube_config().await?)?)
    }

    /// A `kube::Client` that authenticates with a bearer token only (e.g. a ServiceAccount's).
    pub async fn kube_client_with_token(&self, token: &str) -> Result<kube::Client, TestEnvError> {
        let mut config = self.kube_config().await?;
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.to_owned().into()),
            ..Default::default()
        };
        Ok(kube::Client::try_from(config)?)
    }

    /// Pool on the `chatsdk` database as its (non-superuser) owner, over TLS.
    pub async fn pg_pool(&self) -> Result<PgPool, TestEnvError> {
        Ok(PgPoolOptions::new()
            .max_connections(8)
            .connect(&self.endpoints.postgres.url)
            .await?)
    }

    /// Pool as the PostgreSQL superuser, over TLS.
    pub async fn pg_admin_pool(&self) -> Result<PgPool, TestEnvError> {
        Ok(PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.endpoints.postgres.admin_url)
            .await?)
    }

    /// AWS configuration that sends every SDK client to moto, as `AWS_ENDPOINT_URL` would.
    pub async fn aws_config(&self) -> SdkConfig {
        let aws = &self.endpoints.aws;
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(aws.region.clone()))
            .endpoint_url(&aws.endpoint_url)
            .credentials_provider(Credentials::new(
                &aws.access_key_id,
                &aws.secret_access_key,
                None,
                None,
                "chatsdk-testenv",
            ))
            .http_client(http_client)
            .load()
            .await
    }

    pub fn centrifugo(&self) -> &CentrifugoEndpoints {
        &self.endpoints.centrifugo
    }
}

fn endpoints_path() -> PathBuf {
    std::env::var_os(ENDPOINTS_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("testenv")
                .join("endpoints.json")
        })
}

/// Polls `check` every 250 ms until it returns `Some`, panicking with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// A name unique to this test run, for namespaces, secrets and databases.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{:x}{:x}",
        std::process::id() % 0xfff,
        (nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed)) % 0xfffff
    )
}
