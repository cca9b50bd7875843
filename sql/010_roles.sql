-- Least privilege.  The role that runs the migrations owns every object;
-- the responders and billingd connect as another role that tg_grant_app
-- gives only what they need: rows of the working tables, and the audit
-- log and its head through two functions only, so the application's
-- credentials cannot change, delete or truncate an audit entry, move the
-- head, drop a trigger or run any DDL.  The functions that write what the
-- application may not touch directly run as the owner (SECURITY DEFINER,
-- with a fixed search_path so a caller's objects cannot stand in).

ALTER FUNCTION tg_audit_begin(text, text, text, text, text, text, text, jsonb)
  SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION tg_audit_commit(bigint, bigint, text, text, text, text, text, text, text, jsonb,
                               text, text, text)
  SECURITY DEFINER SET search_path = public, pg_temp;
-- billingd makes the usage partitions of a new month ahead of time.
ALTER FUNCTION tg_usage_partition(timestamptz)
  SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE ALL ON FUNCTION tg_audit_begin(text, text, text, text, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tg_audit_commit(bigint, bigint, text, text, text, text, text, text, text,
                                       jsonb, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tg_usage_partition(timestamptz) FROM PUBLIC;

-- Run by tollgatectl migrate after the migrations, each time, so that the
-- tables of later migrations are covered too.  Idempotent.
CREATE FUNCTION tg_grant_app(app name) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF app = current_user THEN
    RETURN;
  END IF;
  -- billingd stages each batch in a temporary table.
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), app);
  EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app);
  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', app);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', app);
  EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON audit_log, audit_head, schema_migrations FROM %I',
                 app);
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', app);
  EXECUTE format('GRANT EXECUTE ON FUNCTION '
                 'tg_audit_begin(text, text, text, text, text, text, text, jsonb), '
                 'tg_audit_commit(bigint, bigint, text, text, text, text, text, text, text, jsonb, '
                 'text, text, text), tg_usage_partition(timestamptz) TO %I', app);
END $$;
REVOKE ALL ON FUNCTION tg_grant_app(name) FROM PUBLIC;
