//! JWTs: access and refresh tokens (HS256, `JWT_SECRET`) and Centrifugo connection and
//! subscription tokens (HS256, `CENTRIFUGO_TOKEN_SECRET`). Pure: no database here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Config;

/// Lifetime of subscription tokens (upstream: 15 minutes).
pub const SUBSCRIPTION_TTL: Duration = Duration::from_secs(15 * 60);
/// The `amr` value that marks a session whose user passed MFA.
pub const MFA_AMR: &str = "mfa";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

/// Claims of access and refresh tokens (upstream's names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub app_id: Uuid,
    pub user_id: String,
    pub sid: Uuid,
    pub jti: Uuid,
    #[serde(rename = "type")]
    pub token_type: TokenType,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// What a broker-minted token may do (upstream's `scopes`); absent on `/api/auth/connect`
    /// tokens, which are unscoped (see `domain::scopes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Upstream's broker claims: which credential minted the token, for which external identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_client_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_credential_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_version: Option<String>,
}

impl Claims {
    pub fn has_mfa(&self) -> bool {
        self.amr.iter().any(|m| m == MFA_AMR)
    }
}

#[derive(Debug, Serialize)]
struct CentrifugoClaims<'a> {
    sub: String,
    app_id: Uuid,
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    jti: Uuid,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Token expired")]
    Expired,
    #[error("Invalid token")]
    Invalid,
    #[error("Invalid token type")]
    WrongType,
    #[error("token encoding failed")]
    Encoding,
}

/// What `issue` returns: the three tokens of a session step.
#[derive(Debug, Clone)]
pub struct TokenBundle {
    pub token: String,
    pub refresh_token: String,
    pub refresh_jti: Uuid,
    pub ws_token: String,
    pub expires_in: u64,
}

/// Who a broker-minted token speaks for (upstream's broker claims).
#[derive(Debug, Clone)]
pub struct BrokerGrant {
    pub client_id: Uuid,
    pub credential_id: Uuid,
    pub external_tenant_id: String,
    pub membership_version: String,
    pub scopes: Vec<String>,
    pub ttl: Duration,
}

/// A minted access token and its Centrifugo connection token (no refresh token: the app
/// server mints again).
#[derive(Debug, Clone)]
pub struct MintedTokens {
    pub token: String,
    pub ws_token: String,
    pub expires_in: u64,
}

/// Signs and checks tokens with the configured secrets.
#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    centrifugo: EncodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl TokenService {
    pub fn new(config: &Config) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.jwt.issuer]);
        validation.set_audience(&[&config.jwt.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        // Small clock skew between pods only; expiry must stay meaningful.
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(config.jwt.secret.as_bytes()),
            decoding: DecodingKey::from_secret(config.jwt.secret.as_bytes()),
            centrifugo: EncodingKey::from_secret(config.centrifugo.token_secret.as_bytes()),
            validation,
            issuer: config.jwt.issuer.clone(),
            audience: config.jwt.audience.clone(),
            access_ttl: config.jwt.access_ttl,
            refresh_ttl: config.jwt.refresh_ttl,
        }
    }

    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Access + refresh + Centrifugo connection token for a session.
    pub fn issue(
        &self,
        app_id: Uuid,
        user_id: &str,
        sid: Uuid,
        mfa: bool,
    ) -> Result<TokenBundle, TokenError> {
        let now = now_secs();
        let amr = if mfa { vec![MFA_AMR.to_owned()] } else { Vec::new() };
        let claims = |token_type, ttl: Duration| Claims {
            sub: subject(app_id, user_id),
            app_id,
            user_id: user_id.to_owned(),
            sid,
            jti: Uuid::new_v4(),
            token_type,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + ttl.as_secs(),
            amr: amr.clone(),
            scopes: None,
            broker_client_id: None,
            broker_credential_id: None,
            external_tenant_id: None,
            membership_version: None,
        };
        let access = claims(TokenType::Access, self.access_ttl);
        let refresh = claims(TokenType::Refresh, self.refresh_ttl);
        let header = Header::new(Algorithm::HS256);
        Ok(TokenBundle {
            token: encode(&header, &access, &self.encoding).map_err(|_| TokenError::Encoding)?,
            refresh_token: encode(&header, &refresh, &self.encoding).map_err(|_| TokenError::Encoding)?,
            refresh_jti: refresh.jti,
            ws_token: self.centrifugo_token(app_id, user_id, Some(sid), None, self.access_ttl)?,
            expires_in: self.access_ttl.as_secs(),
        })
    }

    /// A scoped access token (and connection token) for a broker session.
    pub fn issue_broker(
        &self,
        app_id: Uuid,
        user_id: &str,
        sid: Uuid,
        grant: &BrokerGrant,
    ) -> Result<MintedTokens, TokenError> {
        let now = now_secs();
        let claims = Claims {
            sub: subject(app_id, user_id),
            app_id,
            user_id: user_id.to_owned(),
            sid,
            jti: Uuid::new_v4(),
            token_type: TokenType::Access,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + grant.ttl.as_secs(),
            amr: Vec::new(),
            scopes: Some(grant.scopes.clone()),
            broker_client_id: Some(grant.client_id),
            broker_credential_id: Some(grant.credential_id),
            external_tenant_id: Some(grant.external_tenant_id.clone()),
            membership_version: Some(grant.membership_version.clone()),
        };
        Ok(MintedTokens {
            token: encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .map_err(|_| TokenError::Encoding)?,
            ws_token: self.centrifugo_token(app_id, user_id, Some(sid), None, grant.ttl)?,
            expires_in: grant.ttl.as_secs(),
        })
    }

    /// Checks signature, issuer, audience, time window and type.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        // `sub` must agree with the explicit claims, or one of them was forged.
        if claims.sub != subject(claims.app_id, &claims.user_id) {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }

    /// Token for subscribing to one Centrifugo channel.
    pub fn subscription_token(
        &self,
        app_id: Uuid,
        user_id: &str,
        channel: &str,
    ) -> Result<String, TokenError> {
        self.centrifugo_token(app_id, user_id, None, Some(channel), SUBSCRIPTION_TTL)
    }

    fn centrifugo_token(
        &self,
        app_id: Uuid,
        user_id: &str,
        sid: Option<Uuid>,
        channel: Option<&str>,
        ttl: Duration,
    ) -> Result<String, TokenError> {
        let now = now_secs();
        let claims = CentrifugoClaims {
            sub: subject(app_id, user_id),
            app_id,
            user_id,
            sid,
            channel,
            jti: Uuid::new_v4(),
            iss: &self.issuer,
            aud: &self.audience,
            iat: now,
            nbf: now,
            exp: now + ttl.as_secs(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.centrifugo).map_err(|_| TokenError::Encoding)
    }
}

/// The user's identity in JWTs and in Centrifugo: `"{appId}:{userId}"`.
pub fn subject(app_id: Uuid, user_id: &str) -> String {
    format!("{app_id}:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn service(overrides: &[(&'static str, &str)]) -> TokenService {
        let mut vars: HashMap<&str, String> = HashMap::from([
            ("DATABASE_URL", "postgres://x/y".to_owned()),
            ("JWT_SECRET", "s".repeat(40)),
            ("CENTRIFUGO_TOKEN_SECRET", "c".repeat(40)),
        ]);
        for (k, v) in overrides {
            vars.insert(k, (*v).to_owned());
        }
        match Config::from_lookup(|k| vars.get(k).cloned()) {
            Ok(config) => TokenService::new(&config),
            Err(err) => panic!("test config: {err}"),
        }
    }

    fn payload(token: &str) -> serde_json::Value {
        use base64::Engine as _;
        let part = token.split('.').nth(1).unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[test]
    fn issued_tokens_carry_upstream_claims_and_verify() -> Result<(), TokenError> {
        let tokens = service(&[]);
        let (app, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let bundle = tokens.issue(app, "alice", sid, false)?;
        let access = tokens.verify(&bundle.token, TokenType::Access)?;
        assert_eq!(access.sub, format!("{app}:alice"));
        assert_eq!(
            (access.app_id, access.user_id.as_str(), access.sid),
            (app, "alice", sid)
        );
        assert_eq!(
            (access.iss.as_str(), access.aud.as_str()),
            ("chatsdk-api", "chatsdk-client")
        );
        assert_eq!(access.exp - access.iat, 15 * 60);
        assert!(!access.has_mfa());
        let refresh = tokens.verify(&bundle.refresh_token, TokenType::Refresh)?;
        assert_eq!(refresh.jti, bundle.refresh_jti);
        assert_ne!(refresh.jti, access.jti);
        assert_eq!(bundle.expires_in, 900);

        let raw = payload(&bundle.token);
        for claim in [
            "sub", "app_id", "user_id", "sid", "jti", "iss", "aud", "exp", "iat", "nbf",
        ] {
            assert!(raw.get(claim).is_some(), "missing {claim} in {raw}");
        }
        assert_eq!(raw["type"], "access");
        Ok(())
    }

    #[test]
    fn refuses_wrong_type_secret_audience_and_tampering() -> Result<(), TokenError> {
        let tokens = service(&[]);
        let bundle = tokens.issue(Uuid::new_v4(), "bob", Uuid::new_v4(), true)?;
        assert!(tokens.verify(&bundle.token, TokenType::Access)?.has_mfa());
        assert_eq!(
            tokens.verify(&bundle.refresh_token, TokenType::Access).err(),
            Some(TokenError::WrongType)
        );
        assert_eq!(
            tokens.verify(&bundle.token, TokenType::Refresh).err(),
            Some(TokenError::WrongType)
        );
        // The Centrifugo token is signed with the other secret.
        assert_eq!(
            tokens.verify(&bundle.ws_token, TokenType::Access).err(),
            Some(TokenError::Invalid)
        );

        let other_secret = service(&[("JWT_SECRET", &"x".repeat(40))]);
        assert_eq!(
            other_secret.verify(&bundle.token, TokenType::Access).err(),
            Some(TokenError::Invalid)
        );
        let other_audience = service(&[("JWT_AUDIENCE", "someone-else")]);
        assert_eq!(
            other_audience.verify(&bundle.token, TokenType::Access).err(),
            Some(TokenError::Invalid)
        );

        let mut parts: Vec<&str> = bundle.token.split('.').collect();
        let forged_payload = {
            use base64::Engine as _;
            let mut claims = payload(&bundle.token);
            claims["user_id"] = "mallory".into();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
        };
        parts[1] = &forged_payload;
        assert_eq!(
            tokens.verify(&parts.join("."), TokenType::Access).err(),
            Some(TokenError::Invalid)
        );
        Ok(())
    }

    #[test]
    fn expired_tokens_are_reported_as_expired() -> Result<(), TokenError> {
        let tokens = service(&[]);
        let now = now_secs();
        let claims = Claims {
            sub: "a:b".into(),
            app_id: Uuid::nil(),
            user_id: "b".into(),
            sid: Uuid::nil(),
            jti: Uuid::nil(),
            token_type: TokenType::Access,
            iss: "chatsdk-api".into(),
            aud: "chatsdk-client".into(),
            iat: now - 3600,
            nbf: now - 3600,
            exp: now - 60,
            amr: vec![],
            scopes: None,
            broker_client_id: None,
            broker_credential_id: None,
            external_tenant_id: None,
            membership_version: None,
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret("s".repeat(40).as_bytes()),
        )
        .map_err(|_| TokenError::Encoding)?;
        assert_eq!(
            tokens.verify(&token, TokenType::Access).err(),
            Some(TokenError::Expired)
        );
        Ok(())
    }

    #[test]
    fn subscription_token_names_the_channel() -> Result<(), TokenError> {
        let tokens = service(&[]);
        let app = Uuid::new_v4();
        let token = tokens.subscription_token(app, "carol", "chat:x:y")?;
        let raw = payload(&token);
        assert_eq!(raw["channel"], "chat:x:y");
        assert_eq!(raw["sub"], format!("{app}:carol"));
        assert_eq!(
            raw["exp"].as_u64().unwrap_or_default() - raw["iat"].as_u64().unwrap_or_default(),
            900
        );
        Ok(())
    }
}
