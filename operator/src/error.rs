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
    /// How long to wait before retrying after this error.
    pub fn retry_after(&self) -> Duration {
        match self {
            // Fixing the cause needs a person: retry slowly.
            Self::Secrets(_) | Self::Invalid(_) => Duration::from_secs(60),
            _ => Duration::from_secs(5),
        }
    }
}
