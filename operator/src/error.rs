//! Operator errors. Each names what failed and where, never a secret value.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{kind} {name}: {source}")]
    Apply {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("serializing {0}: {1}")]
    Serialize(&'static str, #[source] serde_json::Error),
    #[error("resource has no namespace")]
    NoNamespace,
    #[error("secret sources: {0}")]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The condition reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Apply {
                source: kube::Error::Api(status),
                ..
            }
            | Self::Kube(kube::Error::Api(status)) => match status.code {
                403 => "Forbidden",
                409 => "Conflict",
                422 => "Invalid",
                _ => "ApplyFailed",
            },
            Self::Secrets(err) => err.reason(),
            _ => "ApplyFailed",
        }
    }

    /// How long to wait before the first retry after this error.
    pub fn retry_after(&self) -> Duration {
        match self {
            // Nothing announces a fix made in AWS (a grant, throttling that ended): only a
            // retry notices it. Retrying costs AWS nothing extra, as the secret cache backs
            // off per secret and answers from memory until then.
            Self::Secrets(crate::secrets::SecretsError::Aws { source, .. }) => {
                if source.is_throttling() {
                    Duration::from_secs(10)
                } else {
                    Duration::from_secs(5)
                }
            }
            // Fixing the cause needs a person, and a fixed Secret is watched: retry slowly.
            Self::Secrets(_) | Self::Invalid(_) => Duration::from_secs(60),
            _ => Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsError;
    use crate::secrets::SecretsError;

    fn aws(source: AwsError) -> Error {
        Error::Secrets(SecretsError::Aws {
            field: "spec.database.secretsManager".into(),
            source,
        })
    }

    #[test]
    fn aws_failures_are_retried_sooner_than_those_a_person_fixes() {
        let throttled = aws(AwsError::Throttled {
            operation: "GetSecretValue",
            resource: "s".into(),
        });
        let denied = aws(AwsError::AccessDenied {
            operation: "GetSecretValue",
            resource: "s".into(),
        });
        let missing = Error::Secrets(SecretsError::SecretNotFound {
            field: "spec.database.existingSecret".into(),
            name: "db".into(),
        });
        assert_eq!(throttled.retry_after(), Duration::from_secs(10));
        assert_eq!(denied.retry_after(), Duration::from_secs(5));
        assert_eq!(missing.retry_after(), Duration::from_secs(60));
    }
}
