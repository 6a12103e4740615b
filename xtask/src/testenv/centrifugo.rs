//! Centrifugo, the real-time server, with a generated config (HTTP API key, HMAC token secret)
//! and the namespaces ChatSDK publishes to: `chat:{appId}:{channelId}` and `user:{appId}:{userId}`.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::endpoints::CentrifugoEndpoints;
use super::random_hex;
use crate::install::{CENTRIFUGO_VERSION, Installed};
use crate::process;

pub fn start(installed: &Installed, state: &Path) -> Result<CentrifugoEndpoints> {
    let port = process::free_port()?;
    let api_key = random_hex(16)?;
    let token_hmac_secret = random_hex(32)?;
    let namespace = |name: &str| {
        json!({
            "name": name,
            "history_size": 1000,
            "history_ttl": "600s",
            "force_recovery": true,
            "allow_history_for_subscriber": true,
        })
    };
    // Presence on chat channels: `GET /api/channels/:id/presence/live` reads who is subscribed
    // (upstream's Centrifugo config enables it there too).
    let mut chat = namespace("chat");
    chat["presence"] = json!(true);
    // Centrifugo v5 configuration keys (v6 nests the same settings; see install.rs).
    let config = json!({
        "token_hmac_secret_key": token_hmac_secret,
        "api_key": api_key,
        "allowed_origins": ["*"],
        "health": true,
        "log_level": "info",
        "namespaces": [chat, namespace("user")],
    });
    let dir = state.join("centrifugo");
    fs::create_dir_all(&dir)?;
    let config_file = dir.join("config.json");
    fs::write(&config_file, serde_json::to_vec_pretty(&config)?)?;
    let daemon = process::spawn(
        state,
        "centrifugo",
        Command::new(&installed.centrifugo)
            .arg("--config")
            .arg(&config_file)
            .args(["--address", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(&dir),
    )?;
    process::wait_for(&daemon, "Centrifugo", Duration::from_secs(30), || {
        process::http_status(port, "/health") == Some(200)
    })?;
    let url = format!("http://127.0.0.1:{port}");
    Ok(CentrifugoEndpoints {
        api_url: format!("{url}/api"),
        websocket_url: format!("ws://127.0.0.1:{port}/connection/websocket"),
        url,
        api_key,
        token_hmac_secret,
        version: CENTRIFUGO_VERSION.into(),
    })
}
