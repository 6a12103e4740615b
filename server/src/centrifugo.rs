//! Centrifugo's server HTTP API (v5): `batch` for the outbox drainer, `publish` for
//! non-durable events (typing, presence), `disconnect` / `unsubscribe` when access ends, and
//! `presence` (who is connected to a channel). Header `X-API-Key`; `CENTRIFUGO_API_URL` is the `/api` base.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// Longest a call may take: the drainer holds its outbox transaction meanwhile.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum CentrifugoError {
    #[error("centrifugo unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("centrifugo answered HTTP {0}")]
    Status(u16),
    #[error("centrifugo reply malformed: {0}")]
    Malformed(String),
    #[error("centrifugo refused: {code} {message}")]
    Refused { code: u32, message: String },
}

/// One publication: to one channel (`publish`) or several (`broadcast`).
#[derive(Debug, Clone)]
pub struct Publication<'a> {
    pub channels: &'a [String],
    pub data: &'a Value,
    /// Centrifugo drops a repeated key per channel for a few minutes, so a retry after a lost
    /// acknowledgement does not show the event twice.
    pub idempotency_key: Option<String>,
}

/// What Centrifugo made of one command of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// Transient (internal error, not available, rate limited): publish again later.
    Retry(String),
    /// Permanent (unknown channel, bad request): retrying cannot help.
    Rejected(String),
}

#[derive(Clone)]
pub struct Centrifugo {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
}

impl std::fmt::Debug for Centrifugo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Centrifugo")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct ReplyError {
    code: u32,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct BatchReply {
    #[serde(default)]
    replies: Vec<Reply>,
}

#[derive(Debug, Deserialize)]
struct Reply {
    error: Option<ReplyError>,
    broadcast: Option<BroadcastReply>,
}

#[derive(Debug, Deserialize)]
struct BroadcastReply {
    #[serde(default)]
    responses: Vec<Reply>,
}

/// Error codes worth retrying: internal (100), not available (108), too many requests (111).
fn is_transient(code: u32) -> bool {
    matches!(code, 100 | 108 | 111)
}

fn outcome(reply: &Reply) -> Outcome {
    let mut errors: Vec<&ReplyError> = reply.error.iter().collect();
    if let Some(b) = &reply.broadcast {
        errors.extend(b.responses.iter().filter_map(|r| r.error.as_ref()));
    }
    if let Some(e) = errors.iter().find(|e| is_transient(e.code)) {
        return Outcome::Retry(format!("{} {}", e.code, e.message));
    }
    match errors.first() {
        Some(e) => Outcome::Rejected(format!("{} {}", e.code, e.message)),
        None => Outcome::Accepted,
    }
}

impl Centrifugo {
    pub fn new(api_url: &str, api_key: Option<String>) -> Result<Self, CentrifugoError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            base: api_url.trim_end_matches('/').to_owned(),
            api_key,
        })
    }

    async fn call(&self, method: &str, body: &Value) -> Result<Value, CentrifugoError> {
        let mut request = self.http.post(format!("{}/{method}", self.base)).json(body);
        if let Some(key) = &self.api_key {
            request = request.header("X-API-Key", key);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(CentrifugoError::Status(status.as_u16()));
        }
        Ok(response.json().await?)
    }

    fn command(p: &Publication<'_>) -> Value {
        let mut inner = match p.channels {
            [one] => json!({ "channel": one, "data": p.data }),
            many => json!({ "channels": many, "data": p.data }),
        };
        if let (Some(key), Some(obj)) = (&p.idempotency_key, inner.as_object_mut()) {
            obj.insert("idempotency_key".into(), Value::String(key.clone()));
        }
        match p.channels {
            [_] => json!({ "publish": inner }),
            _ => json!({ "broadcast": inner }),
        }
    }

    /// Publishes all in one round trip, in order; one [`Outcome`] per publication.
    pub async fn batch(&self, publications: &[Publication<'_>]) -> Result<Vec<Outcome>, CentrifugoError> {
        let commands: Vec<Value> = publications.iter().map(Self::command).collect();
        let reply = self.call("batch", &json!({ "commands": commands })).await?;
        let reply: BatchReply =
            serde_json::from_value(reply).map_err(|e| CentrifugoError::Malformed(e.to_string()))?;
        if reply.replies.len() != publications.len() {
            return Err(CentrifugoError::Malformed(format!(
                "{} replies for {} commands",
                reply.replies.len(),
                publications.len()
            )));
        }
        Ok(reply.replies.iter().map(outcome).collect())
    }

    /// Publishes one non-durable event (nothing retries it).
    pub async fn publish(&self, channel: &str, data: &Value) -> Result<(), CentrifugoError> {
        self.method("publish", &json!({ "channel": channel, "data": data }))
            .await
            .map(drop)
    }

    /// Ends every connection of `user` (the `{appId}:{userId}` subject).
    pub async fn disconnect(&self, user: &str) -> Result<(), CentrifugoError> {
        self.method("disconnect", &json!({ "user": user }))
            .await
            .map(drop)
    }

    /// Removes `user`'s subscriptions to `channel`.
    pub async fn unsubscribe(&self, channel: &str, user: &str) -> Result<(), CentrifugoError> {
        self.method("unsubscribe", &json!({ "channel": channel, "user": user }))
            .await
            .map(drop)
    }

    /// Who is subscribed to `channel` now: `{client id: {client, user, conn_info?, chan_info?}}`
    /// (the namespace must have `presence` on).
    pub async fn presence(&self, channel: &str) -> Result<Value, CentrifugoError> {
        let result = self.method("presence", &json!({ "channel": channel })).await?;
        Ok(result.get("presence").cloned().unwrap_or_else(|| json!({})))
    }

    /// One server API method; its `result`, or the error Centrifugo answered.
    async fn method(&self, method: &str, params: &Value) -> Result<Value, CentrifugoError> {
        let reply = self.call(method, params).await?;
        match reply.get("error") {
            Some(err) => Err(CentrifugoError::Refused {
                code: err
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or_default(),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }),
            None => Ok(reply.get("result").cloned().unwrap_or(Value::Null)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(v: Value) -> Reply {
        serde_json::from_value(v).unwrap_or(Reply {
            error: None,
            broadcast: None,
        })
    }

    #[test]
    fn outcomes_follow_centrifugo_error_codes() {
        assert_eq!(
            outcome(&reply(json!({"publish": {"offset": 1}}))),
            Outcome::Accepted
        );
        assert!(matches!(
            outcome(&reply(
                json!({"error": {"code": 102, "message": "unknown channel"}})
            )),
            Outcome::Rejected(_)
        ));
        assert!(matches!(
            outcome(&reply(json!({"error": {"code": 100, "message": "internal"}}))),
            Outcome::Retry(_)
        ));
        // A broadcast is retried when any channel failed transiently, even if another refused.
        let mixed = json!({"broadcast": {"responses": [
            {"error": {"code": 102, "message": "unknown channel"}},
            {"error": {"code": 111, "message": "too many requests"}},
            {"result": {}}
        ]}});
        assert!(matches!(outcome(&reply(mixed)), Outcome::Retry(_)));
    }

    #[test]
    fn commands_use_publish_for_one_channel_and_broadcast_for_more() {
        let data = json!({"type": "x", "payload": {}});
        let one = vec!["chat:a:b".to_owned()];
        let two = vec!["user:a:1".to_owned(), "user:a:2".to_owned()];
        let p = |channels| Publication {
            channels,
            data: &data,
            idempotency_key: Some("k".into()),
        };
        assert_eq!(
            Centrifugo::command(&p(&one)),
            json!({"publish": {"channel": "chat:a:b", "data": data, "idempotency_key": "k"}})
        );
        assert_eq!(
            Centrifugo::command(&p(&two)),
            json!({"broadcast": {"channels": two, "data": data, "idempotency_key": "k"}})
        );
    }
}
