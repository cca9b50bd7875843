-- The analytics rollups (017) under erasure and retention, as the usage
-- tables they are made from.
--  * Erasure: usage_day and usage_month rows of the erased owner's keys
--    go with their minute and hour rows.  usage_tier_day holds per-tier
--    totals only, nothing of an owner: it stays, as billing totals do.
--  * Retention: the rollups' monthly partitions are dropped with
--    [retention] hour_days, under the same conditions as usage_hour (past
--    retention, and the month settled for billing).

-- tg_owner_erase of 019, with the rollups: the owner's key ids are taken
-- before the base function deletes the keys.
ALTER FUNCTION tg_owner_erase(text, text) RENAME TO tg_owner_erase_base;
CREATE FUNCTION tg_owner_erase(p_owner text, p_pseudonym text, OUT counts jsonb, OUT erased jsonb)
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
  ids text[];
  n bigint;
  m bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(tg_erase_lock_id());
  SELECT coalesce(array_agg(id), '{}') INTO ids FROM keys WHERE owner_id = p_owner;
  DELETE FROM usage_day WHERE key_id = ANY (ids);
  GET DIAGNOSTICS n = ROW_COUNT;
  DELETE FROM usage_month WHERE key_id = ANY (ids);
  GET DIAGNOSTICS m = ROW_COUNT;
  SELECT b.counts, b.erased INTO counts, erased FROM tg_owner_erase_base(p_owner, p_pseudonym) b;
  IF counts ? 'usage_rows' THEN
    counts := jsonb_set(counts, '{usage_rows}', to_jsonb((counts ->> 'usage_rows')::bigint + n + m));
  END IF;
END $$;

-- tg_retention_usage of 015, over the rollups too (hour_days for them).
CREATE OR REPLACE FUNCTION tg_retention_usage(p_minute interval, p_hour interval)
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
     WHERE i.inhparent IN ('usage_minute'::regclass, 'usage_hour'::regclass,
                           'usage_day'::regclass, 'usage_month'::regclass,
                           'usage_tier_day'::regclass)
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
