//! `spec.database`: where the PostgreSQL connection comes from and how it is secured.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// The PostgreSQL connection: exactly one source, the TLS mode the operator enforces on it, and
/// optionally the RDS instance whose compliance the operator checks.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.secretsManager) != has(self.existingSecret)")
    .message("set exactly one of secretsManager or existingSecret"))]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// Credentials from an AWS Secrets Manager secret holding the JSON
    /// `{username, password, engine, host, port, dbname}`; the operator composes DATABASE_URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<SecretsManagerDatabaseSource>,
    /// A complete `postgres://` URL in an existing Secret of the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_secret: Option<ExistingSecretSource>,
    /// TLS mode written into DATABASE_URL (overriding any in the source).
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// The RDS instance behind the connection, for compliance checks (encryption, backups, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rds: Option<RdsSpec>,
}

/// Database credentials in AWS Secrets Manager.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretsManagerDatabaseSource {
    /// Name or ARN of the secret, e.g. `chatsdk/postgres/password`.
    #[schemars(length(min = 1, max = 2048))]
    pub secret_id: String,
    /// AWS region of the secret; defaults to the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// How often the secret is read again to pick up rotations (e.g. `1h`, `15m`).
    #[serde(default = "default_refresh_interval")]
    #[schemars(regex(pattern = schema::DURATION))]
    pub refresh_interval: String,
}

fn default_refresh_interval() -> String {
    "1h".into()
}

/// A key of an existing Secret in the resource's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExistingSecretSource {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = schema::OBJECT_NAME))]
    pub name: String,
    /// Key holding the `postgres://` URL.
    #[serde(default = "default_url_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_url_key() -> String {
    "DATABASE_URL".into()
}

/// PostgreSQL `sslmode`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS: refused under the `hipaa` profile.
    Disable,
    /// TLS, without verifying the server certificate.
    #[default]
    Require,
    /// TLS, verifying the certificate chain.
    VerifyCa,
    /// TLS, verifying the chain and the host name.
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// An Amazon RDS instance to check for compliance.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RdsSpec {
    /// The DB instance identifier, e.g. `chatsdk-hipaa`.
    #[schemars(length(min = 1, max = 63))]
    pub instance_identifier: String,
    /// AWS region of the instance; defaults to the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}
