//! `<name>`: an optional Ingress for the API and Centrifugo's WebSocket endpoint, with TLS.

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend,
    IngressSpec, IngressTLS, ServiceBackendPort,
};
use kube::ResourceExt;

use super::centrifugo::CLIENT_PORT;
use super::metadata;
use crate::error::Error;
use crate::labels::{Component, names};

pub fn build(cr: &ChatSDKDeployment) -> Result<Option<Ingress>, Error> {
    let spec = &cr.spec.ingress;
    if !spec.enabled {
        return Ok(None);
    }
    let path = |path: &str, service: String, port: i32| HTTPIngressPath {
        path: Some(path.into()),
        path_type: "Prefix".into(),
        backend: IngressBackend {
            service: Some(IngressServiceBackend {
                name: service,
                port: Some(ServiceBackendPort {
                    number: Some(port),
                    ..ServiceBackendPort::default()
                }),
            }),
            ..IngressBackend::default()
        },
    };
    let mut paths = vec![
        path("/api", names::api(cr), cr.spec.api.port),
        path("/health", names::api(cr), cr.spec.api.port),
    ];
    if cr.spec.centrifugo.enabled {
        paths.push(path("/connection", names::centrifugo(cr), CLIENT_PORT));
    }
    let mut meta = metadata(cr, cr.name_any(), Component::Ingress)?;
    if !spec.annotations.is_empty() {
        meta.annotations = Some(spec.annotations.clone());
    }
    Ok(Some(Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            tls: spec.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: spec.host.clone().map(|h| vec![h]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            rules: Some(vec![IngressRule {
                host: spec.host.clone(),
                http: Some(HTTPIngressRuleValue { paths }),
            }]),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    }))
}
