//! Triggers that tell every instance when better-auth changes something a
//! cached decision depends on (PostgreSQL only).
//!
//! One trigger function, `saas_api_auth_change()`, sends a small JSON payload
//! on the channel [`CHANNEL`] with `pg_notify`: ids only, never a credential
//! (any role may LISTEN on any channel, so a session is named by the SHA-256
//! of its token). Triggers on better-auth's tables — whichever exist, in
//! either naming style — fire only on what changes a decision (`WHEN`
//! filters), so better-auth's routine writes (a session's refresh, an API
//! key's `lastRequest`) send nothing:
//!
//! | table | fires on | payload |
//! |---|---|---|
//! | `session` | delete; `expiresAt` moved earlier; `activeOrganizationId` changed | `{"t":"s","h":sha256(token),"u":userId}` |
//! | `user` | delete; `banned`, `banExpires` or `role` changed | `{"t":"u","id"}` |
//! | `member` | delete; `role` (or its organization or user) changed | `{"t":"m","o","u"}` |
//! | `organization` | delete | `{"t":"o","id"}` |
//! | `apikey` | delete; `enabled`, `expiresAt`, `permissions`, `key`, `referenceId`, `rateLimitEnabled` changed, `remaining` set or cleared | `{"t":"k","h":key hash,"u"}` |
//! | `jwks` | any insert, update or delete | `{"t":"j"}` |
//!
//! A payload that would not fit PostgreSQL's 8,000-byte limit (absurdly long
//! ids) is replaced by `{"t":"all"}`: drop everything. A notification that
//! cannot be sent at all (a full notification queue) never fails
//! better-auth's write: it is a WARNING in PostgreSQL's log, and the caches'
//! TTL bounds that change.
//!
//! [`INSTALL`] is idempotent (run by the migration and at every start-up, so
//! plugin tables created later get their triggers): a table that has its
//! triggers is not touched (creating a trigger locks the table, so that is
//! done once, and gives up after 2 s behind other traffic), and instances
//! starting together are serialized with an advisory lock.

/// The channel the triggers notify on.
pub const CHANNEL: &str = "saas_api_auth_changes";

/// Creates (or re-creates) the function and the triggers of every
/// better-auth table that exists.
pub const INSTALL: &str = r#"
DO $install$
DECLARE
  c1 text; c2 text; c3 text; cond text;
  t text;
BEGIN
  -- Creating a trigger locks its table: never wait long behind better-auth's traffic.
  SET LOCAL lock_timeout = '2s';
  PERFORM pg_advisory_xact_lock(7262012031);

  CREATE OR REPLACE FUNCTION saas_api_auth_column(tbl text, camel text, snake text) RETURNS text
  LANGUAGE sql STABLE AS $col$
    SELECT format('%I', column_name::text) FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = tbl AND column_name::text IN (camel, snake)
    ORDER BY (column_name::text = camel) DESC LIMIT 1
  $col$;

  CREATE OR REPLACE FUNCTION saas_api_auth_change() RETURNS trigger
  LANGUAGE plpgsql AS $fn$
  DECLARE
    r jsonb := CASE WHEN TG_OP = 'INSERT' THEN to_jsonb(NEW) ELSE to_jsonb(OLD) END;
    payload text;
  BEGIN
    -- Never fail better-auth's own write because of this service: a
    -- notification that cannot be sent is a warning in PostgreSQL's log.
    BEGIN
    payload := (CASE TG_TABLE_NAME
      WHEN 'session' THEN jsonb_build_object('t', 's',
        'h', encode(sha256(convert_to(r->>'token', 'UTF8')), 'hex'),
        'u', coalesce(r->>'userId', r->>'user_id'))
      WHEN 'user' THEN jsonb_build_object('t', 'u', 'id', r->>'id')
      WHEN 'member' THEN jsonb_build_object('t', 'm',
        'o', coalesce(r->>'organizationId', r->>'organization_id'),
        'u', coalesce(r->>'userId', r->>'user_id'))
      WHEN 'organization' THEN jsonb_build_object('t', 'o', 'id', r->>'id')
      WHEN 'apikey' THEN jsonb_build_object('t', 'k', 'h', r->>'key',
        'u', coalesce(r->>'referenceId', r->>'reference_id', r->>'userId', r->>'user_id'))
      ELSE jsonb_build_object('t', 'j')
    END)::text;
    IF octet_length(payload) > 7900 THEN
      payload := '{"t":"all"}';
    END IF;
    PERFORM pg_notify('saas_api_auth_changes', payload);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'saas-api could not notify a change of better-auth''s % table (%): caches keep it up to SESSION_CACHE_TTL', TG_TABLE_NAME, SQLERRM;
    END;
    RETURN NULL;
  END
  $fn$;

  FOREACH t IN ARRAY ARRAY['session', 'user', 'member', 'organization', 'apikey', 'jwks'] LOOP
    IF to_regclass(format('%I.%I', current_schema(), t)) IS NULL THEN
      CONTINUE;
    END IF;
    -- Installed already (by the migration or an earlier start): leave the table unlocked.
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = format('%I.%I', current_schema(), t)::regclass
               AND tgname = 'saas_api_auth_change_d') THEN
      CONTINUE;
    END IF;
    EXECUTE format('CREATE TRIGGER saas_api_auth_change_d AFTER DELETE ON %I FOR EACH ROW EXECUTE FUNCTION saas_api_auth_change()', t);
    cond := NULL;
    IF t = 'session' THEN
      c1 := saas_api_auth_column(t, 'expiresAt', 'expires_at');
      c2 := saas_api_auth_column(t, 'activeOrganizationId', 'active_organization_id');
      cond := format('NEW.%s < OLD.%s', c1, c1);
      IF c2 IS NOT NULL THEN
        cond := cond || format(' OR OLD.%s IS DISTINCT FROM NEW.%s', c2, c2);
      END IF;
    ELSIF t = 'user' THEN
      FOREACH c1 IN ARRAY ARRAY[saas_api_auth_column(t, 'banned', 'banned'),
                                saas_api_auth_column(t, 'banExpires', 'ban_expires'),
                                saas_api_auth_column(t, 'role', 'role')] LOOP
        IF c1 IS NOT NULL THEN
          cond := concat_ws(' OR ', cond, format('OLD.%s IS DISTINCT FROM NEW.%s', c1, c1));
        END IF;
      END LOOP;
    ELSIF t = 'member' THEN
      c1 := saas_api_auth_column(t, 'organizationId', 'organization_id');
      c2 := saas_api_auth_column(t, 'userId', 'user_id');
      c3 := saas_api_auth_column(t, 'role', 'role');
      cond := format('OLD.%s IS DISTINCT FROM NEW.%s OR OLD.%s IS DISTINCT FROM NEW.%s OR OLD.%s IS DISTINCT FROM NEW.%s',
                     c1, c1, c2, c2, c3, c3);
    ELSIF t = 'apikey' THEN
      FOREACH c1 IN ARRAY ARRAY[saas_api_auth_column(t, 'enabled', 'enabled'),
                                saas_api_auth_column(t, 'expiresAt', 'expires_at'),
                                saas_api_auth_column(t, 'permissions', 'permissions'),
                                saas_api_auth_column(t, 'key', 'key'),
                                saas_api_auth_column(t, 'referenceId', 'reference_id'),
                                saas_api_auth_column(t, 'rateLimitEnabled', 'rate_limit_enabled')] LOOP
        IF c1 IS NOT NULL THEN
          cond := concat_ws(' OR ', cond, format('OLD.%s IS DISTINCT FROM NEW.%s', c1, c1));
        END IF;
      END LOOP;
      c1 := saas_api_auth_column(t, 'remaining', 'remaining');
      IF c1 IS NOT NULL THEN
        cond := concat_ws(' OR ', cond, format('(OLD.%s IS NULL) <> (NEW.%s IS NULL)', c1, c1));
      END IF;
    ELSIF t = 'jwks' THEN
      EXECUTE format('CREATE TRIGGER saas_api_auth_change_i AFTER INSERT ON %I FOR EACH ROW EXECUTE FUNCTION saas_api_auth_change()', t);
      cond := 'true';
    END IF;
    IF cond IS NOT NULL THEN
      EXECUTE format('CREATE TRIGGER saas_api_auth_change_u AFTER UPDATE ON %I FOR EACH ROW WHEN (%s) EXECUTE FUNCTION saas_api_auth_change()', t, cond);
    END IF;
  END LOOP;
END
$install$;
"#;

/// Removes the function and, with it, every trigger that calls it.
pub const UNINSTALL: &str = "DROP FUNCTION IF EXISTS saas_api_auth_change() CASCADE; \
                             DROP FUNCTION IF EXISTS saas_api_auth_column(text, text, text);";
