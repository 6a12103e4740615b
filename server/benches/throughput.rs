//! Throughput benchmark: `cargo bench -p chatsdk-server --bench throughput`.
//!
//! Against the test environment's PostgreSQL and Centrifugo (`cargo xtask testenv up`): starts
//! the server in-process on 127.0.0.1 with a fresh database and the outbox drainer, creates an
//! app, users and one group channel, then for concurrency 16 and 64 runs a fixed-duration load
//! of sends and of 50-message list pages, and the same SQL through `pgbench` at the same client
//! counts. Prints throughput, p50/p99 and the ratios, plus the publish lag (outbox commit →
//! Centrifugo acceptance, from the drainer's histogram) measured during the send runs.
//!
//! `BENCH_SECONDS` (default 10) sets each run's duration.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatsdk_server::AppState;
use chatsdk_server::audit::AuditSink;
use chatsdk_server::centrifugo::Centrifugo;
use chatsdk_server::drainer::{Drainer, DrainerConfig};
use chatsdk_server::storage;
use chatsdk_server::storage::messages::Direction;
use chatsdk_testenv::TestEnv;
use common::{ADMIN_KEY, TestDb, test_config};
use serde_json::{Value, json};
use tokio::net::TcpListener;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USERS: usize = 16;
const PAGE: usize = 50;

/// Audit lines are built (their cost is part of a request) but not kept.
struct NullSink;

impl AuditSink for NullSink {
    fn write_line(&self, _: &str) {}
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

fn stats(mut latencies_us: Vec<u64>, elapsed: Duration, errors: usize) -> Stats {
    latencies_us.sort_unstable();
    let pick = |q: f64| {
        if latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies_us.len() as f64 * q).ceil() as usize).clamp(1, latencies_us.len()) - 1;
        latencies_us[i] as f64 / 1000.0
    };
    Stats {
        rate: latencies_us.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        errors,
    }
}

struct Bench {
    base: String,
    http: reqwest::Client,
    tokens: Vec<String>,
    channel: String,
    app: String,
    db_url: String,
    duration: Duration,
}

impl Bench {
    /// `concurrency` tasks issue requests back to back until the deadline; only successes
    /// count toward the rate, errors are reported.
    async fn load(&self, concurrency: usize, send: bool) -> Stats {
        let deadline = Instant::now() + self.duration;
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(concurrency);
        for worker in 0..concurrency {
            let http = self.http.clone();
            let token = self.tokens[worker % self.tokens.len()].clone();
            let url = if send {
                format!("{}/api/channels/{}/messages", self.base, self.channel)
            } else {
                format!(
                    "{}/api/channels/{}/messages?limit={PAGE}",
                    self.base, self.channel
                )
            };
            tasks.push(tokio::spawn(async move {
                let (mut latencies, mut errors, mut n) = (Vec::with_capacity(65_536), 0usize, 0u64);
                while Instant::now() < deadline {
                    n += 1;
                    let t = Instant::now();
                    let request = if send {
                        http.post(&url).json(&json!({
                            "text": format!("bench message {worker}-{n}"),
                            "clientMsgId": format!("b{worker}-{n}-{}", uuid::Uuid::new_v4()),
                        }))
                    } else {
                        http.get(&url)
                    };
                    let ok = match request.bearer_auth(&token).send().await {
                        Ok(r) => {
                            let good = r.status().is_success();
                            // Read the whole body: a list is only served once it is sent.
                            good && r.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(t.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            }));
        }
        let (mut all, mut errors) = (Vec::new(), 0);
        for task in tasks {
            if let Ok((latencies, e)) = task.await {
                all.extend(latencies);
                errors += e;
            }
        }
        stats(all, started.elapsed(), errors)
    }

    /// The raw PostgreSQL limit, run by pgbench with `clients` connections: a send's core
    /// (seq allocation + insert) or the server's own page statement.
    fn pgbench(&self, clients: usize, send: bool, dir: &Path) -> Result<Stats, Error> {
        let env = TestEnv::get();
        let bin = env.endpoints.postgres.bin_dir.join("pgbench");
        let script = dir.join(if send { "insert.sql" } else { "select.sql" });
        let sql = if send {
            "BEGIN;
SELECT set_config('app.current_app_id', :app, true);
UPDATE channel SET last_seq = last_seq + 1, message_count = message_count + 1, last_message_at = now()
  WHERE app_id = :app::uuid AND id = :chan::uuid RETURNING last_seq AS seq \\gset
INSERT INTO message (app_id, channel_id, id, seq, user_id, client_msg_id, text, attachments)
  VALUES (:app::uuid, :chan::uuid, gen_random_uuid(), :seq, 'u0', gen_random_uuid()::text, 'pgbench message', '[]');
COMMIT;
"
            .to_owned()
        } else {
            // The server's page statement itself, its `$n` parameters as pgbench variables.
            let page = storage::messages::page_statement(Direction::Backward)
                .replace("$1", ":app")
                .replace("$2", ":chan")
                .replace("$3", ":viewer")
                .replace("$4", ":cursor")
                .replace("$5", ":limit");
            format!(
                "BEGIN;
SELECT set_config('app.current_app_id', :app, true);
{};
COMMIT;
",
                page.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        };
        std::fs::write(&script, sql)?;
        let prefix = dir.join(format!("log_{}_{clients}", if send { "i" } else { "s" }));
        let output = std::process::Command::new(bin)
            .arg("-n")
            .args(["-M", "prepared"])
            .args(["-c", &clients.to_string(), "-j", "2"])
            .args(["-T", &self.duration.as_secs().to_string()])
            .arg("-f")
            .arg(&script)
            .args(["-D", &format!("app={}", self.app)])
            .args(["-D", &format!("chan={}", self.channel)])
            // The list runs' viewer, cursor (the latest page) and page size + 1.
            .args(["-D", "viewer=u0", "-D", &format!("cursor={}", i64::MAX)])
            .args(["-D", &format!("limit={}", PAGE + 1)])
            .arg("-l")
            .arg("--log-prefix")
            .arg(&prefix)
            .arg(&self.db_url)
            .current_dir(dir)
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "pgbench failed: {}\n{text}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let failed: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("number of failed transactions: "))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        // Per-transaction log lines: `client txno latency_us script epoch us`.
        let mut latencies = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let is_log = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                prefix
                    .file_name()
                    .and_then(|p| p.to_str())
                    .is_some_and(|p| n.starts_with(p))
            });
            if is_log {
                for line in std::fs::read_to_string(&path)?.lines() {
                    if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                        latencies.push(us);
                    }
                }
                std::fs::remove_file(&path)?;
            }
        }
        Ok(stats(latencies, self.duration, failed))
    }
}

/// Cumulative `(le, count)` buckets of the publish-lag histogram from `/metrics`.
async fn lag_buckets(bench: &Bench) -> Result<(Vec<(f64, f64)>, f64), Error> {
    let text = bench
        .http
        .get(format!("{}/metrics", bench.base))
        .send()
        .await?
        .text()
        .await?;
    let mut buckets = Vec::new();
    let mut depth = 0.0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("chatsdk_outbox_publish_lag_seconds_bucket{le=\"") {
            let (le, tail) = rest.split_once('"').ok_or("bucket line")?;
            let count: f64 = tail.rsplit(' ').next().ok_or("bucket count")?.parse()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse()? };
            buckets.push((le, count));
        } else if let Some(v) = line.strip_prefix("chatsdk_outbox_depth ") {
            depth = v.parse()?;
        }
    }
    Ok((buckets, depth))
}

/// Prometheus-style quantile (linear within the bucket) over the samples between two scrapes.
fn lag_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> (f64, f64) {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            (
                *le,
                c - before.iter().find(|(l, _)| l == le).map_or(0.0, |(_, b)| *b),
            )
        })
        .collect();
    let total = delta.last().map_or(0.0, |(_, c)| *c);
    if total == 0.0 {
        return (f64::NAN, 0.0);
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (le, count) in &delta {
        if *count >= rank {
            if le.is_infinite() {
                return (lower.0 * 1000.0, total);
            }
            let share = if count - lower.1 > 0.0 {
                (rank - lower.1) / (count - lower.1)
            } else {
                1.0
            };
            return ((lower.0 + (le - lower.0) * share) * 1000.0, total);
        }
        lower = (*le, *count);
    }
    (f64::NAN, total)
}

async fn setup(duration: Duration) -> Result<(Bench, TestDb, tokio::sync::oneshot::Sender<()>), Error> {
    let db = TestDb::migrated().await?;
    // The production pool size (`serve` opens 32).
    let pool = storage::connect(&db.url, 32).await?;
    let config = test_config(&db.url);
    let state = AppState::new(pool.clone(), config, Arc::new(NullSink));
    let centrifugo = TestEnv::get().centrifugo();
    let client = Centrifugo::new(&centrifugo.api_url, Some(centrifugo.api_key.clone()))?;
    let drainer = Drainer::new(pool, client, DrainerConfig::default()).with_metrics(state.metrics.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let handle = drainer.spawn();
        let _ = chatsdk_server::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await;
        handle.stop().await;
    });

    let http = reqwest::Client::builder().pool_max_idle_per_host(128).build()?;
    let admin = format!("Bearer {ADMIN_KEY}");
    let app: Value = http
        .post(format!("{base}/admin/apps"))
        .header("Authorization", &admin)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let key = app["apiKey"].as_str().ok_or("no api key")?.to_owned();
    let app_id = app["id"].as_str().ok_or("no app id")?.to_owned();
    let mut tokens = Vec::new();
    for i in 0..USERS {
        let connected: Value = http
            .post(format!("{base}/api/auth/connect"))
            .header("X-API-Key", &key)
            .json(&json!({"userId": format!("u{i}"), "displayName": format!("User {i}")}))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(connected["token"].as_str().ok_or("no token")?.to_owned());
    }
    let members: Vec<String> = (1..USERS).map(|i| format!("u{i}")).collect();
    let channel: Value = http
        .post(format!("{base}/api/channels"))
        .bearer_auth(&tokens[0])
        .json(&json!({"type": "group", "name": "bench", "memberIds": members}))
        .send()
        .await?
        .json()
        .await?;
    let channel = channel["id"].as_str().ok_or("no channel id")?.to_owned();
    let bench = Bench {
        base,
        http,
        tokens,
        channel,
        app: app_id,
        db_url: db.url.clone(),
        duration,
    };
    Ok((bench, db, stop))
}

async fn wait_drained(bench: &Bench) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if lag_buckets(bench).await?.1 == 0.0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("outbox not drained within 60 s".into())
}

fn row(name: &str, api: Stats, raw: Stats) -> String {
    format!(
        "{name:<22} {:>9.0} {:>8.2} {:>8.2} {:>6} │ {:>9.0} {:>8.2} {:>8.2} {:>6} │ {:>5.2}×",
        api.rate,
        api.p50_ms,
        api.p99_ms,
        api.errors,
        raw.rate,
        raw.p50_ms,
        raw.p99_ms,
        raw.errors,
        api.rate / raw.rate
    )
}

async fn run() -> Result<(), Error> {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .clamp(1, 120);
    let duration = Duration::from_secs(seconds);
    let (bench, db, stop) = setup(duration).await?;
    let dir = std::env::temp_dir().join(format!("chatsdk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let mut lines = Vec::new();
    let mut lags = BTreeMap::new();
    for concurrency in [16, 64] {
        eprintln!("send ×{concurrency} …");
        let (before, _) = lag_buckets(&bench).await?;
        let send = bench.load(concurrency, true).await;
        wait_drained(&bench).await?;
        let (after, _) = lag_buckets(&bench).await?;
        lags.insert(
            concurrency,
            (
                lag_quantile(&before, &after, 0.5),
                lag_quantile(&before, &after, 0.99),
            ),
        );
        eprintln!("pgbench insert ×{concurrency} …");
        let insert = bench.pgbench(concurrency, true, &dir)?;
        lines.push(row(&format!("send ×{concurrency}"), send, insert));
    }
    for concurrency in [16, 64] {
        eprintln!("list ×{concurrency} …");
        let list = bench.load(concurrency, false).await;
        eprintln!("pgbench select ×{concurrency} …");
        let select = bench.pgbench(concurrency, false, &dir)?;
        lines.push(row(&format!("list {PAGE} ×{concurrency}"), list, select));
    }

    println!();
    println!(
        "chatsdk-server throughput ({seconds} s per run, one group channel, {USERS} users; {} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<22} {:>9} {:>8} {:>8} {:>6} │ {:>9} {:>8} {:>8} {:>6} │ {:>6}",
        "", "API/s", "p50 ms", "p99 ms", "errors", "pgbench/s", "p50 ms", "p99 ms", "failed", "ratio"
    );
    for line in &lines {
        println!("{line}");
    }
    println!("targets: send ≥ 0.70× pgbench insert (seq + insert), list ≥ 0.30× pgbench select");
    for (concurrency, ((p50, n), (p99, _))) in &lags {
        println!(
            "publish lag during send ×{concurrency} ({n:.0} events, commit → Centrifugo accepted): p50 {p50:.1} ms, p99 {p99:.1} ms (target p99 < 100 ms)"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.cleanup().await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    // `cargo bench` passes `--bench`; any filter argument is ignored: this is one scenario.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("benchmark failed: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
