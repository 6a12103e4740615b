//! Names and labels of the children of one ChatSDKDeployment.

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use kube::ResourceExt;

pub const MANAGED_BY: &str = "chatsdk-operator";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
/// Selector of everything the operator manages (watches are filtered by it).
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=chatsdk-operator";

/// Pod template annotation carrying the fingerprint of the secrets a pod reads: a change of
/// any secret value changes it, which rolls the pods.
pub const SECRETS_CHECKSUM: &str = "chatsdk.io/secrets-checksum";
/// Pod template annotation with the fingerprint of Centrifugo's configuration.
pub const CONFIG_CHECKSUM: &str = "chatsdk.io/config-checksum";

/// The parts of an instance, each with its own pods or objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Api,
    Centrifugo,
    Migration,
    Retention,
    Secrets,
    NetworkPolicy,
    Ingress,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Centrifugo => "centrifugo",
            Self::Migration => "migration",
            Self::Retention => "retention",
            Self::Secrets => "secrets",
            Self::NetworkPolicy => "network-policy",
            Self::Ingress => "ingress",
        }
    }
}

/// Labels of every child: the Kubernetes recommended set.
pub fn labels(cr: &ChatSDKDeployment, component: Component) -> BTreeMap<String, String> {
    let mut labels = selector(cr, component);
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    labels.insert(LABEL_PART_OF.into(), "chatsdk".into());
    labels
}

/// The stable subset of [`labels`] that selects a component's pods.
pub fn selector(cr: &ChatSDKDeployment, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.into(), "chatsdk".into()),
        (LABEL_INSTANCE.into(), cr.name_any()),
        (LABEL_COMPONENT.into(), component.as_str().into()),
    ])
}

/// Selects every pod of the instance, whatever its component.
pub fn instance_selector(cr: &ChatSDKDeployment) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.into(), "chatsdk".into()),
        (LABEL_INSTANCE.into(), cr.name_any()),
    ])
}

/// Child object names, all derived from the resource's name.
pub mod names {
    use super::*;

    pub fn api(cr: &ChatSDKDeployment) -> String {
        format!("{}-api", cr.name_any())
    }
    pub fn centrifugo(cr: &ChatSDKDeployment) -> String {
        format!("{}-centrifugo", cr.name_any())
    }
    pub fn centrifugo_config(cr: &ChatSDKDeployment) -> String {
        format!("{}-centrifugo-config", cr.name_any())
    }
    /// The Secret the pods read: DATABASE_URL, JWT_SECRET, CENTRIFUGO_*, ADMIN_API_KEY, REDIS_URL.
    pub fn instance_secret(cr: &ChatSDKDeployment) -> String {
        format!("{}-secrets", cr.name_any())
    }
    /// Values the operator generated once and keeps.
    pub fn generated_secret(cr: &ChatSDKDeployment) -> String {
        format!("{}-generated", cr.name_any())
    }
    pub fn retention(cr: &ChatSDKDeployment) -> String {
        format!("{}-retention", cr.name_any())
    }
    /// One migration Job per image: Jobs are immutable, and the name records what ran.
    pub fn migration(cr: &ChatSDKDeployment, image: &str) -> String {
        format!(
            "{}-migrate-{}",
            cr.name_any(),
            &crate::resources::fingerprint(image.as_bytes())[..10]
        )
    }
}
