-- Polls on messages and their votes (upstream's `poll` / `poll_vote`).

CREATE TABLE poll (
    app_id          uuid NOT NULL,
    id              uuid NOT NULL,
    channel_id      uuid NOT NULL,
    -- One poll per message; it goes with its message (deletion cascades, as retention's).
    message_id      uuid NOT NULL,
    question        text NOT NULL CHECK (length(question) BETWEEN 1 AND 1000),
    -- [{id, text}] in display order.
    options         jsonb NOT NULL CHECK (jsonb_typeof(options) = 'array'),
    is_anonymous    boolean NOT NULL DEFAULT false,
    is_multi_choice boolean NOT NULL DEFAULT false,
    ends_at         timestamptz,
    -- Distinct voters, kept by each vote under the poll's row lock.
    total_votes     integer NOT NULL DEFAULT 0,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, message_id),
    FOREIGN KEY (app_id, message_id) REFERENCES message (app_id, id) ON DELETE CASCADE
);

CREATE TABLE poll_vote (
    app_id      uuid NOT NULL,
    poll_id     uuid NOT NULL,
    user_id     text NOT NULL,
    option_id   text NOT NULL,
    voted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, poll_id, user_id, option_id),
    FOREIGN KEY (app_id, poll_id) REFERENCES poll (app_id, id) ON DELETE CASCADE,
    FOREIGN KEY (app_id, user_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE
);

-- The message object's `pollId`.
ALTER TABLE message ADD COLUMN poll_id uuid;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['poll', 'poll_vote']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (app_id = chatsdk_current_app()) '
            'WITH CHECK (app_id = chatsdk_current_app())', t);
    END LOOP;
END $$;
