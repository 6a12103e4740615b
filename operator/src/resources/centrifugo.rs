//! Centrifugo: its configuration Secret, Deployment and Service.
//!
//! Clients connect to the client port (8000, WebSocket); the API publishes through the HTTP API
//! on the internal port (9000), which NetworkPolicies open to the API pods only.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_crds::v1alpha1::CentrifugoVersion;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodTemplateSpec, Secret, SecretVolumeSource, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use serde_json::json;

use super::{fingerprint, metadata, pod};
use crate::error::Error;
use crate::labels::{self, Component, names};
use crate::secrets::keys;

pub const CLIENT_PORT: i32 = 8000;
pub const INTERNAL_PORT: i32 = 9000;
/// Where the config Secret is mounted (the official image's working directory).
pub const CONFIG_DIR: &str = "/centrifugo";
pub const CONFIG_KEY: &str = "config.json";

/// Centrifugo's configuration file, in the format of the spec's Centrifugo version (v5's flat
/// keys or v6's sections): HMAC connection and subscription tokens, the HTTP API and health on
/// the internal port only, the namespaces ChatSDK publishes to (`chat:{appId}:{channelId}`,
/// `user:{appId}:{userId}`), no usage statistics sent out, and the Redis engine when configured.
pub fn config(cr: &ChatSDKDeployment, secrets: &BTreeMap<String, String>) -> serde_json::Value {
    let settings = Settings::of(cr, secrets);
    match cr.spec.centrifugo.config_version() {
        CentrifugoVersion::V5 => settings.v5(),
        CentrifugoVersion::V6 => settings.v6(),
    }
}

/// What the configuration says, before it is spelled in one version's keys.
struct Settings<'a> {
    token_secret: String,
    api_key: String,
    allowed_origins: &'a [String],
    log_level: &'static str,
    redis: Option<RedisSettings>,
}

struct RedisSettings {
    /// `redis://host:port`: neither version's client accepts `rediss://`; TLS is its own key.
    address: String,
    tls: bool,
    password: String,
}

impl<'a> Settings<'a> {
    fn of(cr: &'a ChatSDKDeployment, secrets: &BTreeMap<String, String>) -> Self {
        let spec = &cr.spec.centrifugo;
        let secret = |key: &str| secrets.get(key).cloned().unwrap_or_default();
        Self {
            token_secret: secret(keys::CENTRIFUGO_TOKEN_SECRET),
            api_key: secret(keys::CENTRIFUGO_API_KEY),
            allowed_origins: &spec.allowed_origins,
            log_level: cr.spec.api.log_level.as_str(),
            redis: spec.redis.as_ref().map(|redis| RedisSettings {
                address: format!("redis://{}", redis.address),
                tls: redis.tls,
                password: secret(keys::REDIS_AUTH_TOKEN),
            }),
        }
    }

    /// The namespaces' options, spelled the same in v5 and v6.
    fn namespaces() -> serde_json::Value {
        // The API reads who is subscribed to a chat channel (`/api/channels/:id/presence/live`).
        let namespace = |name: &str, presence: bool| {
            json!({
                "name": name,
                "history_size": 100,
                "history_ttl": "300s",
                "force_recovery": true,
                "allow_history_for_subscriber": true,
                "presence": presence,
            })
        };
        json!([namespace("chat", true), namespace("user", false)])
    }

    fn v5(&self) -> serde_json::Value {
        let mut config = json!({
            "token_hmac_secret_key": self.token_secret,
            "allowed_origins": self.allowed_origins,
            "api_key": self.api_key,
            "port": CLIENT_PORT,
            "internal_port": INTERNAL_PORT,
            "health": true,
            "prometheus": true,
            "admin": false,
            "log_level": self.log_level,
            "usage_stats_disable": true,
            "namespaces": Self::namespaces(),
        });
        if let Some(redis) = &self.redis {
            config["engine"] = json!("redis");
            config["redis_address"] = json!(redis.address);
            config["redis_password"] = json!(redis.password);
            config["redis_tls"] = json!(redis.tls);
        }
        config
    }

    fn v6(&self) -> serde_json::Value {
        let mut config = json!({
            "client": {
                "token": {"hmac_secret_key": self.token_secret},
                "allowed_origins": self.allowed_origins,
            },
            // With an internal port, the HTTP API is served there unless `external` is set.
            "http_api": {"key": self.api_key},
            "http_server": {"port": CLIENT_PORT, "internal_port": INTERNAL_PORT},
            "health": {"enabled": true},
            "prometheus": {"enabled": true},
            "admin": {"enabled": false},
            "log": {"level": self.log_level},
            "usage_stats": {"disabled": true},
            "channel": {"namespaces": Self::namespaces()},
        });
        if let Some(redis) = &self.redis {
            config["engine"] = json!({
                "type": "redis",
                "redis": {
                    "address": [redis.address],
                    "password": redis.password,
                    "tls": {"enabled": redis.tls},
                }
            });
        }
        config
    }
}

pub fn config_secret(cr: &ChatSDKDeployment, secrets: &BTreeMap<String, String>) -> Result<Secret, Error> {
    let text = serde_json::to_string_pretty(&config(cr, secrets))
        .map_err(|e| Error::Serialize("centrifugo config", e))?;
    Ok(Secret {
        metadata: metadata(cr, names::centrifugo_config(cr), Component::Centrifugo)?,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_owned(),
            ByteString(text.into_bytes()),
        )])),
        ..Secret::default()
    })
}

pub fn config_checksum(config: &Secret) -> String {
    let bytes = config
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_KEY))
        .map(|b| b.0.as_slice())
        .unwrap_or_default();
    fingerprint(bytes)
}

pub fn deployment(cr: &ChatSDKDeployment, config_checksum: &str) -> Result<Deployment, Error> {
    let spec = &cr.spec.centrifugo;
    let (tmp_volume, tmp_mount) = pod::tmp_volume();
    let port = |name: &str, port: i32| ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    };
    let container = Container {
        name: "centrifugo".into(),
        image: Some(spec.image.clone()),
        // `command`, not the image's entrypoint: the official images have none (only
        // `CMD ["centrifugo"]`), others may; `centrifugo` on the PATH works with both.
        command: Some(vec!["centrifugo".into()]),
        args: Some(vec!["--config".into(), format!("{CONFIG_DIR}/{CONFIG_KEY}")]),
        ports: Some(vec![port("client", CLIENT_PORT), port("internal", INTERNAL_PORT)]),
        resources: Some(pod::resources(&spec.resources)),
        readiness_probe: Some(pod::http_probe("/health", "internal", 5)),
        liveness_probe: Some(pod::http_probe("/health", "internal", 10)),
        security_context: Some(pod::container_security_context()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            tmp_mount,
        ]),
        ..Container::default()
    };
    Ok(Deployment {
        metadata: metadata(cr, names::centrifugo(cr), Component::Centrifugo)?,
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(labels::selector(cr, Component::Centrifugo)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::labels(cr, Component::Centrifugo)),
                    annotations: Some(BTreeMap::from([(
                        labels::CONFIG_CHECKSUM.to_owned(),
                        config_checksum.to_owned(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod::scheduled(
                    pod::restricted_pod(
                        vec![container],
                        vec![
                            Volume {
                                name: "config".into(),
                                secret: Some(SecretVolumeSource {
                                    secret_name: Some(names::centrifugo_config(cr)),
                                    default_mode: Some(0o440),
                                    ..SecretVolumeSource::default()
                                }),
                                ..Volume::default()
                            },
                            tmp_volume,
                        ],
                    ),
                    &spec.scheduling,
                    &labels::selector(cr, Component::Centrifugo),
                    pod::DefaultSpread::AcrossZonesAndNodes,
                )),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    })
}

pub fn service(cr: &ChatSDKDeployment) -> Result<Service, Error> {
    let port = |name: &str, port: i32| ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    };
    Ok(Service {
        metadata: metadata(cr, names::centrifugo(cr), Component::Centrifugo)?,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(labels::selector(cr, Component::Centrifugo)),
            ports: Some(vec![port("client", CLIENT_PORT), port("internal", INTERNAL_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// Centrifugo's HTTP API as the API pods reach it.
pub fn api_url(cr: &ChatSDKDeployment) -> String {
    format!(
        "http://{}.{}.svc:{INTERNAL_PORT}/api",
        names::centrifugo(cr),
        cr.namespace().unwrap_or_default()
    )
}

/// In-cluster WebSocket URL, reported in status.
pub fn endpoint(cr: &ChatSDKDeployment) -> String {
    format!(
        "ws://{}.{}.svc:{CLIENT_PORT}/connection/websocket",
        names::centrifugo(cr),
        cr.namespace().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(spec: serde_json::Value) -> ChatSDKDeployment {
        serde_json::from_value(json!({
            "apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment",
            "metadata": {"name": "chat", "namespace": "prod", "uid": "u"},
            "spec": spec
        }))
        .expect("resource")
    }

    fn secrets() -> BTreeMap<String, String> {
        BTreeMap::from([
            (keys::CENTRIFUGO_TOKEN_SECRET.to_owned(), "hmac".to_owned()),
            (keys::CENTRIFUGO_API_KEY.to_owned(), "api".to_owned()),
            (keys::REDIS_AUTH_TOKEN.to_owned(), "t0ken".to_owned()),
        ])
    }

    fn names(namespaces: &serde_json::Value) -> Vec<serde_json::Value> {
        namespaces
            .as_array()
            .expect("namespaces")
            .iter()
            .map(|n| n["name"].clone())
            .collect()
    }

    const REDIS: &str = r#"{"address": "master.cache.amazonaws.com:6379",
        "authToken": {"existingSecret": {"name": "redis", "key": "token"}}}"#;

    #[test]
    fn the_format_follows_spec_version_then_the_image_tag_then_v6() {
        let version = |centrifugo: serde_json::Value| {
            resource(json!({"database": {"existingSecret": {"name": "db"}}, "centrifugo": centrifugo}))
                .spec
                .centrifugo
                .config_version()
        };
        assert_eq!(version(json!({})), CentrifugoVersion::V6);
        assert_eq!(
            version(json!({"image": "centrifugo/centrifugo:v5.4.9"})),
            CentrifugoVersion::V5
        );
        assert_eq!(
            version(json!({"image": "centrifugo/centrifugo:latest"})),
            CentrifugoVersion::V6
        );
        assert_eq!(
            version(json!({"image": "centrifugo/centrifugo:v6.5.0", "version": "v5"})),
            CentrifugoVersion::V5
        );
        assert_eq!(
            version(json!({"image": "registry.local/centrifugo:dev", "version": "v5"})),
            CentrifugoVersion::V5
        );
    }

    #[test]
    fn v5_flat_keys_memory_engine() {
        let cr = resource(json!({"database": {"existingSecret": {"name": "db"}},
            "centrifugo": {"version": "v5", "allowedOrigins": ["https://chat.example.com"]}}));
        let config = config(&cr, &secrets());
        assert_eq!(config["token_hmac_secret_key"], "hmac");
        assert_eq!(config["api_key"], "api");
        assert_eq!(config["allowed_origins"], json!(["https://chat.example.com"]));
        assert_eq!(config["port"], CLIENT_PORT);
        assert_eq!(config["internal_port"], INTERNAL_PORT);
        assert_eq!(config["health"], true);
        assert_eq!(config["usage_stats_disable"], true);
        assert!(config.get("engine").is_none() && config.get("client").is_none());
        assert_eq!(names(&config["namespaces"]), [json!("chat"), json!("user")]);
    }

    #[test]
    fn v5_redis_engine_with_tls_and_the_auth_token() {
        let redis: serde_json::Value = serde_json::from_str(REDIS).expect("json");
        let cr = resource(json!({"database": {"existingSecret": {"name": "db"}},
            "centrifugo": {"image": "centrifugo/centrifugo:v5.4.9", "replicas": 3, "redis": redis}}));
        let config = config(&cr, &secrets());
        assert_eq!(config["engine"], "redis");
        assert_eq!(config["redis_address"], "redis://master.cache.amazonaws.com:6379");
        assert_eq!(config["redis_tls"], true);
        assert_eq!(config["redis_password"], "t0ken");
        let deployment = deployment(&cr, "sum").expect("deployment");
        assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(3));
    }

    #[test]
    fn v6_sections_memory_engine() {
        let cr = resource(json!({"database": {"existingSecret": {"name": "db"}}}));
        let config = config(&cr, &secrets());
        assert_eq!(config["client"]["token"]["hmac_secret_key"], "hmac");
        // v6 has no `http_api.internal`: the API is on the internal port unless `external`.
        assert_eq!(config["http_api"], json!({"key": "api"}));
        assert_eq!(config["http_server"]["internal_port"], INTERNAL_PORT);
        assert_eq!(config["usage_stats"]["disabled"], true);
        assert!(config.get("engine").is_none() && config.get("api_key").is_none());
        assert_eq!(
            names(&config["channel"]["namespaces"]),
            [json!("chat"), json!("user")]
        );
    }

    #[test]
    fn v6_redis_engine_with_tls_and_the_auth_token() {
        let redis: serde_json::Value = serde_json::from_str(REDIS).expect("json");
        let cr = resource(json!({"database": {"existingSecret": {"name": "db"}},
            "centrifugo": {"replicas": 3, "redis": redis}}));
        let config = config(&cr, &secrets());
        assert_eq!(config["engine"]["type"], "redis");
        assert_eq!(
            config["engine"]["redis"]["address"],
            json!(["redis://master.cache.amazonaws.com:6379"])
        );
        assert_eq!(config["engine"]["redis"]["tls"]["enabled"], true);
        assert_eq!(config["engine"]["redis"]["password"], "t0ken");
    }
}
