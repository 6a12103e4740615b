//! AWS Secrets Manager and RDS: moto in server mode, reached through `AWS_ENDPOINT_URL`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::endpoints::AwsEndpoints;
use crate::install::Installed;
use crate::process;

pub fn start(installed: &Installed, state: &Path) -> Result<AwsEndpoints> {
    let port = process::free_port()?;
    let daemon = process::spawn(
        state,
        "moto",
        Command::new(&installed.moto_server).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
    )?;
    process::wait_for(&daemon, "moto server", Duration::from_secs(60), || {
        process::http_status(port, "/moto-api/") == Some(200)
    })?;
    Ok(AwsEndpoints {
        endpoint_url: format!("http://127.0.0.1:{port}"),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    })
}
