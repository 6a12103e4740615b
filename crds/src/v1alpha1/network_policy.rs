//! `spec.networkPolicy`: default deny for the instance's pods, then only what ChatSDK needs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// NetworkPolicies around the API, Centrifugo and job pods of this instance.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Create the policies (cannot be disabled under the `hipaa` profile).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Who may reach the API and Centrifugo's WebSocket port: the ingress controller's pods.
    #[serde(default)]
    pub ingress_from: IngressFromSpec,
    /// Where PostgreSQL is.
    #[serde(default)]
    pub database_egress: DatabaseEgressSpec,
    /// Where Redis is (used only when Centrifugo has Redis).
    #[serde(default)]
    pub redis_egress: RedisEgressSpec,
    /// Allow DNS lookups (UDP and TCP 53) to kube-system.
    #[serde(default = "default_true")]
    pub dns_egress: bool,
}

impl Default for NetworkPolicySpec {
    fn default() -> Self {
        Self {
            enabled: true,
            ingress_from: IngressFromSpec::default(),
            database_egress: DatabaseEgressSpec::default(),
            redis_egress: RedisEgressSpec::default(),
            dns_egress: true,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Peers allowed in: pods matching `podSelector` in namespaces matching `namespaceSelector`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressFromSpec {
    /// Namespaces of the ingress controller (default: `kubernetes.io/metadata.name: ingress-nginx`).
    #[serde(default = "default_ingress_namespace")]
    pub namespace_selector: LabelSelector,
    /// Pods of the ingress controller (default: `app.kubernetes.io/name: ingress-nginx`).
    #[serde(default = "default_ingress_pods")]
    pub pod_selector: LabelSelector,
}

impl Default for IngressFromSpec {
    fn default() -> Self {
        Self {
            namespace_selector: default_ingress_namespace(),
            pod_selector: default_ingress_pods(),
        }
    }
}

fn selector(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some([(key.to_owned(), value.to_owned())].into()),
        ..LabelSelector::default()
    }
}
fn default_ingress_namespace() -> LabelSelector {
    selector("kubernetes.io/metadata.name", "ingress-nginx")
}
fn default_ingress_pods() -> LabelSelector {
    selector("app.kubernetes.io/name", "ingress-nginx")
}

/// Egress to PostgreSQL: by CIDR (RDS in the VPC) and/or by in-cluster pod selector.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseEgressSpec {
    /// CIDRs of the database subnets, e.g. the VPC's private subnets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Database pods, for an in-cluster PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Namespaces of those pods (default: the resource's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// PostgreSQL port. With neither CIDRs nor selectors, egress is open on this port only.
    #[serde(default = "default_postgres_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

impl Default for DatabaseEgressSpec {
    fn default() -> Self {
        Self {
            cidrs: Vec::new(),
            pod_selector: None,
            namespace_selector: None,
            port: default_postgres_port(),
        }
    }
}

fn default_postgres_port() -> i32 {
    5432
}

/// Egress to Redis: by CIDR and/or pod selector.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RedisEgressSpec {
    /// CIDRs of the Redis subnets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    /// Redis pods, for an in-cluster Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Namespaces of those pods (default: the resource's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Redis port.
    #[serde(default = "default_redis_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

impl Default for RedisEgressSpec {
    fn default() -> Self {
        Self {
            cidrs: Vec::new(),
            pod_selector: None,
            namespace_selector: None,
            port: default_redis_port(),
        }
    }
}

fn default_redis_port() -> i32 {
    6379
}
