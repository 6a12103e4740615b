-- The per-request access-token check in one round trip (it ran BEGIN + SELECT + COMMIT).
--
-- Called on its own (autocommit), never inside another transaction: it sets the tenant with
-- set_config(.., true), which lasts exactly for the statement's implicit transaction. The
-- function runs with the caller's rights (SECURITY INVOKER), so row-level security still
-- limits it to that tenant's rows.
CREATE FUNCTION chatsdk_token_subject(p_app uuid, p_user text, p_session uuid)
RETURNS TABLE (name text, image_url text, is_admin boolean, tokens_valid_after bigint,
               session_found boolean, session_live boolean)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('app.current_app_id', p_app::text, true);
    RETURN QUERY
        SELECT u.name, u.image_url, u.is_admin,
               floor(extract(epoch FROM u.tokens_valid_after))::bigint,
               s.id IS NOT NULL,
               coalesce(s.revoked_at IS NULL AND s.expires_at > now(), false)
        FROM app_user u
        LEFT JOIN auth_session s ON s.app_id = u.app_id AND s.id = p_session AND s.user_id = u.id
        WHERE u.app_id = p_app AND u.id = p_user AND u.deleted_at IS NULL;
END $$;
