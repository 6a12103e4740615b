//! The kube-runtime Controller for ChatSDKDeployment.
//!
//! Children are watched through label-filtered reflectors whose caches double as the "live"
//! side of the diff in [`crate::apply`], so a converged reconcile reads nothing from the API
//! server and writes nothing. Secrets referenced by `existingSecret` are watched by metadata
//! only, to trigger a reconcile when they change.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatsdk_crds::ChatSDKDeployment;
use chatsdk_crds::v1alpha1::ChatSDKDeploymentStatus;
use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, info, warn};

use crate::error::Error;
use crate::labels::{self, names};
use crate::resources::{self, ChildKind, Inputs, api_service, centrifugo};
use crate::secrets::{self, SecretReader};
use crate::status::{self, DatabaseCheck, Migration, Observed};
use crate::telemetry::{Metrics, ResultLabels};
use crate::{FIELD_MANAGER, apply};

/// Where the operator looks for resources.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Watch one namespace only; `None` watches all.
    pub namespace: Option<String>,
}

impl Scope {
    fn api<K>(&self, client: &kube::Client) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
}

/// Caches of every kind of child the operator manages.
#[derive(Clone)]
pub struct Stores {
    secrets: Store<Secret>,
    services: Store<Service>,
    deployments: Store<Deployment>,
    jobs: Store<Job>,
    cronjobs: Store<CronJob>,
    network_policies: Store<NetworkPolicy>,
    pod_disruption_budgets: Store<PodDisruptionBudget>,
    autoscalers: Store<HorizontalPodAutoscaler>,
    ingresses: Store<Ingress>,
}

impl Stores {
    fn live(&self, kind: ChildKind, namespace: &str, name: &str) -> Option<serde_json::Value> {
        fn get<K: Resource<DynamicType = ()> + Clone + Serialize>(
            s: &Store<K>,
            ns: &str,
            name: &str,
        ) -> Option<serde_json::Value> {
            s.get(&ObjectRef::new(name).within(ns))
                .and_then(|o| serde_json::to_value(o.as_ref()).ok())
        }
        match kind {
            ChildKind::Secret => get(&self.secrets, namespace, name),
            ChildKind::Service => get(&self.services, namespace, name),
            ChildKind::Deployment => get(&self.deployments, namespace, name),
            ChildKind::Job => get(&self.jobs, namespace, name),
            ChildKind::CronJob => get(&self.cronjobs, namespace, name),
            ChildKind::NetworkPolicy => get(&self.network_policies, namespace, name),
            ChildKind::PodDisruptionBudget => get(&self.pod_disruption_budgets, namespace, name),
            ChildKind::HorizontalPodAutoscaler => get(&self.autoscalers, namespace, name),
            ChildKind::Ingress => get(&self.ingresses, namespace, name),
        }
    }

    /// Names of the children of `kind` whose controller is the resource with `uid`.
    fn owned(&self, kind: ChildKind, uid: &str) -> Vec<String> {
        fn owned<K: Resource<DynamicType = ()> + Clone>(s: &Store<K>, uid: &str) -> Vec<String> {
            s.state()
                .iter()
                .filter(|o| {
                    o.owner_references()
                        .iter()
                        .any(|r| r.uid == uid && r.controller == Some(true))
                })
                .map(|o| o.name_any())
                .collect()
        }
        match kind {
            ChildKind::Secret => owned(&self.secrets, uid),
            ChildKind::Service => owned(&self.services, uid),
            ChildKind::Deployment => owned(&self.deployments, uid),
            ChildKind::Job => owned(&self.jobs, uid),
            ChildKind::CronJob => owned(&self.cronjobs, uid),
            ChildKind::NetworkPolicy => owned(&self.network_policies, uid),
            ChildKind::PodDisruptionBudget => owned(&self.pod_disruption_budgets, uid),
            ChildKind::HorizontalPodAutoscaler => owned(&self.autoscalers, uid),
            ChildKind::Ingress => owned(&self.ingresses, uid),
        }
    }

    /// Resolves once every cache has its initial list.
    async fn wait_until_ready(&self) {
        let _ = futures::join!(
            self.secrets.wait_until_ready(),
            self.services.wait_until_ready(),
            self.deployments.wait_until_ready(),
            self.jobs.wait_until_ready(),
            self.cronjobs.wait_until_ready(),
            self.network_policies.wait_until_ready(),
            self.pod_disruption_budgets.wait_until_ready(),
            self.autoscalers.wait_until_ready(),
            self.ingresses.wait_until_ready(),
        );
    }

    fn typed<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>, ns: &str, name: &str) -> Option<K> {
        store
            .get(&ObjectRef::new(name).within(ns))
            .map(|o| o.as_ref().clone())
    }
}

/// Shared state of every reconcile.
pub struct Context {
    pub aws: Arc<crate::aws::Aws>,
    /// The last `chatsdk.io/force-sync` value acted on, per resource UID.
    forced: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Consecutive failures per resource, for exponential backoff (reset on success).
    failures: std::sync::Mutex<std::collections::HashMap<ObjectRef<ChatSDKDeployment>, u32>>,
    pub client: kube::Client,
    pub stores: Stores,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    scope: Scope,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let managed = watcher::Config::default().labels(labels::MANAGED_SELECTOR);
    macro_rules! child {
        ($kind:ty) => {
            reflect::<$kind>(scope.api(&client), managed.clone())
        };
    }
    let (secrets, secrets_stream) = child!(Secret);
    let (services, services_stream) = child!(Service);
    let (deployments, deployments_stream) = child!(Deployment);
    let (jobs, jobs_stream) = child!(Job);
    let (cronjobs, cronjobs_stream) = child!(CronJob);
    let (network_policies, network_policies_stream) = child!(NetworkPolicy);
    let (pod_disruption_budgets, pdb_stream) = child!(PodDisruptionBudget);
    let (autoscalers, hpa_stream) = child!(HorizontalPodAutoscaler);
    let (ingresses, ingresses_stream) = child!(Ingress);
    let stores = Stores {
        secrets,
        services,
        deployments,
        jobs,
        cronjobs,
        network_policies,
        pod_disruption_budgets,
        autoscalers,
        ingresses,
    };

    let controller = Controller::new(
        scope.api::<ChatSDKDeployment>(&client),
        watcher::Config::default(),
    );
    let resources = controller.store();
    // Secrets the user owns (existingSecret): metadata only, mapped to the resources naming them.
    let referenced = watcher(
        scope.api::<PartialObjectMeta<Secret>>(&client),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();

    let context = Arc::new(Context {
        aws: Arc::new(crate::aws::Aws::new(metrics.clone())),
        forced: Default::default(),
        failures: Default::default(),
        client: client.clone(),
        stores: stores.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        metrics: metrics.clone(),
    });

    let ready_metrics = metrics.clone();
    let ready_stores = stores.clone();
    tokio::spawn(async move {
        ready_stores.wait_until_ready().await;
        ready_metrics
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        info!("caches synced");
    });

    controller
        .owns_stream(secrets_stream)
        .owns_stream(services_stream)
        .owns_stream(deployments_stream)
        .owns_stream(jobs_stream)
        .owns_stream(cronjobs_stream)
        .owns_stream(network_policies_stream)
        .owns_stream(pdb_stream)
        .owns_stream(hpa_stream)
        .owns_stream(ingresses_stream)
        .watches_stream(referenced, move |secret| {
            let namespace = secret.namespace();
            let name = secret.name_any();
            resources
                .state()
                .into_iter()
                .filter(|cr| cr.namespace() == namespace && references(cr).contains(&name))
                .map(|cr| ObjectRef::from_obj(cr.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(err) = result {
                warn!(error = %err, "reconcile failed");
            }
        })
        .await;
}

/// A reflector for `K`, and the stream of changed objects that triggers reconciles.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff()).touched_objects();
    (reader, stream)
}

/// Names of the Secrets in the resource's namespace that its spec references.
fn references(cr: &ChatSDKDeployment) -> BTreeSet<String> {
    let spec = &cr.spec;
    let mut names = BTreeSet::new();
    names.extend(spec.database.existing_secret.as_ref().map(|s| s.name.clone()));
    for source in [
        &spec.secrets.jwt_secret,
        &spec.secrets.centrifugo_token_secret,
        &spec.secrets.centrifugo_api_key,
        &spec.secrets.admin_api_key,
    ] {
        names.extend(source.existing_secret.as_ref().map(|s| s.name.clone()));
    }
    if let Some(token) = spec.centrifugo.redis.as_ref().and_then(|r| r.auth_token.as_ref()) {
        names.extend(token.existing_secret.as_ref().map(|s| s.name.clone()));
    }
    names
}

/// Annotation whose every new value forces an immediate Secrets Manager refresh.
pub const FORCE_SYNC: &str = "chatsdk.io/force-sync";

async fn reconcile(cr: Arc<ChatSDKDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    debug!(name = %cr.name_any(), generation = ?cr.metadata.generation, "reconciling");
    let result = reconcile_inner(&cr, &ctx).await;
    debug!(name = %cr.name_any(), ok = result.is_ok(), elapsed = ?started.elapsed(), "reconciled");
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    if result.is_ok()
        && let Ok(mut failures) = ctx.failures.lock()
    {
        failures.remove(&ObjectRef::from_obj(cr.as_ref()));
    }
    let label = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels { result: label.into() })
        .inc();
    result
}

async fn reconcile_inner(cr: &ChatSDKDeployment, ctx: &Context) -> Result<Action, Error> {
    if cr.metadata.deletion_timestamp.is_some() {
        // Owner references delete the children.
        return Ok(Action::await_change());
    }
    // Reconciling before the caches are complete would re-apply children it cannot see. The
    // caches fill while the controller polls their streams, so this checks rather than waits.
    if !ctx.metrics.ready.load(std::sync::atomic::Ordering::Relaxed) {
        debug!(name = %cr.name_any(), "caches not synced yet; retrying shortly");
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let namespace = cr.namespace().ok_or(Error::NoNamespace)?;
    let uid = cr.uid().ok_or(Error::NoNamespace)?;
    let old_status = cr.status.clone().unwrap_or_default();

    let database = match &cr.spec.database.rds {
        Some(rds) => match ctx
            .aws
            .rds_report(&rds.instance_identifier, rds.region.as_deref())
            .await
        {
            Ok(report) => DatabaseCheck::Checked(report),
            Err(err) => DatabaseCheck::Failed(err),
        },
        None => DatabaseCheck::NotConfigured,
    };
    let rds_endpoint = match &database {
        DatabaseCheck::Checked(report) => report.endpoint.clone(),
        _ => None,
    };
    // `chatsdk.io/force-sync`: a value not seen before re-reads Secrets Manager at once.
    let force_sync = cr.annotations().get(FORCE_SYNC).cloned();
    let force = force_sync.as_ref().is_some_and(|value| {
        ctx.forced
            .lock()
            .map(|seen| seen.get(&uid) != Some(value))
            .unwrap_or(true)
    });
    let reader = SecretReader::new(ctx.client.clone(), &namespace, ctx.aws.clone(), force);
    let resolved = secrets::resolve(cr, &reader, rds_endpoint.as_ref()).await;
    if let (true, Ok(_), Some(value), Ok(mut seen)) = (force, &resolved, force_sync, ctx.forced.lock()) {
        seen.insert(uid.clone(), value);
    }
    let resolved = match resolved {
        Ok(resolved) => resolved,
        Err(err) => {
            // Keep every child as it is (the last good Secret included) and say why in status.
            let observed = observe(
                cr,
                ctx,
                &namespace,
                Err((err.reason().into(), err.to_string())),
                migration_state(cr, ctx, &namespace),
                None,
                database,
            );
            let status = status::compute(cr, &observed, old_status.migrated_image.clone());
            write_status(cr, ctx, &old_status, status).await?;
            return Err(Error::Secrets(err));
        }
    };

    let migration = migration_state(cr, ctx, &namespace);
    if let Migration::Failed { image, message } = &migration {
        warn!(name = %cr.name_any(), %image, %message, "migration failed");
    }
    let migrated_image = match &migration {
        Migration::Done => Some(cr.spec.api.image.clone()),
        _ => old_status.migrated_image.clone(),
    };
    let inputs = Inputs {
        secret_data: resolved.data.clone(),
        generated: resolved.generated.clone(),
        migration_pending: !matches!(migration, Migration::Done),
        api_image: migrated_image.clone(),
    };

    let desired = resources::desired(cr, &inputs)?;
    if let Err(err) = converge(cr, ctx, &namespace, &uid, &desired).await {
        // Say in status what the API server refused (e.g. Forbidden), then retry with backoff.
        let refused = Some((err.reason().to_owned(), err.to_string()));
        let observed = observe(
            cr,
            ctx,
            &namespace,
            Ok(resolved.version),
            migration,
            refused,
            database,
        );
        let status = status::compute(cr, &observed, migrated_image);
        write_status(cr, ctx, &old_status, status).await?;
        return Err(err);
    }

    let rotated = old_status
        .secrets_version
        .as_ref()
        .is_some_and(|old| *old != resolved.version);
    let observed = observe(
        cr,
        ctx,
        &namespace,
        Ok(resolved.version.clone()),
        migration,
        None,
        database,
    );
    let status = status::compute(cr, &observed, migrated_image);
    let ready = status.phase == Some(chatsdk_crds::v1alpha1::Phase::Ready);
    write_status(cr, ctx, &old_status, status).await?;
    if rotated {
        let event = Event {
            type_: EventType::Normal,
            reason: "SecretsRotated".into(),
            note: Some(format!(
                "secret versions now {}; pods roll to pick them up",
                resolved.version
            )),
            action: "SyncSecrets".into(),
            secondary: None,
        };
        if let Err(err) = ctx.recorder.publish(&event, &cr.object_ref(&())).await {
            warn!(error = %err, "publishing an event failed");
        }
    }
    // Watches bring every change of a child; the periodic requeue catches what nothing
    // announces: a CronJob's last run, and secrets rotated in AWS (the cache decides whether
    // a requeue actually reads Secrets Manager).
    let periodic = if ready {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(30)
    };
    Ok(Action::requeue(
        secrets::shortest_refresh(cr).map_or(periodic, |r| r.min(periodic)),
    ))
}

/// Applies every desired child that differs from its live object, then prunes.
async fn converge(
    cr: &ChatSDKDeployment,
    ctx: &Context,
    namespace: &str,
    uid: &str,
    desired: &[resources::Child],
) -> Result<(), Error> {
    for child in desired {
        let live = ctx.stores.live(child.kind, namespace, &child.name);
        if apply::apply(&ctx.client, namespace, child, live.as_ref()).await? {
            ctx.metrics.count_write(&format!("{:?}", child.kind));
            info!(name = %cr.name_any(), kind = ?child.kind, child = %child.name, "applied");
        }
    }
    prune(cr, ctx, namespace, uid, desired).await
}

/// Deletes children this resource owns that are no longer desired (a disabled Ingress, HPA, …).
/// Jobs are left to their TTL, so a finished migration keeps its logs for a while.
async fn prune(
    cr: &ChatSDKDeployment,
    ctx: &Context,
    namespace: &str,
    uid: &str,
    desired: &[resources::Child],
) -> Result<(), Error> {
    for kind in ChildKind::ALL {
        if kind == ChildKind::Job {
            continue;
        }
        for name in ctx.stores.owned(kind, uid) {
            if !desired.iter().any(|c| c.kind == kind && c.name == name) {
                apply::delete(&ctx.client, namespace, kind, &name).await?;
                ctx.metrics.count_write(&format!("{kind:?}"));
                info!(name = %cr.name_any(), ?kind, child = %name, "deleted (no longer desired)");
            }
        }
    }
    Ok(())
}

/// State of the migration for the spec's image, from status and the Job cache.
fn migration_state(cr: &ChatSDKDeployment, ctx: &Context, namespace: &str) -> Migration {
    let image = cr.spec.api.image.clone();
    if cr.status.as_ref().and_then(|s| s.migrated_image.as_deref()) == Some(image.as_str()) {
        return Migration::Done;
    }
    let job = Stores::typed(&ctx.stores.jobs, namespace, &names::migration(cr, &image));
    let conditions = job
        .and_then(|j| j.status)
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    let has = |type_: &str| conditions.iter().any(|c| c.type_ == type_ && c.status == "True");
    if has("Complete") {
        Migration::Done
    } else if has("Failed") {
        let message = conditions
            .iter()
            .find(|c| c.type_ == "Failed")
            .and_then(|c| c.message.clone())
            .unwrap_or_else(|| "the Job failed".into());
        Migration::Failed { image, message }
    } else {
        Migration::Running { image }
    }
}

fn observe(
    cr: &ChatSDKDeployment,
    ctx: &Context,
    namespace: &str,
    secrets: Result<String, (String, String)>,
    migration: Migration,
    apply_error: Option<(String, String)>,
    database: DatabaseCheck,
) -> Observed {
    let stores = &ctx.stores;
    let uid = cr.uid().unwrap_or_default();
    Observed {
        secrets,
        migration,
        api: Stores::typed(&stores.deployments, namespace, &names::api(cr)),
        centrifugo: Stores::typed(&stores.deployments, namespace, &names::centrifugo(cr)),
        retention: Stores::typed(&stores.cronjobs, namespace, &names::retention(cr)),
        network_policies: stores.owned(ChildKind::NetworkPolicy, &uid).len(),
        api_endpoint: api_service::endpoint(cr),
        centrifugo_endpoint: centrifugo::endpoint(cr),
        apply_error,
        database,
    }
}

/// Patches the status only when it differs, and records an Event for each condition change.
async fn write_status(
    cr: &ChatSDKDeployment,
    ctx: &Context,
    old: &ChatSDKDeploymentStatus,
    new: ChatSDKDeploymentStatus,
) -> Result<(), Error> {
    if cr.status.as_ref() == Some(&new) {
        return Ok(());
    }
    for condition in status::changed(&old.conditions, &new.conditions) {
        // Warnings for what needs a person; of the normal changes only Ready's is worth an
        // Event (the others are in status, and each Event is a write).
        let routine = condition.status == "True"
            || matches!(
                condition.reason.as_str(),
                "Disabled" | "NotChecked" | "Progressing" | "Pending" | "WaitingForMigration"
            );
        if routine && condition.type_ != chatsdk_crds::v1alpha1::condition_types::READY {
            continue;
        }
        let type_ = if routine {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let event = Event {
            type_,
            reason: condition.reason.clone(),
            note: Some(format!(
                "{}={}: {}",
                condition.type_, condition.status, condition.message
            )),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(err) = ctx.recorder.publish(&event, &cr.object_ref(&())).await {
            warn!(error = %err, "publishing an event failed");
        }
    }
    let api: Api<ChatSDKDeployment> =
        Api::namespaced(ctx.client.clone(), &cr.namespace().unwrap_or_default());
    let patch = serde_json::json!({"status": new});
    api.patch_status(&cr.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::Kube)?;
    ctx.metrics.count_write("Status");
    Ok(())
}

/// Retries with exponential backoff per resource (up to 5 minutes), so one broken resource
/// costs little and never delays the others.
fn error_policy(cr: Arc<ChatSDKDeployment>, error: &Error, ctx: Arc<Context>) -> Action {
    let attempt = ctx
        .failures
        .lock()
        .map(|mut failures| {
            let count = failures.entry(ObjectRef::from_obj(cr.as_ref())).or_insert(0);
            *count = count.saturating_add(1);
            *count
        })
        .unwrap_or(1);
    let delay = backoff(error.retry_after(), attempt);
    warn!(name = %cr.name_any(), namespace = ?cr.namespace(), %error, attempt, retry_in = ?delay, "reconcile error");
    Action::requeue(delay)
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    (base * 2u32.saturating_pow(attempt.saturating_sub(1).min(10))).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 1), Duration::from_secs(5));
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 4), Duration::from_secs(40));
        assert_eq!(backoff(base, 7), Duration::from_secs(300));
        assert_eq!(backoff(base, u32::MAX), Duration::from_secs(300));
    }
}
