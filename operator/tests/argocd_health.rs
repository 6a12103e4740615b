//! The Argo CD health check (Lua, shipped in the chart's docs) against sample statuses.

use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::{Value, json};

const SCRIPT: &str = include_str!("../../charts/chatsdk-operator/docs/argocd-health.lua");

fn health(obj: Value) -> (String, String) {
    let lua = Lua::new();
    lua.globals()
        .set("obj", lua.to_value(&obj).expect("obj"))
        .expect("global");
    let result: Table = lua.load(SCRIPT).eval().expect("the script runs");
    (
        result.get("status").expect("status"),
        result.get("message").expect("message"),
    )
}

fn resource(generation: i64, status: Value) -> Value {
    json!({"apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment",
        "metadata": {"name": "prod", "generation": generation}, "status": status})
}

fn ready(status: &str, reason: &str, message: &str) -> Value {
    json!({"type": "Ready", "status": status, "reason": reason, "message": message})
}

#[test]
fn maps_status_to_argocd_health() {
    let cases = [
        (
            json!({"apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment", "metadata": {"name": "p", "generation": 1}}),
            ("Progressing", "Waiting for the operator to report status"),
        ),
        (
            resource(
                3,
                json!({"observedGeneration": 2, "phase": "Ready", "conditions": [ready("True", "Ready", "all components are available")]}),
            ),
            ("Progressing", "The operator has not yet observed generation 3"),
        ),
        (
            resource(
                2,
                json!({"observedGeneration": 2, "phase": "Ready", "conditions": [ready("True", "Ready", "all components are available")]}),
            ),
            ("Healthy", "all components are available"),
        ),
        (
            resource(
                2,
                json!({"observedGeneration": 2, "phase": "Progressing",
                "conditions": [ready("False", "Progressing", "ApiAvailable: prod-api: 1/3 available, 1 updated")]}),
            ),
            ("Progressing", "ApiAvailable: prod-api: 1/3 available, 1 updated"),
        ),
        (
            resource(
                2,
                json!({"observedGeneration": 2, "phase": "Failed",
                "conditions": [ready("False", "DatabaseNotCompliant", "DatabaseCompliant: failed: StorageEncrypted (storage is not encrypted at rest)")]}),
            ),
            (
                "Degraded",
                "DatabaseCompliant: failed: StorageEncrypted (storage is not encrypted at rest)",
            ),
        ),
        (
            resource(
                2,
                json!({"observedGeneration": 2, "phase": "Degraded", "conditions": [ready("False", "Progressing", "replicas lost")]}),
            ),
            ("Degraded", "replicas lost"),
        ),
        (
            resource(1, json!({"observedGeneration": 1})),
            ("Progressing", "Waiting for the Ready condition"),
        ),
    ];
    for (obj, (status, message)) in cases {
        assert_eq!(
            health(obj.clone()),
            (status.to_owned(), message.to_owned()),
            "{obj}"
        );
    }
}
