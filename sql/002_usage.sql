-- Usage: minute buckets written by tollgate-billingd, partitioned by month.

-- When a key was revoked: billing charges a key for the periods it was alive in.
ALTER TABLE keys ADD COLUMN revoked_at timestamptz;
UPDATE keys SET revoked_at = updated_at WHERE status = 'revoked';

-- One row per (key, minute, endpoint).  Check counters by outcome; allowed_cost
-- is the billable units (sum of the costs of the allowed checks).  Response
-- times come from usage events: sum and max in microseconds and a log-linear
-- histogram (src/hist.h) of counts, NULL when no event was reported.
CREATE TABLE usage_minute (
  key_id         text NOT NULL,
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
  PRIMARY KEY (key_id, ts, endpoint)
) PARTITION BY RANGE (ts);

-- Batches applied (the deduplication of redelivered messages) and usage
-- event ids counted (the idempotency of POST /v1/usage/events).
CREATE TABLE usage_batches (
  id         text PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX usage_batches_applied ON usage_batches (applied_at);
CREATE TABLE usage_event_ids (
  id          text PRIMARY KEY,
  key_id      text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX usage_event_ids_received ON usage_event_ids (received_at);

-- The month (UTC) holding t, as a timestamptz.
CREATE FUNCTION tg_month(t timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
  SELECT date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

-- Creates the partition of usage_minute holding t if missing.  Several daemons
-- may ask at once: the advisory lock makes the check-then-create atomic.
CREATE FUNCTION tg_usage_partition(t timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  m timestamptz := tg_month(t);
  name text := 'usage_minute_' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tg_usage_partition'));
  IF to_regclass(name) IS NULL THEN
    EXECUTE format('CREATE TABLE %I PARTITION OF usage_minute FOR VALUES FROM (%L) TO (%L)',
                   name, m, m + interval '1 month');
  END IF;
END $$;

SELECT tg_usage_partition(now() + (n || ' month')::interval) FROM generate_series(-1, 2) n;

-- Element-wise sum of two histograms (either may be NULL or shorter).
CREATE FUNCTION tg_hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE
    (SELECT array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i)
       FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i)) END
$$;
CREATE AGGREGATE tg_hist_sum(bigint[]) (SFUNC = tg_hist_add, STYPE = bigint[]);
