-- The server-to-server token broker (upstream's `/api/server`): app servers holding an RS256
-- key pair mint scoped user tokens with short service JWTs, after syncing each user's
-- membership snapshot.
--
-- The broker registry (clients, their public keys, the replay store of service-JWT ids) is
-- read before any tenant is known, like `app_api_key`, so it carries no tenant policy. What
-- belongs to one app (the credential's scope in it, the users' membership state, the audit
-- trail) is tenant data under the usual FORCE ROW LEVEL SECURITY policy.

CREATE TABLE broker_client (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 64),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE broker_credential (
    id            uuid PRIMARY KEY,
    client_id     uuid NOT NULL REFERENCES broker_client (id) ON DELETE CASCADE,
    -- The service JWT's `kid` header names the key.
    kid           text NOT NULL UNIQUE CHECK (length(kid) BETWEEN 1 AND 255),
    -- RSA public key as a JWK (`{kty: "RSA", n, e}`), the format upstream stores.
    public_key_jwk jsonb NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'rotating')),
    not_before    timestamptz,
    expires_at    timestamptz,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX broker_credential_client ON broker_credential (client_id);

-- Every service JWT is accepted once: its `jti` is recorded until it expires.
CREATE TABLE broker_jwt_replay (
    credential_id uuid NOT NULL REFERENCES broker_credential (id) ON DELETE CASCADE,
    jti           text NOT NULL CHECK (length(jti) BETWEEN 16 AND 255),
    expires_at    timestamptz NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (credential_id, jti)
);
CREATE INDEX broker_jwt_replay_expires ON broker_jwt_replay (credential_id, expires_at);

CREATE TABLE broker_app_scope (
    app_id        uuid NOT NULL REFERENCES app (id) ON DELETE CASCADE,
    credential_id uuid NOT NULL REFERENCES broker_credential (id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    allowed_external_tenant_ids text[] NOT NULL DEFAULT '{}',
    allowed_user_id_prefixes    text[] NOT NULL DEFAULT '{}',
    allowed_channel_id_prefixes text[] NOT NULL DEFAULT '{}',
    max_membership_fanout integer NOT NULL DEFAULT 1000 CHECK (max_membership_fanout BETWEEN 1 AND 5000),
    allowed_origins text[] NOT NULL DEFAULT '{}',
    max_token_ttl_seconds integer NOT NULL DEFAULT 900 CHECK (max_token_ttl_seconds BETWEEN 60 AND 3600),
    default_scopes text[] NOT NULL DEFAULT ARRAY['chat:read', 'chat:write'],
    allowed_scopes text[] NOT NULL DEFAULT ARRAY['chat:read', 'chat:write', 'reaction:write',
                                                 'typing:write', 'upload:write', 'search:read'],
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, credential_id),
    CHECK (allowed_scopes <@ ARRAY['chat:read', 'chat:write', 'reaction:write', 'typing:write',
                                   'upload:write', 'search:read']::text[]),
    CHECK (default_scopes <@ allowed_scopes),
    CHECK (array_position(allowed_origins, '*') IS NULL)
);

-- The membership snapshot the app server last synced for a user; a mint needs it active and fresh.
CREATE TABLE broker_membership_state (
    app_id        uuid NOT NULL,
    user_id       text NOT NULL,
    external_tenant_id text NOT NULL,
    version       text NOT NULL,
    revision      bigint NOT NULL CHECK (revision BETWEEN 0 AND 9007199254740991),
    state_hash    text NOT NULL,
    fresh_until   timestamptz NOT NULL,
    status        text NOT NULL CHECK (status IN ('active', 'disabled', 'suspended', 'removed')),
    synced_by_credential_id uuid REFERENCES broker_credential (id) ON DELETE SET NULL,
    tombstoned_at timestamptz,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, user_id),
    FOREIGN KEY (app_id, user_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE,
    CHECK ((status = 'active') = (tombstoned_at IS NULL))
);

-- Every mint and membership sync, granted or denied (never the tokens themselves).
CREATE TABLE broker_mint_audit (
    app_id        uuid NOT NULL REFERENCES app (id) ON DELETE CASCADE,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    client_id     uuid,
    credential_id uuid,
    credential_kid text,
    operation     text NOT NULL CHECK (operation IN ('mint', 'membership_sync')),
    user_id       text,
    external_tenant_id text,
    requested_scopes text[],
    granted_scopes text[],
    token_jti     text,
    session_id    uuid,
    status        text NOT NULL CHECK (status IN ('success', 'denied')),
    denial_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id)
);

CREATE FUNCTION broker_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'broker_mint_audit is append-only';
END $$;
CREATE TRIGGER broker_mint_audit_append_only BEFORE UPDATE ON broker_mint_audit
    FOR EACH ROW EXECUTE FUNCTION broker_audit_append_only();

-- Sessions opened by a mint: which credential, for which external identity, with which scopes.
-- `scopes` NULL is an unscoped session (`/api/auth/connect`).
ALTER TABLE auth_session
    ADD COLUMN broker_credential_id uuid,
    ADD COLUMN external_tenant_id text,
    ADD COLUMN external_user_id text,
    ADD COLUMN external_session_hash text,
    ADD COLUMN device_id text,
    ADD COLUMN membership_version text,
    ADD COLUMN scopes text[];

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['broker_app_scope', 'broker_membership_state', 'broker_mint_audit']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (app_id = chatsdk_current_app()) '
            'WITH CHECK (app_id = chatsdk_current_app())', t);
    END LOOP;
END $$;
