//! The app server's side of the token broker: an RS256 key pair (fixtures), its registration
//! through the admin API, and signed service JWTs.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use super::{TestServer, str_of};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The service JWT audience the server expects by default.
pub const AUDIENCE: &str = "chatsdk-server-mint";

pub struct KeyPair {
    encoding: EncodingKey,
    /// The public half as a JWK `{kty, n, e}`.
    pub jwk: Value,
}

impl KeyPair {
    /// `a` or `b`: the PEM fixtures in `tests/fixtures`.
    pub fn fixture(name: &str) -> Result<Self, Error> {
        let path = format!(
            "{}/tests/fixtures/broker-key-{name}.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(path)?)?;
        let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwk = json!({"kty": "RSA", "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())});
        let der = key.to_pkcs1_der()?;
        Ok(Self {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk,
        })
    }

    /// Signs arbitrary claims with this key, `kid` in the header.
    pub fn sign(&self, kid: &str, claims: &Value) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A fresh, well-formed service JWT claim set for `issuer`.
pub fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "exp": now + 30,
    })
}

/// A registered broker client with one credential scoped into an app.
pub struct Broker {
    pub client_id: String,
    pub slug: String,
    pub kid: String,
    pub credential_id: String,
    pub key: KeyPair,
}

impl Broker {
    /// Registers client `slug` with key fixture `a` and scopes it into `app_id` with `scope`.
    pub async fn register(s: &TestServer, slug: &str, app_id: &str, scope: Value) -> Result<Self, Error> {
        let key = KeyPair::fixture("a")?;
        let (status, client) = s
            .admin(
                Method::POST,
                "/admin/broker/clients",
                Some(json!({"slug": slug, "name": format!("{slug} app server")})),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED, "{client}");
        let client_id = str_of(&client, "id");
        let kid = format!("{slug}-key-1");
        let (status, credential) = s
            .admin(
                Method::POST,
                &format!("/admin/broker/clients/{client_id}/credentials"),
                Some(json!({"kid": kid, "publicKeyJwk": key.jwk})),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED, "{credential}");
        let broker = Self {
            client_id,
            slug: slug.to_owned(),
            kid,
            credential_id: str_of(&credential, "id"),
            key,
        };
        broker.scope(s, app_id, scope).await?;
        Ok(broker)
    }

    pub async fn scope(&self, s: &TestServer, app_id: &str, scope: Value) -> Result<Value, Error> {
        let (status, body) = s
            .admin(
                Method::PUT,
                &format!("/admin/apps/{app_id}/broker-scopes/{}", self.credential_id),
                Some(scope),
            )
            .await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        Ok(body)
    }

    /// A fresh single-use service JWT.
    pub fn jwt(&self) -> Result<String, Error> {
        self.key.sign(&self.kid, &claims(&self.slug))
    }

    /// `method path` signed with a fresh service JWT.
    pub async fn call(
        &self,
        s: &TestServer,
        method: Method,
        path: &str,
        body: Value,
    ) -> Result<(StatusCode, Value), Error> {
        let auth = format!("Bearer {}", self.jwt()?);
        Ok(s.call(method, path, &[("Authorization", &auth)], Some(body))
            .await?)
    }

    pub async fn sync(
        &self,
        s: &TestServer,
        app_id: &str,
        user_id: &str,
        body: Value,
    ) -> Result<(StatusCode, Value), Error> {
        self.call(
            s,
            Method::PUT,
            &format!("/api/server/apps/{app_id}/memberships/{user_id}"),
            body,
        )
        .await
    }

    pub async fn mint(
        &self,
        s: &TestServer,
        app_id: &str,
        body: Value,
    ) -> Result<(StatusCode, Value), Error> {
        self.call(
            s,
            Method::POST,
            &format!("/api/server/apps/{app_id}/tokens/mint"),
            body,
        )
        .await
    }
}

/// A membership snapshot of revision `revision` naming `cids`, fresh for an hour.
pub fn snapshot(revision: i64, tenant: &str, cids: &[&str], status: &str) -> Value {
    let fresh = chrono::Utc::now() + chrono::Duration::hours(1);
    json!({
        "version": format!("v{revision}"),
        "revision": revision,
        "freshUntil": fresh.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "stateHash": format!("state-hash-{revision:04}"),
        "externalTenantId": tenant,
        "displayName": "Broker User",
        "memberships": cids.iter().map(|cid| json!({"type": "channel", "id": cid, "role": "member"})).collect::<Vec<_>>(),
        "status": status,
    })
}
