//! The desired children of a ChatSDKDeployment, one module per kind of child. Every builder
//! is a pure function of the resource and the resolved [`Inputs`], so `render` prints exactly
//! what a reconcile applies.

pub mod api_deployment;
pub mod api_service;
pub mod centrifugo;
pub mod horizontal_pod_autoscaler;
pub mod ingress;
pub mod instance_secret;
pub mod migration_job;
pub mod network_policy;
pub mod pod;
pub mod pod_disruption_budget;
pub mod retention_cronjob;

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ApiResource;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::labels::{self, Component};

/// What the children depend on beyond the spec, resolved by the reconciler (or, for `render`,
/// stood in for without a cluster).
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The instance Secret's data (DATABASE_URL, JWT_SECRET, …).
    pub secret_data: BTreeMap<String, String>,
    /// Values the operator generated and keeps in `<name>-generated`.
    pub generated: BTreeMap<String, String>,
    /// Whether the migration Job for the spec's image still has to run.
    pub migration_pending: bool,
    /// The image the API Deployment runs: the newest whose migration succeeded. `None` until
    /// the first migration has succeeded, so no pod ever runs against an unmigrated schema.
    pub api_image: Option<String>,
}

/// The kinds of child the operator manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChildKind {
    Secret,
    Service,
    Deployment,
    Job,
    CronJob,
    NetworkPolicy,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
    Ingress,
}

impl ChildKind {
    pub const ALL: [ChildKind; 9] = [
        Self::Secret,
        Self::Service,
        Self::Deployment,
        Self::Job,
        Self::CronJob,
        Self::NetworkPolicy,
        Self::PodDisruptionBudget,
        Self::HorizontalPodAutoscaler,
        Self::Ingress,
    ];

    pub fn api_resource(self) -> ApiResource {
        use k8s_openapi::api::{apps, autoscaling, batch, core, networking, policy};
        match self {
            Self::Secret => ApiResource::erase::<core::v1::Secret>(&()),
            Self::Service => ApiResource::erase::<core::v1::Service>(&()),
            Self::Deployment => ApiResource::erase::<apps::v1::Deployment>(&()),
            Self::Job => ApiResource::erase::<batch::v1::Job>(&()),
            Self::CronJob => ApiResource::erase::<batch::v1::CronJob>(&()),
            Self::NetworkPolicy => ApiResource::erase::<networking::v1::NetworkPolicy>(&()),
            Self::PodDisruptionBudget => ApiResource::erase::<policy::v1::PodDisruptionBudget>(&()),
            Self::HorizontalPodAutoscaler => {
                ApiResource::erase::<autoscaling::v2::HorizontalPodAutoscaler>(&())
            }
            Self::Ingress => ApiResource::erase::<networking::v1::Ingress>(&()),
        }
    }
}

/// One desired child: its kind, name and complete manifest (apiVersion, kind, metadata, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub kind: ChildKind,
    pub name: String,
    pub manifest: serde_json::Value,
}

impl Child {
    fn new<K: Resource<DynamicType = ()> + Serialize>(kind: ChildKind, object: &K) -> Result<Self, Error> {
        let manifest = serde_json::to_value(object).map_err(|e| Error::Serialize("child manifest", e))?;
        Ok(Self {
            kind,
            name: object.meta().name.clone().unwrap_or_default(),
            manifest,
        })
    }
}

/// Every child the resource should have, in apply order (secrets before the pods that read them).
pub fn desired(cr: &ChatSDKDeployment, inputs: &Inputs) -> Result<Vec<Child>, Error> {
    let spec = &cr.spec;
    let mut children = Vec::new();
    if !inputs.generated.is_empty() {
        children.push(Child::new(
            ChildKind::Secret,
            &instance_secret::generated(cr, &inputs.generated)?,
        )?);
    }
    children.push(Child::new(
        ChildKind::Secret,
        &instance_secret::build(cr, &inputs.secret_data)?,
    )?);
    if spec.centrifugo.enabled {
        let config = centrifugo::config_secret(cr, &inputs.secret_data)?;
        let config_checksum = centrifugo::config_checksum(&config);
        children.push(Child::new(ChildKind::Secret, &config)?);
        children.push(Child::new(
            ChildKind::Deployment,
            &centrifugo::deployment(cr, &config_checksum)?,
        )?);
        children.push(Child::new(ChildKind::Service, &centrifugo::service(cr)?)?);
    }
    if inputs.migration_pending {
        children.push(Child::new(
            ChildKind::Job,
            &migration_job::build(cr, &spec.api.image)?,
        )?);
    }
    let secrets_checksum = fingerprint_map(&inputs.secret_data);
    if let Some(image) = &inputs.api_image {
        children.push(Child::new(
            ChildKind::Deployment,
            &api_deployment::build(cr, image, &secrets_checksum)?,
        )?);
    }
    children.push(Child::new(ChildKind::Service, &api_service::build(cr)?)?);
    if let Some(pdb) = pod_disruption_budget::build(cr)? {
        children.push(Child::new(ChildKind::PodDisruptionBudget, &pdb)?);
    }
    if let Some(hpa) = horizontal_pod_autoscaler::build(cr)? {
        children.push(Child::new(ChildKind::HorizontalPodAutoscaler, &hpa)?);
    }
    if spec.network_policy.enabled {
        for policy in network_policy::build(cr)? {
            children.push(Child::new(ChildKind::NetworkPolicy, &policy)?);
        }
    }
    if let (true, Some(image)) = (spec.retention.enabled, &inputs.api_image) {
        children.push(Child::new(
            ChildKind::CronJob,
            &retention_cronjob::build(cr, image, &secrets_checksum)?,
        )?);
    }
    if let Some(ingress) = ingress::build(cr)? {
        children.push(Child::new(ChildKind::Ingress, &ingress)?);
    }
    Ok(children)
}

/// Metadata of a child: name, namespace, labels, and the controller owner reference that makes
/// deleting the resource delete the child.
pub fn metadata(cr: &ChatSDKDeployment, name: String, component: Component) -> Result<ObjectMeta, Error> {
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(cr.namespace().ok_or(Error::NoNamespace)?),
        labels: Some(labels::labels(cr, component)),
        owner_references: Some(vec![cr.controller_owner_ref(&()).ok_or(Error::NoNamespace)?]),
        ..ObjectMeta::default()
    })
}

/// Hex SHA-256, for checksums and names.
pub fn fingerprint(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Fingerprint of a map of values, independent of anything but its content.
pub fn fingerprint_map(map: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in map {
        hasher.update((key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
