-- Baseline schema of chatsdk-server.
--
-- Tenancy is enforced twice: every tenant table carries `app_id` (and every query filters on
-- it), and row-level security refuses rows of any other app. The server runs as the owner of
-- these tables, so every table with tenant data uses FORCE ROW LEVEL SECURITY: without it the
-- owner would bypass the policies. The server sets `app.current_app_id` per transaction
-- (`set_config(..., true)`); with no setting, no tenant row is visible or writable.
--
-- `app` and `app_api_key` are the tenant registry (read before a tenant is known, to resolve an
-- API key hash or for the platform admin), so they have no tenant policy.

CREATE FUNCTION chatsdk_current_app() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.current_app_id', true), '')::uuid $$;

CREATE TABLE app (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app_api_key (
    app_id      uuid NOT NULL REFERENCES app (id) ON DELETE CASCADE,
    id          uuid NOT NULL,
    name        text NOT NULL,
    -- SHA-256 (hex) of the key: the plaintext is shown once and never stored.
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz,
    PRIMARY KEY (app_id, id)
);

CREATE TABLE app_user (
    app_id       uuid NOT NULL REFERENCES app (id) ON DELETE CASCADE,
    id           text NOT NULL CHECK (length(id) BETWEEN 1 AND 255),
    name         text,
    image_url    text,
    custom_data  jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_admin     boolean NOT NULL DEFAULT false,
    -- Tokens issued before this instant are refused (user-wide revocation).
    tokens_valid_after timestamptz,
    last_active_at timestamptz,
    deleted_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id)
);

CREATE TABLE auth_session (
    app_id       uuid NOT NULL,
    id           uuid NOT NULL,
    user_id      text NOT NULL,
    -- The only refresh token of this session that may still be exchanged (rotation).
    refresh_jti  uuid NOT NULL,
    mfa          boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    revoke_reason text,
    PRIMARY KEY (app_id, id),
    FOREIGN KEY (app_id, user_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE
);
CREATE INDEX auth_session_user ON auth_session (app_id, user_id);

CREATE TABLE channel (
    app_id        uuid NOT NULL REFERENCES app (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    cid           text NOT NULL,
    type          text NOT NULL CHECK (type IN ('messaging', 'group', 'team', 'livestream', 'public', 'private')),
    name          text,
    image_url     text,
    config        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by    text,
    member_count  integer NOT NULL DEFAULT 0,
    message_count bigint NOT NULL DEFAULT 0,
    -- Highest `seq` handed out in this channel; bumped under the row lock by each send, so the
    -- sequence is gap-free (a rolled back send rolls back its bump too).
    last_seq      bigint NOT NULL DEFAULT 0,
    last_message_at timestamptz,
    idempotency_key text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, cid)
);
CREATE UNIQUE INDEX channel_idempotency ON channel (app_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX channel_public ON channel (app_id, last_message_at DESC) WHERE type IN ('public', 'team');

CREATE TABLE channel_member (
    app_id        uuid NOT NULL,
    channel_id    uuid NOT NULL,
    user_id       text NOT NULL,
    role          text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'moderator', 'member')),
    -- Unread count = channel.last_seq - last_read_seq: no per-member write on each send.
    last_read_seq bigint NOT NULL DEFAULT 0,
    muted         boolean NOT NULL DEFAULT false,
    starred       boolean NOT NULL DEFAULT false,
    joined_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, channel_id, user_id),
    FOREIGN KEY (app_id, channel_id) REFERENCES channel (app_id, id) ON DELETE CASCADE,
    FOREIGN KEY (app_id, user_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE
);
CREATE INDEX channel_member_user ON channel_member (app_id, user_id);

CREATE TABLE message (
    app_id        uuid NOT NULL,
    channel_id    uuid NOT NULL,
    id            uuid NOT NULL,
    seq           bigint NOT NULL CHECK (seq > 0),
    user_id       text NOT NULL,
    client_msg_id text,
    text          text,
    attachments   jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- No foreign keys on thread links: retention archives by age, and a parent may be older
    -- than its replies. The domain checks them on write.
    parent_id     uuid,
    reply_to_id   uuid,
    reply_count   integer NOT NULL DEFAULT 0,
    reaction_count integer NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'sent',
    created_at    timestamptz NOT NULL DEFAULT now(),
    edited_at     timestamptz,
    deleted_at    timestamptz,
    search        tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(text, ''))) STORED,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, channel_id, seq),
    UNIQUE (app_id, channel_id, client_msg_id),
    FOREIGN KEY (app_id, channel_id) REFERENCES channel (app_id, id) ON DELETE CASCADE,
    FOREIGN KEY (app_id, user_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE
);
CREATE INDEX message_thread ON message (app_id, parent_id, seq) WHERE parent_id IS NOT NULL;
CREATE INDEX message_created ON message (created_at);
CREATE INDEX message_search ON message USING gin (search);

-- Same shape as `message`, filled by `chatsdk-server retention`.
CREATE TABLE archived_messages (
    app_id        uuid NOT NULL,
    channel_id    uuid NOT NULL,
    id            uuid NOT NULL,
    seq           bigint NOT NULL,
    user_id       text NOT NULL,
    client_msg_id text,
    text          text,
    attachments   jsonb NOT NULL,
    parent_id     uuid,
    reply_to_id   uuid,
    reply_count   integer NOT NULL,
    reaction_count integer NOT NULL,
    status        text NOT NULL,
    created_at    timestamptz NOT NULL,
    edited_at     timestamptz,
    deleted_at    timestamptz,
    archived_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id)
);

CREATE TABLE reaction (
    app_id      uuid NOT NULL,
    message_id  uuid NOT NULL,
    user_id     text NOT NULL,
    emoji       text NOT NULL CHECK (length(emoji) BETWEEN 1 AND 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, message_id, user_id, emoji),
    FOREIGN KEY (app_id, message_id) REFERENCES message (app_id, id) ON DELETE CASCADE,
    FOREIGN KEY (app_id, user_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE
);

-- Transactional outbox: written in the same transaction as the change it announces, drained
-- to Centrifugo (at least once) by a worker woken through NOTIFY.
CREATE TABLE outbox (
    app_id      uuid NOT NULL REFERENCES app (id) ON DELETE CASCADE,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    event_type  text NOT NULL,
    channels    text[] NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, id)
);
CREATE INDEX outbox_order ON outbox (id);

CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Delivered at commit, and folded into one notification per transaction.
    PERFORM pg_notify('chatsdk_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

CREATE TABLE audit_log (
    app_id      uuid NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    user_id     text,
    action      text NOT NULL,
    resource_type text NOT NULL,
    resource_id text,
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id)
);

-- Row-level security on every tenant table.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['app_user', 'auth_session', 'channel', 'channel_member', 'message',
                             'archived_messages', 'reaction', 'outbox', 'audit_log']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (app_id = chatsdk_current_app()) '
            'WITH CHECK (app_id = chatsdk_current_app())', t);
    END LOOP;
END $$;

-- The outbox drainer works across tenants by design; it states so explicitly per transaction.
CREATE POLICY outbox_drainer ON outbox
    USING (current_setting('app.outbox_drainer', true) = 'on');
