//! `status`: what the operator observed, in Kubernetes conventions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a ChatSDKDeployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChatSDKDeploymentStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One-word summary: Pending, Progressing, Ready, Degraded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Ready, ApiAvailable, CentrifugoAvailable, SecretsSynced, DatabaseCompliant,
    /// NetworkPolicyApplied, RetentionScheduled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Ready and desired API replicas, e.g. `2/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_replicas: Option<String>,
    /// In-cluster URL of the API Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_endpoint: Option<String>,
    /// In-cluster WebSocket URL of Centrifugo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centrifugo_endpoint: Option<String>,
    /// Fingerprint of the secret versions in use (Secrets Manager VersionIds and Secret
    /// revisions); a change rolls the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_version: Option<String>,
    /// The API image whose database migration succeeded; the Deployment never runs ahead of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_image: Option<String>,
    /// When the retention job last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retention_run: Option<Time>,
    /// Results of the compliance checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compliance_findings: Vec<ComplianceFinding>,
}

/// One-word summary of the resource's state.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, nothing running yet.
    Pending,
    /// Children are being created or rolled out.
    Progressing,
    /// Everything is available and compliant.
    Ready,
    /// Running, but something needs attention (see the conditions).
    Degraded,
    /// The spec cannot be realised until it is changed (see the conditions).
    Failed,
}

/// The result of one compliance check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceFinding {
    /// What was checked, e.g. `StorageEncrypted`.
    pub check: String,
    /// Whether the check passed.
    pub passed: bool,
    /// What was found, in words.
    pub message: String,
}

/// Condition types, as constants so the operator and tests cannot misspell them.
pub mod condition_types {
    pub const READY: &str = "Ready";
    pub const API_AVAILABLE: &str = "ApiAvailable";
    pub const CENTRIFUGO_AVAILABLE: &str = "CentrifugoAvailable";
    pub const SECRETS_SYNCED: &str = "SecretsSynced";
    pub const DATABASE_COMPLIANT: &str = "DatabaseCompliant";
    pub const NETWORK_POLICY_APPLIED: &str = "NetworkPolicyApplied";
    pub const RETENTION_SCHEDULED: &str = "RetentionScheduled";
}
