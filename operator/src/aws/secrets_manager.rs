//! Secrets Manager reads (`GetSecretValue`), cached per secret and region.

use std::time::Duration;

use super::{Aws, AwsError};

/// A secret's value and the VersionId it came from. Never printed.
#[derive(Clone)]
pub struct SecretValue {
    pub value: String,
    pub version_id: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &"<redacted>")
            .field("version_id", &self.version_id)
            .finish()
    }
}

impl Aws {
    /// The current value of `secret_id`, read at most once per `refresh` (unless `force`).
    pub async fn secret(
        &self,
        secret_id: &str,
        region: Option<&str>,
        refresh: Duration,
        force: bool,
    ) -> Result<SecretValue, AwsError> {
        let key = format!("{}|{secret_id}", region.unwrap_or(""));
        self.secrets
            .get(&key, refresh, force, || async {
                let client = aws_sdk_secretsmanager::Client::new(&self.config(region).await);
                let result = client.get_secret_value().secret_id(secret_id).send().await;
                self.metrics.count_aws_call("GetSecretValue", result.is_ok());
                let output = result.map_err(|err| AwsError::classify("GetSecretValue", secret_id, &err))?;
                let value = output
                    .secret_string()
                    .map(str::to_owned)
                    .ok_or_else(|| AwsError::Other {
                        operation: "GetSecretValue",
                        resource: secret_id.to_owned(),
                        code: "BinarySecret".into(),
                        message: "the secret holds binary data; ChatSDK secrets are strings".into(),
                    })?;
                Ok(SecretValue {
                    value,
                    version_id: output.version_id().unwrap_or_default().to_owned(),
                })
            })
            .await
    }
}
