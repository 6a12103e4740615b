//! Web Push delivery (RFC 8030): the payload encrypted for the browser's subscription keys
//! (RFC 8291, `aes128gcm`, with `web-push-native`), authorized with a VAPID JWT (RFC 8292,
//! ES256 over `VAPID_PRIVATE_KEY`), posted to the subscription's push-service endpoint.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde::Serialize;

use crate::domain::tokens::now_secs;

/// How long a push service keeps an undelivered message (upstream's `TTL: 86400`).
const TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Lifetime of a VAPID JWT (RFC 8292 allows up to 24 hours).
const VAPID_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VapidError {
    #[error("VAPID_PRIVATE_KEY must be a base64url P-256 private key (32 bytes)")]
    PrivateKey,
    #[error("VAPID_PUBLIC_KEY must be the base64url uncompressed P-256 public key of VAPID_PRIVATE_KEY")]
    PublicKey,
}

/// The application server's VAPID identity.
#[derive(Clone)]
pub struct Vapid {
    signing: EncodingKey,
    /// Uncompressed public point, base64url: what browsers pass to `pushManager.subscribe`.
    public_key: String,
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public_key)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Vapid {
    fn eq(&self, other: &Self) -> bool {
        self.public_key == other.public_key && self.subject == other.subject
    }
}

impl Vapid {
    /// From the key pair in web-push's usual encoding (base64url raw private scalar and
    /// uncompressed public point); the public key must be the private key's.
    pub fn new(private_key: &str, public_key: &str, subject: &str) -> Result<Self, VapidError> {
        let raw = URL_SAFE_NO_PAD
            .decode(private_key.trim())
            .map_err(|_| VapidError::PrivateKey)?;
        let secret = p256::SecretKey::from_slice(&raw).map_err(|_| VapidError::PrivateKey)?;
        let derived = URL_SAFE_NO_PAD.encode(secret.public_key().to_sec1_bytes());
        if derived != public_key.trim() {
            return Err(VapidError::PublicKey);
        }
        let der = secret.to_pkcs8_der().map_err(|_| VapidError::PrivateKey)?;
        Ok(Self {
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            public_key: derived,
            subject: subject.to_owned(),
        })
    }

    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for a push service at `audience`
    /// (the endpoint's origin).
    fn authorization(&self, audience: &str) -> Result<String, PushError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: &'a str,
            exp: u64,
            sub: &'a str,
        }
        let claims = Claims {
            aud: audience,
            exp: now_secs() + VAPID_LIFETIME.as_secs(),
            sub: &self.subject,
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.signing)
            .map_err(|_| PushError::Encrypt)?;
        Ok(format!("vapid t={jwt}, k={}", self.public_key))
    }
}

/// A browser's push subscription as stored.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// What the push service made of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    /// 404/410: the subscription is gone and should be forgotten.
    Gone,
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("subscription keys are invalid")]
    Keys,
    #[error("payload encryption failed")]
    Encrypt,
    #[error("endpoint is not a valid URL")]
    Endpoint,
}

/// The browser's keys: `p256dh` a 65-byte uncompressed P-256 point, `auth` 16 bytes, both
/// base64url (padding tolerated, as browsers differ).
pub fn parse_keys(p256dh: &str, auth: &str) -> Result<(p256::PublicKey, web_push_native::Auth), PushError> {
    Ok((public_key(p256dh)?, auth_secret(auth)?))
}

fn decode(s: &str) -> Result<Vec<u8>, PushError> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| PushError::Keys)
}

/// The browser's `p256dh`: an uncompressed point on P-256.
pub fn public_key(p256dh: &str) -> Result<p256::PublicKey, PushError> {
    let point = decode(p256dh)?;
    if point.len() != 65 {
        return Err(PushError::Keys);
    }
    p256::PublicKey::from_sec1_bytes(&point).map_err(|_| PushError::Keys)
}

/// The browser's `auth` secret: 16 bytes.
pub fn auth_secret(auth: &str) -> Result<web_push_native::Auth, PushError> {
    let secret: [u8; 16] = decode(auth)?.try_into().map_err(|_| PushError::Keys)?;
    Ok(web_push_native::Auth::from(secret))
}

/// Sends Web Push messages with one HTTP client.
#[derive(Debug, Clone)]
pub struct WebPush {
    vapid: Vapid,
    http: reqwest::Client,
}

impl WebPush {
    pub fn new(vapid: Vapid) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // A push service answers; it never sends us elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { vapid, http })
    }

    pub fn vapid(&self) -> &Vapid {
        &self.vapid
    }

    /// Encrypts `payload` for `subscription` and posts it.
    pub async fn send(&self, subscription: &Subscription, payload: &[u8]) -> Result<Delivery, PushError> {
        let (public, auth) = parse_keys(&subscription.p256dh, &subscription.auth)?;
        let endpoint: http::Uri = subscription.endpoint.parse().map_err(|_| PushError::Endpoint)?;
        let audience = match (endpoint.scheme_str(), endpoint.authority()) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
            _ => return Err(PushError::Endpoint),
        };
        let request = web_push_native::WebPushBuilder::new(endpoint, public, auth)
            .with_valid_duration(TTL)
            .build(payload.to_vec())
            .map_err(|_| PushError::Encrypt)?;
        let (parts, body) = request.into_parts();
        let mut outgoing = self
            .http
            .post(&subscription.endpoint)
            .header(
                reqwest::header::AUTHORIZATION,
                self.vapid.authorization(&audience)?,
            )
            .body(body);
        for (name, value) in &parts.headers {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
        Ok(match outgoing.send().await {
            Ok(response) => match response.status().as_u16() {
                200..=202 => Delivery::Accepted,
                404 | 410 => Delivery::Gone,
                status => {
                    tracing::warn!(status, "web push refused");
                    Delivery::Failed
                }
            },
            Err(err) => {
                tracing::warn!(%err, "web push endpoint unreachable");
                Delivery::Failed
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vapid_keys_must_be_a_matching_p256_pair() {
        let secret = p256::SecretKey::from_slice(&[7u8; 32]).ok();
        let Some(secret) = secret else {
            panic!("test key");
        };
        let private = URL_SAFE_NO_PAD.encode(secret.to_bytes());
        let public = URL_SAFE_NO_PAD.encode(secret.public_key().to_sec1_bytes());
        assert!(Vapid::new(&private, &public, "mailto:a@b.c").is_ok());
        assert_eq!(
            Vapid::new("not-base64!", &public, "mailto:a@b.c").err(),
            Some(VapidError::PrivateKey)
        );
        assert_eq!(
            Vapid::new(&URL_SAFE_NO_PAD.encode([0u8; 32]), &public, "mailto:a@b.c").err(),
            Some(VapidError::PrivateKey)
        );
        let other = p256::SecretKey::from_slice(&[9u8; 32])
            .map(|k| URL_SAFE_NO_PAD.encode(k.public_key().to_sec1_bytes()));
        assert_eq!(
            Vapid::new(&private, &other.unwrap_or_default(), "mailto:a@b.c").err(),
            Some(VapidError::PublicKey)
        );
    }

    #[test]
    fn subscription_keys_are_checked() {
        let point = p256::SecretKey::from_slice(&[5u8; 32])
            .map(|k| URL_SAFE_NO_PAD.encode(k.public_key().to_sec1_bytes()))
            .unwrap_or_default();
        let auth = URL_SAFE_NO_PAD.encode([1u8; 16]);
        assert!(parse_keys(&point, &auth).is_ok());
        assert!(parse_keys(&format!("{point}="), &format!("{auth}==")).is_ok());
        assert!(parse_keys(&point, &URL_SAFE_NO_PAD.encode([1u8; 8])).is_err());
        assert!(parse_keys(&URL_SAFE_NO_PAD.encode([4u8; 65]), &auth).is_err());
        assert!(parse_keys("%%%", &auth).is_err());
    }
}
