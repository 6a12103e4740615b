//! AWS: Secrets Manager (secret sources) and RDS (compliance checks), through the real SDK.
//!
//! Credentials come from the default chain (IRSA web identity on EKS, environment, profile,
//! instance metadata); the region from the spec or the environment; `AWS_ENDPOINT_URL` is
//! honoured (that is how the tests reach moto). Reads go through [`cache::TtlCache`], so many
//! resources sharing a secret cost one read per refresh interval.

pub mod cache;
pub mod rds;
pub mod secrets_manager;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use tokio::sync::Mutex;

use crate::telemetry::Metrics;

/// SDK configurations per region, loaded once.
pub struct Aws {
    configs: Mutex<HashMap<Option<String>, SdkConfig>>,
    pub metrics: Arc<Metrics>,
    pub secrets: cache::TtlCache<secrets_manager::SecretValue>,
    pub rds: cache::TtlCache<rds::RdsReport>,
}

impl Aws {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            configs: Mutex::new(HashMap::new()),
            metrics,
            secrets: cache::TtlCache::default(),
            rds: cache::TtlCache::default(),
        }
    }

    /// The SDK configuration for `region` (`None`: the environment's region).
    pub async fn config(&self, region: Option<&str>) -> SdkConfig {
        let mut configs = self.configs.lock().await;
        let key = region.map(str::to_owned);
        if let Some(config) = configs.get(&key) {
            return config.clone();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        );
        if let Some(region) = region {
            loader = loader.region(Region::new(region.to_owned()));
        }
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_timeout(Duration::from_secs(15))
            .build();
        let config = loader.timeout_config(timeouts).load().await;
        configs.insert(key, config.clone());
        config
    }
}

/// An AWS call that failed, classified for conditions. Messages name the secret or instance,
/// never a value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsError {
    #[error("{resource} was not found in AWS ({operation})")]
    NotFound {
        operation: &'static str,
        resource: String,
    },
    #[error("access to {resource} was denied ({operation}): grant it to the operator's IAM role")]
    AccessDenied {
        operation: &'static str,
        resource: String,
    },
    #[error("AWS throttled {operation} for {resource}; backing off")]
    Throttled {
        operation: &'static str,
        resource: String,
    },
    #[error("AWS could not be reached for {operation} of {resource}: {detail}")]
    Unreachable {
        operation: &'static str,
        resource: String,
        detail: String,
    },
    #[error("{operation} of {resource} failed: {code}: {message}")]
    Other {
        operation: &'static str,
        resource: String,
        code: String,
        message: String,
    },
}

impl AwsError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "AwsResourceNotFound",
            Self::AccessDenied { .. } => "AwsAccessDenied",
            Self::Throttled { .. } => "AwsThrottled",
            Self::Unreachable { .. } => "AwsUnreachable",
            Self::Other { .. } => "AwsError",
        }
    }

    /// Classifies an SDK error by its code (the same across services), or, when the code is
    /// missing or unknown, by the HTTP status: moto, for one, answers a refused JSON-protocol
    /// call with an XML body the SDK cannot read a code from.
    pub fn classify<E: ProvideErrorMetadata>(
        operation: &'static str,
        resource: &str,
        err: &SdkError<E, HttpResponse>,
    ) -> Self {
        let resource = resource.to_owned();
        match err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Self::Unreachable {
                operation,
                resource,
                detail: match err {
                    SdkError::TimeoutError(_) => "timed out".into(),
                    _ => "connection failed".into(),
                },
            },
            _ => match err.code() {
                Some(
                    "ResourceNotFoundException"
                    | "DBInstanceNotFound"
                    | "DBInstanceNotFoundFault"
                    | "DBParameterGroupNotFound",
                ) => Self::NotFound { operation, resource },
                Some(
                    "AccessDeniedException"
                    | "AccessDenied"
                    | "UnrecognizedClientException"
                    | "InvalidClientTokenId"
                    | "ExpiredTokenException",
                ) => Self::AccessDenied { operation, resource },
                Some("ThrottlingException" | "Throttling" | "TooManyRequestsException") => {
                    Self::Throttled { operation, resource }
                }
                code => match err.raw_response().map(|response| response.status().as_u16()) {
                    Some(403) => Self::AccessDenied { operation, resource },
                    Some(429) => Self::Throttled { operation, resource },
                    _ => Self::Other {
                        operation,
                        resource,
                        code: code.unwrap_or("Unknown").to_owned(),
                        message: err.message().unwrap_or("no message").to_owned(),
                    },
                },
            },
        }
    }

    /// Throttling waits longer before the next try: a retry storm would only make it worse.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Self::Throttled { .. })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::config::http::HttpResponse;
    use aws_sdk_secretsmanager::error::ErrorMetadata;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn service_error(code: &str) -> SdkError<GetSecretValueError, HttpResponse> {
        response_error(Some(code), 400)
    }

    /// An error as the SDK returns it for an HTTP `status`, with `code` if it could read one.
    fn response_error(code: Option<&str>, status: u16) -> SdkError<GetSecretValueError, HttpResponse> {
        let mut metadata = ErrorMetadata::builder().message("denied for a reason");
        if let Some(code) = code {
            metadata = metadata.code(code);
        }
        let response = HttpResponse::new(status.try_into().expect("status"), SdkBody::empty());
        SdkError::service_error(GetSecretValueError::generic(metadata.build()), response)
    }

    #[test]
    fn error_codes_map_to_condition_reasons() {
        let cases = [
            ("AccessDeniedException", "AwsAccessDenied"),
            ("UnrecognizedClientException", "AwsAccessDenied"),
            ("ThrottlingException", "AwsThrottled"),
            ("ResourceNotFoundException", "AwsResourceNotFound"),
            ("InternalServiceError", "AwsError"),
        ];
        for (code, reason) in cases {
            let err = AwsError::classify(
                "GetSecretValue",
                "chatsdk/postgres/password",
                &service_error(code),
            );
            assert_eq!(err.reason(), reason, "{code}");
            assert!(err.to_string().contains("chatsdk/postgres/password"), "{err}");
        }
        assert!(
            AwsError::classify("GetSecretValue", "s", &service_error("ThrottlingException")).is_throttling()
        );
    }

    #[test]
    fn without_a_known_code_the_http_status_decides() {
        let cases = [
            // moto's XML answer to a refused JSON-protocol call: no code the SDK can read.
            (None, 403, "AwsAccessDenied"),
            (None, 429, "AwsThrottled"),
            (Some("SomethingNew"), 403, "AwsAccessDenied"),
            (Some("SomethingNew"), 429, "AwsThrottled"),
            (None, 400, "AwsError"),
            (None, 500, "AwsError"),
            // A known code wins over the status.
            (Some("ResourceNotFoundException"), 403, "AwsResourceNotFound"),
            (Some("ThrottlingException"), 400, "AwsThrottled"),
            (Some("ThrottlingException"), 403, "AwsThrottled"),
        ];
        for (code, status, reason) in cases {
            let err = AwsError::classify("GetSecretValue", "chatsdk/x", &response_error(code, status));
            assert_eq!(err.reason(), reason, "{code:?} {status}");
            assert!(err.to_string().contains("chatsdk/x"), "{err}");
        }
    }
}
