//! `<name>-api`: the chat API Deployment, with the deployment guide's environment, probes and
//! the restricted pod security standard.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, PodTemplateSpec, SecretEnvSource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::metadata;
use super::pod::{self, env_var};
use crate::error::Error;
use crate::labels::{self, Component, names};

pub const CONTAINER: &str = "api";

pub fn build(cr: &ChatSDKDeployment, image: &str, secrets_checksum: &str) -> Result<Deployment, Error> {
    let api = &cr.spec.api;
    let (tmp_volume, tmp_mount) = pod::tmp_volume();
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
        resources: Some(pod::resources(&api.resources)),
        readiness_probe: Some(pod::http_probe("/ready", "http", 5)),
        liveness_probe: Some(pod::http_probe("/health", "http", 10)),
        security_context: Some(pod::container_security_context()),
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
                spec: Some(pod::scheduled(
                    pod::restricted_pod(vec![container], vec![tmp_volume]),
                    &api.scheduling,
                    &labels::selector(cr, Component::Api),
                    pod::DefaultSpread::AcrossZonesAndNodes,
                )),
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
        env_var("NODE_ENV", "production"),
        env_var("PORT", api.port.to_string()),
        env_var("LOG_LEVEL", api.log_level.as_str()),
        env_var("FORCE_HTTPS", "true"),
        env_var("SECURE_COOKIES", "true"),
        env_var("SESSION_TIMEOUT_MINUTES", api.session_timeout_minutes.to_string()),
        env_var("REQUIRE_MFA", if api.require_mfa { "true" } else { "false" }),
    ];
    if cr.spec.centrifugo.enabled {
        env.push(env_var("CENTRIFUGO_API_URL", super::centrifugo::api_url(cr)));
    }
    env
}
