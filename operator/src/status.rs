//! Status from the children's real state: conditions in Kubernetes conventions, a phase, and
//! events on every condition change (never on a reconcile that changes nothing).

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_crds::v1alpha1::{ChatSDKDeploymentStatus, Phase, condition_types as types};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

/// What the reconcile saw and did, as input to the status.
#[derive(Debug, Clone)]
pub struct Observed {
    pub secrets: Result<String, (String, String)>,
    pub migration: Migration,
    pub api: Option<Deployment>,
    pub centrifugo: Option<Deployment>,
    pub retention: Option<CronJob>,
    pub network_policies: usize,
    pub api_endpoint: String,
    pub centrifugo_endpoint: String,
    /// A child the API server refused: (reason, message), e.g. ("Forbidden", "…").
    pub apply_error: Option<(String, String)>,
    pub database: DatabaseCheck,
}

/// The RDS compliance check, when `spec.database.rds` names an instance.
#[derive(Debug, Clone)]
pub enum DatabaseCheck {
    NotConfigured,
    Checked(crate::aws::rds::RdsReport),
    Failed(crate::aws::AwsError),
}

/// State of the database migration for the spec's image.
#[derive(Debug, Clone, PartialEq)]
pub enum Migration {
    /// `status.migratedImage` is the spec's image.
    Done,
    Running {
        image: String,
    },
    Failed {
        image: String,
        message: String,
    },
}

pub fn compute(
    cr: &ChatSDKDeployment,
    observed: &Observed,
    migrated_image: Option<String>,
) -> ChatSDKDeploymentStatus {
    let generation = cr.metadata.generation;
    let old = cr.status.clone().unwrap_or_default();
    let spec = &cr.spec;
    let mut conditions = Vec::new();
    let mut set = |type_: &str, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" };
        conditions.push(condition(
            &old.conditions,
            generation,
            type_,
            status,
            reason,
            message,
        ));
    };

    match &observed.secrets {
        Ok(_) => set(
            types::SECRETS_SYNCED,
            true,
            "Synced",
            "the instance Secret is up to date".into(),
        ),
        Err((reason, message)) => set(types::SECRETS_SYNCED, false, reason, message.clone()),
    }

    let (api_ok, api_reason, api_message) = match (&observed.migration, &observed.api) {
        (Migration::Failed { image, message }, _) => (
            false,
            "MigrationFailed".to_owned(),
            format!("database migration for {image} failed: {message}"),
        ),
        (_, None) => match &observed.migration {
            Migration::Running { image } => (
                false,
                "WaitingForMigration".to_owned(),
                format!("migrating the database for {image}"),
            ),
            _ => (
                false,
                "Pending".into(),
                "the API Deployment does not exist yet".into(),
            ),
        },
        (migration, Some(deployment)) => {
            let (ok, reason, message) = deployment_availability(deployment);
            match migration {
                Migration::Running { image } if ok => (
                    true,
                    "MigrationRunning".to_owned(),
                    format!("{message}; migrating the database for {image}"),
                ),
                _ => (ok, reason, message),
            }
        }
    };
    set(types::API_AVAILABLE, api_ok, &api_reason, api_message);

    let centrifugo_ok = if spec.centrifugo.enabled {
        let (ok, reason, message) = match &observed.centrifugo {
            Some(d) => deployment_availability(d),
            None => (
                false,
                "Pending".to_owned(),
                "the Centrifugo Deployment does not exist yet".into(),
            ),
        };
        set(types::CENTRIFUGO_AVAILABLE, ok, &reason, message);
        ok
    } else {
        set(
            types::CENTRIFUGO_AVAILABLE,
            false,
            "Disabled",
            "spec.centrifugo.enabled is false".into(),
        );
        true
    };

    let policies_ok = if spec.network_policy.enabled {
        let ok = observed.network_policies > 0;
        set(
            types::NETWORK_POLICY_APPLIED,
            ok,
            if ok { "Applied" } else { "Pending" },
            format!(
                "{} NetworkPolicies in place, default deny first",
                observed.network_policies
            ),
        );
        ok
    } else {
        set(
            types::NETWORK_POLICY_APPLIED,
            false,
            "Disabled",
            "spec.networkPolicy.enabled is false".into(),
        );
        true
    };

    let retention_ok = if spec.retention.enabled {
        let ok = observed.retention.is_some();
        set(
            types::RETENTION_SCHEDULED,
            ok,
            if ok { "Scheduled" } else { "WaitingForMigration" },
            if ok {
                format!(
                    "messages older than {} days are archived on `{}`",
                    spec.retention.message_retention_days, spec.retention.schedule
                )
            } else {
                "the retention CronJob is created once the database is migrated".into()
            },
        );
        ok
    } else {
        set(
            types::RETENTION_SCHEDULED,
            false,
            "Disabled",
            "spec.retention.enabled is false".into(),
        );
        true
    };

    let (db_status, db_reason, db_message) = match &observed.database {
        // Nothing was checked, so nothing is claimed.
        DatabaseCheck::NotConfigured => (
            "Unknown",
            "NotChecked".to_owned(),
            "no spec.database.rds instance to check".to_owned(),
        ),
        DatabaseCheck::Checked(report) if report.failed().is_empty() => (
            "True",
            "Compliant".to_owned(),
            format!("all {} checks passed", report.findings.len()),
        ),
        DatabaseCheck::Checked(report) => {
            let failed: Vec<String> = report
                .failed()
                .iter()
                .map(|f| format!("{} ({})", f.check, f.message))
                .collect();
            (
                "False",
                "DatabaseNotCompliant".to_owned(),
                format!("failed: {}", failed.join("; ")),
            )
        }
        DatabaseCheck::Failed(err) => ("Unknown", err.reason().to_owned(), err.to_string()),
    };
    conditions.push(condition(
        &old.conditions,
        generation,
        types::DATABASE_COMPLIANT,
        db_status,
        &db_reason,
        db_message,
    ));
    // Without the hipaa profile, database findings are warnings that do not hold Ready.
    let hipaa = spec.compliance.profile == chatsdk_crds::v1alpha1::ComplianceProfile::Hipaa;

    // Ready summarises the others; its reason is the first that holds it back.
    let blockers: Vec<(&str, &Condition)> = conditions
        .iter()
        .filter(|c| c.status != "True")
        .filter(|c| !matches!(c.reason.as_str(), "Disabled" | "NotChecked"))
        .filter(|c| hipaa || c.type_ != types::DATABASE_COMPLIANT)
        .map(|c| (c.type_.as_str(), c))
        .collect();
    let ready = observed.apply_error.is_none()
        && blockers.is_empty()
        && api_ok
        && centrifugo_ok
        && policies_ok
        && retention_ok;
    // A refused write comes first: nothing else can converge until it is fixed.
    let (ready_reason, ready_message) = match (&observed.apply_error, blockers.first()) {
        (Some((reason, message)), _) => (reason.clone(), message.clone()),
        (None, None) => ("Ready".to_owned(), "all components are available".to_owned()),
        (None, Some((type_, c))) => (c.reason.clone(), format!("{type_}: {}", c.message)),
    };
    let failed = observed.secrets.is_err()
        || observed.apply_error.is_some()
        || matches!(observed.migration, Migration::Failed { .. });
    let phase = if ready {
        Phase::Ready
    } else if failed {
        Phase::Failed
    } else if observed.api.is_some() && old.phase == Some(Phase::Ready) {
        Phase::Degraded
    } else {
        Phase::Progressing
    };
    conditions.insert(
        0,
        condition(
            &old.conditions,
            generation,
            types::READY,
            if ready { "True" } else { "False" },
            &ready_reason,
            ready_message,
        ),
    );

    let api_replicas = observed.api.as_ref().map(|d| {
        let status = d.status.clone().unwrap_or_default();
        let desired = d
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(status.replicas.unwrap_or(0));
        format!("{}/{}", status.ready_replicas.unwrap_or(0), desired)
    });
    let last_retention_run = observed
        .retention
        .as_ref()
        .and_then(|c| c.status.as_ref())
        .and_then(|s| s.last_successful_time.clone())
        .or(old.last_retention_run);

    ChatSDKDeploymentStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions,
        api_replicas,
        api_endpoint: Some(observed.api_endpoint.clone()),
        centrifugo_endpoint: spec
            .centrifugo
            .enabled
            .then(|| observed.centrifugo_endpoint.clone()),
        secrets_version: observed.secrets.as_ref().ok().cloned().or(old.secrets_version),
        migrated_image,
        last_retention_run,
        compliance_findings: match &observed.database {
            DatabaseCheck::Checked(report) => report.findings.clone(),
            DatabaseCheck::NotConfigured => Vec::new(),
            DatabaseCheck::Failed(_) => old.compliance_findings,
        },
    }
}

/// Available when the rollout is complete: the current template observed, every desired replica
/// updated and available, and no old replica left. Otherwise the Deployment's own account of why
/// not, when it has one: pods it cannot create (`ReplicaFailure`, e.g. a missing PriorityClass
/// or a pod security refusal), a rollout past its deadline, or too few available pods (pods
/// Pending on a node selector no node matches).
fn deployment_availability(deployment: &Deployment) -> (bool, String, String) {
    let desired = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let current = status.observed_generation >= deployment.metadata.generation;
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let name = deployment.name_any();
    if current && updated == desired && total == desired && available >= desired {
        return (
            true,
            "Available".into(),
            format!("{name}: {available}/{desired} replicas available"),
        );
    }
    let counts = format!("{name}: {available}/{desired} available, {updated} updated");
    let conditions = status.conditions.unwrap_or_default();
    let find = |type_: &str, status: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| Some((c.reason.clone()?, c.message.clone().unwrap_or_default())))
    };
    match find("ReplicaFailure", "True")
        .or_else(|| find("Progressing", "False"))
        .or_else(|| find("Available", "False"))
    {
        Some((reason, message)) => (false, reason, format!("{counts}: {message}")),
        None => (false, "Progressing".into(), counts),
    }
}

/// A condition that keeps its lastTransitionTime while its status does not change.
fn condition(
    old: &[Condition],
    generation: Option<i64>,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> Condition {
    let last_transition_time = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Conditions whose status or reason changed, for events.
pub fn changed<'a>(old: &[Condition], new: &'a [Condition]) -> Vec<&'a Condition> {
    new.iter()
        .filter(|c| {
            !old.iter()
                .any(|o| o.type_ == c.type_ && o.status == c.status && o.reason == c.reason)
        })
        .collect()
}
