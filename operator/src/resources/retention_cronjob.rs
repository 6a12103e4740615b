//! `<name>-retention`: `chatsdk-server retention` on the retention schedule (weekly by default).

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};

use super::{metadata, pod};
use crate::error::Error;
use crate::labels::{Component, names};

/// `image` is the API's migrated image, so retention never runs ahead of the schema.
pub fn build(cr: &ChatSDKDeployment, image: &str, secrets_checksum: &str) -> Result<CronJob, Error> {
    let retention = &cr.spec.retention;
    let mut args = vec![
        "retention".to_owned(),
        "--days".to_owned(),
        retention.message_retention_days.to_string(),
        "--batch-size".to_owned(),
        retention.batch_size.to_string(),
    ];
    if !retention.archive {
        args.push("--no-archive".into());
    }
    Ok(CronJob {
        metadata: metadata(cr, names::retention(cr), Component::Retention)?,
        spec: CronJobSpec {
            schedule: retention.schedule.clone(),
            time_zone: retention.time_zone.clone(),
            // Two runs at once would only contend for the same rows.
            concurrency_policy: Some("Forbid".into()),
            starting_deadline_seconds: Some(3600),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                spec: Some(JobSpec {
                    backoff_limit: Some(2),
                    template: pod::server_command(
                        cr,
                        Component::Retention,
                        &retention.scheduling,
                        image,
                        args,
                        Some(secrets_checksum),
                    ),
                    ..JobSpec::default()
                }),
                ..JobTemplateSpec::default()
            },
            ..CronJobSpec::default()
        },
        ..CronJob::default()
    })
}
