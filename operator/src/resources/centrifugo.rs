//! Centrifugo: its configuration Secret, Deployment and Service.
//!
//! Clients connect to the client port (8000, WebSocket); the API publishes through the HTTP API
//! on the internal port (9000), which NetworkPolicies open to the API pods only.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
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
const CONFIG_KEY: &str = "config.json";

/// Centrifugo v6 configuration: HMAC tokens, the HTTP API on the internal port only, the
/// namespaces ChatSDK publishes to (`chat:{appId}:{channelId}`, `user:{appId}:{userId}`), and
/// the Redis engine when configured.
pub fn config(cr: &ChatSDKDeployment, secrets: &BTreeMap<String, String>) -> serde_json::Value {
    let spec = &cr.spec.centrifugo;
    let secret = |key: &str| secrets.get(key).cloned().unwrap_or_default();
    let namespace = |name: &str, history_size: u32| {
        json!({
            "name": name,
            "history_size": history_size,
            "history_ttl": "300s",
            "force_recovery": true,
            "allow_history_for_subscriber": true,
        })
    };
    let mut config = json!({
        "client": {
            "token": {"hmac_secret_key": secret(keys::CENTRIFUGO_TOKEN_SECRET)},
            "allowed_origins": spec.allowed_origins,
        },
        "http_api": {"key": secret(keys::CENTRIFUGO_API_KEY), "internal": true},
        "http_server": {"port": CLIENT_PORT, "internal_port": INTERNAL_PORT},
        "health": {"enabled": true},
        "prometheus": {"enabled": true},
        "admin": {"enabled": false},
        "log": {"level": cr.spec.api.log_level.as_str()},
        "channel": {"namespaces": [namespace("chat", 100), namespace("user", 100)]},
    });
    if let Some(redis) = &spec.redis {
        let scheme = if redis.tls { "rediss" } else { "redis" };
        config["engine"] = json!({
            "type": "redis",
            "redis": {
                "address": [format!("{scheme}://{}", redis.address)],
                "password": secrets.get(keys::REDIS_AUTH_TOKEN).cloned().unwrap_or_default(),
            }
        });
    }
    config
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
        args: Some(vec![
            "centrifugo".into(),
            "--config".into(),
            format!("/centrifugo/{CONFIG_KEY}"),
        ]),
        ports: Some(vec![port("client", CLIENT_PORT), port("internal", INTERNAL_PORT)]),
        resources: Some(pod::resources(&spec.resources)),
        readiness_probe: Some(pod::http_probe("/health", "internal", 5)),
        liveness_probe: Some(pod::http_probe("/health", "internal", 10)),
        security_context: Some(pod::container_security_context()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: "/centrifugo".into(),
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
                spec: Some(pod::restricted_pod(
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

    #[test]
    fn memory_engine_without_redis_and_keys_from_the_instance_secret() {
        let cr = resource(json!({"database": {"existingSecret": {"name": "db"}}}));
        let secrets = BTreeMap::from([
            (keys::CENTRIFUGO_TOKEN_SECRET.to_owned(), "hmac".to_owned()),
            (keys::CENTRIFUGO_API_KEY.to_owned(), "api".to_owned()),
        ]);
        let config = config(&cr, &secrets);
        assert_eq!(config["client"]["token"]["hmac_secret_key"], "hmac");
        assert_eq!(config["http_api"]["key"], "api");
        assert_eq!(config["http_api"]["internal"], true);
        assert_eq!(config["http_server"]["internal_port"], INTERNAL_PORT);
        assert!(config.get("engine").is_none());
        let namespaces: Vec<_> = config["channel"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .iter()
            .map(|n| n["name"].clone())
            .collect();
        assert_eq!(namespaces, [json!("chat"), json!("user")]);
    }

    #[test]
    fn redis_engine_with_tls_and_the_auth_token() {
        let cr = resource(json!({
            "database": {"existingSecret": {"name": "db"}},
            "centrifugo": {"replicas": 3, "redis": {"address": "master.cache.amazonaws.com:6379",
                "authToken": {"existingSecret": {"name": "redis", "key": "token"}}}}
        }));
        let secrets = BTreeMap::from([(keys::REDIS_AUTH_TOKEN.to_owned(), "t0ken".to_owned())]);
        let config = config(&cr, &secrets);
        assert_eq!(config["engine"]["type"], "redis");
        assert_eq!(
            config["engine"]["redis"]["address"],
            json!(["rediss://master.cache.amazonaws.com:6379"])
        );
        assert_eq!(config["engine"]["redis"]["password"], "t0ken");
        let deployment = deployment(&cr, "sum").expect("deployment");
        assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(3));
    }
}
