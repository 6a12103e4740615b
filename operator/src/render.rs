//! `chatsdk-operator render`: the manifests a reconcile would apply, with no cluster, for
//! review, diffs and GitOps pipelines.
//!
//! Two things only a cluster knows are stood in for and marked: secret values (shown as
//! `<redacted: …>`, so the rendered Secret has the right keys and no values) and the resource's
//! UID in owner references. The migration gate is shown as passed.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use kube::core::ObjectMeta;

use crate::error::Error;
use crate::resources::{self, Inputs};
use crate::secrets::keys;

/// The UID rendered into owner references.
pub const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

/// Parses every `ChatSDKDeployment` document in `yaml` (other kinds are skipped) and renders
/// its children as one multi-document YAML stream.
pub fn render(yaml: &str, default_namespace: &str) -> Result<String, Error> {
    let mut out = String::new();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value: serde_json::Value =
            serde::Deserialize::deserialize(document).map_err(|e| Error::Invalid(format!("YAML: {e}")))?;
        if value.get("kind").and_then(|k| k.as_str()) != Some("ChatSDKDeployment") {
            continue;
        }
        // Validate the document as written, as the API server does, before reading it as types.
        crate::validate::validate(&value)?;
        let mut cr: ChatSDKDeployment =
            serde_json::from_value(value).map_err(|e| Error::Invalid(format!("ChatSDKDeployment: {e}")))?;
        let meta: &mut ObjectMeta = &mut cr.metadata;
        meta.namespace.get_or_insert_with(|| default_namespace.to_owned());
        meta.uid.get_or_insert_with(|| PLACEHOLDER_UID.to_owned());
        for child in resources::desired(&cr, &placeholder_inputs(&cr))? {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&child.manifest).map_err(|e| Error::Invalid(e.to_string()))?);
        }
    }
    Ok(out)
}

fn placeholder_inputs(cr: &ChatSDKDeployment) -> Inputs {
    let spec = &cr.spec;
    let mut data = BTreeMap::new();
    let source = match (&spec.database.existing_secret, &spec.database.secrets_manager) {
        (Some(s), _) => format!(
            "Secret {} key {}, sslmode={}",
            s.name,
            s.key,
            spec.database.ssl_mode.as_str()
        ),
        (None, Some(s)) => format!(
            "Secrets Manager {}, sslmode={}",
            s.secret_id,
            spec.database.ssl_mode.as_str()
        ),
        (None, None) => "none".into(),
    };
    data.insert(keys::DATABASE_URL.to_owned(), format!("<redacted: {source}>"));
    for key in [
        keys::JWT_SECRET,
        keys::CENTRIFUGO_TOKEN_SECRET,
        keys::CENTRIFUGO_API_KEY,
        keys::ADMIN_API_KEY,
    ] {
        data.insert(key.to_owned(), "<redacted>".into());
    }
    if spec.centrifugo.redis.is_some() {
        data.insert(keys::REDIS_URL.to_owned(), "<redacted>".into());
    }
    Inputs {
        secret_data: data,
        generated: BTreeMap::new(),
        migration_pending: true,
        api_image: Some(spec.api.image.clone()),
    }
}
