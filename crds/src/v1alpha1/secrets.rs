//! `spec.secrets`: the API's signing keys and Centrifugo's secrets.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// Where each secret comes from. A secret with no source is generated once by the operator,
/// stored in the Secret `<name>-generated`, and kept (never regenerated on restart).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretsSpec {
    /// HS256 key that signs the API's access tokens (`JWT_SECRET`).
    #[serde(default)]
    pub jwt_secret: SecretSource,
    /// HMAC key for Centrifugo connection and subscription tokens (`CENTRIFUGO_TOKEN_SECRET`).
    #[serde(default)]
    pub centrifugo_token_secret: SecretSource,
    /// Key of Centrifugo's HTTP API, used by the API to publish (`CENTRIFUGO_API_KEY`).
    #[serde(default)]
    pub centrifugo_api_key: SecretSource,
    /// Bearer key guarding the API's `/admin` routes (`ADMIN_API_KEY`).
    #[serde(default)]
    pub admin_api_key: SecretSource,
}

/// One secret value: from an existing Secret, from AWS Secrets Manager, or (neither) generated.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!(has(self.existingSecret) && has(self.secretsManager))")
    .message("set at most one of existingSecret or secretsManager (neither: the operator generates the value)"))]
#[serde(rename_all = "camelCase")]
pub struct SecretSource {
    /// A key of an existing Secret in the resource's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_secret: Option<SecretKeySource>,
    /// An AWS Secrets Manager secret: the whole string, or one key of a JSON secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<SecretsManagerKeySource>,
}

/// A key of an existing Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySource {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = schema::OBJECT_NAME))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A secret in AWS Secrets Manager.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretsManagerKeySource {
    /// Name or ARN of the secret, e.g. `chatsdk/redis/auth-token`.
    #[schemars(length(min = 1, max = 2048))]
    pub secret_id: String,
    /// For a JSON secret, the key whose value to use; unset means the whole secret string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_key: Option<String>,
    /// AWS region of the secret; defaults to the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// How often the secret is read again to pick up rotations.
    #[serde(default = "default_refresh_interval")]
    #[schemars(regex(pattern = schema::DURATION))]
    pub refresh_interval: String,
}

fn default_refresh_interval() -> String {
    "1h".into()
}
