//! Devices, push preferences and Web Push against the real PostgreSQL: tokens registered,
//! moved between users, listed and removed; preferences merged over upstream's defaults; Web
//! Push subscriptions and a real encrypted, VAPID-signed send to a local push service that
//! verifies the signature and decrypts the message (RFC 8291/8292); hostile input; another app.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chatsdk_server::webpush::Vapid;
use common::{TestResult, TestServer, error_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::test]
async fn devices_are_registered_moved_listed_and_removed() -> TestResult {
    let s = TestServer::start().await?;
    let (_, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let bob = s.token(&key, "bob").await?;
    let token = "fcm:APA91b/Ex+ample=="; // FCM tokens carry ':' and base64 characters
    let (status, body) = s
        .user(
            &alice,
            Method::POST,
            "/api/devices",
            Some(json!({"token": token, "platform": "android", "deviceId": "pixel-8", "deviceName": "Alice's phone"})),
        )
        .await?;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    s.user(
        &alice,
        Method::POST,
        "/api/devices",
        Some(json!({"token": "apns-1", "platform": "ios"})),
    )
    .await?;
    let (_, list) = s.user(&alice, Method::GET, "/api/devices", None).await?;
    let devices = list["devices"].as_array().cloned().unwrap_or_default();
    assert_eq!(devices.len(), 2, "{list}");
    assert_eq!(devices[0]["platform"], "ios", "most recent first");
    assert_eq!(devices[1]["deviceName"], "Alice's phone");
    assert!(
        devices[1]["id"].is_string()
            && devices[1]["lastActiveAt"].is_string()
            && devices[1]["createdAt"].is_string()
    );
    assert!(!list.to_string().contains("APA91b"), "tokens are never listed");

    // Bob signs in on Alice's old phone: the token is his now.
    s.user(
        &bob,
        Method::POST,
        "/api/devices",
        Some(json!({"token": token, "platform": "android"})),
    )
    .await?;
    let (_, list) = s.user(&alice, Method::GET, "/api/devices", None).await?;
    assert_eq!(list["devices"].as_array().map(Vec::len), Some(1));
    // Removing by token (percent-encoded in the path); another user's token is not touched.
    let encoded: String = token
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (status, _) = s
        .user(&alice, Method::DELETE, &format!("/api/devices/{encoded}"), None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = s.user(&bob, Method::GET, "/api/devices", None).await?;
    assert_eq!(list["devices"].as_array().map(Vec::len), Some(1));
    let (status, _) = s
        .user(&bob, Method::DELETE, &format!("/api/devices/{encoded}"), None)
        .await?;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = s.user(&bob, Method::GET, "/api/devices", None).await?;
    assert_eq!(list["devices"], json!([]));

    for (body, field) in [
        (json!({"token": "t", "platform": "windows"}), "platform"),
        (json!({"token": "", "platform": "ios"}), "token"),
        (json!({"token": "a\u{0}b", "platform": "ios"}), "token"),
        (json!({"token": "x".repeat(4097), "platform": "ios"}), "token"),
        (
            json!({"token": "t", "platform": "ios", "deviceName": "x".repeat(256)}),
            "deviceName",
        ),
        (
            json!({"token": "t", "platform": "ios", "pushKit": true}),
            "pushKit",
        ),
        (json!({"platform": "ios"}), "token"),
    ] {
        let (status, reply) = s
            .user(&alice, Method::POST, "/api/devices", Some(body.clone()))
            .await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}"
        );
    }
    let (status, _) = s.call(Method::GET, "/api/devices", &[], None).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn preferences_merge_over_upstreams_defaults() -> TestResult {
    let s = TestServer::start().await?;
    let (_, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let defaults = json!({
        "newMessages": true, "mentions": true, "reactions": true, "threadReplies": true,
        "channelInvites": true, "quietHoursEnabled": false, "quietHoursStart": "22:00", "quietHoursEnd": "07:00",
    });
    let (status, prefs) = s
        .user(&alice, Method::GET, "/api/devices/preferences", None)
        .await?;
    assert_eq!(
        (status, prefs),
        (
            StatusCode::OK,
            json!({"preferences": defaults, "novuPreferences": null})
        )
    );
    let (_, updated) = s
        .user(
            &alice,
            Method::PATCH,
            "/api/devices/preferences",
            Some(json!({"mentions": false, "quietHoursStart": "23:15"})),
        )
        .await?;
    assert_eq!(updated["success"], true);
    assert_eq!(
        (
            updated["preferences"]["mentions"].clone(),
            updated["preferences"]["quietHoursStart"].clone()
        ),
        (json!(false), json!("23:15"))
    );
    // A later update keeps earlier choices.
    s.user(
        &alice,
        Method::PATCH,
        "/api/devices/preferences",
        Some(json!({"reactions": false})),
    )
    .await?;
    let (_, prefs) = s
        .user(&alice, Method::GET, "/api/devices/preferences", None)
        .await?;
    assert_eq!(
        (
            prefs["preferences"]["mentions"].clone(),
            prefs["preferences"]["reactions"].clone()
        ),
        (json!(false), json!(false))
    );
    assert_eq!(prefs["preferences"]["newMessages"], true);
    for (body, field) in [
        (json!({"mentions": "no"}), "mentions"),
        (json!({"quietHoursEnd": "24:00"}), "quietHoursEnd"),
        (json!({"quietHoursEnd": 700}), "quietHoursEnd"),
        (json!({"volume": 11}), "volume"),
    ] {
        let (status, reply) = s
            .user(
                &alice,
                Method::PATCH,
                "/api/devices/preferences",
                Some(body.clone()),
            )
            .await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}"
        );
    }
    let (status, reply) = s
        .user(
            &alice,
            Method::PATCH,
            "/api/devices/preferences",
            Some(json!([true])),
        )
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    s.cleanup().await;
    Ok(())
}

/// What the local push service received.
#[derive(Debug, Clone)]
struct Received {
    payload: Value,
    ttl: Option<String>,
    audience: String,
    subject: String,
}

/// The browser's side: its subscription keys.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new(seed: u8) -> Result<Self, Error> {
        Ok(Self {
            secret: p256::SecretKey::from_slice(&[seed; 32])?,
            auth: [seed.wrapping_add(1); 16],
        })
    }

    fn keys(&self) -> Value {
        json!({
            "p256dh": URL_SAFE_NO_PAD.encode(self.secret.public_key().to_sec1_bytes()),
            "auth": URL_SAFE_NO_PAD.encode(self.auth),
        })
    }
}

struct PushService {
    base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

type Shared = (Arc<Vec<Browser>>, Arc<Mutex<Vec<Received>>>);

/// `POST /push/{n}`: browser `n`'s endpoint; `/gone` answers 410 like an expired subscription.
async fn push_endpoint(
    State((browsers, received)): State<Shared>,
    Path(n): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    if n == "gone" {
        return AxumStatus::GONE;
    }
    let Some(browser) = n.parse::<usize>().ok().and_then(|i| browsers.get(i)) else {
        return AxumStatus::NOT_FOUND;
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if header("content-encoding").as_deref() != Some("aes128gcm") {
        return AxumStatus::BAD_REQUEST;
    }
    // RFC 8292: `vapid t=<JWT>, k=<application server key>`; the JWT verifies with k.
    let Some(auth) = header("authorization") else {
        return AxumStatus::UNAUTHORIZED;
    };
    let parts: Vec<&str> = auth.trim_start_matches("vapid ").split(", ").collect();
    let (Some(t), Some(k)) = (
        parts.iter().find_map(|p| p.strip_prefix("t=")),
        parts.iter().find_map(|p| p.strip_prefix("k=")),
    ) else {
        return AxumStatus::UNAUTHORIZED;
    };
    let Ok(point) = URL_SAFE_NO_PAD.decode(k) else {
        return AxumStatus::UNAUTHORIZED;
    };
    if point.len() != 65 {
        return AxumStatus::UNAUTHORIZED;
    }
    let Ok(key) = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..]),
    ) else {
        return AxumStatus::UNAUTHORIZED;
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let Ok(claims) = jsonwebtoken::decode::<Value>(t, &key, &validation) else {
        return AxumStatus::FORBIDDEN;
    };
    let auth = web_push_native::Auth::from(browser.auth);
    let Ok(plain) = web_push_native::decrypt(body.to_vec(), &browser.secret, &auth) else {
        return AxumStatus::BAD_REQUEST;
    };
    let Ok(payload) = serde_json::from_slice(&plain) else {
        return AxumStatus::BAD_REQUEST;
    };
    if let Ok(mut all) = received.lock() {
        all.push(Received {
            payload,
            ttl: header("ttl"),
            audience: claims.claims["aud"].as_str().unwrap_or_default().to_owned(),
            subject: claims.claims["sub"].as_str().unwrap_or_default().to_owned(),
        });
    }
    AxumStatus::CREATED
}

async fn push_service(browsers: Vec<Browser>) -> Result<PushService, Error> {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/push/{n}", axum::routing::post(push_endpoint))
        .with_state((Arc::new(browsers), received.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(PushService {
        base: format!("http://{addr}"),
        received,
    })
}

fn vapid() -> Result<Vapid, Error> {
    let secret = p256::SecretKey::from_slice(&[11u8; 32])?;
    Ok(Vapid::new(
        &URL_SAFE_NO_PAD.encode(secret.to_bytes()),
        &URL_SAFE_NO_PAD.encode(secret.public_key().to_sec1_bytes()),
        "mailto:ops@chat.example",
    )?)
}

#[tokio::test]
async fn web_push_sends_an_encrypted_signed_message_to_each_subscription() -> TestResult {
    let vapid = vapid()?;
    let public_key = vapid.public_key().to_owned();
    let s = TestServer::start_with(move |config| {
        config.web_push = Some(vapid);
        config.web_push_allow_local = true;
    })
    .await?;
    let (_, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    let (status, body) = s
        .user(&alice, Method::GET, "/api/webpush/vapid-key", None)
        .await?;
    assert_eq!((status, body), (StatusCode::OK, json!({"publicKey": public_key})));

    let push = push_service(vec![Browser::new(21)?, Browser::new(42)?]).await?;
    let browsers = [Browser::new(21)?, Browser::new(42)?];
    for (i, browser) in browsers.iter().enumerate() {
        let (status, body) = s
            .user(
                &alice,
                Method::POST,
                "/api/webpush/subscribe",
                Some(json!({"endpoint": format!("{}/push/{i}", push.base), "expirationTime": null, "keys": browser.keys()})),
            )
            .await?;
        assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    }
    // A third subscription the push service has forgotten (410).
    let (status, _) = s
        .user(
            &alice,
            Method::POST,
            "/api/webpush/subscribe",
            Some(json!({"endpoint": format!("{}/push/gone", push.base), "keys": browsers[0].keys()})),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);

    let (status, result) = s.user(&alice, Method::POST, "/api/webpush/test", None).await?;
    assert_eq!(
        (status, result),
        (StatusCode::OK, json!({"success": true, "sent": 2, "failed": 1}))
    );
    let received = push.received.lock().map(|r| r.clone()).unwrap_or_default();
    assert_eq!(received.len(), 2);
    for message in &received {
        assert_eq!(message.payload["title"], "Test User");
        assert_eq!(
            message.payload["body"],
            "This is a test notification from ChatSDK!"
        );
        assert_eq!(message.payload["data"]["type"], "new-message");
        assert_eq!(message.ttl.as_deref(), Some("86400"));
        assert_eq!(message.audience, push.base, "aud is the push service's origin");
        assert_eq!(message.subject, "mailto:ops@chat.example");
    }
    // The gone subscription was forgotten; an unsubscribed one gets nothing.
    let (_, result) = s.user(&alice, Method::POST, "/api/webpush/test", None).await?;
    assert_eq!(result, json!({"success": true, "sent": 2, "failed": 0}));
    for i in 0..2 {
        let (status, _) = s
            .user(
                &alice,
                Method::POST,
                "/api/webpush/unsubscribe",
                Some(json!({"endpoint": format!("{}/push/{i}", push.base)})),
            )
            .await?;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, result) = s.user(&alice, Method::POST, "/api/webpush/test", None).await?;
    assert_eq!(result["success"], false);
    assert_eq!(
        (result["sent"].clone(), result["failed"].clone()),
        (json!(0), json!(0))
    );
    assert!(result["message"].is_string());

    // Another app's user with the same id has none of these subscriptions.
    let (_, key_b) = s.create_app("B").await?;
    let eve = s.token(&key_b, "alice").await?;
    s.user(
        &alice,
        Method::POST,
        "/api/webpush/subscribe",
        Some(json!({"endpoint": format!("{}/push/0", push.base), "keys": browsers[0].keys()})),
    )
    .await?;
    let (_, result) = s.user(&eve, Method::POST, "/api/webpush/test", None).await?;
    assert_eq!(result["sent"], 0);
    s.user(
        &eve,
        Method::POST,
        "/api/webpush/unsubscribe",
        Some(json!({"endpoint": format!("{}/push/0", push.base)})),
    )
    .await?;
    let (_, result) = s.user(&alice, Method::POST, "/api/webpush/test", None).await?;
    assert_eq!(result["sent"], 1);
    s.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn web_push_refuses_bad_subscriptions_and_answers_503_unconfigured() -> TestResult {
    let s = TestServer::start().await?;
    let (_, key) = s.create_app("A").await?;
    let alice = s.token(&key, "alice").await?;
    for path in ["/api/webpush/vapid-key", "/api/webpush/test"] {
        let method = if path.ends_with("test") {
            Method::POST
        } else {
            Method::GET
        };
        let (status, reply) = s.user(&alice, method, path, None).await?;
        assert_eq!(
            (status, error_of(&reply).0.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "WEB_PUSH_NOT_CONFIGURED"),
            "{path}"
        );
    }
    let keys = Browser::new(3)?.keys();
    let with = |patch: Value| {
        let mut body = json!({"endpoint": "https://push.example.com/sub/1", "keys": keys});
        if let (Some(b), Some(p)) = (body.as_object_mut(), patch.as_object()) {
            b.extend(p.clone());
        }
        body
    };
    let (status, _) = s
        .user(
            &alice,
            Method::POST,
            "/api/webpush/subscribe",
            Some(with(json!({}))),
        )
        .await?;
    assert_eq!(
        status,
        StatusCode::OK,
        "subscriptions are kept even before VAPID is configured"
    );
    for (body, field) in [
        (
            with(json!({"endpoint": "http://127.0.0.1:8080/internal"})),
            "endpoint",
        ),
        (
            with(json!({"endpoint": "https://169.254.169.254/latest"})),
            "endpoint",
        ),
        (with(json!({"endpoint": "javascript:alert(1)"})), "endpoint"),
        (
            with(json!({"endpoint": format!("https://push.example.com/{}", "x".repeat(2100))})),
            "endpoint",
        ),
        (
            with(json!({"keys": {"p256dh": "AAAA", "auth": keys["auth"]}})),
            "keys.p256dh",
        ),
        (
            with(json!({"keys": {"p256dh": keys["p256dh"], "auth": "c2hvcnQ"}})),
            "keys.auth",
        ),
        (with(json!({"keys": {"p256dh": keys["p256dh"]}})), "keys.auth"),
        (with(json!({"expirationTime": -5})), "expirationTime"),
        (with(json!({"expirationTime": "soon"})), "expirationTime"),
        (with(json!({"topic": "x"})), "topic"),
    ] {
        let (status, reply) = s
            .user(&alice, Method::POST, "/api/webpush/subscribe", Some(body.clone()))
            .await?;
        assert_eq!(
            (status, error_of(&reply).1.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}: {reply}"
        );
    }
    let (status, reply) = s
        .user(&alice, Method::POST, "/api/webpush/unsubscribe", Some(json!({})))
        .await?;
    assert_eq!(
        (status, error_of(&reply).1.as_deref()),
        (StatusCode::BAD_REQUEST, Some("endpoint"))
    );
    s.cleanup().await;
    Ok(())
}

/// The cross-app cases of this group for the route-list test: `(method, path, body)` that app
/// B's user sends naming app A's device token and subscription; each leaves A's untouched.
fn cross_app_cases(token: &str, endpoint: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::DELETE, format!("/api/devices/{token}"), None),
        (
            Method::POST,
            "/api/webpush/unsubscribe".to_owned(),
            Some(json!({"endpoint": endpoint})),
        ),
        (
            Method::PATCH,
            "/api/devices/preferences".to_owned(),
            Some(json!({"mentions": false})),
        ),
    ]
}

#[tokio::test]
async fn another_apps_user_touches_none_of_this_apps_push_targets() -> TestResult {
    let s = TestServer::start().await?;
    let (_, key_a) = s.create_app("A").await?;
    let (_, key_b) = s.create_app("B").await?;
    let alice = s.token(&key_a, "alice").await?;
    let eve = s.token(&key_b, "alice").await?;
    s.user(
        &alice,
        Method::POST,
        "/api/devices",
        Some(json!({"token": "shared-token", "platform": "ios"})),
    )
    .await?;
    let endpoint = "https://push.example.com/sub/alice";
    s.user(
        &alice,
        Method::POST,
        "/api/webpush/subscribe",
        Some(json!({"endpoint": endpoint, "keys": Browser::new(5)?.keys()})),
    )
    .await?;
    for (method, path, body) in cross_app_cases("shared-token", endpoint) {
        let (status, reply) = s.user(&eve, method.clone(), &path, body).await?;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {reply}");
    }
    // The same token string in app B is B's own registration, not a move of A's.
    s.user(
        &eve,
        Method::POST,
        "/api/devices",
        Some(json!({"token": "shared-token", "platform": "ios"})),
    )
    .await?;
    let (_, list) = s.user(&alice, Method::GET, "/api/devices", None).await?;
    assert_eq!(list["devices"].as_array().map(Vec::len), Some(1));
    let (_, prefs) = s
        .user(&alice, Method::GET, "/api/devices/preferences", None)
        .await?;
    assert_eq!(prefs["preferences"]["mentions"], true);
    s.cleanup().await;
    Ok(())
}
