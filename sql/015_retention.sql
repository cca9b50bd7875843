-- Retention (docs/retention.md): billingd drops the monthly usage
-- partitions that are past the configured retention.  The daemons' role
-- owns no table and cannot DROP one, so the drop runs as the schema owner
-- (SECURITY DEFINER) and decides itself what may go: a caller can only
-- shorten the retention it asks for, never remove usage that billing still
-- needs.

-- True when no billing period overlapping [lo, hi) still needs its usage:
-- each is closed (its lines are frozen in billing_lines), or no key existed
-- before its end (tg_billing_compute would bill nothing from it).  The
-- period arithmetic is on timestamp, as in 003, so that it does not depend
-- on the session's TimeZone.
CREATE FUNCTION tg_usage_settled(lo timestamptz, hi timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT NOT EXISTS (
    SELECT 1 FROM generate_series(date_trunc('month', lo AT TIME ZONE 'UTC'),
                                  (hi AT TIME ZONE 'UTC') - interval '1 microsecond',
                                  interval '1 month') m
     WHERE NOT EXISTS (SELECT 1 FROM billing_periods b WHERE b.period = to_char(m, 'YYYY-MM'))
       AND EXISTS (SELECT 1 FROM keys k
                    WHERE k.created_at < (m + interval '1 month') AT TIME ZONE 'UTC'))
$$;

-- Drops every partition of usage_minute whose upper bound is older than
-- p_minute, and of usage_hour older than p_hour, when its months are
-- settled; returns the names dropped.  A whole partition goes at once: no
-- row-by-row DELETE.  The hourly rollup does not wait on the minutes (ingest
-- writes both in one transaction), so the two are independent.
-- The advisory lock is tg_usage_partition's: a transaction that is making
-- and filling a partition (ingest, a seed) finishes before the settled check
-- runs, which then sees what it committed.  lock_timeout: a DROP needs the
-- parent's exclusive lock, so a long read makes this run give up (and the
-- next housekeeping try again) rather than queue every writer behind it.
CREATE FUNCTION tg_retention_usage(p_minute interval, p_hour interval)
RETURNS SETOF text LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
  r record;
  lo timestamptz;
  hi timestamptz;
BEGIN
  IF p_minute IS NULL OR p_hour IS NULL OR p_minute < interval '1 day'
     OR p_hour < interval '1 day' THEN
    RAISE EXCEPTION 'retention must be at least one day' USING ERRCODE = '22023';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('tg_usage_partition'));
  FOR r IN
    SELECT c.oid::regclass AS part, c.relname::text AS name,
           i.inhparent = 'usage_minute'::regclass AS minute,
           pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent IN ('usage_minute'::regclass, 'usage_hour'::regclass)
     ORDER BY c.relname
  LOOP
    -- A DEFAULT or MINVALUE/MAXVALUE partition has no such bounds: kept.
    lo := substring(r.bound FROM $re$FROM \('([^']+)'\)$re$)::timestamptz;
    hi := substring(r.bound FROM $re$TO \('([^']+)'\)$re$)::timestamptz;
    CONTINUE WHEN lo IS NULL OR hi IS NULL;
    CONTINUE WHEN hi > now() - CASE WHEN r.minute THEN p_minute ELSE p_hour END;
    CONTINUE WHEN NOT tg_usage_settled(lo, hi);
    EXECUTE format('DROP TABLE %s', r.part);
    RETURN NEXT r.name;
  END LOOP;
END $$;
REVOKE ALL ON FUNCTION tg_retention_usage(interval, interval) FROM PUBLIC;

-- tg_grant_app of 010, with the retention function added.
CREATE OR REPLACE FUNCTION tg_grant_app(app name) RETURNS void LANGUAGE plpgsql AS $$
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
                 'text, text, text), tg_usage_partition(timestamptz), '
                 'tg_retention_usage(interval, interval) TO %I', app);
END $$;
REVOKE ALL ON FUNCTION tg_grant_app(name) FROM PUBLIC;
