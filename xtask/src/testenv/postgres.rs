//! A throwaway PostgreSQL cluster from Debian's packages, TLS only: `pg_hba.conf` accepts
//! `hostssl` connections and nothing else over TCP, so `sslmode=require` is exercised for real
//! and `sslmode=disable` is refused.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::endpoints::PostgresEndpoints;
use super::random_hex;
use crate::install::{Installed, run};
use crate::pki::Pki;
use crate::process;

/// PostgreSQL refuses to run as root; the Debian package's `postgres` account runs it.
const RUN_AS: &str = "postgres";

pub fn start(installed: &Installed, pki: &Pki, state: &Path) -> Result<PostgresEndpoints> {
    let bin = &installed.postgres_bin;
    let (uid, gid) = system_user(RUN_AS)?;
    let dir = state.join("postgres");
    let data = dir.join("data");
    let socket = dir.join("socket");
    for d in [&dir, &socket] {
        fs::create_dir_all(d)?;
        chown(d, Some(uid), Some(gid))?;
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;

    let admin_password = random_hex(16)?;
    let app_password = random_hex(16)?;
    let pwfile = dir.join("pwfile");
    fs::write(&pwfile, &admin_password)?;
    chown(&pwfile, Some(uid), Some(gid))?;
    run(Command::new(bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .args(["-E", "UTF8", "--no-locale", "--no-sync", "--pwfile"])
        .arg(&pwfile)
        .stdout(std::process::Stdio::null())
        .uid(uid)
        .gid(gid))
    .context("initdb")?;
    fs::remove_file(&pwfile)?;

    for (src, name, mode) in [
        (&pki.postgres.cert, "server.crt", 0o644),
        (&pki.postgres.key, "server.key", 0o600),
    ] {
        let dst = data.join(name);
        fs::copy(src, &dst)?;
        fs::set_permissions(&dst, fs::Permissions::from_mode(mode))?;
        chown(&dst, Some(uid), Some(gid))?;
    }
    let port = process::free_port()?;
    let conf = format!(
        "\n# chatsdk test environment\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{socket}'\n\
         ssl = on\n\
         ssl_cert_file = 'server.crt'\n\
         ssl_key_file = 'server.key'\n\
         max_connections = 300\n\
         shared_buffers = 256MB\n\
         # Throwaway data: durability off for speed.\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n",
        socket = socket.display()
    );
    append(&data.join("postgresql.conf"), &conf)?;
    fs::write(
        data.join("pg_hba.conf"),
        "# TCP only with TLS; anything else has no matching line and is refused.\n\
         local   all all                trust\n\
         hostssl all all 127.0.0.1/32   scram-sha-256\n",
    )?;

    let daemon = process::spawn(
        state,
        "postgres",
        Command::new(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .uid(uid)
            .gid(gid),
    )?;
    let pg_isready = bin.join("pg_isready");
    process::wait_for(&daemon, "PostgreSQL", Duration::from_secs(60), || {
        Command::new(&pg_isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    })?;
    run(Command::new(bin.join("psql"))
        .arg("-h")
        .arg(&socket)
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .arg("-c")
        .arg(format!("CREATE ROLE chatsdk LOGIN PASSWORD '{app_password}'"))
        .arg("-c")
        .arg("CREATE DATABASE chatsdk OWNER chatsdk"))
    .context("creating the chatsdk role and database")?;

    Ok(PostgresEndpoints {
        host: "127.0.0.1".into(),
        port,
        admin_url: format!("postgres://postgres:{admin_password}@127.0.0.1:{port}/postgres?sslmode=require"),
        url: format!("postgres://chatsdk:{app_password}@127.0.0.1:{port}/chatsdk?sslmode=require"),
        ca_cert: pki.ca_cert.clone(),
        bin_dir: bin.clone(),
    })
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())?;
    Ok(())
}

/// uid and gid of a system account, from /etc/passwd.
fn system_user(name: &str) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&name) && fields.len() > 3 {
            return Ok((fields[2].parse()?, fields[3].parse()?));
        }
    }
    bail!("no `{name}` account: it comes with Debian's postgresql package (apt-get install postgresql)")
}
