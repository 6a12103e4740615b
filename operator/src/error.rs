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
            // Fixing the cause needs a person: retry slowly.
            Self::Secrets(_) | Self::Invalid(_) => Duration::from_secs(60),
            _ => Duration::from_secs(5),
        }
    }
}
