//! `<name>-api`: a PodDisruptionBudget for the API pods, when requested.

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::metadata;
use crate::error::Error;
use crate::labels::{self, Component, names};

pub fn build(cr: &ChatSDKDeployment) -> Result<Option<PodDisruptionBudget>, Error> {
    let Some(pdb) = &cr.spec.api.pod_disruption_budget else {
        return Ok(None);
    };
    Ok(Some(PodDisruptionBudget {
        metadata: metadata(cr, names::api(cr), Component::Api)?,
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(pdb.min_available)),
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(cr, Component::Api)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }))
}
