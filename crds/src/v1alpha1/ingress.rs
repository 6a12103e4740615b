//! `spec.ingress`: an optional Ingress for the API and Centrifugo's WebSocket endpoint.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// An Ingress routing `https://<host>/api`, `/admin` and `/health` to the API and
/// `/connection` to Centrifugo.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!self.enabled || has(self.host)")
    .message("host is required when enabled is true"))]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Create the Ingress.
    #[serde(default)]
    pub enabled: bool,
    /// IngressClass name.
    #[serde(default = "default_class", skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Public host name, e.g. `chat.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = schema::OBJECT_NAME))]
    pub host: Option<String>,
    /// Secret holding the TLS certificate for `host` (required under `hipaa`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = schema::OBJECT_NAME))]
    pub tls_secret_name: Option<String>,
    /// Extra annotations for the ingress controller.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn default_class() -> Option<String> {
    Some("nginx".into())
}
