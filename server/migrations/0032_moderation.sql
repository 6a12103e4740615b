-- Message reports and their review by an app admin (upstream's `message_report`).

CREATE TABLE message_report (
    app_id           uuid NOT NULL,
    id               uuid NOT NULL,
    message_id       uuid NOT NULL,
    reporter_user_id text NOT NULL,
    reason           text NOT NULL
        CHECK (reason IN ('harassment', 'spam', 'inappropriate', 'violence', 'hate_speech')),
    details          text CHECK (length(details) <= 1000),
    status           text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'reviewed', 'actioned', 'dismissed')),
    reviewed_by      text,
    reviewed_at      timestamptz,
    action_taken     text CHECK (action_taken IN ('delete_message', 'warn_user', 'ban_user', 'dismiss')),
    admin_notes      text CHECK (length(admin_notes) <= 1000),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id),
    -- One report per reporter and message.
    UNIQUE (app_id, message_id, reporter_user_id),
    FOREIGN KEY (app_id, message_id) REFERENCES message (app_id, id) ON DELETE CASCADE,
    FOREIGN KEY (app_id, reporter_user_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE
);
CREATE INDEX message_report_queue ON message_report (app_id, status, created_at DESC);

ALTER TABLE message_report ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_report FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_report USING (app_id = chatsdk_current_app())
    WITH CHECK (app_id = chatsdk_current_app());
