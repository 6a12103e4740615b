//! `<name>-migrate-<image fingerprint>`: runs `chatsdk-server migrate` once for each API image.
//! The API Deployment moves to an image only after its Job has succeeded.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, PodSpec, PodTemplateSpec, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{api_deployment, metadata, pod_security};
use crate::error::Error;
use crate::labels::{self, Component, names};

/// Annotation on the Job naming the image it migrates for.
pub const IMAGE_ANNOTATION: &str = "chatsdk.io/image";

pub fn build(cr: &ChatSDKDeployment, image: &str) -> Result<Job, Error> {
    let mut meta = metadata(cr, names::migration(cr, image), Component::Migration)?;
    meta.annotations = Some(BTreeMap::from([(IMAGE_ANNOTATION.to_owned(), image.to_owned())]));
    Ok(Job {
        metadata: meta,
        spec: Some(JobSpec {
            backoff_limit: Some(3),
            active_deadline_seconds: Some(900),
            // Kept a day for its logs; status.migratedImage records the outcome after that.
            ttl_seconds_after_finished: Some(86400),
            template: server_pod(cr, Component::Migration, image, vec!["migrate".into()], None),
            ..JobSpec::default()
        }),
        ..Job::default()
    })
}

/// The pod of a one-off `chatsdk-server` command (migration, retention): DATABASE_URL only,
/// no service-account token, restricted security.
pub(crate) fn server_pod(
    cr: &ChatSDKDeployment,
    component: Component,
    image: &str,
    args: Vec<String>,
    secrets_checksum: Option<&str>,
) -> PodTemplateSpec {
    let (tmp_volume, tmp_mount) = pod_security::tmp_volume();
    let annotations =
        secrets_checksum.map(|sum| BTreeMap::from([(labels::SECRETS_CHECKSUM.to_owned(), sum.to_owned())]));
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels::labels(cr, component)),
            annotations,
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            ..pod_security::restricted_pod(
                vec![Container {
                    name: component.as_str().into(),
                    image: Some(image.to_owned()),
                    args: Some(args),
                    env: Some(vec![
                        secret_env(cr, "DATABASE_URL"),
                        api_deployment::env_var("LOG_LEVEL", cr.spec.api.log_level.as_str().to_owned()),
                    ]),
                    resources: Some(api_deployment::resources(&cr.spec.api.resources)),
                    security_context: Some(pod_security::container_security_context()),
                    volume_mounts: Some(vec![tmp_mount]),
                    ..Container::default()
                }],
                vec![tmp_volume],
            )
        }),
    }
}

fn secret_env(cr: &ChatSDKDeployment, key: &str) -> EnvVar {
    EnvVar {
        name: key.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: names::instance_secret(cr),
                key: key.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}
