//! `<name>-api`: CPU-based autoscaling of the API Deployment, when requested.

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use super::metadata;
use crate::error::Error;
use crate::labels::{Component, names};

pub fn build(cr: &ChatSDKDeployment) -> Result<Option<HorizontalPodAutoscaler>, Error> {
    let Some(autoscaling) = &cr.spec.api.autoscaling else {
        return Ok(None);
    };
    Ok(Some(HorizontalPodAutoscaler {
        metadata: metadata(cr, names::api(cr), Component::Api)?,
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: names::api(cr),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(autoscaling.target_cpu_utilization),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        },
        ..HorizontalPodAutoscaler::default()
    }))
}
