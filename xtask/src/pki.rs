//! Certificates for the test environment, generated at every start (nothing long-lived).
//!
//! One CA signs the API server's serving certificate, the cluster-admin client certificate
//! and PostgreSQL's serving certificate; a separate key signs service-account tokens.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate and its private key, written as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub apiserver: CertFiles,
    pub admin: CertFiles,
    pub postgres: CertFiles,
    /// ECDSA key that signs service-account tokens, and its public half that verifies them.
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
}

pub fn generate(dir: &Path) -> Result<Pki> {
    fs::create_dir_all(dir)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name = name("chatsdk-testenv-ca", None);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let ca_cert = dir.join("ca.crt");
    fs::write(&ca_cert, ca.pem())?;

    let server_names = [
        "127.0.0.1",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "10.96.0.1",
    ];
    let apiserver = issue(
        dir,
        "apiserver",
        &ca,
        &server_names,
        name("kube-apiserver", None),
        Usage::Server,
    )?;
    let admin = issue(
        dir,
        "admin",
        &ca,
        &[],
        name("chatsdk-testenv-admin", Some("system:masters")),
        Usage::Client,
    )?;
    let postgres = issue(
        dir,
        "postgres",
        &ca,
        &["127.0.0.1", "localhost"],
        name("postgres", None),
        Usage::Server,
    )?;

    let service_account = KeyPair::generate()?;
    let service_account_key = dir.join("service-account.key");
    write_private(&service_account_key, &service_account.serialize_pem())?;
    let service_account_pub = dir.join("service-account.pub");
    fs::write(&service_account_pub, service_account.public_key_pem())?;

    Ok(Pki {
        ca_cert,
        apiserver,
        admin,
        postgres,
        service_account_key,
        service_account_pub,
    })
}

enum Usage {
    Server,
    Client,
}

fn issue(
    dir: &Path,
    file_stem: &str,
    ca: &CertifiedIssuer<'_, KeyPair>,
    subject_alt_names: &[&str],
    distinguished_name: DistinguishedName,
    usage: Usage,
) -> Result<CertFiles> {
    let names: Vec<String> = subject_alt_names.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = distinguished_name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![match usage {
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    let files = CertFiles {
        cert: dir.join(format!("{file_stem}.crt")),
        key: dir.join(format!("{file_stem}.key")),
    };
    fs::write(&files.cert, cert.pem())?;
    write_private(&files.key, &key.serialize_pem())?;
    Ok(files)
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

/// Private keys are readable by their owner only (PostgreSQL refuses anything looser).
fn write_private(path: &Path, pem: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, pem)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}
