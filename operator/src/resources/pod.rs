//! What every pod the operator creates has in common: the restricted Pod Security Standard, a
//! writable `/tmp` under the read-only root filesystem, environment variables, HTTP probes and
//! resource requirements, and where the pods are scheduled. Used by the API and Centrifugo
//! Deployments, the migration Job and the retention CronJob.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_crds::v1alpha1::{ResourcesSpec, SchedulingSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::labels::{self, Component, names};

/// Non-root numeric user (the distroless `nonroot` uid), so `runAsNonRoot` is checkable.
pub const RUN_AS_USER: i64 = 65532;

pub fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        fs_group: Some(RUN_AS_USER),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// A pod spec under the restricted standard, with no service-account token (nothing in it
/// talks to the Kubernetes API) and no service-link environment variables.
pub fn restricted_pod(containers: Vec<Container>, volumes: Vec<Volume>) -> PodSpec {
    PodSpec {
        containers,
        volumes: Some(volumes),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(pod_security_context()),
        ..PodSpec::default()
    }
}

/// A writable `/tmp`, since the root filesystem is read-only.
pub fn tmp_volume() -> (Volume, VolumeMount) {
    (
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        },
    )
}

pub fn env_var(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// An environment variable read from `key` of the instance Secret, which must have it.
pub fn instance_secret_env(cr: &ChatSDKDeployment, key: &str) -> EnvVar {
    EnvVar {
        name: key.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: names::instance_secret(cr),
                key: key.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// An HTTP GET probe on the container port named `port`.
pub fn http_probe(path: &str, port: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port.into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

pub fn resources(spec: &ResourcesSpec) -> ResourceRequirements {
    let mut limits = BTreeMap::from([("memory".to_owned(), Quantity(spec.memory_limit.clone()))]);
    if let Some(cpu) = &spec.cpu_limit {
        limits.insert("cpu".into(), Quantity(cpu.clone()));
    }
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(spec.cpu_request.clone())),
            ("memory".to_owned(), Quantity(spec.memory_request.clone())),
        ])),
        limits: Some(limits),
        ..ResourceRequirements::default()
    }
}

/// The pod of a one-off `chatsdk-server` command (migration, retention): DATABASE_URL only,
/// no service-account token, restricted security.
pub fn server_command(
    cr: &ChatSDKDeployment,
    component: Component,
    scheduling: &SchedulingSpec,
    image: &str,
    args: Vec<String>,
    secrets_checksum: Option<&str>,
) -> PodTemplateSpec {
    let (tmp_volume, tmp_mount) = tmp_volume();
    let annotations =
        secrets_checksum.map(|sum| BTreeMap::from([(labels::SECRETS_CHECKSUM.to_owned(), sum.to_owned())]));
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels::labels(cr, component)),
            annotations,
            ..ObjectMeta::default()
        }),
        spec: Some(scheduled(
            PodSpec {
                restart_policy: Some("Never".into()),
                ..restricted_pod(
                    vec![Container {
                        name: component.as_str().into(),
                        image: Some(image.to_owned()),
                        args: Some(args),
                        env: Some(vec![
                            instance_secret_env(cr, "DATABASE_URL"),
                            env_var("LOG_LEVEL", cr.spec.api.log_level.as_str()),
                        ]),
                        resources: Some(resources(&cr.spec.api.resources)),
                        security_context: Some(container_security_context()),
                        volume_mounts: Some(vec![tmp_mount]),
                        ..Container::default()
                    }],
                    vec![tmp_volume],
                )
            },
            scheduling,
            &labels::selector(cr, component),
            DefaultSpread::None,
        )),
    }
}

/// Whether a workload's pods spread across zones and nodes when its `scheduling` says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultSpread {
    /// Replicated Deployments (API, Centrifugo): one node or zone lost takes as few as possible.
    AcrossZonesAndNodes,
    /// One-off pods (migration, retention): nothing to spread.
    None,
}

/// Topology keys of the default spread, widest first.
const SPREAD_KEYS: [&str; 2] = ["topology.kubernetes.io/zone", "kubernetes.io/hostname"];

/// `pod` placed as `scheduling` says: node selector, tolerations, affinity, priority class and
/// topology spread. `pods` selects the workload's own pods, for the spread constraints that
/// name no selector (the default ones included).
pub fn scheduled(
    pod: PodSpec,
    scheduling: &SchedulingSpec,
    pods: &BTreeMap<String, String>,
    default_spread: DefaultSpread,
) -> PodSpec {
    let own_pods = || LabelSelector {
        match_labels: Some(pods.clone()),
        ..LabelSelector::default()
    };
    let spread = match (&scheduling.topology_spread_constraints, default_spread) {
        (Some(constraints), _) => constraints
            .iter()
            .map(|c| TopologySpreadConstraint {
                label_selector: c.label_selector.clone().or_else(|| Some(own_pods())),
                ..c.clone()
            })
            .collect(),
        (None, DefaultSpread::AcrossZonesAndNodes) => SPREAD_KEYS
            .iter()
            .map(|key| TopologySpreadConstraint {
                max_skew: 1,
                topology_key: (*key).into(),
                // A preference: a single node, or nodes without zone labels, still run them all.
                when_unsatisfiable: "ScheduleAnyway".into(),
                label_selector: Some(own_pods()),
                // Count the pods of the same revision only, so a rollout spreads its new pods.
                match_label_keys: Some(vec!["pod-template-hash".into()]),
                ..TopologySpreadConstraint::default()
            })
            .collect(),
        (None, DefaultSpread::None) => Vec::new(),
    };
    PodSpec {
        node_selector: (!scheduling.node_selector.is_empty()).then(|| scheduling.node_selector.clone()),
        tolerations: (!scheduling.tolerations.is_empty()).then(|| scheduling.tolerations.clone()),
        affinity: scheduling.affinity.clone(),
        priority_class_name: scheduling.priority_class_name.clone(),
        topology_spread_constraints: (!spread.is_empty()).then_some(spread),
        ..pod
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(scheduling: serde_json::Value) -> SchedulingSpec {
        serde_json::from_value(scheduling).expect("scheduling")
    }

    fn own() -> BTreeMap<String, String> {
        BTreeMap::from([("app.kubernetes.io/component".to_owned(), "api".to_owned())])
    }

    #[test]
    fn replicas_spread_across_zones_and_nodes_unless_told_otherwise() {
        let placed = scheduled(
            PodSpec::default(),
            &spec(serde_json::json!({})),
            &own(),
            DefaultSpread::AcrossZonesAndNodes,
        );
        let spread = placed.topology_spread_constraints.expect("default spread");
        let keys: Vec<_> = spread.iter().map(|c| c.topology_key.as_str()).collect();
        assert_eq!(keys, SPREAD_KEYS);
        assert!(
            spread
                .iter()
                .all(|c| c.when_unsatisfiable == "ScheduleAnyway" && c.max_skew == 1)
        );
        assert_eq!(
            spread[0]
                .label_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            Some(own())
        );
        assert!(placed.node_selector.is_none() && placed.tolerations.is_none());

        let none = scheduled(
            PodSpec::default(),
            &spec(serde_json::json!({"topologySpreadConstraints": []})),
            &own(),
            DefaultSpread::AcrossZonesAndNodes,
        );
        assert!(
            none.topology_spread_constraints.is_none(),
            "[] turns the default off"
        );
        let job = scheduled(
            PodSpec::default(),
            &spec(serde_json::json!({})),
            &own(),
            DefaultSpread::None,
        );
        assert!(job.topology_spread_constraints.is_none());
    }

    #[test]
    fn the_fields_are_copied_and_a_constraint_without_selector_counts_the_workloads_pods() {
        let placed = scheduled(
            PodSpec::default(),
            &spec(serde_json::json!({
                "nodeSelector": {"pool": "chat"},
                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "priorityClassName": "chat-high",
                "topologySpreadConstraints": [{"maxSkew": 2, "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule"}],
            })),
            &own(),
            DefaultSpread::AcrossZonesAndNodes,
        );
        assert_eq!(
            placed.node_selector,
            Some(BTreeMap::from([("pool".to_owned(), "chat".to_owned())]))
        );
        assert_eq!(placed.tolerations.map(|t| t.len()), Some(1));
        assert_eq!(placed.priority_class_name.as_deref(), Some("chat-high"));
        let spread = placed.topology_spread_constraints.expect("spread");
        assert_eq!(spread.len(), 1);
        assert_eq!(spread[0].max_skew, 2);
        assert_eq!(
            spread[0]
                .label_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            Some(own())
        );
    }
}
