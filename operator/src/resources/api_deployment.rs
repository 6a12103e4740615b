//! `<name>-api`: the chat API Deployment, with the deployment guide's environment, probes and
//! the restricted pod security standard.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_crds::v1alpha1::ResourcesSpec;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, HTTPGetAction, PodTemplateSpec, Probe,
    ResourceRequirements, SecretEnvSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{metadata, pod_security};
use crate::error::Error;
use crate::labels::{self, Component, names};

pub const CONTAINER: &str = "api";

pub fn build(cr: &ChatSDKDeployment, image: &str, secrets_checksum: &str) -> Result<Deployment, Error> {
    let api = &cr.spec.api;
    let (tmp_volume, tmp_mount) = pod_security::tmp_volume();
    let container = Container {
        name: CONTAINER.into(),
        image: Some(image.to_owned()),
        args: Some(vec!["serve".into()]),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: api.port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(environment(cr)),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: names::instance_secret(cr),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        resources: Some(resources(&api.resources)),
        readiness_probe: Some(http_probe("/ready", 5)),
        liveness_probe: Some(http_probe("/health", 10)),
        security_context: Some(pod_security::container_security_context()),
        volume_mounts: Some(vec![tmp_mount]),
        ..Container::default()
    };
    Ok(Deployment {
        metadata: metadata(cr, names::api(cr), Component::Api)?,
        spec: Some(DeploymentSpec {
            // With autoscaling the HPA owns the replica count; leaving it unset keeps SSA from
            // fighting it.
            replicas: api.autoscaling.is_none().then_some(api.replicas),
            selector: LabelSelector {
                match_labels: Some(labels::selector(cr, Component::Api)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::labels(cr, Component::Api)),
                    annotations: Some(BTreeMap::from([(
                        labels::SECRETS_CHECKSUM.to_owned(),
                        secrets_checksum.to_owned(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_security::restricted_pod(vec![container], vec![tmp_volume])),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    })
}

/// The deployment guide's production settings; secrets come from the instance Secret.
fn environment(cr: &ChatSDKDeployment) -> Vec<EnvVar> {
    let api = &cr.spec.api;
    let mut env = vec![
        env("NODE_ENV", "production"),
        env("PORT", &api.port.to_string()),
        env("LOG_LEVEL", api.log_level.as_str()),
        env("FORCE_HTTPS", "true"),
        env("SECURE_COOKIES", "true"),
        env(
            "SESSION_TIMEOUT_MINUTES",
            &api.session_timeout_minutes.to_string(),
        ),
        env("REQUIRE_MFA", if api.require_mfa { "true" } else { "false" }),
    ];
    if cr.spec.centrifugo.enabled {
        env.push(env_var("CENTRIFUGO_API_URL", super::centrifugo::api_url(cr)));
    }
    env
}

fn env(name: &str, value: &str) -> EnvVar {
    env_var(name, value.to_owned())
}

pub(crate) fn env_var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        ..EnvVar::default()
    }
}

pub(crate) fn http_probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

pub(crate) fn resources(spec: &ResourcesSpec) -> ResourceRequirements {
    let mut limits = BTreeMap::from([("memory".to_owned(), Quantity(spec.memory_limit.clone()))]);
    if let Some(cpu) = &spec.cpu_limit {
        limits.insert("cpu".into(), Quantity(cpu.clone()));
    }
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(spec.cpu_request.clone())),
            ("memory".to_owned(), Quantity(spec.memory_request.clone())),
        ])),
        limits: Some(limits),
        ..ResourceRequirements::default()
    }
}
