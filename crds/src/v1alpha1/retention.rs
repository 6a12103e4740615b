//! `spec.retention`: the CronJob that archives and deletes old messages.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::scheduling::SchedulingSpec;

/// Message retention (`chatsdk-server retention`), weekly by default as the guide schedules it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    /// Run the retention CronJob.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Messages older than this many days are archived and removed (2555 days is 7 years).
    #[serde(default = "default_days")]
    #[schemars(range(min = 1, max = 36500))]
    pub message_retention_days: i32,
    /// Cron schedule, in the CronJob's time zone.
    #[serde(default = "default_schedule")]
    #[schemars(regex(
        pattern = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"
    ))]
    pub schedule: String,
    /// IANA time zone of the schedule (default: the controller-manager's, usually UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Copy messages to `archived_messages` before deleting them (required under `hipaa`).
    #[serde(default = "default_true")]
    pub archive: bool,
    /// Messages moved per transaction.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 100000))]
    pub batch_size: i32,
    /// Where the retention Job's pod runs.
    #[serde(default)]
    pub scheduling: SchedulingSpec,
}

impl Default for RetentionSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            message_retention_days: default_days(),
            schedule: default_schedule(),
            time_zone: None,
            archive: true,
            batch_size: default_batch_size(),
            scheduling: SchedulingSpec::default(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_days() -> i32 {
    2555
}
fn default_schedule() -> String {
    "0 2 * * 0".into()
}
fn default_batch_size() -> i32 {
    1000
}
