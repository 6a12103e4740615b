-- Push targets: mobile device tokens (APNs, FCM, Expo) and browser Web Push subscriptions.

CREATE TABLE device_token (
    app_id         uuid NOT NULL,
    id             uuid NOT NULL,
    user_id        text NOT NULL,
    -- A device token belongs to one user of the app at a time: registering it for another
    -- user (a new sign-in on the same phone) moves it, so nobody's pushes reach a stranger.
    token          text NOT NULL CHECK (length(token) BETWEEN 1 AND 4096),
    platform       text NOT NULL CHECK (platform IN ('ios', 'android', 'web', 'expo')),
    device_id      text CHECK (length(device_id) <= 255),
    device_name    text CHECK (length(device_name) <= 255),
    last_active_at timestamptz NOT NULL DEFAULT now(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, token),
    FOREIGN KEY (app_id, user_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE
);
CREATE INDEX device_token_user ON device_token (app_id, user_id, last_active_at DESC);

CREATE TABLE web_push_subscription (
    app_id      uuid NOT NULL,
    user_id     text NOT NULL,
    endpoint    text NOT NULL CHECK (length(endpoint) BETWEEN 1 AND 2048),
    -- The browser's P-256 public key (65 bytes) and auth secret (16 bytes), base64url.
    p256dh      text NOT NULL,
    auth        text NOT NULL,
    user_agent  text,
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, user_id, endpoint),
    FOREIGN KEY (app_id, user_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['device_token', 'web_push_subscription']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (app_id = chatsdk_current_app()) '
            'WITH CHECK (app_id = chatsdk_current_app())', t);
    END LOOP;
END $$;
