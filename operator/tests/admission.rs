//! Invalid resources are refused at admission by the CRD's schema and CEL rules, with a message
//! that names the field and what is allowed; `render` refuses the same resources.

mod support;

use serde_json::{Value, json};
use support::TestNamespace;

/// A resource with the minimal valid spec merged with `spec`.
fn resource(spec: Value) -> Value {
    let mut base = json!({"database": {"existingSecret": {"name": "db"}}});
    merge(&mut base, spec);
    json!({"apiVersion": "chatsdk.io/v1alpha1", "kind": "ChatSDKDeployment", "metadata": {"name": "bad"}, "spec": base})
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    base.remove(&key);
                } else {
                    merge(base.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (base, patch) => *base = patch,
    }
}

const NOT_CHECKED: &str = "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

fn cases() -> Vec<(&'static str, Value, String)> {
    let invalid = |details: &str| format!("ChatSDKDeployment.chatsdk.io \"bad\" is invalid: {details}");
    let invalid_unchecked = |details: &str| {
        format!("ChatSDKDeployment.chatsdk.io \"bad\" is invalid: [{details}, {NOT_CHECKED}]")
    };
    vec![
        (
            "no database source",
            json!({"database": {"existingSecret": null}}),
            invalid("spec.database: Invalid value: set exactly one of secretsManager or existingSecret"),
        ),
        (
            "two database sources",
            json!({"database": {"secretsManager": {"secretId": "chatsdk/postgres/password"}}}),
            invalid("spec.database: Invalid value: set exactly one of secretsManager or existingSecret"),
        ),
        (
            "sslMode disable under hipaa",
            json!({"database": {"sslMode": "disable"}}),
            invalid(
                "spec.database.sslMode: Invalid value: `disable` is not allowed when spec.compliance.profile is `hipaa`; use `require`, `verify-ca` or `verify-full`",
            ),
        ),
        (
            "unknown sslMode",
            json!({"database": {"sslMode": "prefer"}}),
            invalid_unchecked(
                "spec.database.sslMode: Unsupported value: \"prefer\": supported values: \"disable\", \"require\", \"verify-ca\", \"verify-full\"",
            ),
        ),
        (
            "network policies off under hipaa",
            json!({"networkPolicy": {"enabled": false}}),
            invalid(
                "spec.networkPolicy.enabled: Invalid value: network policies cannot be disabled when spec.compliance.profile is `hipaa`",
            ),
        ),
        (
            "retention of zero days",
            json!({"retention": {"messageRetentionDays": 0}}),
            invalid(
                "spec.retention.messageRetentionDays: Invalid value: 0: spec.retention.messageRetentionDays in body should be greater than or equal to 1",
            ),
        ),
        (
            "retention without archive under hipaa",
            json!({"retention": {"archive": false}}),
            invalid(
                "spec.retention.archive: Invalid value: messages must be archived before deletion when spec.compliance.profile is `hipaa`",
            ),
        ),
        (
            "zero API replicas",
            json!({"api": {"replicas": 0}}),
            invalid(
                "spec.api.replicas: Invalid value: 0: spec.api.replicas in body should be greater than or equal to 1",
            ),
        ),
        (
            "too many API replicas",
            json!({"api": {"replicas": 101}}),
            invalid(
                "spec.api.replicas: Invalid value: 101: spec.api.replicas in body should be less than or equal to 100",
            ),
        ),
        (
            "empty image",
            json!({"api": {"image": ""}}),
            invalid(
                "spec.api.image: Invalid value: \"\": spec.api.image in body should be at least 1 chars long",
            ),
        ),
        (
            "image with a space",
            json!({"api": {"image": "chatsdk server"}}),
            invalid(
                "spec.api.image: Invalid value: \"chatsdk server\": spec.api.image in body should match '^[^\\s]+$'",
            ),
        ),
        (
            "autoscaling min above max",
            json!({"api": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}),
            invalid("spec.api.autoscaling: Invalid value: minReplicas must not exceed maxReplicas"),
        ),
        (
            "Centrifugo replicas without Redis",
            json!({"centrifugo": {"replicas": 3}}),
            invalid(
                "spec.centrifugo: Invalid value: replicas above 1 need spec.centrifugo.redis: the in-memory engine does not share subscriptions between pods",
            ),
        ),
        (
            "ingress without host",
            json!({"ingress": {"enabled": true, "tlsSecretName": "chat-tls"}}),
            invalid("spec.ingress: Invalid value: host is required when enabled is true"),
        ),
        (
            "ingress without TLS under hipaa",
            json!({"ingress": {"enabled": true, "host": "chat.example.com"}}),
            invalid(
                "spec.ingress.tlsSecretName: Invalid value: TLS is required when spec.compliance.profile is `hipaa`: name the certificate's Secret",
            ),
        ),
        (
            "unknown compliance profile",
            json!({"compliance": {"profile": "pci"}}),
            invalid_unchecked(
                "spec.compliance.profile: Unsupported value: \"pci\": supported values: \"hipaa\", \"none\"",
            ),
        ),
        (
            "Secret name that is not a DNS name",
            json!({"database": {"existingSecret": {"name": "Bad_Name"}}}),
            invalid(
                "spec.database.existingSecret.name: Invalid value: \"Bad_Name\": spec.database.existingSecret.name in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
            ),
        ),
        (
            "schedule that is not cron",
            json!({"retention": {"schedule": "every sunday"}}),
            invalid(
                "spec.retention.schedule: Invalid value: \"every sunday\": spec.retention.schedule in body should match '^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\\S+\\s+){4}\\S+)$'",
            ),
        ),
        (
            "JWT secret from two sources",
            json!({"secrets": {"jwtSecret": {"existingSecret": {"name": "a", "key": "k"}, "secretsManager": {"secretId": "s"}}}}),
            invalid(
                "spec.secrets.jwtSecret: Invalid value: set at most one of existingSecret or secretsManager (neither: the operator generates the value)",
            ),
        ),
        (
            "Redis token with no source",
            json!({"centrifugo": {"redis": {"address": "redis:6379", "authToken": {}}}}),
            invalid(
                "spec.centrifugo.redis: Invalid value: authToken must name an existingSecret or a secretsManager secret (a Redis token cannot be generated)",
            ),
        ),
        (
            "Centrifugo image of a major version the operator cannot configure",
            json!({"centrifugo": {"image": "centrifugo/centrifugo:v4.1.5"}}),
            invalid(
                "spec.centrifugo.image: Invalid value: the image tag names a Centrifugo major version whose configuration the operator cannot write (it writes v5 and v6): use a v5 or v6 image, or set spec.centrifugo.version",
            ),
        ),
        (
            "unknown Centrifugo version",
            json!({"centrifugo": {"version": "v7"}}),
            invalid_unchecked(
                "spec.centrifugo.version: Unsupported value: \"v7\": supported values: \"v5\", \"v6\"",
            ),
        ),
        (
            "toleration with an unknown operator",
            json!({"api": {"scheduling": {"tolerations": [{"key": "k", "operator": "Sometimes"}]}}}),
            invalid(
                "spec.api.scheduling.tolerations: Invalid value: a toleration's operator must be `Equal` or `Exists`",
            ),
        ),
        (
            "toleration with an unknown effect",
            json!({"retention": {"scheduling": {"tolerations": [{"key": "k", "effect": "NoRun"}]}}}),
            invalid(
                "spec.retention.scheduling.tolerations: Invalid value: a toleration's effect must be `NoSchedule`, `PreferNoSchedule`, `NoExecute` or empty (all effects)",
            ),
        ),
        (
            "toleration Exists with a value",
            json!({"migration": {"scheduling": {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}}}),
            invalid(
                "spec.migration.scheduling.tolerations: Invalid value: a toleration with operator `Exists` must not have a value",
            ),
        ),
        (
            "toleration without key that is not Exists",
            json!({"centrifugo": {"scheduling": {"tolerations": [{"operator": "Equal", "value": "v"}]}}}),
            invalid(
                "spec.centrifugo.scheduling.tolerations: Invalid value: a toleration without a key must have operator `Exists` (it tolerates every taint)",
            ),
        ),
        (
            "tolerationSeconds without NoExecute",
            json!({"api": {"scheduling": {"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 30}]}}}),
            invalid(
                "spec.api.scheduling.tolerations: Invalid value: tolerationSeconds is only allowed with effect `NoExecute`",
            ),
        ),
        (
            "topology spread with maxSkew 0",
            json!({"api": {"scheduling": {"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}]}}}),
            invalid(
                "spec.api.scheduling.topologySpreadConstraints: Invalid value: a topology spread constraint's maxSkew must be at least 1",
            ),
        ),
        (
            "topology spread with an unknown whenUnsatisfiable",
            json!({"api": {"scheduling": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "Sometimes"}]}}}),
            invalid(
                "spec.api.scheduling.topologySpreadConstraints: Invalid value: a topology spread constraint's whenUnsatisfiable must be `DoNotSchedule` or `ScheduleAnyway`",
            ),
        ),
        (
            "topology spread without a topologyKey",
            json!({"centrifugo": {"scheduling": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "", "whenUnsatisfiable": "DoNotSchedule"}]}}}),
            invalid(
                "spec.centrifugo.scheduling.topologySpreadConstraints: Invalid value: a topology spread constraint needs a topologyKey, e.g. `topology.kubernetes.io/zone`",
            ),
        ),
        (
            "minDomains with ScheduleAnyway",
            json!({"api": {"scheduling": {"topologySpreadConstraints": [{"maxSkew": 1, "minDomains": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}]}}}),
            invalid(
                "spec.api.scheduling.topologySpreadConstraints: Invalid value: minDomains must be at least 1, and only goes with whenUnsatisfiable `DoNotSchedule`",
            ),
        ),
        (
            "a system priority class",
            json!({"api": {"scheduling": {"priorityClassName": "system-node-critical"}}}),
            invalid(
                "spec.api.scheduling.priorityClassName: Invalid value: \"system-node-critical\": `system-` priority classes are reserved for cluster components",
            ),
        ),
        (
            "a priority class name that is not a DNS name",
            json!({"retention": {"scheduling": {"priorityClassName": "High Priority"}}}),
            invalid(
                "spec.retention.scheduling.priorityClassName: Invalid value: \"High Priority\": spec.retention.scheduling.priorityClassName in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
            ),
        ),
        (
            "unknown log level",
            json!({"api": {"logLevel": "verbose"}}),
            invalid_unchecked(
                "spec.api.logLevel: Unsupported value: \"verbose\": supported values: \"trace\", \"debug\", \"info\", \"warn\", \"error\"",
            ),
        ),
    ]
}

#[tokio::test]
async fn invalid_resources_are_refused_at_admission_with_a_clear_message() {
    let ns = TestNamespace::new("admission").await;
    let mut failures = Vec::new();
    for (case, spec, expected) in cases() {
        let err = ns.create(resource(spec)).await.err();
        match err {
            Some(kube::Error::Api(status)) if status.code == 422 && status.message == expected => {}
            other => failures.push(format!("{case}:\n  expected {expected}\n  got      {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n")
    );
    ns.create(resource(json!({})))
        .await
        .expect("the minimal resource is valid");
}

#[test]
fn render_refuses_what_the_api_server_refuses() {
    for (case, spec, expected) in cases() {
        let yaml = serde_yaml::to_string(&resource(spec)).expect("yaml");
        let err = chatsdk_operator::render::render(&yaml, "default")
            .expect_err(case)
            .to_string();
        // The API server adds a second line when it skips CEL rules after a schema error.
        let expected = expected
            .replace(&format!(", {NOT_CHECKED}]"), "")
            .replace("invalid: [", "invalid: ");
        assert_eq!(err, expected, "{case}");
    }
    let valid = serde_yaml::to_string(&resource(json!({}))).expect("yaml");
    assert!(chatsdk_operator::render::render(&valid, "default").is_ok());
}

#[tokio::test]
async fn every_example_is_accepted_by_the_api_server() {
    let ns = TestNamespace::new("examples").await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let mut value: Value = serde::Deserialize::deserialize(document).expect("yaml");
            if value["kind"] != "ChatSDKDeployment" {
                continue;
            }
            value["metadata"]["namespace"] = json!(ns.name);
            ns.create(value)
                .await
                .unwrap_or_else(|e| panic!("{} is refused: {e}", path.display()));
            // render accepts it too.
            chatsdk_operator::render::render(&text, &ns.name)
                .unwrap_or_else(|e| panic!("render {}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 2, "minimal.yaml and hipaa-aws.yaml at least");
}
