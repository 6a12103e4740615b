//! The server-to-server token broker: `/api/server/apps/:appId/…` (service JWT, see
//! `domain::broker`) and its registry under `/admin/broker` (platform admin).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Admin, ApiJson, parse_json, path_id};
use crate::domain::broker::{self, MembershipEntry, MembershipInput, MintInput, ScopeInput};
use crate::error::ApiResult;
use crate::openapi::{AdminErrors, ErrorBody};
use crate::state::AppState;
use crate::storage::broker::{ClientRow, CredentialRow, ScopeRow};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mint))
        .routes(routes!(sync_membership))
        .routes(routes!(create_client))
        .routes(routes!(add_credential))
        .routes(routes!(set_credential))
        .routes(routes!(put_scope))
}

fn service_jwt(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MintBody {
    /// 1..255 characters; must match one of the scope's user id prefixes.
    user_id: String,
    external_tenant_id: String,
    external_user_id: Option<String>,
    /// Stored as its SHA-256 only.
    external_session_id: Option<String>,
    device_id: Option<String>,
    /// Default: the scope's `defaultScopes`; each must be in its `allowedScopes`.
    requested_scopes: Option<Vec<String>>,
    /// 1..3600, at most the scope's `maxTokenTtlSeconds` (its default).
    ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MintedUser {
    id: String,
    external_tenant_id: String,
    membership_version: String,
    membership_revision: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WsToken {
    ws_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MintResponse {
    /// Scoped access JWT (claims `scopes`, `broker_client_id`, `broker_credential_id`,
    /// `external_tenant_id`, `membership_version`); no refresh token.
    token: String,
    expires_in: u64,
    session_id: Uuid,
    user: MintedUser,
    #[serde(rename = "_internal")]
    internal: WsToken,
}

/// Answers common to both service routes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only: answers are built by `ApiError`
enum ServiceErrors {
    #[response(status = 400, description = "Bad input; `error.field` names what was wrong")]
    BadRequest(ErrorBody),
    #[response(
        status = 401,
        description = "Missing, malformed, unknown, invalid, too long-lived or replayed service JWT"
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "Outside the credential's scope in this app (app, origin, tenant, user, channels, scopes, TTL) or stale membership"
    )]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "Broker disabled (`SERVER_MINT_DISABLED`)")]
    NotFound(ErrorBody),
    #[response(status = 413, description = "Request body too large")]
    PayloadTooLarge(ErrorBody),
}

/// Mints a scoped user token for an app server that signs each call with its registered RS256
/// key. Needs `CHATSDK_ENABLE_SERVER_MINT`.
#[utoipa::path(post, path = "/api/server/apps/{app_id}/tokens/mint", tag = "broker", operation_id = "mintToken",
    security(("serviceJwt" = [])), params(("app_id" = Uuid, Path, description = "App id")), request_body = MintBody,
    responses((status = 200, description = "The minted token", body = MintResponse), ServiceErrors))]
async fn mint(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<MintResponse>> {
    let app_id = path_id(&app_id, "appId")?;
    let caller = broker::authenticate(
        &state,
        app_id,
        service_jwt(&headers),
        origin(&headers),
        broker::MINT,
    )
    .await?;
    let body: MintBody = parse_json(&body)?;
    let input = MintInput {
        user_id: body.user_id,
        external_tenant_id: body.external_tenant_id,
        external_user_id: body.external_user_id,
        external_session_id: body.external_session_id,
        device_id: body.device_id,
        requested_scopes: body.requested_scopes,
        ttl_seconds: body.ttl_seconds,
    };
    let (user_id, tenant) = (input.user_id.clone(), input.external_tenant_id.clone());
    let minted = broker::mint(&state, app_id, &caller, input).await?;
    Ok(Json(MintResponse {
        token: minted.tokens.token,
        expires_in: minted.tokens.expires_in,
        session_id: minted.session_id,
        user: MintedUser {
            id: user_id,
            external_tenant_id: tenant,
            membership_version: minted.membership_version,
            membership_revision: minted.membership_revision,
        },
        internal: WsToken {
            ws_token: minted.tokens.ws_token,
        },
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MembershipItem {
    /// Always `"channel"`.
    #[serde(rename = "type")]
    kind: String,
    /// The channel's `cid`.
    id: String,
    /// owner, admin, moderator or member (default).
    role: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MembershipBody {
    version: String,
    /// Monotonic per user: lower is refused, equal only as an exact repeat.
    revision: i64,
    /// Mints fail after this instant until the next sync.
    fresh_until: DateTime<Utc>,
    state_hash: String,
    /// Fixed per user once synced.
    external_tenant_id: String,
    display_name: Option<String>,
    avatar_url: Option<String>,
    /// The user's complete channel list (at most 5000); any other membership is removed.
    memberships: Vec<MembershipItem>,
    /// active, disabled, suspended or removed (the last three end every membership and session).
    status: String,
    /// Merged into the user's custom data (at most 4096 bytes).
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SyncResponse {
    app_id: Uuid,
    user_id: String,
    membership_version: String,
    membership_revision: i64,
    state_hash: String,
    fresh_until: DateTime<Utc>,
    applied_at: DateTime<Utc>,
    status_changed: bool,
    /// Present (true) when the revision was already applied exactly so.
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotent: Option<bool>,
    /// Present on an applied change: whether Centrifugo subscriptions or connections were cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    enqueued_realtime_commands: Option<bool>,
}

/// Syncs a user's membership snapshot from the app server (profile, channels by `cid`,
/// account status). Needs `CHATSDK_ENABLE_SERVER_MINT`.
#[utoipa::path(put, path = "/api/server/apps/{app_id}/memberships/{user_id}", tag = "broker", operation_id = "syncMembership",
    security(("serviceJwt" = [])),
    params(("app_id" = Uuid, Path, description = "App id"), ("user_id" = String, Path, description = "User id")),
    request_body = MembershipBody,
    responses((status = 200, description = "The applied (or repeated) revision", body = SyncResponse),
        (status = 409, description = "Revision rollback or conflict, or a new external tenant", body = ErrorBody),
        ServiceErrors))]
async fn sync_membership(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((app_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<SyncResponse>> {
    let app_id = path_id(&app_id, "appId")?;
    let caller = broker::authenticate(
        &state,
        app_id,
        service_jwt(&headers),
        origin(&headers),
        broker::MEMBERSHIP_SYNC,
    )
    .await?;
    let body: MembershipBody = parse_json(&body)?;
    let input = MembershipInput {
        version: body.version,
        revision: body.revision,
        fresh_until: body.fresh_until,
        state_hash: body.state_hash,
        external_tenant_id: body.external_tenant_id,
        display_name: body.display_name,
        avatar_url: body.avatar_url,
        memberships: body
            .memberships
            .into_iter()
            .map(|m| MembershipEntry {
                kind: m.kind,
                id: m.id,
                role: m.role,
            })
            .collect(),
        status: body.status,
        metadata: body.metadata,
    };
    let synced = broker::sync_membership(&state, app_id, &user_id, &caller, input).await?;
    Ok(Json(SyncResponse {
        app_id,
        user_id,
        membership_version: synced.membership_version,
        membership_revision: synced.membership_revision,
        state_hash: synced.state_hash,
        fresh_until: synced.fresh_until,
        applied_at: synced.applied_at,
        status_changed: synced.status_changed,
        idempotent: synced.idempotent.then_some(true),
        enqueued_realtime_commands: (!synced.idempotent).then_some(synced.enqueued_realtime_commands),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ClientBody {
    /// 1..64 characters, no spaces: the `iss` of the client's service JWTs.
    slug: String,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClientResponse {
    id: Uuid,
    slug: String,
    name: String,
    status: String,
    created_at: DateTime<Utc>,
}

impl From<ClientRow> for ClientResponse {
    fn from(row: ClientRow) -> Self {
        Self {
            id: row.id,
            slug: row.slug,
            name: row.name,
            status: row.status,
            created_at: row.created_at,
        }
    }
}

/// **[ours]** Registers a broker client (upstream provisions these tables by hand).
#[utoipa::path(post, path = "/admin/broker/clients", tag = "broker", operation_id = "createBrokerClient",
    security(("adminKey" = [])), request_body = ClientBody,
    responses((status = 201, description = "The client", body = ClientResponse),
        (status = 409, description = "Slug taken", body = ErrorBody), AdminErrors))]
async fn create_client(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ClientBody>,
) -> ApiResult<(StatusCode, Json<ClientResponse>)> {
    let row = broker::create_client(&state, &body.slug, &body.name).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialBody {
    /// The `kid` header of the client's service JWTs (1..255, unique).
    kid: String,
    /// RSA public key (≥ 2048 bits) as a JWK `{kty: "RSA", n, e}`; private parts are refused.
    #[schema(value_type = Object)]
    public_key_jwk: Value,
    not_before: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CredentialStatusBody {
    /// active, rotating (both accepted) or disabled.
    status: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CredentialResponse {
    id: Uuid,
    client_id: Uuid,
    kid: String,
    status: String,
    not_before: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<CredentialRow> for CredentialResponse {
    fn from(row: CredentialRow) -> Self {
        Self {
            id: row.id,
            client_id: row.client_id,
            kid: row.kid,
            status: row.status,
            not_before: row.not_before,
            expires_at: row.expires_at,
            created_at: row.created_at,
        }
    }
}

/// **[ours]** Registers a public key of a broker client.
#[utoipa::path(post, path = "/admin/broker/clients/{client_id}/credentials", tag = "broker", operation_id = "addBrokerCredential",
    security(("adminKey" = [])), params(("client_id" = Uuid, Path, description = "Broker client id")),
    request_body = CredentialBody,
    responses((status = 201, description = "The credential", body = CredentialResponse),
        (status = 409, description = "kid taken", body = ErrorBody), AdminErrors))]
async fn add_credential(
    _: Admin,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    ApiJson(body): ApiJson<CredentialBody>,
) -> ApiResult<(StatusCode, Json<CredentialResponse>)> {
    let client_id = path_id(&client_id, "clientId")?;
    let row = broker::add_credential(
        &state,
        client_id,
        &body.kid,
        &body.public_key_jwk,
        body.not_before,
        body.expires_at,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// **[ours]** Disables (or re-enables) a credential: its service JWTs are refused at once.
#[utoipa::path(patch, path = "/admin/broker/credentials/{credential_id}", tag = "broker", operation_id = "setBrokerCredential",
    security(("adminKey" = [])), params(("credential_id" = Uuid, Path, description = "Credential id")),
    request_body = CredentialStatusBody,
    responses((status = 200, description = "The credential", body = CredentialResponse), AdminErrors))]
async fn set_credential(
    _: Admin,
    State(state): State<AppState>,
    Path(credential_id): Path<String>,
    ApiJson(body): ApiJson<CredentialStatusBody>,
) -> ApiResult<Json<CredentialResponse>> {
    let id = path_id(&credential_id, "credentialId")?;
    Ok(Json(
        broker::set_credential_status(&state, id, &body.status)
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScopeBody {
    /// active (default) or disabled.
    status: Option<String>,
    #[serde(default)]
    allowed_external_tenant_ids: Vec<String>,
    #[serde(default)]
    allowed_user_id_prefixes: Vec<String>,
    /// Prefixes of channel `cid`s the snapshots may name.
    #[serde(default)]
    allowed_channel_id_prefixes: Vec<String>,
    /// 1..5000 (default 1000).
    max_membership_fanout: Option<i32>,
    /// When set, calls with another `Origin` header are refused; `*` is refused.
    #[serde(default)]
    allowed_origins: Vec<String>,
    /// 60..3600 (default 900).
    max_token_ttl_seconds: Option<i32>,
    /// Default `["chat:read", "chat:write"]`; a subset of `allowedScopes`.
    default_scopes: Option<Vec<String>>,
    /// Default: all of chat:read, chat:write, reaction:write, typing:write, upload:write, search:read.
    allowed_scopes: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ScopeResponse {
    app_id: Uuid,
    credential_id: Uuid,
    status: String,
    allowed_external_tenant_ids: Vec<String>,
    allowed_user_id_prefixes: Vec<String>,
    allowed_channel_id_prefixes: Vec<String>,
    max_membership_fanout: i32,
    allowed_origins: Vec<String>,
    max_token_ttl_seconds: i32,
    default_scopes: Vec<String>,
    allowed_scopes: Vec<String>,
    updated_at: DateTime<Utc>,
}

impl From<ScopeRow> for ScopeResponse {
    fn from(row: ScopeRow) -> Self {
        Self {
            app_id: row.app_id,
            credential_id: row.credential_id,
            status: row.status,
            allowed_external_tenant_ids: row.allowed_external_tenant_ids,
            allowed_user_id_prefixes: row.allowed_user_id_prefixes,
            allowed_channel_id_prefixes: row.allowed_channel_id_prefixes,
            max_membership_fanout: row.max_membership_fanout,
            allowed_origins: row.allowed_origins,
            max_token_ttl_seconds: row.max_token_ttl_seconds,
            default_scopes: row.default_scopes,
            allowed_scopes: row.allowed_scopes,
            updated_at: row.updated_at,
        }
    }
}

/// **[ours]** Sets what a credential may do in one app (replaces the previous scope).
#[utoipa::path(put, path = "/admin/apps/{id}/broker-scopes/{credential_id}", tag = "broker", operation_id = "putBrokerScope",
    security(("adminKey" = [])),
    params(("id" = Uuid, Path, description = "App id"), ("credential_id" = Uuid, Path, description = "Credential id")),
    request_body = ScopeBody,
    responses((status = 200, description = "The scope", body = ScopeResponse), AdminErrors))]
async fn put_scope(
    _: Admin,
    State(state): State<AppState>,
    Path((app_id, credential_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ScopeBody>,
) -> ApiResult<Json<ScopeResponse>> {
    let app_id = path_id(&app_id, "id")?;
    let credential_id = path_id(&credential_id, "credentialId")?;
    let input = ScopeInput {
        status: body.status,
        allowed_external_tenant_ids: body.allowed_external_tenant_ids,
        allowed_user_id_prefixes: body.allowed_user_id_prefixes,
        allowed_channel_id_prefixes: body.allowed_channel_id_prefixes,
        max_membership_fanout: body.max_membership_fanout,
        allowed_origins: body.allowed_origins,
        max_token_ttl_seconds: body.max_token_ttl_seconds,
        default_scopes: body.default_scopes,
        allowed_scopes: body.allowed_scopes,
    };
    Ok(Json(
        broker::put_scope(&state, app_id, credential_id, input)
            .await?
            .into(),
    ))
}
