//! Server-side apply that writes only what differs from the live object, and pruning of
//! children that are no longer wanted. A reconcile that finds everything as desired makes no
//! write request at all.

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::Value;

use crate::FIELD_MANAGER;
use crate::error::Error;
use crate::resources::{Child, ChildKind};

/// Applies `child` unless `live` already has every field it sets; returns whether it wrote.
pub async fn apply(
    client: &kube::Client,
    namespace: &str,
    child: &Child,
    live: Option<&Value>,
) -> Result<bool, Error> {
    if live.is_some_and(|live| is_subset(&child.manifest, live)) {
        return Ok(false);
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &child.kind.api_resource());
    let result = if child.kind == ChildKind::Job {
        // A Job's template is immutable: it is created once and never updated.
        if live.is_some() {
            return Ok(false);
        }
        let object: DynamicObject =
            serde_json::from_value(child.manifest.clone()).map_err(|e| Error::Serialize("job", e))?;
        api.create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PostParams::default()
            },
            &object,
        )
        .await
        .map(|_| ())
    } else {
        api.patch(
            &child.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&child.manifest),
        )
        .await
        .map(|_| ())
    };
    result.map_err(|source| Error::Apply {
        kind: format!("{:?}", child.kind),
        name: child.name.clone(),
        source,
    })?;
    Ok(true)
}

pub async fn delete(
    client: &kube::Client,
    namespace: &str,
    kind: ChildKind,
    name: &str,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &kind.api_resource());
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Apply {
            kind: format!("{kind:?}"),
            name: name.to_owned(),
            source,
        }),
    }
}

/// Whether `live` already holds every value `desired` sets. Fields the API server adds
/// (defaults, status, managed fields) are ignored; an empty value we set matches an absent one,
/// since the API server drops empty lists on output.
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(key, dv)| match l.get(key) {
            Some(lv) => is_subset(dv, lv),
            None => is_empty(dv),
        }),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(d, l)| is_subset(d, l))
        }
        (d, l) => d == l || (is_empty(d) && is_empty(l)),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::is_subset;

    #[test]
    fn defaults_added_by_the_server_do_not_count_as_drift() {
        let desired =
            json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "api"}]}}}});
        let live = json!({"spec": {"replicas": 2, "progressDeadlineSeconds": 600,
            "template": {"spec": {"containers": [{"name": "api", "terminationMessagePath": "/dev/termination-log"}]}}},
            "status": {"replicas": 2}});
        assert!(is_subset(&desired, &live));
    }

    #[test]
    fn changed_values_and_list_lengths_are_drift() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}});
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"replicas": 3, "ports": [{"port": 80}]}})
        ));
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"replicas": 2, "ports": [{"port": 80}, {"port": 81}]}})
        ));
        assert!(!is_subset(&desired, &json!({"spec": {"replicas": 2}})));
    }

    #[test]
    fn empty_lists_match_absent_fields() {
        assert!(is_subset(&json!({"spec": {"ingress": []}}), &json!({"spec": {}})));
        assert!(!is_subset(
            &json!({"spec": {"ingress": [{}]}}),
            &json!({"spec": {}})
        ));
    }
}
