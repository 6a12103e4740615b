//! `<name>-migrate-<image fingerprint>`: runs `chatsdk-server migrate` once for each API image.
//! The API Deployment moves to an image only after its Job has succeeded.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::api::batch::v1::{Job, JobSpec};

use super::{metadata, pod};
use crate::error::Error;
use crate::labels::{Component, names};

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
            template: pod::server_command(
                cr,
                Component::Migration,
                &cr.spec.migration.scheduling,
                image,
                vec!["migrate".into()],
                None,
            ),
            ..JobSpec::default()
        }),
        ..Job::default()
    })
}
