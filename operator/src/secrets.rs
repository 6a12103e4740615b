//! Resolves the values of the instance Secret: the database URL (with the required `sslmode`),
//! the API's and Centrifugo's keys from existing Secrets, and values the operator generates
//! once and keeps in `<name>-generated`.
//!
//! Errors name the Secret and key that are wrong, never a value.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_crds::v1alpha1::{SecretSource, SslMode};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

/// Keys of the instance Secret, as the server reads them from its environment.
pub mod keys {
    pub const DATABASE_URL: &str = "DATABASE_URL";
    pub const JWT_SECRET: &str = "JWT_SECRET";
    pub const CENTRIFUGO_TOKEN_SECRET: &str = "CENTRIFUGO_TOKEN_SECRET";
    pub const CENTRIFUGO_API_KEY: &str = "CENTRIFUGO_API_KEY";
    pub const ADMIN_API_KEY: &str = "ADMIN_API_KEY";
    pub const REDIS_URL: &str = "REDIS_URL";
    pub const REDIS_AUTH_TOKEN: &str = "REDIS_AUTH_TOKEN";
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("Secret {name} (referenced by {field}) does not exist")]
    SecretNotFound { field: String, name: String },
    #[error("Secret {name} has no key {key} (referenced by {field})")]
    KeyMissing {
        field: String,
        name: String,
        key: String,
    },
    #[error("{field}: the value in Secret {name} key {key} is not a PostgreSQL URL: {reason}")]
    InvalidDatabaseUrl {
        field: String,
        name: String,
        key: String,
        reason: String,
    },
    #[error("{field}: AWS Secrets Manager sources are not supported by this operator version yet")]
    SecretsManagerUnsupported { field: String },
    #[error("reading Secret {name}: {source}")]
    Kube {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl SecretsError {
    /// The condition reason for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::KeyMissing { .. } => "SecretKeyMissing",
            Self::InvalidDatabaseUrl { .. } => "InvalidDatabaseUrl",
            Self::SecretsManagerUnsupported { .. } => "SecretsManagerUnsupported",
            Self::Kube { .. } => "SecretReadFailed",
        }
    }
}

/// The resolved values.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Data of the instance Secret.
    pub data: BTreeMap<String, String>,
    /// Everything in `<name>-generated` (kept values plus any generated now).
    pub generated: BTreeMap<String, String>,
    /// Fingerprint of the source versions (resourceVersions of the Secrets read).
    pub version: String,
}

/// Reads Secrets of the resource's namespace, remembering the revision of each one read.
pub struct SecretReader {
    api: Api<Secret>,
    versions: std::sync::Mutex<Vec<String>>,
}

impl SecretReader {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            versions: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The value of `key` in Secret `name`, which `field` of the spec references.
    async fn key(&self, field: &str, name: &str, key: &str) -> Result<String, SecretsError> {
        let secret = self
            .get(name)
            .await?
            .ok_or_else(|| SecretsError::SecretNotFound {
                field: field.into(),
                name: name.into(),
            })?;
        if let Ok(mut versions) = self.versions.lock() {
            versions.push(format!(
                "{name}={}",
                secret.resource_version().unwrap_or_default()
            ));
        }
        value(&secret, key).ok_or_else(|| SecretsError::KeyMissing {
            field: field.into(),
            name: name.into(),
            key: key.into(),
        })
    }

    async fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        self.api.get_opt(name).await.map_err(|source| SecretsError::Kube {
            name: name.to_owned(),
            source,
        })
    }
}

pub async fn resolve(cr: &ChatSDKDeployment, reader: &SecretReader) -> Result<Resolved, SecretsError> {
    let spec = &cr.spec;
    let generated_name = crate::labels::names::generated_secret(cr);
    let mut generated = match reader.get(&generated_name).await? {
        Some(secret) => decode(&secret),
        None => BTreeMap::new(),
    };

    let mut data = BTreeMap::new();
    let database_url = match (&spec.database.existing_secret, &spec.database.secrets_manager) {
        (Some(source), _) => {
            let field = "spec.database.existingSecret";
            let url = reader.key(field, &source.name, &source.key).await?;
            with_ssl_mode(&url, spec.database.ssl_mode).map_err(|reason| {
                SecretsError::InvalidDatabaseUrl {
                    field: field.into(),
                    name: source.name.clone(),
                    key: source.key.clone(),
                    reason,
                }
            })?
        }
        (None, _) => {
            return Err(SecretsError::SecretsManagerUnsupported {
                field: "spec.database.secretsManager".into(),
            });
        }
    };
    data.insert(keys::DATABASE_URL.to_owned(), database_url);

    let sources: [(&str, &str, &SecretSource); 4] = [
        (
            keys::JWT_SECRET,
            "spec.secrets.jwtSecret",
            &spec.secrets.jwt_secret,
        ),
        (
            keys::CENTRIFUGO_TOKEN_SECRET,
            "spec.secrets.centrifugoTokenSecret",
            &spec.secrets.centrifugo_token_secret,
        ),
        (
            keys::CENTRIFUGO_API_KEY,
            "spec.secrets.centrifugoApiKey",
            &spec.secrets.centrifugo_api_key,
        ),
        (
            keys::ADMIN_API_KEY,
            "spec.secrets.adminApiKey",
            &spec.secrets.admin_api_key,
        ),
    ];
    for (key, field, source) in sources {
        let value = match (&source.existing_secret, &source.secrets_manager) {
            (Some(existing), _) => reader.key(field, &existing.name, &existing.key).await?,
            (None, Some(_)) => return Err(SecretsError::SecretsManagerUnsupported { field: field.into() }),
            (None, None) => generated.entry(key.to_owned()).or_insert_with(generate).clone(),
        };
        data.insert(key.to_owned(), value);
    }

    if let Some(redis) = &spec.centrifugo.redis {
        let field = "spec.centrifugo.redis.authToken";
        let token = match redis.auth_token.as_ref().and_then(|t| t.existing_secret.as_ref()) {
            Some(existing) => Some(reader.key(field, &existing.name, &existing.key).await?),
            None if redis.auth_token.is_some() => {
                return Err(SecretsError::SecretsManagerUnsupported { field: field.into() });
            }
            None => None,
        };
        let scheme = if redis.tls { "rediss" } else { "redis" };
        let url = match &token {
            Some(token) => format!("{scheme}://:{}@{}", urlencode(token), redis.address),
            None => format!("{scheme}://{}", redis.address),
        };
        data.insert(keys::REDIS_URL.to_owned(), url);
        if let Some(token) = token {
            data.insert(keys::REDIS_AUTH_TOKEN.to_owned(), token);
        }
    }

    // Keep only generated values still in use, so a switch to another source drops them.
    generated.retain(|key, value| data.get(key) == Some(value));
    let mut versions = reader.versions.lock().map(|v| v.clone()).unwrap_or_default();
    versions.sort();
    Ok(Resolved {
        data,
        generated,
        version: crate::resources::fingerprint(versions.join(",").as_bytes())[..16].to_owned(),
    })
}

fn decode(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| String::from_utf8(v.0.clone()).ok().map(|v| (k.clone(), v)))
        .collect()
}

fn value(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone())
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// 32 random bytes, hex: for HMAC keys and API keys.
fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sets (or replaces) `sslmode` in a PostgreSQL URL.
pub fn with_ssl_mode(url: &str, mode: SslMode) -> Result<String, String> {
    let mut parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "scheme `{}` is not postgres:// or postgresql://",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".into());
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "sslmode")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("sslmode", mode.as_str());
    Ok(parsed.into())
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_mode_is_added_or_replaced() {
        assert_eq!(
            with_ssl_mode("postgres://u:p@db:5432/chat", SslMode::Require).as_deref(),
            Ok("postgres://u:p@db:5432/chat?sslmode=require")
        );
        assert_eq!(
            with_ssl_mode(
                "postgresql://u:p@db/chat?sslmode=disable&application_name=x",
                SslMode::VerifyFull
            )
            .as_deref(),
            Ok("postgresql://u:p@db/chat?application_name=x&sslmode=verify-full")
        );
    }

    #[test]
    fn non_postgres_urls_are_refused_without_echoing_them() {
        let err = with_ssl_mode("mysql://u:secret@db/chat", SslMode::Require).expect_err("mysql");
        assert!(err.contains("mysql") && !err.contains("secret"), "{err}");
        assert!(with_ssl_mode("not a url", SslMode::Require).is_err());
    }
}
