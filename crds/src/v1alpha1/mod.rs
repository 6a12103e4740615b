//! `chatsdk.io/v1alpha1`.

mod api;
mod centrifugo;
mod compliance;
mod database;
mod ingress;
mod migration;
mod network_policy;
mod retention;
mod scheduling;
mod secrets;
mod status;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use api::{ApiSpec, AutoscalingSpec, LogLevel, PodDisruptionBudgetSpec, ResourcesSpec};
pub use centrifugo::{CentrifugoSpec, CentrifugoVersion, RedisSpec};
pub use compliance::{ComplianceProfile, ComplianceSpec};
pub use database::{DatabaseSpec, ExistingSecretSource, RdsSpec, SecretsManagerDatabaseSource, SslMode};
pub use ingress::IngressSpec;
pub use migration::MigrationSpec;
pub use network_policy::{DatabaseEgressSpec, IngressFromSpec, NetworkPolicySpec, RedisEgressSpec};
pub use retention::RetentionSpec;
pub use scheduling::SchedulingSpec;
pub use secrets::{SecretKeySource, SecretSource, SecretsManagerKeySource, SecretsSpec};
pub use status::{ChatSDKDeploymentStatus, ComplianceFinding, Phase, condition_types};

/// A ChatSDK chat backend: the chat API, Centrifugo, their secrets, network policies, database
/// migrations and message retention, kept converged by the chatsdk operator.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "chatsdk.io",
    version = "v1alpha1",
    kind = "ChatSDKDeployment",
    plural = "chatsdkdeployments",
    singular = "chatsdkdeployment",
    shortname = "chatsdk",
    category = "chatsdk",
    namespaced,
    status = "ChatSDKDeploymentStatus",
    cel,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"API","type":"string","description":"Ready/desired API replicas","jsonPath":".status.apiReplicas"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("!(self.compliance.profile == 'hipaa' && self.database.sslMode == 'disable')")
        .message("`disable` is not allowed when spec.compliance.profile is `hipaa`; use `require`, `verify-ca` or `verify-full`")
        .field_path(".database.sslMode"),
    validation = Rule::new("!(self.compliance.profile == 'hipaa' && !self.networkPolicy.enabled)")
        .message("network policies cannot be disabled when spec.compliance.profile is `hipaa`")
        .field_path(".networkPolicy.enabled"),
    validation = Rule::new("!(self.compliance.profile == 'hipaa' && self.ingress.enabled && !has(self.ingress.tlsSecretName))")
        .message("TLS is required when spec.compliance.profile is `hipaa`: name the certificate's Secret")
        .field_path(".ingress.tlsSecretName"),
    validation = Rule::new("!(self.compliance.profile == 'hipaa' && !self.retention.archive)")
        .message("messages must be archived before deletion when spec.compliance.profile is `hipaa`")
        .field_path(".retention.archive"))]
#[serde(rename_all = "camelCase")]
pub struct ChatSDKDeploymentSpec {
    /// The chat API server (`chatsdk-server`).
    #[serde(default)]
    pub api: ApiSpec,
    /// Centrifugo, the real-time WebSocket server the API publishes to.
    #[serde(default)]
    pub centrifugo: CentrifugoSpec,
    /// Where the PostgreSQL connection comes from, and how it must be secured.
    pub database: DatabaseSpec,
    /// Sources of the API's signing keys and Centrifugo's secrets.
    #[serde(default)]
    pub secrets: SecretsSpec,
    /// NetworkPolicies around the instance's pods (default deny, then only what ChatSDK needs).
    #[serde(default)]
    pub network_policy: NetworkPolicySpec,
    /// The database migration Job run for each new API image.
    #[serde(default)]
    pub migration: MigrationSpec,
    /// The message-retention CronJob.
    #[serde(default)]
    pub retention: RetentionSpec,
    /// An optional Ingress in front of the API and Centrifugo's WebSocket endpoint.
    #[serde(default)]
    pub ingress: IngressSpec,
    /// The compliance profile the operator enforces and checks.
    #[serde(default)]
    pub compliance: ComplianceSpec,
}

/// Shared schema fragments.
pub(crate) mod schema {
    /// A DNS-1123 subdomain: the name of a Secret or any other object.
    pub const OBJECT_NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    /// An image reference without whitespace, e.g. `ghcr.io/org/chatsdk-server:1.2.3`.
    pub const IMAGE: &str = r"^[^\s]+$";
    /// A Go-style duration of hours, minutes and seconds, e.g. `1h`, `30m`, `1h30m`.
    pub const DURATION: &str = r"^([0-9]+(h|m|s))+$";
}
