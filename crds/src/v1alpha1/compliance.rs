//! `spec.compliance`: the profile the operator enforces and checks.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceSpec {
    /// `hipaa` (the default) refuses insecure settings and holds Ready while a database
    /// compliance check fails; `none` reports failed checks as warnings only.
    #[serde(default)]
    pub profile: ComplianceProfile,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ComplianceProfile {
    #[default]
    Hipaa,
    None,
}
