//! `<name>-api`: the ClusterIP Service in front of the API pods.

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::metadata;
use crate::error::Error;
use crate::labels::{self, Component, names};

pub fn build(cr: &ChatSDKDeployment) -> Result<Service, Error> {
    Ok(Service {
        metadata: metadata(cr, names::api(cr), Component::Api)?,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(labels::selector(cr, Component::Api)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: cr.spec.api.port,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// In-cluster URL of the API, reported in status.
pub fn endpoint(cr: &ChatSDKDeployment) -> String {
    use kube::ResourceExt;
    format!(
        "http://{}.{}.svc:{}",
        names::api(cr),
        cr.namespace().unwrap_or_default(),
        cr.spec.api.port
    )
}
