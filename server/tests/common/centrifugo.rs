//! A minimal Centrifugo v5 client for tests: JSON protocol over WebSocket (connect, subscribe,
//! pushes, ping replies) and the server API's `history`.

use std::time::Duration;

use chatsdk_testenv::TestEnv;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Replies and pushes read but not yet asked for (one frame may hold several, `\n`-separated).
    pending: std::collections::VecDeque<Value>,
}

impl WsClient {
    /// Connects with a connection token (`_internal.wsToken`); fails if Centrifugo refuses it.
    pub async fn connect(token: &str) -> Result<Self, Error> {
        let url = &TestEnv::get().centrifugo().websocket_url;
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await??;
        let mut client = Self {
            ws,
            next_id: 0,
            pending: Default::default(),
        };
        let reply = client.command(json!({ "connect": { "token": token } })).await?;
        if reply.get("connect").is_none() {
            return Err(format!("connect refused: {reply}").into());
        }
        Ok(client)
    }

    /// Sends a command and returns its reply (pushes that arrive meanwhile are kept).
    pub async fn command(&mut self, mut command: Value) -> Result<Value, Error> {
        self.next_id += 1;
        let id = self.next_id;
        command["id"] = json!(id);
        self.ws.send(Message::text(command.to_string())).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pos) = self.pending.iter().position(|v| v["id"].as_u64() == Some(id)) {
                return Ok(self.pending.remove(pos).unwrap_or_default());
            }
            self.read_frame(deadline).await?;
        }
    }

    pub async fn subscribe(&mut self, channel: &str, token: &str) -> Result<Value, Error> {
        self.command(json!({ "subscribe": { "channel": channel, "token": token } }))
            .await
    }

    async fn read_frame(&mut self, deadline: tokio::time::Instant) -> Result<(), Error> {
        let frame = tokio::time::timeout_at(deadline, self.ws.next())
            .await
            .map_err(|_| "timed out waiting for centrifugo")?
            .ok_or("websocket closed")??;
        let text = match frame {
            Message::Text(text) => text.to_string(),
            Message::Close(close) => return Err(format!("websocket closed: {close:?}").into()),
            _ => return Ok(()),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let value: Value = serde_json::from_str(line)?;
            if value.as_object().is_some_and(|o| o.is_empty()) {
                // Server ping: answered with an empty command, or Centrifugo disconnects.
                self.ws.send(Message::text("{}")).await?;
                continue;
            }
            self.pending.push_back(value);
        }
        Ok(())
    }

    /// Publication data pushed on `channel`, until `count` arrived or `wait` passed.
    pub async fn publications(
        &mut self,
        channel: &str,
        count: usize,
        wait: Duration,
    ) -> Result<Vec<Value>, Error> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut found = Vec::new();
        loop {
            while let Some(pos) = self.pending.iter().position(|v| {
                v["push"]["channel"].as_str() == Some(channel) && v["push"].get("pub").is_some()
            }) {
                if let Some(mut push) = self.pending.remove(pos) {
                    found.push(push["push"]["pub"]["data"].take());
                }
            }
            if found.len() >= count {
                return Ok(found);
            }
            match self.read_frame(deadline).await {
                Ok(()) => {}
                Err(_) if tokio::time::Instant::now() >= deadline => return Ok(found),
                Err(err) => return Err(err),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// Centrifugo's stored history of a channel (oldest first), as publication data.
pub async fn history(channel: &str) -> Result<Vec<Value>, Error> {
    let c = TestEnv::get().centrifugo();
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/history", c.api_url))
        .header("X-API-Key", &c.api_key)
        .json(&json!({ "channel": channel, "limit": 1000 }))
        .send()
        .await?
        .json()
        .await?;
    if let Some(err) = reply.get("error") {
        return Err(format!("history: {err}").into());
    }
    Ok(reply["result"]["publications"]
        .as_array()
        .map(|p| p.iter().map(|p| p["data"].clone()).collect())
        .unwrap_or_default())
}
