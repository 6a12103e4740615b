//! Client-side validation of a ChatSDKDeployment against the CRD's own schema, so `render`
//! refuses what the API server would refuse, with the same kind of message: OpenAPI bounds,
//! enums, patterns and required fields, then the CEL rules (through kube's CEL evaluator).

use serde_json::Value;

use crate::error::Error;

pub fn validate(value: &Value) -> Result<(), Error> {
    let crd = chatsdk_crds::crd();
    let schema = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| Error::Serialize("CRD schema", e))?
        .unwrap_or_default();
    let mut errors = Vec::new();
    check(&schema, value, "", &mut errors);
    if errors.is_empty()
        && let Err(cel) = kube::core::cel::Validator::new().validate(&schema, value, None)
    {
        errors.extend(cel.into_vec().into_iter().map(|e| {
            // Like the API server: a rule on a scalar field itself shows the value before the
            // message; a rule of an enclosing object (fieldPath pointing at it) does not.
            let keys = || e.field_path.split('.');
            let at = keys().try_fold(value, |v, key| v.get(key));
            let own_rule = keys()
                .try_fold(&schema, |s, key| s.get("properties")?.get(key))
                .and_then(|s| s.get("x-kubernetes-validations")?.as_array())
                .is_some_and(|rules| rules.iter().any(|r| r["rule"] == e.rule.as_str()));
            match at {
                Some(scalar @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) if own_rule => {
                    format!("{}: Invalid value: {scalar}: {}", e.field_path, e.message)
                }
                _ => format!("{}: Invalid value: {}", e.field_path, e.message),
            }
        }));
    }
    if errors.is_empty() {
        return Ok(());
    }
    // The API server's format: one error as is, several as a bracketed list.
    let details = match errors.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    Err(Error::Invalid(format!(
        "ChatSDKDeployment.chatsdk.io \"{}\" is invalid: {details}",
        value["metadata"]["name"].as_str().unwrap_or_default(),
    )))
}

/// The OpenAPI checks the API server makes, on the subset of keywords the schema uses.
fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let field = if path.is_empty() {
        "<root>"
    } else {
        path.trim_start_matches('.')
    };
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
        errors.push(format!(
            "{field}: Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ));
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = required.as_str()
                    && !map.contains_key(name)
                {
                    errors.push(format!("{field}.{name}: Required value"));
                }
            }
            for (key, child) in map {
                if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
                    continue;
                }
                match properties.and_then(|p| p.get(key)) {
                    Some(child_schema) => check(child_schema, child, &format!("{path}.{key}"), errors),
                    None => match schema.get("additionalProperties") {
                        Some(additional) if additional.is_object() => {
                            check(additional, child, &format!("{path}.{key}"), errors)
                        }
                        _ if properties.is_some() && !preserves_unknown(schema) => {
                            errors.push(format!("{}.{key}: unknown field", field));
                        }
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or_default();
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                errors.push(format!(
                    "{field}: Invalid value: {n}: {field} in body should be greater than or equal to {min}"
                ));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                errors.push(format!(
                    "{field}: Invalid value: {n}: {field} in body should be less than or equal to {max}"
                ));
            }
        }
        Value::String(s) => {
            // Like the API server, one message per string: the first rule it breaks.
            let len = s.chars().count() as u64;
            let min = schema.get("minLength").and_then(Value::as_u64);
            let max = schema.get("maxLength").and_then(Value::as_u64);
            let pattern = schema.get("pattern").and_then(Value::as_str);
            if let Some(min) = min.filter(|min| len < *min) {
                errors.push(format!(
                    "{field}: Invalid value: \"{s}\": {field} in body should be at least {min} chars long"
                ));
            } else if let Some(max) = max.filter(|max| len > *max) {
                errors.push(format!("{field}: Too long: may not be more than {max} bytes"));
            } else if let Some(pattern) = pattern.filter(|p| regex_match(p, s) == Some(false)) {
                errors.push(format!(
                    "{field}: Invalid value: \"{s}\": {field} in body should match '{pattern}'"
                ));
            }
        }
        _ => {}
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

/// Pattern match with the `regex` crate that kube's CEL support already brings in.
fn regex_match(pattern: &str, value: &str) -> Option<bool> {
    regex::Regex::new(pattern).ok().map(|re| re.is_match(value))
}
