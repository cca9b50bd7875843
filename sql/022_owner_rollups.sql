-- Reads of an owner's usage and rankings of owners without reading every key.
--
--  * usage_owner_hour: usage_hour summed over an owner's keys, per (owner,
--    hour, endpoint), with the same columns.  A month of an owner by hour
--    reads 720 rows (per endpoint), not 720 per key.
--  * usage_day and usage_month carry the key's owner_id (which never
--    changes) and tier (the key's tier when the usage was recorded, as in
--    usage_tier_day; a row updated after a tier change takes the new one).
--    Top owners of a month group one partition's rows by owner_id, and a
--    tier filter is a column comparison, both without joining keys.
--
-- tollgate-billingd upserts all of them in the transaction that upserts
-- usage_minute and usage_hour (src/usage/rollup.h), so they always agree.

LOCK TABLE usage_minute IN SHARE MODE;

CREATE TABLE usage_owner_hour (
  owner_id       text NOT NULL,
  ts             timestamptz NOT NULL,
  endpoint       text NOT NULL,
  allowed        bigint NOT NULL DEFAULT 0,
  allowed_cost   bigint NOT NULL DEFAULT 0,
  rate_limited   bigint NOT NULL DEFAULT 0,
  quota_exceeded bigint NOT NULL DEFAULT 0,
  denied_other   bigint NOT NULL DEFAULT 0,
  reported       bigint NOT NULL DEFAULT 0,
  errors         bigint NOT NULL DEFAULT 0,
  rt_sum_us      bigint NOT NULL DEFAULT 0,
  rt_max_us      bigint NOT NULL DEFAULT 0,
  rt_hist        bigint[],
  PRIMARY KEY (owner_id, ts, endpoint)
) PARTITION BY RANGE (ts);

ALTER TABLE usage_day ADD COLUMN owner_id text, ADD COLUMN tier text;
ALTER TABLE usage_month ADD COLUMN owner_id text, ADD COLUMN tier text;

-- tg_usage_partition of 017 with usage_owner_hour.
CREATE OR REPLACE FUNCTION tg_usage_partition(t timestamptz) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  m timestamptz := tg_month(t);
  suffix text := to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
  parent text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tg_usage_partition'));
  FOREACH parent IN ARRAY ARRAY['usage_minute', 'usage_hour', 'usage_day', 'usage_month',
                                'usage_tier_day', 'usage_owner_hour'] LOOP
    IF to_regclass(parent || '_' || suffix) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L) '
                     'WITH (fillfactor = 70)',
                     parent || '_' || suffix, parent, m, m + interval '1 month');
    END IF;
  END LOOP;
END $$;

SELECT tg_usage_partition(substring(pg_get_expr(c.relpartbound, c.oid)
                                    FROM $re$FROM \('([^']+)'\)$re$)::timestamptz)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'usage_hour'::regclass;

-- The past, from the keys as they are now (usage of keys no longer there
-- has no owner and is left out, as erasure leaves it).
UPDATE usage_day d SET owner_id = k.owner_id, tier = k.tier FROM keys k WHERE k.id = d.key_id;
UPDATE usage_month d SET owner_id = k.owner_id, tier = k.tier FROM keys k WHERE k.id = d.key_id;
INSERT INTO usage_owner_hour (owner_id, ts, endpoint, allowed, allowed_cost, rate_limited,
                              quota_exceeded, denied_other, reported, errors, rt_sum_us,
                              rt_max_us, rt_hist)
SELECT k.owner_id, h.ts, h.endpoint, sum(h.allowed), sum(h.allowed_cost), sum(h.rate_limited),
       sum(h.quota_exceeded), sum(h.denied_other), sum(h.reported), sum(h.errors),
       sum(h.rt_sum_us), max(h.rt_max_us), tg_hist_sum(h.rt_hist) FILTER (WHERE h.rt_hist IS NOT NULL)
  FROM usage_hour h JOIN keys k ON k.id = h.key_id
 GROUP BY k.owner_id, h.ts, h.endpoint;

-- tg_owner_erase of 020, with the owner's hourly rollup.
CREATE OR REPLACE FUNCTION tg_owner_erase(p_owner text, p_pseudonym text, OUT counts jsonb,
                                          OUT erased jsonb)
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
  ids text[];
  n bigint;
  m bigint;
  o bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(tg_erase_lock_id());
  SELECT coalesce(array_agg(id), '{}') INTO ids FROM keys WHERE owner_id = p_owner;
  DELETE FROM usage_day WHERE key_id = ANY (ids);
  GET DIAGNOSTICS n = ROW_COUNT;
  DELETE FROM usage_month WHERE key_id = ANY (ids);
  GET DIAGNOSTICS m = ROW_COUNT;
  DELETE FROM usage_owner_hour WHERE owner_id = p_owner;
  GET DIAGNOSTICS o = ROW_COUNT;
  SELECT b.counts, b.erased INTO counts, erased FROM tg_owner_erase_base(p_owner, p_pseudonym) b;
  IF counts ? 'usage_rows' THEN
    counts := jsonb_set(counts, '{usage_rows}',
                        to_jsonb((counts ->> 'usage_rows')::bigint + n + m + o));
  END IF;
END $$;

-- tg_retention_usage of 020 with usage_owner_hour (hour_days, as usage_hour).
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
                           'usage_tier_day'::regclass, 'usage_owner_hour'::regclass)
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

ANALYZE usage_day;
ANALYZE usage_month;
ANALYZE usage_owner_hour;
