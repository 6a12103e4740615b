//! `spec.centrifugo`: the real-time WebSocket server.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::api::ResourcesSpec;
use super::scheduling::SchedulingSpec;
use super::schema;
use super::secrets::SecretSource;

/// Centrifugo: clients hold WebSocket connections to it; the API publishes through its HTTP API.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("self.replicas == 1 || has(self.redis)")
        .message("replicas above 1 need spec.centrifugo.redis: the in-memory engine does not share subscriptions between pods"),
    validation = Rule::new(format!(
        "has(self.version) || !self.image.matches('{VERSION_TAG}') || self.image.matches('{V5_OR_V6_TAG}')"
    ))
    .message("the image tag names a Centrifugo major version whose configuration the operator cannot write (it writes v5 and v6): use a v5 or v6 image, or set spec.centrifugo.version")
    .field_path(".image"),
)]
#[serde(rename_all = "camelCase")]
pub struct CentrifugoSpec {
    /// Deploy Centrifugo (disable only if real time is provided elsewhere).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Container image of Centrifugo v5 or v6. It must have `centrifugo` on its PATH (the
    /// official images have it in /usr/local/bin).
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 512), regex(pattern = schema::IMAGE))]
    pub image: String,
    /// Configuration format the operator writes: `v5` or `v6`. Unset: the major version of the
    /// image tag when the tag is a version (`v5.4.9`, `5.4`, `v6`, `v6.5.0-alpine`), else `v6`
    /// (the default image's, and what `latest` is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<CentrifugoVersion>,
    /// Number of Centrifugo pods; more than one needs Redis.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 20))]
    pub replicas: i32,
    /// CPU and memory of each Centrifugo pod.
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Browser origins allowed to open WebSocket connections, e.g. `https://chat.example.com`.
    /// Empty: no browser may connect (Centrifugo then accepts only clients that send no
    /// `Origin` header, such as servers and mobile apps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    /// Redis (e.g. ElastiCache) as Centrifugo's engine, for several replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisSpec>,
    /// Where the Centrifugo pods run. By default they spread across zones and nodes (a
    /// preference).
    #[serde(default)]
    pub scheduling: SchedulingSpec,
}

impl Default for CentrifugoSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            image: default_image(),
            version: None,
            replicas: default_replicas(),
            resources: ResourcesSpec::default(),
            allowed_origins: Vec::new(),
            redis: None,
            scheduling: SchedulingSpec::default(),
        }
    }
}

impl CentrifugoSpec {
    /// The configuration format for this spec: `version`, else the image tag's, else v6.
    pub fn config_version(&self) -> CentrifugoVersion {
        self.version
            .or_else(|| CentrifugoVersion::of_image(&self.image))
            .unwrap_or(CentrifugoVersion::V6)
    }
}

/// The image the operator deploys when none is given.
pub const DEFAULT_CENTRIFUGO_IMAGE: &str = "centrifugo/centrifugo:v6.5.0";

/// An image whose tag is a version: `[v]MAJOR[.MINOR[.PATCH]][-SUFFIX]`, optionally pinned by a
/// digest. (RE2 and Rust regex alike; `[.]` rather than an escape, which CEL strings refuse.)
const VERSION_TAG: &str = "^([^/@]+/)*[^/:@]+:v?[0-9]+([.][0-9]+){0,2}(-[0-9A-Za-z_.-]+)?(@.+)?$";
/// The same, with major version 5 or 6.
const V5_OR_V6_TAG: &str = "^([^/@]+/)*[^/:@]+:v?[56]([.][0-9]+){0,2}(-[0-9A-Za-z_.-]+)?(@.+)?$";

/// A Centrifugo major version, whose configuration format the operator writes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CentrifugoVersion {
    /// Centrifugo v5 (what upstream ChatSDK ships): flat keys such as `token_hmac_secret_key`,
    /// `api_key`, `namespaces`, `engine`.
    #[serde(rename = "v5")]
    V5,
    /// Centrifugo v6: nested sections such as `client.token`, `http_api`, `channel.namespaces`.
    #[serde(rename = "v6")]
    V6,
}

impl CentrifugoVersion {
    /// The version an image's tag names (`centrifugo/centrifugo:v5.4.9` → v5), if it is v5 or v6.
    /// Agrees with the admission rule on `VERSION_TAG`, which refuses other majors.
    pub fn of_image(image: &str) -> Option<Self> {
        let name = image.split('@').next()?;
        let (_, tag) = name.rsplit('/').next()?.split_once(':')?;
        let tag = tag.strip_prefix('v').unwrap_or(tag);
        let (numbers, suffix) = match tag.split_once('-') {
            Some((numbers, suffix)) => (numbers, Some(suffix)),
            None => (tag, None),
        };
        let suffix_ok = suffix.is_none_or(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        });
        let parts: Vec<&str> = numbers.split('.').collect();
        let numeric = parts.len() <= 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        match (suffix_ok && numeric, parts.first().copied()) {
            (true, Some("5")) => Some(Self::V5),
            (true, Some("6")) => Some(Self::V6),
            _ => None,
        }
    }
}

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
    /// Connect with TLS, verified against the system roots; ElastiCache with transit encryption
    /// needs it.
    #[serde(default = "default_true")]
    pub tls: bool,
    /// The Redis AUTH token (the guide keeps it in Secrets Manager as `chatsdk/redis/auth-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<SecretSource>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `of_image` and the admission rule's regexes agree on every kind of reference.
    #[test]
    fn the_version_of_an_image_tag_agrees_with_the_admission_rule() {
        let version_tag = regex::Regex::new(VERSION_TAG).expect("regex");
        let v5_or_v6 = regex::Regex::new(V5_OR_V6_TAG).expect("regex");
        let cases = [
            ("centrifugo/centrifugo:v5.4.9", Some(CentrifugoVersion::V5)),
            ("centrifugo/centrifugo:v5", Some(CentrifugoVersion::V5)),
            ("centrifugo/centrifugo:5.4", Some(CentrifugoVersion::V5)),
            ("centrifugo/centrifugo:v6.5.0", Some(CentrifugoVersion::V6)),
            (
                "registry.local:5000/team/centrifugo:v6.5.0-alpine",
                Some(CentrifugoVersion::V6),
            ),
            (
                "centrifugo/centrifugo:v5.4.9@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                Some(CentrifugoVersion::V5),
            ),
            ("centrifugo/centrifugo:latest", None),
            ("centrifugo/centrifugo", None),
            ("registry.local:5000/centrifugo", None),
            ("centrifugo/centrifugo@sha256:0123", None),
            ("centrifugo/centrifugo:v55.1", None),
            ("centrifugo/centrifugo:v4.1.0", None),
            ("centrifugo/centrifugo:v7", None),
            ("centrifugo/centrifugo:v5.4.9.1", None),
            ("centrifugo/centrifugo:5-", None),
            ("centrifugo/centrifugo:v99999999999999999999999", None),
            ("centrifugo/centrifugo:v5.x", None),
            ("", None),
        ];
        for (image, expected) in cases {
            assert_eq!(CentrifugoVersion::of_image(image), expected, "{image}");
            assert_eq!(v5_or_v6.is_match(image), expected.is_some(), "{image}");
        }
        // Versioned tags of another major are what admission refuses without spec.version.
        for image in [
            "centrifugo/centrifugo:v4.1.0",
            "centrifugo/centrifugo:v7",
            "c:v55.1",
        ] {
            assert!(
                version_tag.is_match(image) && !v5_or_v6.is_match(image),
                "{image}"
            );
        }
        for image in ["centrifugo/centrifugo:latest", "centrifugo/centrifugo", "c:v5.x"] {
            assert!(!version_tag.is_match(image), "{image}");
        }
    }
}
