//! The audit log: one JSON line per request, in the shape of the deployment guide
//! (`{"level","time","msg":"API request","req":{method,url,userId,appId,ip},"res":{statusCode},"responseTime"}`).
//!
//! Only the path is logged (query strings may carry tokens); never bodies, headers or keys.
//! The authenticating extractors fill in `userId`/`appId` through [`AuditIdentity`].

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use uuid::Uuid;

use crate::state::AppState;

/// Where audit lines go: stdout in production, memory in tests.
pub trait AuditSink: Send + Sync {
    fn write_line(&self, line: &str);
}

#[derive(Debug, Default)]
pub struct StdoutSink;

impl AuditSink for StdoutSink {
    fn write_line(&self, line: &str) {
        // One write per line under the stdout lock keeps lines whole between threads.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

/// Keeps lines in memory (tests read them back).
#[derive(Debug, Default)]
pub struct MemorySink(Mutex<Vec<String>>);

impl MemorySink {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemorySink {
    fn write_line(&self, line: &str) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line.to_owned());
        }
    }
}

/// Who made the request, set once by whichever extractor authenticated it.
#[derive(Debug, Clone, Default)]
pub struct AuditIdentity(Arc<OnceLock<(Uuid, Option<String>)>>);

impl AuditIdentity {
    pub fn set(&self, app_id: Uuid, user_id: Option<&str>) {
        let _ = self.0.set((app_id, user_id.map(str::to_owned)));
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    level: &'static str,
    time: u128,
    msg: &'static str,
    req: Req<'a>,
    res: Res,
    response_time: u128,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Req<'a> {
    method: &'a str,
    url: &'a str,
    user_id: Option<&'a str>,
    app_id: Option<Uuid>,
    ip: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Res {
    status_code: u16,
}

/// Client address: the first `X-Forwarded-For` hop (set by the ingress), else the peer.
fn client_ip(request: &Request) -> Option<String> {
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| v.parse::<std::net::IpAddr>().is_ok());
    forwarded.map(str::to_owned).or_else(|| {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
    })
}

pub async fn middleware(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let ip = client_ip(&request);
    let identity = AuditIdentity::default();
    request.extensions_mut().insert(identity.clone());

    let response = next.run(request).await;

    let who = identity.0.get();
    let line = Line {
        level: if response.status().is_server_error() {
            "error"
        } else {
            "info"
        },
        time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default(),
        msg: "API request",
        req: Req {
            method: &method,
            url: &path,
            user_id: who.and_then(|(_, user)| user.as_deref()),
            app_id: who.map(|(app, _)| *app),
            ip,
        },
        res: Res {
            status_code: response.status().as_u16(),
        },
        response_time: started.elapsed().as_millis(),
    };
    match serde_json::to_string(&line) {
        Ok(text) => state.audit.write_line(&text),
        Err(err) => tracing::error!(%err, "audit line not serializable"),
    }
    response
}
