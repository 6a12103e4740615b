//! `spec.centrifugo`: the real-time WebSocket server.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::api::ResourcesSpec;
use super::schema;
use super::secrets::SecretSource;

/// Centrifugo: clients hold WebSocket connections to it; the API publishes through its HTTP API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.replicas == 1 || has(self.redis)")
    .message("replicas above 1 need spec.centrifugo.redis: the in-memory engine does not share subscriptions between pods"))]
#[serde(rename_all = "camelCase")]
pub struct CentrifugoSpec {
    /// Deploy Centrifugo (disable only if real time is provided elsewhere).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Container image of Centrifugo v6.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1), regex(pattern = schema::IMAGE))]
    pub image: String,
    /// Number of Centrifugo pods; more than one needs Redis.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 20))]
    pub replicas: i32,
    /// CPU and memory of each Centrifugo pod.
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Browser origins allowed to open WebSocket connections (empty: same origin only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// Redis (e.g. ElastiCache) as Centrifugo's engine, for several replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisSpec>,
}

impl Default for CentrifugoSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            image: default_image(),
            replicas: default_replicas(),
            resources: ResourcesSpec::default(),
            allowed_origins: Vec::new(),
            redis: None,
        }
    }
}

/// The image the operator deploys when none is given.
pub const DEFAULT_CENTRIFUGO_IMAGE: &str = "centrifugo/centrifugo:v6.5.0";

fn default_true() -> bool {
    true
}
fn default_image() -> String {
    DEFAULT_CENTRIFUGO_IMAGE.to_owned()
}
fn default_replicas() -> i32 {
    1
}

/// A Redis server for Centrifugo's engine.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.authToken) || has(self.authToken.existingSecret) || has(self.authToken.secretsManager)")
    .message("authToken must name an existingSecret or a secretsManager secret (a Redis token cannot be generated)"))]
#[serde(rename_all = "camelCase")]
pub struct RedisSpec {
    /// `host:port` of the Redis primary endpoint.
    #[schemars(regex(pattern = r"^[A-Za-z0-9.-]+:[0-9]{1,5}$"))]
    pub address: String,
    /// Connect with TLS (`rediss://`); ElastiCache with transit encryption needs it.
    #[serde(default = "default_true")]
    pub tls: bool,
    /// The Redis AUTH token (the guide keeps it in Secrets Manager as `chatsdk/redis/auth-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<SecretSource>,
}
