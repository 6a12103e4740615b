//! Resolves the values of the instance Secret: the database URL (with the required `sslmode`),
//! the API's and Centrifugo's keys and the Redis token, from existing Secrets or AWS Secrets
//! Manager, and values the operator generates once and keeps in `<name>-generated`.
//!
//! Errors name the Secret and key that are wrong, never a value.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_crds::v1alpha1::{SecretSource, SslMode};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use crate::aws::{Aws, AwsError};

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
    #[error("{field}: {source}")]
    Aws {
        field: String,
        #[source]
        source: AwsError,
    },
    #[error("{field}: Secrets Manager secret {secret} is not a JSON object")]
    MalformedSecret { field: String, secret: String },
    #[error("{field}: Secrets Manager secret {secret} has no key {key}")]
    AwsKeyMissing {
        field: String,
        secret: String,
        key: String,
    },
    #[error("{field}: Secrets Manager secret {secret} has no host, and spec.database.rds gives no endpoint")]
    NoDatabaseHost { field: String, secret: String },
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
            Self::Aws { source, .. } => source.reason(),
            Self::MalformedSecret { .. } => "MalformedSecret",
            Self::AwsKeyMissing { .. } => "SecretKeyMissing",
            Self::NoDatabaseHost { .. } => "NoDatabaseHost",
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
    aws: Arc<Aws>,
    /// Bypass the Secrets Manager cache (the `chatsdk.io/force-sync` annotation changed).
    force: bool,
    versions: std::sync::Mutex<Vec<String>>,
}

impl SecretReader {
    pub fn new(client: kube::Client, namespace: &str, aws: Arc<Aws>, force: bool) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            aws,
            force,
            versions: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A Secrets Manager secret's string, or one key of it when it is JSON.
    async fn secrets_manager(
        &self,
        field: &str,
        secret_id: &str,
        region: Option<&str>,
        refresh_interval: &str,
        json_key: Option<&str>,
    ) -> Result<String, SecretsError> {
        let refresh = parse_duration(refresh_interval).unwrap_or(Duration::from_secs(3600));
        let secret = self
            .aws
            .secret(secret_id, region, refresh, self.force)
            .await
            .map_err(|source| SecretsError::Aws {
                field: field.into(),
                source,
            })?;
        if let Ok(mut versions) = self.versions.lock() {
            versions.push(format!("{secret_id}@{}", secret.version_id));
        }
        match json_key {
            None => Ok(secret.value),
            Some(key) => json_field(
                &parse_json(field, secret_id, &secret.value)?,
                field,
                secret_id,
                key,
            ),
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

/// `rds_endpoint` stands in for a database secret without a host.
pub async fn resolve(
    cr: &ChatSDKDeployment,
    reader: &SecretReader,
    rds_endpoint: Option<&(String, i32)>,
) -> Result<Resolved, SecretsError> {
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
        (None, Some(source)) => {
            let field = "spec.database.secretsManager";
            let text = reader
                .secrets_manager(
                    field,
                    &source.secret_id,
                    source.region.as_deref(),
                    &source.refresh_interval,
                    None,
                )
                .await?;
            database_url(
                &parse_json(field, &source.secret_id, &text)?,
                field,
                &source.secret_id,
                rds_endpoint,
                spec.database.ssl_mode,
            )?
        }
        (None, None) => {
            // The schema's CEL rule makes this unreachable through the API server.
            return Err(SecretsError::SecretNotFound {
                field: "spec.database".into(),
                name: "<none>".into(),
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
            (None, Some(sm)) => {
                reader
                    .secrets_manager(
                        field,
                        &sm.secret_id,
                        sm.region.as_deref(),
                        &sm.refresh_interval,
                        sm.json_key.as_deref(),
                    )
                    .await?
            }
            (None, None) => generated.entry(key.to_owned()).or_insert_with(generate).clone(),
        };
        data.insert(key.to_owned(), value);
    }

    if let Some(redis) = &spec.centrifugo.redis {
        let field = "spec.centrifugo.redis.authToken";
        let token = match redis.auth_token.as_ref().and_then(|t| t.existing_secret.as_ref()) {
            Some(existing) => Some(reader.key(field, &existing.name, &existing.key).await?),
            None => match redis.auth_token.as_ref().and_then(|t| t.secrets_manager.as_ref()) {
                Some(sm) => Some(
                    reader
                        .secrets_manager(
                            field,
                            &sm.secret_id,
                            sm.region.as_deref(),
                            &sm.refresh_interval,
                            sm.json_key.as_deref(),
                        )
                        .await?,
                ),
                None => None,
            },
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
        version: version_summary(&versions),
    })
}

/// What `status.secretsVersion` shows: the Secrets Manager VersionIds in use (`id@version`),
/// and a fingerprint of the Kubernetes Secrets' revisions.
fn version_summary(versions: &[String]) -> String {
    let (aws, kubernetes): (Vec<&String>, Vec<&String>) = versions.iter().partition(|v| v.contains('@'));
    let mut parts: Vec<String> = aws.into_iter().cloned().collect();
    if !kubernetes.is_empty() || parts.is_empty() {
        let joined: Vec<&str> = kubernetes.iter().map(|v| v.as_str()).collect();
        parts.push(format!(
            "secrets:{}",
            &crate::resources::fingerprint(joined.join(",").as_bytes())[..12]
        ));
    }
    parts.join(",")
}

fn parse_json(
    field: &str,
    secret_id: &str,
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, SecretsError> {
    // serde's own message could quote the secret, so it is not passed on.
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(SecretsError::MalformedSecret {
            field: field.into(),
            secret: secret_id.into(),
        }),
    }
}

fn json_field(
    map: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    secret_id: &str,
    key: &str,
) -> Result<String, SecretsError> {
    let missing = || SecretsError::AwsKeyMissing {
        field: field.into(),
        secret: secret_id.into(),
        key: key.into(),
    };
    match map.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        _ => Err(missing()),
    }
}

/// DATABASE_URL from the guide's `{username, password, engine, host, port, dbname}` JSON.
fn database_url(
    creds: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    secret_id: &str,
    rds_endpoint: Option<&(String, i32)>,
    ssl_mode: SslMode,
) -> Result<String, SecretsError> {
    let get = |key: &str| json_field(creds, field, secret_id, key);
    let username = get("username")?;
    let password = get("password")?;
    let dbname = get("dbname")?;
    // Terraform's `endpoint` attribute is `host:port`; a separate port wins.
    let (host, port) = match get("host") {
        Ok(host) => match host.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), p.parse::<u16>().ok()),
            _ => (host, None),
        },
        Err(_) => match rds_endpoint {
            Some((address, port)) => (address.clone(), u16::try_from(*port).ok()),
            None => {
                return Err(SecretsError::NoDatabaseHost {
                    field: field.into(),
                    secret: secret_id.into(),
                });
            }
        },
    };
    let port = get("port")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .or(port)
        .unwrap_or(5432);
    let invalid = || SecretsError::MalformedSecret {
        field: field.into(),
        secret: secret_id.into(),
    };
    let mut url = url::Url::parse("postgres://localhost").map_err(|_| invalid())?;
    url.set_host(Some(&host)).map_err(|_| invalid())?;
    url.set_port(Some(port)).map_err(|_| invalid())?;
    url.set_username(&username).map_err(|_| invalid())?;
    url.set_password(Some(&password)).map_err(|_| invalid())?;
    url.set_path(&dbname);
    url.query_pairs_mut().append_pair("sslmode", ssl_mode.as_str());
    Ok(url.into())
}

/// The shortest refresh interval among the resource's Secrets Manager sources.
pub fn shortest_refresh(cr: &ChatSDKDeployment) -> Option<Duration> {
    let spec = &cr.spec;
    let mut intervals: Vec<&str> = Vec::new();
    intervals.extend(
        spec.database
            .secrets_manager
            .as_ref()
            .map(|s| s.refresh_interval.as_str()),
    );
    for source in [
        &spec.secrets.jwt_secret,
        &spec.secrets.centrifugo_token_secret,
        &spec.secrets.centrifugo_api_key,
        &spec.secrets.admin_api_key,
    ] {
        intervals.extend(
            source
                .secrets_manager
                .as_ref()
                .map(|s| s.refresh_interval.as_str()),
        );
    }
    if let Some(token) = spec.centrifugo.redis.as_ref().and_then(|r| r.auth_token.as_ref()) {
        intervals.extend(
            token
                .secrets_manager
                .as_ref()
                .map(|s| s.refresh_interval.as_str()),
        );
    }
    intervals.into_iter().filter_map(parse_duration).min()
}

/// `1h`, `30m`, `1h30m`, `45s` (the schema's pattern).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            '0'..='9' => number.push(c),
            'h' | 'm' | 's' => {
                let n: u64 = number.parse().ok()?;
                total += n * match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
                number.clear();
            }
            _ => return None,
        }
    }
    (number.is_empty() && total > 0).then(|| Duration::from_secs(total))
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
