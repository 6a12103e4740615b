-- Pins on messages and user blocks.

ALTER TABLE message ADD COLUMN pinned_at timestamptz, ADD COLUMN pinned_by text;
ALTER TABLE archived_messages ADD COLUMN pinned_at timestamptz, ADD COLUMN pinned_by text;
CREATE INDEX message_pinned ON message (app_id, channel_id, pinned_at DESC) WHERE pinned_at IS NOT NULL;

CREATE TABLE user_block (
    app_id      uuid NOT NULL,
    blocker_id  text NOT NULL,
    blocked_id  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, blocker_id, blocked_id),
    FOREIGN KEY (app_id, blocker_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE,
    FOREIGN KEY (app_id, blocked_id) REFERENCES app_user (app_id, id) ON DELETE CASCADE,
    CHECK (blocker_id <> blocked_id)
);
ALTER TABLE user_block ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_block FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_block USING (app_id = chatsdk_current_app())
    WITH CHECK (app_id = chatsdk_current_app());
