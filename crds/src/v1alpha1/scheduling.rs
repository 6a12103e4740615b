//! `scheduling` of each workload (API, Centrifugo, migration, retention): where its pods may run.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Toleration, TopologySpreadConstraint};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// The pod-spec fields that choose nodes, as in a Pod. Admission checks the values that CEL can
/// check within its cost budget (tolerations, spread constraints, the priority class); the API
/// server validates the rest (label syntax, affinity terms, duplicate constraints) when the
/// operator writes the workload, and such a refusal is reported in status.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    /// Labels a node must have for the pods to run on it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 32))]
    pub node_selector: BTreeMap<String, String>,
    /// Node taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(
        validation = Rule::new("self.all(t, !has(t.operator) || t.operator in ['Equal', 'Exists'])")
            .message("a toleration's operator must be `Equal` or `Exists`"),
        validation = Rule::new("self.all(t, !has(t.effect) || t.effect in ['', 'NoSchedule', 'PreferNoSchedule', 'NoExecute'])")
            .message("a toleration's effect must be `NoSchedule`, `PreferNoSchedule`, `NoExecute` or empty (all effects)"),
        validation = Rule::new("self.all(t, !(has(t.operator) && t.operator == 'Exists' && has(t.value) && t.value != ''))")
            .message("a toleration with operator `Exists` must not have a value"),
        validation = Rule::new("self.all(t, (has(t.key) && t.key != '') || (has(t.operator) && t.operator == 'Exists'))")
            .message("a toleration without a key must have operator `Exists` (it tolerates every taint)"),
        validation = Rule::new("self.all(t, !has(t.tolerationSeconds) || (has(t.effect) && t.effect == 'NoExecute'))")
            .message("tolerationSeconds is only allowed with effect `NoExecute`"),
    )]
    pub tolerations: Vec<Toleration>,
    /// Node affinity, pod affinity and pod anti-affinity of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// How the pods spread across zones, nodes or other topology domains. Unset: the operator's
    /// default (API and Centrifugo: at most one pod more per zone and per node than elsewhere,
    /// `ScheduleAnyway`, so a single node still runs them all; the Jobs: none). `[]`: no spread.
    /// A constraint without `labelSelector` counts the pods of this workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    #[x_kube(
        validation = Rule::new("self.all(c, c.maxSkew >= 1)")
            .message("a topology spread constraint's maxSkew must be at least 1"),
        validation = Rule::new("self.all(c, c.whenUnsatisfiable in ['DoNotSchedule', 'ScheduleAnyway'])")
            .message("a topology spread constraint's whenUnsatisfiable must be `DoNotSchedule` or `ScheduleAnyway`"),
        validation = Rule::new("self.all(c, c.topologyKey != '')")
            .message("a topology spread constraint needs a topologyKey, e.g. `topology.kubernetes.io/zone`"),
        validation = Rule::new("self.all(c, !has(c.minDomains) || (c.minDomains >= 1 && c.whenUnsatisfiable == 'DoNotSchedule'))")
            .message("minDomains must be at least 1, and only goes with whenUnsatisfiable `DoNotSchedule`"),
    )]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// PriorityClass of the pods (it must exist, or the pods are not created: status says so).
    /// `system-` classes are reserved for cluster components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = schema::OBJECT_NAME))]
    #[x_kube(validation = Rule::new("!self.startsWith('system-')")
        .message("`system-` priority classes are reserved for cluster components"))]
    pub priority_class_name: Option<String>,
}
