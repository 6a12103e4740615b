//! The checked-in CRD (used by the chart and `kubectl apply`) must be exactly what the types
//! generate.

#[test]
fn checked_in_crd_matches_the_types() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/chatsdk-operator/crds/chatsdkdeployments.chatsdk.io.yaml"
    );
    let checked_in = std::fs::read_to_string(path).expect("the checked-in CRD");
    let generated = chatsdk_crds::crd_yaml().expect("CRD YAML");
    assert!(
        checked_in == generated,
        "{path} is stale: regenerate it with\n  cargo run -p chatsdk-operator -- crd > charts/chatsdk-operator/crds/chatsdkdeployments.chatsdk.io.yaml"
    );
}

#[test]
fn every_spec_field_has_a_description() {
    let crd = serde_json::to_value(chatsdk_crds::crd()).expect("json");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut missing = Vec::new();
    walk(schema, "spec", &mut missing);
    assert!(
        missing.is_empty(),
        "fields without a description (kubectl explain shows nothing): {missing:?}"
    );
}

fn walk(schema: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, child) in properties {
            let child_path = format!("{path}.{name}");
            if child.get("description").is_none() {
                missing.push(child_path.clone());
            }
            // Kubernetes' own types (LabelSelector) document themselves.
            if !name.ends_with("Selector") {
                walk(child, &child_path, missing);
            }
        }
    }
    if let Some(items) = schema.get("items") {
        walk(items, path, missing);
    }
}
