//! RDS compliance checks: `DescribeDbInstances` and `DescribeDBParameters`, cached per
//! instance so a resource's reconciles do not call RDS each time.

use std::time::Duration;

use aws_sdk_rds::types::DbInstance;
use chatsdk_crds::v1alpha1::ComplianceFinding;

use super::{Aws, AwsError};

/// How often an instance's settings are checked again.
pub const RECHECK: Duration = Duration::from_secs(300);
/// The HIPAA guide's backup retention.
pub const MIN_BACKUP_RETENTION_DAYS: i32 = 35;

#[derive(Debug, Clone)]
pub struct RdsReport {
    /// Endpoint address and port, for a database secret that names no host.
    pub endpoint: Option<(String, i32)>,
    pub findings: Vec<ComplianceFinding>,
}

impl RdsReport {
    pub fn failed(&self) -> Vec<&ComplianceFinding> {
        self.findings.iter().filter(|f| !f.passed).collect()
    }
}

impl Aws {
    pub async fn rds_report(&self, instance: &str, region: Option<&str>) -> Result<RdsReport, AwsError> {
        let key = format!("{}|{instance}", region.unwrap_or(""));
        self.rds
            .get(&key, RECHECK, false, || async {
                let client = aws_sdk_rds::Client::new(&self.config(region).await);
                let result = client
                    .describe_db_instances()
                    .db_instance_identifier(instance)
                    .send()
                    .await;
                self.metrics.count_aws_call("DescribeDbInstances", result.is_ok());
                let output = result.map_err(|e| AwsError::classify("DescribeDbInstances", instance, &e))?;
                let db = output.db_instances().first().ok_or_else(|| AwsError::NotFound {
                    operation: "DescribeDbInstances",
                    resource: instance.to_owned(),
                })?;
                let force_ssl = match db
                    .db_parameter_groups()
                    .first()
                    .and_then(|g| g.db_parameter_group_name())
                {
                    Some(group) => {
                        let mut value = None;
                        let mut pages = client
                            .describe_db_parameters()
                            .db_parameter_group_name(group)
                            .into_paginator()
                            .send();
                        while let Some(page) = pages.next().await {
                            self.metrics.count_aws_call("DescribeDBParameters", page.is_ok());
                            let page =
                                page.map_err(|e| AwsError::classify("DescribeDBParameters", group, &e))?;
                            if let Some(p) = page
                                .parameters()
                                .iter()
                                .find(|p| p.parameter_name() == Some("rds.force_ssl"))
                            {
                                value = p.parameter_value().map(str::to_owned);
                                break;
                            }
                        }
                        Some((group.to_owned(), value))
                    }
                    None => None,
                };
                Ok(report(db, force_ssl))
            })
            .await
    }
}

/// The findings for one instance (pure, so every rule is unit-tested).
pub fn report(db: &DbInstance, force_ssl: Option<(String, Option<String>)>) -> RdsReport {
    let finding = |check: &str, passed: bool, message: String| ComplianceFinding {
        check: check.into(),
        passed,
        message,
    };
    let retention = db.backup_retention_period().unwrap_or(0);
    let mut findings = vec![
        finding(
            "StorageEncrypted",
            db.storage_encrypted() == Some(true),
            if db.storage_encrypted() == Some(true) {
                "storage is encrypted at rest".into()
            } else {
                "storage is not encrypted at rest".into()
            },
        ),
        finding(
            "BackupRetentionPeriod",
            retention >= MIN_BACKUP_RETENTION_DAYS,
            format!(
                "automated backups are kept {retention} days (at least {MIN_BACKUP_RETENTION_DAYS} required)"
            ),
        ),
        finding(
            "MultiAZ",
            db.multi_az() == Some(true),
            if db.multi_az() == Some(true) {
                "Multi-AZ is on".into()
            } else {
                "Multi-AZ is off".into()
            },
        ),
        finding(
            "PubliclyAccessible",
            db.publicly_accessible() != Some(true),
            if db.publicly_accessible() == Some(true) {
                "the instance is publicly accessible".into()
            } else {
                "the instance is not publicly accessible".into()
            },
        ),
        finding(
            "DeletionProtection",
            db.deletion_protection() == Some(true),
            if db.deletion_protection() == Some(true) {
                "deletion protection is on".into()
            } else {
                "deletion protection is off".into()
            },
        ),
    ];
    findings.push(match force_ssl {
        Some((group, Some(value))) => finding(
            "ForceSSL",
            value == "1",
            format!("rds.force_ssl is {value} in parameter group {group} (1 required)"),
        ),
        Some((group, None)) => finding(
            "ForceSSL",
            false,
            format!("rds.force_ssl is not set in parameter group {group} (1 required)"),
        ),
        None => finding(
            "ForceSSL",
            false,
            "the instance has no parameter group setting rds.force_ssl = 1".into(),
        ),
    });
    let endpoint = db
        .endpoint()
        .and_then(|e| Some((e.address()?.to_owned(), e.port().unwrap_or(5432))));
    RdsReport { endpoint, findings }
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::types::Endpoint;

    use super::*;

    #[test]
    fn a_compliant_instance_passes_every_check() {
        let db = DbInstance::builder()
            .storage_encrypted(true)
            .backup_retention_period(35)
            .multi_az(true)
            .publicly_accessible(false)
            .deletion_protection(true)
            .endpoint(Endpoint::builder().address("db.example").port(5432).build())
            .build();
        let report = report(&db, Some(("hipaa".into(), Some("1".into()))));
        assert!(report.failed().is_empty(), "{:?}", report.failed());
        assert_eq!(report.endpoint, Some(("db.example".into(), 5432)));
    }

    #[test]
    fn each_gap_is_a_failed_finding_with_its_reason() {
        let db = DbInstance::builder()
            .backup_retention_period(7)
            .publicly_accessible(true)
            .build();
        let report = report(&db, Some(("default.postgres15".into(), None)));
        let failed: Vec<&str> = report.failed().iter().map(|f| f.check.as_str()).collect();
        assert_eq!(
            failed,
            [
                "StorageEncrypted",
                "BackupRetentionPeriod",
                "MultiAZ",
                "PubliclyAccessible",
                "DeletionProtection",
                "ForceSSL"
            ]
        );
        let backups = report
            .findings
            .iter()
            .find(|f| f.check == "BackupRetentionPeriod")
            .expect("finding");
        assert_eq!(
            backups.message,
            "automated backups are kept 7 days (at least 35 required)"
        );
    }
}
