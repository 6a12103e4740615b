//! `<name>-secrets` (every secret value the pods read) and `<name>-generated` (values the
//! operator generated once and keeps).

use std::collections::BTreeMap;

use chatsdk_crds::ChatSDKDeployment;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::metadata;
use crate::error::Error;
use crate::labels::{Component, names};

pub fn build(cr: &ChatSDKDeployment, data: &BTreeMap<String, String>) -> Result<Secret, Error> {
    opaque(cr, names::instance_secret(cr), data)
}

pub fn generated(cr: &ChatSDKDeployment, data: &BTreeMap<String, String>) -> Result<Secret, Error> {
    opaque(cr, names::generated_secret(cr), data)
}

fn opaque(cr: &ChatSDKDeployment, name: String, data: &BTreeMap<String, String>) -> Result<Secret, Error> {
    Ok(Secret {
        metadata: metadata(cr, name, Component::Secrets)?,
        type_: Some("Opaque".into()),
        data: Some(
            data.iter()
                .map(|(key, value)| (key.clone(), ByteString(value.clone().into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    })
}
