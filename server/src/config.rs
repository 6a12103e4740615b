//! Configuration from the environment variables of the deployment guide.
//!
//! Parsing takes a lookup function rather than reading `std::env` directly, so tests build a
//! configuration from a map without touching the process environment.

use std::time::Duration;

/// Smallest accepted HMAC secret: HS256 keys shorter than the hash output weaken it.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Everything the server reads from its environment.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub log_level: String,
    pub port: u16,
    pub jwt: JwtConfig,
    pub require_mfa: bool,
    /// Refuse plain HTTP (as seen by `X-Forwarded-Proto` from the proxy).
    pub force_https: bool,
    pub secure_cookies: bool,
    /// Platform admin key for `/admin/*`; the admin API answers 503 without it.
    pub admin_api_key: Option<String>,
    pub centrifugo: CentrifugoConfig,
    /// Per-user request budget (`RATE_LIMIT_PER_MINUTE`, `RATE_LIMIT_BURST`); off when unset.
    pub rate_limit: Option<RateLimitConfig>,
    /// The server-to-server token broker (`/api/server`).
    pub broker: BrokerConfig,
    /// `POST /api/auth/connect-dev`: only with `ALLOW_DEV_AUTH=true` and
    /// `NODE_ENV=development`; refused at start-up beside `NODE_ENV=production` or `FORCE_HTTPS`.
    pub dev_auth: bool,
    /// Web Push's VAPID identity (`VAPID_PRIVATE_KEY`, `VAPID_PUBLIC_KEY`, `VAPID_SUBJECT`);
    /// `/api/webpush` answers 503 without it.
    pub web_push: Option<crate::webpush::Vapid>,
    /// `WEB_PUSH_ALLOW_LOCAL_ENDPOINTS`: accept http and local push endpoints (tests only).
    pub web_push_allow_local: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `CHATSDK_ENABLE_SERVER_MINT` (off by default, as upstream).
    pub enabled: bool,
    /// `aud` every service JWT must carry (`CHATSDK_SERVER_MINT_AUDIENCE`).
    pub audience: String,
    /// Longest accepted service-JWT lifetime (`CHATSDK_SERVER_MINT_JWT_MAX_LIFETIME_SECONDS`,
    /// 1..=60, default 60): each is single use, and short lifetimes bound the replay store.
    pub max_jwt_lifetime: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub per_minute: u32,
    pub burst: u32,
}

#[derive(Clone)]
pub struct JwtConfig {
    pub secret: String,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

#[derive(Clone)]
pub struct CentrifugoConfig {
    /// HTTP API endpoint (e.g. `http://centrifugo:8000/api`); events stay in the outbox without it.
    pub api_url: Option<String>,
    pub api_key: Option<String>,
    /// HMAC secret of connection and subscription tokens.
    pub token_secret: String,
}

// Secrets must never reach logs, so Debug is written by hand.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("log_level", &self.log_level)
            .field("port", &self.port)
            .field("jwt_issuer", &self.jwt.issuer)
            .field("jwt_audience", &self.jwt.audience)
            .field("access_ttl", &self.jwt.access_ttl)
            .field("require_mfa", &self.require_mfa)
            .field("force_https", &self.force_https)
            .field("secure_cookies", &self.secure_cookies)
            .field("admin_api_key", &self.admin_api_key.as_ref().map(|_| "<set>"))
            .field("centrifugo_api_url", &self.centrifugo.api_url)
            .field("rate_limit", &self.rate_limit)
            .field("broker", &self.broker)
            .field("dev_auth", &self.dev_auth)
            .field(
                "web_push",
                &self.web_push.as_ref().map(|v| v.public_key().to_owned()),
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CentrifugoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CentrifugoConfig")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}://{user}:***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let database_url = required("DATABASE_URL")?;
        let jwt_secret = secret("JWT_SECRET", required("JWT_SECRET")?)?;
        let token_secret = secret("CENTRIFUGO_TOKEN_SECRET", required("CENTRIFUGO_TOKEN_SECRET")?)?;
        let session_minutes: u64 = parse(&get, "SESSION_TIMEOUT_MINUTES", 15)?;
        if session_minutes == 0 {
            return Err(ConfigError::Invalid {
                name: "SESSION_TIMEOUT_MINUTES",
                reason: "must be at least 1".into(),
            });
        }

        let per_minute: u32 = parse(&get, "RATE_LIMIT_PER_MINUTE", 0)?;
        let rate_limit = (per_minute > 0)
            .then(|| {
                parse(&get, "RATE_LIMIT_BURST", per_minute).map(|burst: u32| RateLimitConfig {
                    per_minute,
                    burst: burst.max(1),
                })
            })
            .transpose()?;

        let force_https = flag(&get, "FORCE_HTTPS")?;
        let node_env = get("NODE_ENV").map(|v| v.trim().to_ascii_lowercase());
        let dev_auth = flag(&get, "ALLOW_DEV_AUTH")?;
        if dev_auth && (force_https || node_env.as_deref() == Some("production")) {
            return Err(ConfigError::Invalid {
                name: "ALLOW_DEV_AUTH",
                reason: "must not be enabled with NODE_ENV=production or FORCE_HTTPS".into(),
            });
        }
        let max_jwt_lifetime: u64 = parse(&get, "CHATSDK_SERVER_MINT_JWT_MAX_LIFETIME_SECONDS", 60)?;
        if !(1..=60).contains(&max_jwt_lifetime) {
            return Err(ConfigError::Invalid {
                name: "CHATSDK_SERVER_MINT_JWT_MAX_LIFETIME_SECONDS",
                reason: "must be between 1 and 60".into(),
            });
        }
        let broker = BrokerConfig {
            enabled: flag(&get, "CHATSDK_ENABLE_SERVER_MINT")?,
            audience: get("CHATSDK_SERVER_MINT_AUDIENCE").unwrap_or_else(|| "chatsdk-server-mint".into()),
            max_jwt_lifetime: Duration::from_secs(max_jwt_lifetime),
        };

        let web_push = match (get("VAPID_PRIVATE_KEY"), get("VAPID_PUBLIC_KEY")) {
            (None, None) => None,
            (Some(private), Some(public)) => {
                let subject = get("VAPID_SUBJECT").unwrap_or_else(|| "mailto:push@chatsdk.io".into());
                Some(
                    crate::webpush::Vapid::new(&private, &public, &subject).map_err(|err| {
                        ConfigError::Invalid {
                            name: "VAPID_PRIVATE_KEY",
                            reason: err.to_string(),
                        }
                    })?,
                )
            }
            (Some(_), None) => return Err(ConfigError::Missing("VAPID_PUBLIC_KEY")),
            (None, Some(_)) => return Err(ConfigError::Missing("VAPID_PRIVATE_KEY")),
        };

        Ok(Config {
            web_push,
            web_push_allow_local: flag(&get, "WEB_PUSH_ALLOW_LOCAL_ENDPOINTS")?,
            broker,
            dev_auth: dev_auth && node_env.as_deref() == Some("development"),
            rate_limit,
            database_url,
            log_level: get("LOG_LEVEL").unwrap_or_else(|| "info".into()),
            port: parse(&get, "PORT", 5501)?,
            jwt: JwtConfig {
                secret: jwt_secret,
                issuer: get("JWT_ISSUER").unwrap_or_else(|| "chatsdk-api".into()),
                audience: get("JWT_AUDIENCE").unwrap_or_else(|| "chatsdk-client".into()),
                access_ttl: Duration::from_secs(session_minutes * 60),
                refresh_ttl: Duration::from_secs(24 * 60 * 60),
            },
            require_mfa: flag(&get, "REQUIRE_MFA")?,
            force_https,
            secure_cookies: flag(&get, "SECURE_COOKIES")?,
            admin_api_key: get("ADMIN_API_KEY"),
            centrifugo: CentrifugoConfig {
                api_url: get("CENTRIFUGO_API_URL"),
                api_key: get("CENTRIFUGO_API_KEY"),
                token_secret,
            },
        })
    }
}

fn secret(name: &'static str, value: String) -> Result<String, ConfigError> {
    if value.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("must be at least {MIN_SECRET_BYTES} bytes"),
        });
    }
    Ok(value)
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|err: T::Err| ConfigError::Invalid {
            name,
            reason: err.to_string(),
        }),
    }
}

fn flag(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => Ok(false),
        Some(v) => Err(ConfigError::Invalid {
            name,
            reason: format!("{v:?} is not a boolean"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("DATABASE_URL", "postgres://u:pw@h/db?sslmode=require".to_owned()),
            ("JWT_SECRET", "j".repeat(32)),
            ("CENTRIFUGO_TOKEN_SECRET", "c".repeat(32)),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_deployment_guide() -> Result<(), ConfigError> {
        let config = load(&base())?;
        assert_eq!(config.port, 5501);
        assert_eq!(config.jwt.access_ttl, Duration::from_secs(15 * 60));
        assert_eq!(config.jwt.issuer, "chatsdk-api");
        assert_eq!(config.jwt.audience, "chatsdk-client");
        assert!(!config.require_mfa && !config.force_https && !config.secure_cookies);
        assert_eq!(config.admin_api_key, None);
        assert_eq!(config.rate_limit, None);
        assert!(!config.broker.enabled && !config.dev_auth);
        assert_eq!(config.broker.audience, "chatsdk-server-mint");
        assert_eq!(config.broker.max_jwt_lifetime, Duration::from_secs(60));
        Ok(())
    }

    #[test]
    fn dev_auth_needs_development_and_is_refused_in_production() -> Result<(), ConfigError> {
        let with = |extra: &[(&'static str, &str)]| {
            let mut vars = base();
            vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
            load(&vars)
        };
        assert!(with(&[("ALLOW_DEV_AUTH", "true"), ("NODE_ENV", "development")])?.dev_auth);
        // Without an explicit development environment it stays off.
        assert!(!with(&[("ALLOW_DEV_AUTH", "true")])?.dev_auth);
        assert!(!with(&[("NODE_ENV", "development")])?.dev_auth);
        for refused in [
            &[("ALLOW_DEV_AUTH", "true"), ("NODE_ENV", "production")][..],
            &[
                ("ALLOW_DEV_AUTH", "true"),
                ("NODE_ENV", "development"),
                ("FORCE_HTTPS", "true"),
            ][..],
        ] {
            assert!(
                matches!(
                    with(refused),
                    Err(ConfigError::Invalid {
                        name: "ALLOW_DEV_AUTH",
                        ..
                    })
                ),
                "{refused:?}"
            );
        }
        for lifetime in ["0", "61", "-1"] {
            assert!(matches!(
                with(&[("CHATSDK_SERVER_MINT_JWT_MAX_LIFETIME_SECONDS", lifetime)]),
                Err(ConfigError::Invalid {
                    name: "CHATSDK_SERVER_MINT_JWT_MAX_LIFETIME_SECONDS",
                    ..
                })
            ));
        }
        let broker = with(&[
            ("CHATSDK_ENABLE_SERVER_MINT", "true"),
            ("CHATSDK_SERVER_MINT_AUDIENCE", "aud-x"),
            ("CHATSDK_SERVER_MINT_JWT_MAX_LIFETIME_SECONDS", "30"),
        ])?
        .broker;
        assert_eq!(
            broker,
            BrokerConfig {
                enabled: true,
                audience: "aud-x".into(),
                max_jwt_lifetime: Duration::from_secs(30)
            }
        );
        Ok(())
    }

    #[test]
    fn reads_every_variable() -> Result<(), ConfigError> {
        let mut vars = base();
        vars.extend([
            ("PORT", "8080".to_owned()),
            ("SESSION_TIMEOUT_MINUTES", "5".to_owned()),
            ("REQUIRE_MFA", "true".to_owned()),
            ("FORCE_HTTPS", "1".to_owned()),
            ("SECURE_COOKIES", "on".to_owned()),
            ("ADMIN_API_KEY", "admin".to_owned()),
            ("JWT_ISSUER", "iss".to_owned()),
            ("JWT_AUDIENCE", "aud".to_owned()),
            ("LOG_LEVEL", "debug".to_owned()),
            ("CENTRIFUGO_API_URL", "http://c/api".to_owned()),
            ("CENTRIFUGO_API_KEY", "k".to_owned()),
            ("RATE_LIMIT_PER_MINUTE", "120".to_owned()),
            ("RATE_LIMIT_BURST", "20".to_owned()),
        ]);
        let config = load(&vars)?;
        assert_eq!(
            config.rate_limit,
            Some(RateLimitConfig {
                per_minute: 120,
                burst: 20
            })
        );
        assert_eq!(config.port, 8080);
        assert_eq!(config.jwt.access_ttl, Duration::from_secs(300));
        assert!(config.require_mfa && config.force_https && config.secure_cookies);
        assert_eq!(config.admin_api_key.as_deref(), Some("admin"));
        assert_eq!(
            (config.jwt.issuer.as_str(), config.jwt.audience.as_str()),
            ("iss", "aud")
        );
        assert_eq!(config.log_level, "debug");
        assert_eq!(config.centrifugo.api_url.as_deref(), Some("http://c/api"));
        assert_eq!(config.centrifugo.api_key.as_deref(), Some("k"));
        Ok(())
    }

    #[test]
    fn refuses_missing_short_or_malformed_values() {
        let mut vars = base();
        vars.remove("DATABASE_URL");
        assert_eq!(load(&vars).err(), Some(ConfigError::Missing("DATABASE_URL")));

        let mut vars = base();
        vars.insert("JWT_SECRET", "short".into());
        assert!(matches!(
            load(&vars),
            Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                ..
            })
        ));

        for (name, value) in [
            ("PORT", "x"),
            ("REQUIRE_MFA", "maybe"),
            ("SESSION_TIMEOUT_MINUTES", "0"),
            ("RATE_LIMIT_PER_MINUTE", "-1"),
        ] {
            let mut vars = base();
            vars.insert(name, value.into());
            assert!(
                matches!(load(&vars), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}={value}"
            );
        }
    }

    #[test]
    fn debug_output_hides_secrets() -> Result<(), ConfigError> {
        let mut vars = base();
        vars.insert("ADMIN_API_KEY", "super-secret-admin".into());
        let shown = format!("{:?}", load(&vars)?);
        assert!(!shown.contains("pw@"), "{shown}");
        assert!(!shown.contains("super-secret-admin"), "{shown}");
        assert!(!shown.contains(&"j".repeat(32)), "{shown}");
        Ok(())
    }
}
