//! The ChatSDK operator: reconciles `ChatSDKDeployment` resources into a running, compliant
//! chat backend.
//!
//! - [`resources`]: one module per child object, each a pure function of the resource.
//! - [`secrets`]: resolves the values behind the instance Secret (existing Secrets, generated).
//! - [`apply`]: server-side apply that writes only what differs, and prunes what is no longer wanted.
//! - [`status`]: conditions computed from the children's real state.
//! - [`controller`]: the kube-runtime Controller tying it together.
//! - [`render`]: the same manifests, printed without a cluster.

pub mod apply;
pub mod aws;
pub mod controller;
pub mod error;
pub mod labels;
pub mod render;
pub mod resources;
pub mod secrets;
pub mod status;
pub mod telemetry;
pub mod validate;

pub use error::Error;

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "chatsdk-operator";
