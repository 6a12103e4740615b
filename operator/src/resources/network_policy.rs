//! NetworkPolicies: default deny for every pod of the instance, then one policy per component
//! opening exactly what ChatSDK needs.
//!
//! - API: in from the ingress controller on its port; out to PostgreSQL, Centrifugo's internal
//!   API port and DNS.
//! - Centrifugo: in from the API (internal port) and the ingress controller (client port); out
//!   to Redis (when configured) and DNS.
//! - Migration and retention jobs: out to PostgreSQL and DNS only.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_crds::v1alpha1::{DatabaseEgressSpec, RedisEgressSpec};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::centrifugo::{CLIENT_PORT, INTERNAL_PORT};
use super::metadata;
use crate::error::Error;
use crate::labels::{self, Component};

pub fn build(cr: &ChatSDKDeployment) -> Result<Vec<NetworkPolicy>, Error> {
    let spec = &cr.spec.network_policy;
    let name = |suffix: &str| format!("{}-{suffix}", cr.name_any());
    let ingress_controller = NetworkPolicyPeer {
        namespace_selector: Some(spec.ingress_from.namespace_selector.clone()),
        pod_selector: Some(spec.ingress_from.pod_selector.clone()),
        ..NetworkPolicyPeer::default()
    };
    let pods = |component: Component| NetworkPolicyPeer {
        pod_selector: Some(match_labels(labels::selector(cr, component))),
        ..NetworkPolicyPeer::default()
    };
    let dns = spec.dns_egress.then(dns_egress);
    let database = database_egress(&spec.database_egress);

    let mut policies = vec![policy(
        cr,
        name("default-deny"),
        labels::instance_selector(cr),
        vec![],
        vec![],
    )?];

    let mut api_egress = vec![database.clone()];
    if cr.spec.centrifugo.enabled {
        api_egress.push(NetworkPolicyEgressRule {
            to: Some(vec![pods(Component::Centrifugo)]),
            ports: Some(vec![tcp(INTERNAL_PORT)]),
        });
    }
    api_egress.extend(dns.clone());
    policies.push(policy(
        cr,
        name("api"),
        labels::selector(cr, Component::Api),
        vec![NetworkPolicyIngressRule {
            from: Some(vec![ingress_controller.clone()]),
            ports: Some(vec![tcp(cr.spec.api.port)]),
        }],
        api_egress,
    )?);

    if cr.spec.centrifugo.enabled {
        let mut egress: Vec<_> = dns.clone().into_iter().collect();
        if cr.spec.centrifugo.redis.is_some() {
            egress.push(redis_egress(&spec.redis_egress));
        }
        policies.push(policy(
            cr,
            name("centrifugo"),
            labels::selector(cr, Component::Centrifugo),
            vec![
                NetworkPolicyIngressRule {
                    from: Some(vec![pods(Component::Api)]),
                    ports: Some(vec![tcp(INTERNAL_PORT)]),
                },
                NetworkPolicyIngressRule {
                    from: Some(vec![ingress_controller]),
                    ports: Some(vec![tcp(CLIENT_PORT)]),
                },
            ],
            egress,
        )?);
    }

    for component in [Component::Migration, Component::Retention] {
        let mut egress = vec![database.clone()];
        egress.extend(dns.clone());
        policies.push(policy(
            cr,
            name(component.as_str()),
            labels::selector(cr, component),
            vec![],
            egress,
        )?);
    }
    Ok(policies)
}

fn policy(
    cr: &ChatSDKDeployment,
    name: String,
    pods: BTreeMap<String, String>,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> Result<NetworkPolicy, Error> {
    Ok(NetworkPolicy {
        metadata: metadata(cr, name, Component::NetworkPolicy)?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(match_labels(pods)),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    })
}

fn match_labels(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..LabelSelector::default()
    }
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some("TCP".into()),
        port: Some(IntOrString::Int(port)),
        ..NetworkPolicyPort::default()
    }
}

fn dns_egress() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(match_labels(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                "kube-system".to_owned(),
            )]))),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(vec![
            NetworkPolicyPort {
                protocol: Some("UDP".into()),
                port: Some(IntOrString::Int(53)),
                ..NetworkPolicyPort::default()
            },
            tcp(53),
        ]),
    }
}

/// Peers from CIDRs and/or selectors; none at all leaves the destination open on the port only.
fn peers(
    cidrs: &[String],
    pod_selector: &Option<LabelSelector>,
    namespace_selector: &Option<LabelSelector>,
) -> Option<Vec<NetworkPolicyPeer>> {
    let mut peers: Vec<NetworkPolicyPeer> = cidrs
        .iter()
        .map(|cidr| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.clone(),
                except: None,
            }),
            ..NetworkPolicyPeer::default()
        })
        .collect();
    if pod_selector.is_some() || namespace_selector.is_some() {
        peers.push(NetworkPolicyPeer {
            pod_selector: pod_selector.clone(),
            namespace_selector: namespace_selector.clone(),
            ..NetworkPolicyPeer::default()
        });
    }
    (!peers.is_empty()).then_some(peers)
}

fn database_egress(spec: &DatabaseEgressSpec) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: peers(&spec.cidrs, &spec.pod_selector, &spec.namespace_selector),
        ports: Some(vec![tcp(spec.port)]),
    }
}

fn redis_egress(spec: &RedisEgressSpec) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: peers(&spec.cidrs, &spec.pod_selector, &spec.namespace_selector),
        ports: Some(vec![tcp(spec.port)]),
    }
}
