//! Long-running parts of the environment: started detached in their own process group, with
//! their output in a log file and their pid recorded, so `testenv down` (or a later `up`) can
//! stop them whatever happened to the command that started them.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A started process, known by its pid file.
#[derive(Debug, Clone)]
pub struct Daemon {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
}

impl Daemon {
    pub fn is_running(&self) -> bool {
        is_running(self.pid)
    }

    /// Fails with the tail of the log when the process has exited.
    pub fn ensure_running(&self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        bail!(
            "{} exited; last lines of {}:\n{}",
            self.name,
            self.log.display(),
            tail(&self.log, 30)
        )
    }
}

/// Starts `cmd` detached, logging to `<state>/logs/<name>.log`, pid in `<state>/pids/<name>`.
pub fn spawn(state_dir: &Path, name: &str, cmd: &mut Command) -> Result<Daemon> {
    let logs = state_dir.join("logs");
    let pids = state_dir.join("pids");
    fs::create_dir_all(&logs)?;
    fs::create_dir_all(&pids)?;
    let log = logs.join(format!("{name}.log"));
    let out = File::create(&log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
    let pid = child.id();
    fs::write(pids.join(name), pid.to_string())?;
    // The child is reaped by init once we exit; it must outlive this command.
    std::mem::forget(child);
    Ok(Daemon {
        name: name.to_owned(),
        pid,
        log,
    })
}

/// Stops every process recorded under `<state>/pids`: SIGTERM to its group, then SIGKILL.
pub fn stop_all(state_dir: &Path) -> Result<()> {
    let pids = state_dir.join("pids");
    let Ok(entries) = fs::read_dir(&pids) else {
        return Ok(());
    };
    let mut running = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if let Ok(pid) = fs::read_to_string(&path)?.trim().parse::<u32>() {
            signal_group(pid, "TERM");
            running.push(pid);
        }
        fs::remove_file(&path)?;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while running.iter().any(|pid| is_running(*pid)) && Instant::now() < deadline {
        sleep(Duration::from_millis(100));
    }
    for pid in running.into_iter().filter(|pid| is_running(*pid)) {
        signal_group(pid, "KILL");
    }
    Ok(())
}

fn signal_group(pid: u32, signal: &str) {
    // Errors mean the group is already gone, which is what we want.
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pid}"))
        .stderr(Stdio::null())
        .status();
}

fn is_running(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state letter is Z.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `check` until it succeeds, failing early if `daemon` died.
pub fn wait_for(
    daemon: &Daemon,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        daemon.ensure_running()?;
        if check() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "timed out after {timeout:?} waiting for {what}; last lines of {}:\n{}",
                daemon.log.display(),
                tail(&daemon.log, 30)
            );
        }
        sleep(Duration::from_millis(200));
    }
}

/// Status code of a plain-HTTP GET on 127.0.0.1 (health checks only).
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
