//! `spec.api`: the chat API server Deployment and what scales and protects it.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scheduling::SchedulingSpec;
use super::schema;

/// The chat API server (`chatsdk-server serve`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    /// Container image of the chat API server. A new image first runs the database migration Job,
    /// and the Deployment moves to it only when that Job has succeeded.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1), regex(pattern = schema::IMAGE))]
    pub image: String,
    /// Number of API pods (ignored while `autoscaling` is set).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: i32,
    /// CPU and memory requests and limits of each API pod.
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Port the API listens on (the deployment guide's NetworkPolicy opens 5501).
    #[serde(default = "default_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// Log level of the API server (`LOG_LEVEL`).
    #[serde(default)]
    pub log_level: LogLevel,
    /// Minutes of inactivity before an access token expires (`SESSION_TIMEOUT_MINUTES`).
    #[serde(default = "default_session_timeout")]
    #[schemars(range(min = 1, max = 1440))]
    pub session_timeout_minutes: i32,
    /// Refuse tokens whose claims do not show multi-factor authentication (`REQUIRE_MFA`).
    #[serde(default)]
    pub require_mfa: bool,
    /// Horizontal pod autoscaling on CPU; when set, it owns the replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// A PodDisruptionBudget for the API pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetSpec>,
    /// Where the API pods run. By default they spread across zones and nodes (a preference).
    #[serde(default)]
    pub scheduling: SchedulingSpec,
}

impl Default for ApiSpec {
    fn default() -> Self {
        Self {
            image: default_image(),
            replicas: default_replicas(),
            resources: ResourcesSpec::default(),
            port: default_port(),
            log_level: LogLevel::default(),
            session_timeout_minutes: default_session_timeout(),
            require_mfa: false,
            autoscaling: None,
            pod_disruption_budget: None,
            scheduling: SchedulingSpec::default(),
        }
    }
}

/// The image the operator deploys when none is given.
pub const DEFAULT_API_IMAGE: &str = "ghcr.io/chatsdk/chatsdk-server:0.1.0";

fn default_image() -> String {
    DEFAULT_API_IMAGE.to_owned()
}
fn default_replicas() -> i32 {
    2
}
fn default_port() -> i32 {
    5501
}
fn default_session_timeout() -> i32 {
    15
}

/// Log level of a ChatSDK component.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Requests and limits as Kubernetes quantities (e.g. `250m`, `256Mi`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesSpec {
    /// CPU request.
    #[serde(default = "default_cpu_request")]
    #[schemars(length(min = 1))]
    pub cpu_request: String,
    /// Memory request.
    #[serde(default = "default_memory_request")]
    #[schemars(length(min = 1))]
    pub memory_request: String,
    /// CPU limit; unset means no CPU limit (throttling hurts latency more than it protects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    /// Memory limit.
    #[serde(default = "default_memory_limit")]
    #[schemars(length(min = 1))]
    pub memory_limit: String,
}

impl Default for ResourcesSpec {
    fn default() -> Self {
        Self {
            cpu_request: default_cpu_request(),
            memory_request: default_memory_request(),
            cpu_limit: None,
            memory_limit: default_memory_limit(),
        }
    }
}

fn default_cpu_request() -> String {
    "100m".into()
}
fn default_memory_request() -> String {
    "128Mi".into()
}
fn default_memory_limit() -> String {
    "512Mi".into()
}

/// CPU-based horizontal autoscaling of the API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("minReplicas must not exceed maxReplicas"))]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    /// Fewest API pods.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub min_replicas: i32,
    /// Most API pods.
    #[schemars(range(min = 1, max = 100))]
    pub max_replicas: i32,
    /// Average CPU utilisation (percent of the request) to aim for.
    #[serde(default = "default_target_cpu", rename = "targetCPUUtilization")]
    #[schemars(range(min = 10, max = 100))]
    pub target_cpu_utilization: i32,
}

fn default_min_replicas() -> i32 {
    2
}
fn default_target_cpu() -> i32 {
    70
}

/// How many API pods must stay up during voluntary disruptions (node drains, upgrades).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSpec {
    /// Minimum available API pods.
    #[serde(default = "default_min_available")]
    #[schemars(range(min = 0, max = 100))]
    pub min_available: i32,
}

fn default_min_available() -> i32 {
    1
}
