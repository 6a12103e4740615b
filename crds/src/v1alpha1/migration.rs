//! `spec.migration`: the Job that runs `chatsdk-server migrate` for each new API image.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::scheduling::SchedulingSpec;

/// The database migration Job.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationSpec {
    /// Where the migration Job's pod runs.
    #[serde(default)]
    pub scheduling: SchedulingSpec,
}
