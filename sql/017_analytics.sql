-- Usage analytics: rollups coarser than usage_hour, so that a ranking of
-- every key over a month reads one row per key instead of 720 (or 43,200).
-- tollgate-billingd upserts them in the transaction that upserts
-- usage_minute and usage_hour, so all of them always agree.  Each holds only
-- the check counters, summed over endpoints; like the usage tables they are
-- partitioned by UTC month (usage_day_YYYYMM, usage_month_YYYYMM,
-- usage_tier_day_YYYYMM), so retention drops them month by month.
--
--   usage_day       per (key, UTC day)
--   usage_month     per (key, UTC month)
--   usage_tier_day  per (tier, UTC day): the tier the key had when
--                   tollgate-billingd recorded the usage

CREATE TABLE usage_day (
  key_id         text NOT NULL,
  ts             timestamptz NOT NULL,
  allowed        bigint NOT NULL DEFAULT 0,
  allowed_cost   bigint NOT NULL DEFAULT 0,
  rate_limited   bigint NOT NULL DEFAULT 0,
  quota_exceeded bigint NOT NULL DEFAULT 0,
  denied_other   bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, ts)
) PARTITION BY RANGE (ts);

-- A ranking of one day reads that day's rows only.  Rows are updated in
-- place, never moved to another day: the index leaves the updates HOT.
CREATE INDEX usage_day_ts ON usage_day (ts);

CREATE TABLE usage_month (
  LIKE usage_day INCLUDING DEFAULTS,
  PRIMARY KEY (key_id, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE usage_tier_day (
  tier           text NOT NULL,
  ts             timestamptz NOT NULL,
  allowed        bigint NOT NULL DEFAULT 0,
  allowed_cost   bigint NOT NULL DEFAULT 0,
  rate_limited   bigint NOT NULL DEFAULT 0,
  quota_exceeded bigint NOT NULL DEFAULT 0,
  denied_other   bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tier, ts)
) PARTITION BY RANGE (ts);

-- sum() over bigint accumulates in numeric (int128 where available) and
-- returns numeric: for a ranking over 10,000 keys, the sums cost several
-- times the scan.  Check counters cannot reach 2^63: a bigint sum, which
-- fails rather than wraps if they ever did, is enough.
CREATE AGGREGATE tg_sum8(bigint) (SFUNC = int8pl, STYPE = bigint, COMBINEFUNC = int8pl,
                                  PARALLEL = SAFE);

-- The partitions of every usage table holding t, created if missing (as in
-- 004, plus the rollups above).  The current day's and month's rows are
-- updated by every billingd transaction while their key is active: the
-- free space left by fillfactor keeps those updates HOT.
CREATE OR REPLACE FUNCTION tg_usage_partition(t timestamptz) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  m timestamptz := tg_month(t);
  suffix text := to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
  parent text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tg_usage_partition'));
  FOREACH parent IN ARRAY ARRAY['usage_minute', 'usage_hour', 'usage_day', 'usage_month',
                                'usage_tier_day'] LOOP
    IF to_regclass(parent || '_' || suffix) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L) '
                     'WITH (fillfactor = 70)',
                     parent || '_' || suffix, parent, m, m + interval '1 month');
    END IF;
  END LOOP;
END $$;

-- Writers wait until the backfill below is committed, so that it misses no
-- hour (deploy the tollgate-billingd of this release with the migration: an
-- older one would not fill the rollups).
LOCK TABLE usage_minute IN SHARE MODE;

-- A partition of each rollup for every month usage_hour has.
SELECT tg_usage_partition(substring(pg_get_expr(c.relpartbound, c.oid)
                                    FROM $re$FROM \('([^']+)'\)$re$)::timestamptz)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'usage_hour'::regclass;

INSERT INTO usage_day (key_id, ts, allowed, allowed_cost, rate_limited, quota_exceeded,
                       denied_other)
SELECT key_id, date_trunc('day', ts, 'UTC'), sum(allowed), sum(allowed_cost), sum(rate_limited),
       sum(quota_exceeded), sum(denied_other)
  FROM usage_hour
 GROUP BY key_id, date_trunc('day', ts, 'UTC');

INSERT INTO usage_month (key_id, ts, allowed, allowed_cost, rate_limited, quota_exceeded,
                         denied_other)
SELECT key_id, tg_month(ts), sum(allowed), sum(allowed_cost), sum(rate_limited),
       sum(quota_exceeded), sum(denied_other)
  FROM usage_day
 GROUP BY key_id, tg_month(ts);

-- Past usage is attributed to the tier its key has now (the tier at the
-- time was not recorded); from here on, billingd records the tier of the
-- moment.  Usage of keys that no longer exist has no tier and is left out.
INSERT INTO usage_tier_day (tier, ts, allowed, allowed_cost, rate_limited, quota_exceeded,
                            denied_other)
SELECT k.tier, d.ts, sum(d.allowed), sum(d.allowed_cost), sum(d.rate_limited),
       sum(d.quota_exceeded), sum(d.denied_other)
  FROM usage_day d JOIN keys k ON k.id = d.key_id
 GROUP BY k.tier, d.ts;

ANALYZE usage_day;
ANALYZE usage_month;
ANALYZE usage_tier_day;
