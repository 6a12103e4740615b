//! `scheduling` against the test environment: every workload's fields reach its pod template
//! and the scheduler places the pods by them (kwok nodes, labelled `type: kwok`); a selector
//! that matches no node leaves the pods Pending, and a missing PriorityClass leaves them
//! uncreated, and status says so with the Deployment's own reason.

mod support;

use std::time::Duration;

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use support::{DATABASE_URL, Operator, TestNamespace, condition, eventually, wait_ready};

/// The scheduling every workload of the first resource gets: the kwok nodes' label, a
/// toleration, a node affinity preference and a PriorityClass.
fn scheduling(priority_class: &str) -> Value {
    json!({
        "nodeSelector": {"type": "kwok"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "chat", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}}]}},
        "priorityClassName": priority_class,
    })
}

fn resource(name: &str, spec: Value) -> Value {
    let mut full = json!({"database": {"existingSecret": {"name": "db"}}});
    if let (Some(full), Some(extra)) = (full.as_object_mut(), spec.as_object()) {
        full.extend(extra.clone());
    }
    json!({"apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment",
        "metadata": {"name": name}, "spec": full})
}

fn assert_scheduled(what: &str, pod: &PodSpec, expected: &Value, spread: usize) {
    let pod = serde_json::to_value(pod).expect("json");
    for field in ["nodeSelector", "tolerations", "affinity", "priorityClassName"] {
        assert_eq!(pod[field], expected[field], "{what}: {field}");
    }
    let constraints = pod["topologySpreadConstraints"].as_array().map_or(0, Vec::len);
    assert_eq!(constraints, spread, "{what}: topologySpreadConstraints {pod}");
}

#[tokio::test]
async fn scheduling_reaches_every_pod_template_and_places_the_pods() {
    let ns = TestNamespace::new("op-sched").await;
    ns.database_secret("db", DATABASE_URL).await;
    let client = support::client().await;
    let classes: Api<PriorityClass> = Api::all(client.clone());
    let class = format!("{}-chat", ns.name);
    let priority: PriorityClass =
        serde_json::from_value(json!({"metadata": {"name": class}, "value": 1000})).expect("class");
    classes
        .create(&PostParams::default(), &priority)
        .await
        .expect("PriorityClass");
    let _operator = Operator::start(&ns.name, false, "sched");
    let placed = scheduling(&class);
    ns.create(resource(
        "chat",
        json!({
            "api": {"scheduling": placed},
            "centrifugo": {"scheduling": placed},
            "migration": {"scheduling": placed},
            "retention": {"scheduling": placed},
        }),
    ))
    .await
    .expect("create");
    wait_ready(&ns, "chat").await;

    let template = |d: Deployment| d.spec.and_then(|s| s.template.spec).expect("pod spec");
    let deployments = ns.api::<Deployment>();
    let api = template(deployments.get("chat-api").await.expect("api"));
    assert_scheduled("api", &api, &placed, 2);
    let default_spread = serde_json::to_value(&api.topology_spread_constraints).expect("json");
    assert_eq!(default_spread[0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(default_spread[1]["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(default_spread[1]["whenUnsatisfiable"], "ScheduleAnyway");
    assert_eq!(
        default_spread[1]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "api"
    );
    assert_scheduled(
        "centrifugo",
        &template(deployments.get("chat-centrifugo").await.expect("c")),
        &placed,
        2,
    );
    let cronjob = ns.api::<CronJob>().get("chat-retention").await.expect("cronjob");
    let retention = cronjob
        .spec
        .job_template
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod");
    assert_scheduled("retention", &retention, &placed, 0);
    let jobs = ns.api::<Job>().list(&ListParams::default()).await.expect("jobs");
    let migration = jobs.items[0]
        .spec
        .clone()
        .and_then(|s| s.template.spec)
        .expect("pod");
    assert_scheduled("migration", &migration, &placed, 0);

    // The scheduler placed the pods by it: on kwok nodes, with the class's priority.
    let nodes: Api<Node> = Api::all(client.clone());
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels("app.kubernetes.io/instance=chat"))
        .await
        .expect("pods");
    assert!(
        pods.items.len() >= 3,
        "api, centrifugo and migration pods: {}",
        pods.items.len()
    );
    for pod in &pods.items {
        let spec = pod.spec.as_ref().expect("spec");
        let node = nodes
            .get(spec.node_name.as_deref().expect("scheduled"))
            .await
            .expect("node");
        assert_eq!(
            node.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("type"))
                .map(String::as_str),
            Some("kwok")
        );
        assert_eq!(spec.priority, Some(1000), "the PriorityClass was resolved");
    }
    let _ = classes.delete(&class, &DeleteParams::default()).await;
}

#[tokio::test]
async fn unschedulable_or_uncreatable_pods_show_in_status_with_the_deployments_reason() {
    let ns = TestNamespace::new("op-pending").await;
    ns.database_secret("db", DATABASE_URL).await;
    let _operator = Operator::start(&ns.name, false, "pending");
    ns.create(resource(
        "nowhere",
        json!({"api": {"scheduling": {"nodeSelector": {"type": "no-such-node"}}}}),
    ))
    .await
    .expect("create");
    ns.create(resource(
        "noclass",
        json!({"api": {"scheduling": {"priorityClassName": "no-such-class"}}}),
    ))
    .await
    .expect("create");
    let api = ns.api::<ChatSDKDeployment>();
    let api_condition = |name: &'static str, reason: &'static str| {
        let api = api.clone();
        async move {
            let cr = api.get(name).await.ok()?;
            let (status, found) = condition(&cr, "ApiAvailable")?;
            let message = cr
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "ApiAvailable")?
                .message
                .clone();
            (status == "False" && found == reason).then_some(message)
        }
    };
    let message = eventually(
        "nowhere: ApiAvailable=False, MinimumReplicasUnavailable",
        Duration::from_secs(90),
        || api_condition("nowhere", "MinimumReplicasUnavailable"),
    )
    .await;
    assert!(message.contains("0/2"), "{message}");
    let pending = ns
        .api::<Pod>()
        .list(
            &ListParams::default()
                .labels("app.kubernetes.io/instance=nowhere,app.kubernetes.io/component=api"),
        )
        .await
        .expect("pods");
    assert!(!pending.items.is_empty());
    for pod in &pending.items {
        let status = pod.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        assert!(pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none());
    }
    let message = eventually(
        "noclass: ApiAvailable=False, FailedCreate",
        Duration::from_secs(90),
        || api_condition("noclass", "FailedCreate"),
    )
    .await;
    assert!(message.contains("no-such-class"), "{message}");
    let cr = api.get("nowhere").await.expect("cr");
    assert_eq!(condition(&cr, "Ready").map(|c| c.0).as_deref(), Some("False"));
}
