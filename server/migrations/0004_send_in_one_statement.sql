-- A send in one round trip, committed by the statement itself.
--
-- Every send of a channel queues on that channel's row lock (it hands out the gap-free `seq`).
-- Sent as BEGIN .. COMMIT from the server, the lock was held across the round trip to the
-- client and back for COMMIT; called on its own (autocommit), the statement's implicit
-- transaction commits inside the database, so the lock is held for the work alone.
--
-- Both functions set the tenant with set_config(.., true), which lasts for the statement's
-- transaction only, and run with the caller's rights (SECURITY INVOKER): row-level security
-- still limits them to that tenant's rows.

-- The token check with the rest of the user's profile, which a send renders. A new function:
-- pods of the previous release keep calling chatsdk_token_subject while this one rolls out.
CREATE FUNCTION chatsdk_token_profile(p_app uuid, p_user text, p_session uuid)
RETURNS TABLE (name text, image_url text, is_admin boolean, tokens_valid_after bigint,
               session_found boolean, session_live boolean, custom_data jsonb,
               last_active_at timestamptz, created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.current_app_id', p_app::text, true);
    RETURN QUERY
        SELECT u.name, u.image_url, u.is_admin,
               floor(extract(epoch FROM u.tokens_valid_after))::bigint,
               s.id IS NOT NULL,
               coalesce(s.revoked_at IS NULL AND s.expires_at > now(), false),
               u.custom_data, u.last_active_at, u.created_at, u.updated_at
        FROM app_user u
        LEFT JOIN auth_session s ON s.app_id = u.app_id AND s.id = p_session AND s.user_id = u.id
        WHERE u.app_id = p_app AND u.id = p_user AND u.deleted_at IS NULL;
END $$;

-- Checks and writes a message, in the order the checks were always made: membership (a
-- first send to a public or team channel joins it, in the same transaction, so a refused send
-- joins nobody), thread parent, replied-to message, repeated client id. `result`:
--   sent          stored as `message_seq`, with the parent's reply count, the sender's read
--                 mark and the outbox row (`p_payload` with message.seq filled in)
--   no_channel    the channel does not exist in this app
--   not_member    the sender is not a member of this private channel
--   bad_parent    `p_parent` is not a top-level message of the channel
--   bad_reply_to  `p_reply_to` is not a message of the channel
--   duplicate     `p_client_msg_id` was sent before: `existing_id`, `message_seq`
-- A concurrent send with the same client id that wins the race makes the INSERT fail with a
-- unique violation, which rolls the whole statement back (no `seq` is lost). Rows are locked
-- channel first, then the parent message, as a channel delete cascades.
CREATE FUNCTION chatsdk_send_message(
    p_app uuid, p_channel uuid, p_id uuid, p_user text, p_client_msg_id text, p_text text,
    p_attachments jsonb, p_parent uuid, p_reply_to uuid, p_created_at timestamptz,
    p_event text, p_channels text[], p_payload jsonb)
RETURNS TABLE (result text, message_seq bigint, existing_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
#variable_conflict use_column
DECLARE
    v_type text;
    v_member boolean;
    v_joined integer := 0;
    v_id uuid;
    v_seq bigint;
BEGIN
    PERFORM set_config('app.current_app_id', p_app::text, true);
    SELECT c.type, cm.user_id IS NOT NULL INTO v_type, v_member
    FROM channel c
    LEFT JOIN channel_member cm ON cm.app_id = c.app_id AND cm.channel_id = c.id AND cm.user_id = p_user
    WHERE c.app_id = p_app AND c.id = p_channel;
    IF v_type IS NULL THEN
        RETURN QUERY SELECT 'no_channel'::text, NULL::bigint, NULL::uuid;
        RETURN;
    END IF;
    IF NOT v_member AND v_type NOT IN ('public', 'team') THEN
        RETURN QUERY SELECT 'not_member'::text, NULL::bigint, NULL::uuid;
        RETURN;
    END IF;
    IF p_parent IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM message m
        WHERE m.app_id = p_app AND m.channel_id = p_channel AND m.id = p_parent AND m.parent_id IS NULL
    ) THEN
        RETURN QUERY SELECT 'bad_parent'::text, NULL::bigint, NULL::uuid;
        RETURN;
    END IF;
    IF p_reply_to IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM message m WHERE m.app_id = p_app AND m.channel_id = p_channel AND m.id = p_reply_to
    ) THEN
        RETURN QUERY SELECT 'bad_reply_to'::text, NULL::bigint, NULL::uuid;
        RETURN;
    END IF;
    IF p_client_msg_id IS NOT NULL THEN
        SELECT m.id, m.seq INTO v_id, v_seq FROM message m
        WHERE m.app_id = p_app AND m.channel_id = p_channel AND m.client_msg_id = p_client_msg_id;
        IF FOUND THEN
            RETURN QUERY SELECT 'duplicate'::text, v_seq, v_id;
            RETURN;
        END IF;
    END IF;
    IF NOT v_member THEN
        INSERT INTO channel_member (app_id, channel_id, user_id, role)
        VALUES (p_app, p_channel, p_user, 'member')
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            v_joined := 1;
        END IF;
    END IF;
    RETURN QUERY
        WITH s AS (
            UPDATE channel c SET last_seq = c.last_seq + 1, message_count = c.message_count + 1,
                                 member_count = c.member_count + v_joined,
                                 updated_at = CASE WHEN v_joined > 0 THEN now() ELSE c.updated_at END,
                                 last_message_at = now()
            WHERE c.app_id = p_app AND c.id = p_channel
            RETURNING c.last_seq),
        m AS (
            INSERT INTO message (app_id, channel_id, id, seq, user_id, client_msg_id, text,
                                 attachments, parent_id, reply_to_id, created_at)
            SELECT p_app, p_channel, p_id, s.last_seq, p_user, p_client_msg_id, p_text,
                   p_attachments, p_parent, p_reply_to, p_created_at
            FROM s
            RETURNING message.seq),
        p AS (
            UPDATE message pm SET reply_count = pm.reply_count + 1
            FROM m WHERE pm.app_id = p_app AND pm.id = p_parent),
        r AS (
            UPDATE channel_member cm SET last_read_seq = greatest(cm.last_read_seq, m.seq)
            FROM m WHERE cm.app_id = p_app AND cm.channel_id = p_channel AND cm.user_id = p_user),
        o AS (
            INSERT INTO outbox (app_id, event_type, channels, payload)
            SELECT p_app, p_event, p_channels, jsonb_build_object('type', p_event, 'payload',
                       jsonb_set(p_payload, '{message,seq}', to_jsonb(m.seq)))
            FROM m)
        -- No row in `m`: the channel was deleted since the check.
        SELECT CASE WHEN (SELECT m.seq FROM m) IS NULL THEN 'no_channel' ELSE 'sent' END,
               (SELECT m.seq FROM m), NULL::uuid;
END $$;
