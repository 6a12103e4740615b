//! Helpers for the operator's end-to-end tests: a namespace per test, the CRD installed, and
//! the real operator binary running against the test environment's API server.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chatsdk_crds::ChatSDKDeployment;
pub use chatsdk_testenv::eventually;
use chatsdk_testenv::{TestEnv, unique_name};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::OnceCell;

pub const DATABASE_URL: &str = "postgres://chatsdk:s3cret@postgres.databases.svc:5432/chatsdk";

pub async fn client() -> kube::Client {
    TestEnv::get().kube_client().await.expect("kube client")
}

/// Installs (server-side applies) the CRD generated from the types, once per test binary.
pub async fn install_crd() {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            let crds: Api<CustomResourceDefinition> = Api::all(client().await);
            crds.patch(
                "chatsdkdeployments.chatsdk.io",
                &PatchParams::apply("chatsdk-tests").force(),
                &Patch::Apply(chatsdk_crds::crd()),
            )
            .await
            .expect("apply CRD");
            eventually("the CRD to be established", Duration::from_secs(30), || async {
                let crd = crds.get("chatsdkdeployments.chatsdk.io").await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            })
            .await;
        })
        .await;
}

/// A fresh namespace, deleted when dropped.
pub struct TestNamespace {
    pub name: String,
    client: kube::Client,
}

impl TestNamespace {
    pub async fn new(prefix: &str) -> Self {
        install_crd().await;
        let client = client().await;
        let name = unique_name(prefix);
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        Self { name, client }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// The database Secret the minimal example uses.
    pub async fn database_secret(&self, name: &str, url: &str) {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name},
            "stringData": {"DATABASE_URL": url}
        }))
        .expect("secret");
        self.api::<Secret>()
            .patch(
                name,
                &PatchParams::apply("chatsdk-tests").force(),
                &Patch::Apply(&secret),
            )
            .await
            .expect("database secret");
    }

    /// Creates a resource exactly as written (invalid ones included, for admission tests).
    pub async fn create(&self, resource: serde_json::Value) -> Result<DynamicObject, kube::Error> {
        let object: DynamicObject = serde_json::from_value(resource).expect("an object with metadata");
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &self.name,
            &ApiResource::erase::<ChatSDKDeployment>(&()),
        );
        api.create(&PostParams::default(), &object).await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let client = self.client.clone();
        let name = self.name.clone();
        // Best effort: the environment is thrown away after the run anyway.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = Api::<Namespace>::all(client)
                    .delete(&name, &DeleteParams::background())
                    .await;
            });
        }
    }
}

/// Where the operator's AWS SDK goes (`AWS_ENDPOINT_URL`), and as whom.
#[derive(Debug, Clone)]
pub struct Aws {
    pub endpoint_url: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Aws {
    /// The environment's moto server, with its credentials.
    pub fn shared() -> Self {
        let aws = &TestEnv::get().endpoints.aws;
        Self {
            endpoint_url: aws.endpoint_url.clone(),
            access_key_id: aws.access_key_id.clone(),
            secret_access_key: aws.secret_access_key.clone(),
        }
    }

    /// The environment's credentials at another endpoint (a closed port, a proxy).
    pub fn at(endpoint_url: &str) -> Self {
        Self {
            endpoint_url: endpoint_url.to_owned(),
            ..Self::shared()
        }
    }
}

/// The operator binary, running against the test API server; killed when dropped.
pub struct Operator {
    child: Child,
    log_path: std::path::PathBuf,
}

impl Operator {
    /// Runs the operator watching `namespace` only (so tests in parallel do not share it),
    /// with AWS pointed at the environment's moto server.
    pub fn start(namespace: &str, leader_election: bool, identity: &str) -> Self {
        Self::start_with_aws(namespace, leader_election, identity, &Aws::shared())
    }

    /// As [`Operator::start`], with AWS at another endpoint and/or as another identity.
    pub fn start_with_aws(namespace: &str, leader_election: bool, identity: &str, aws: &Aws) -> Self {
        let kubeconfig = TestEnv::get().endpoints.kubernetes.kubeconfig.clone();
        Self::spawn(namespace, leader_election, identity, aws, &kubeconfig)
    }

    /// Runs the operator authenticated by `token` only (e.g. a ServiceAccount's), as in a pod.
    pub fn start_as(namespace: &str, identity: &str, token: &str) -> Self {
        let env = TestEnv::get();
        let ca = env.endpoints.state_dir.join("pki/ca.crt");
        let kubeconfig = env.endpoints.state_dir.join(format!("kubeconfig-{identity}"));
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\", certificate-authority: \"{ca}\"}}\n\
             users:\n- name: u\n  user: {{token: \"{token}\"}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\n\
             current-context: c\n",
            server = env.endpoints.kubernetes.server,
            ca = ca.display(),
        );
        std::fs::write(&kubeconfig, config).expect("kubeconfig");
        Self::spawn(namespace, true, identity, &Aws::shared(), &kubeconfig)
    }

    fn spawn(
        namespace: &str,
        leader_election: bool,
        identity: &str,
        aws: &Aws,
        kubeconfig: &std::path::Path,
    ) -> Self {
        let env = TestEnv::get();
        let log_path = env
            .endpoints
            .state_dir
            .join(format!("logs/operator-{identity}.log"));
        let log = std::fs::File::create(&log_path).expect("operator log");
        let child = Command::new(env!("CARGO_BIN_EXE_chatsdk-operator"))
            .arg("run")
            .env("KUBECONFIG", kubeconfig)
            .env("WATCH_NAMESPACE", namespace)
            .env("POD_NAMESPACE", namespace)
            .env("POD_NAME", identity)
            .env("LEADER_ELECTION", leader_election.to_string())
            .env("AWS_ENDPOINT_URL", &aws.endpoint_url)
            .env("AWS_REGION", &env.endpoints.aws.region)
            .env("AWS_ACCESS_KEY_ID", &aws.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &aws.secret_access_key)
            .env_remove("AWS_PROFILE")
            // Port 0: the operator logs the port it got, so parallel tests never collide.
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env(
                "RUST_LOG",
                std::env::var("OPERATOR_RUST_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the operator");
        Self { child, log_path }
    }

    /// The metrics server's address, from the operator's log.
    fn metrics_addr(&self) -> Option<String> {
        self.log().lines().find_map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).ok()?;
            (entry["message"] == "serving /metrics, /healthz and /readyz")
                .then(|| entry["addr"].as_str().map(str::to_owned))?
        })
    }

    /// The operator's Prometheus metrics, as text.
    pub async fn metrics(&self) -> Option<String> {
        let url = format!("http://{}/metrics", self.metrics_addr()?);
        reqwest::get(url).await.ok()?.text().await.ok()
    }

    /// Sum of a counter family in the metrics text.
    pub async fn counter(&self, name: &str) -> Option<f64> {
        let text = self.metrics().await?;
        Some(
            text.lines()
                .filter(|l| l.starts_with(name) && !l.starts_with('#'))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    /// The operator's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The named condition's (status, reason), if present.
pub fn condition(cr: &ChatSDKDeployment, type_: &str) -> Option<(String, String)> {
    cr.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

pub async fn wait_ready(ns: &TestNamespace, name: &str) -> ChatSDKDeployment {
    let api = ns.api::<ChatSDKDeployment>();
    eventually(
        &format!("{name} to be Ready"),
        Duration::from_secs(90),
        || async {
            let cr = api.get(name).await.ok()?;
            let generation = cr.metadata.generation;
            let status = cr.status.as_ref()?;
            (status.observed_generation == generation
                && condition(&cr, "Ready").is_some_and(|(s, _)| s == "True"))
            .then_some(cr)
        },
    )
    .await
}
