-- Billing: a period is a UTC month, named "YYYY-MM".  An open period is
-- computed on read from keys, tiers and usage_minute; closing it freezes its
-- lines (with the prices in force) in billing_lines, once.

-- The first instant of period p, or NULL when p is not a period from
-- 1970-01 to 9999-12.  Arithmetic on timestamp (without time zone) keeps
-- month boundaries independent of the session's TimeZone.
CREATE FUNCTION tg_billing_start(p text) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p ~ '^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])$' THEN
    make_timestamp(substr(p, 1, 4)::int, substr(p, 6, 2)::int, 1, 0, 0, 0) AT TIME ZONE 'UTC' END
$$;

-- The first instant after period p (NULL when p is not a period).
CREATE FUNCTION tg_billing_end(p text) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
  SELECT ((tg_billing_start(p) AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
$$;

-- The period holding t.
CREATE FUNCTION tg_billing_period(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM')
$$;

-- The per-line formulas of the contract, in exact integer arithmetic:
-- overage_micros = ceil(overage_units * overage_per_1000_micros / 1000).
-- An amount beyond bigint (9.2e18 micro-units) is an error, never a wrap.
CREATE FUNCTION tg_billing_price(requests bigint, included bigint, base bigint, per_1000 bigint,
                                 OUT overage_units bigint, OUT overage_micros bigint,
                                 OUT amount_micros bigint)
LANGUAGE sql IMMUTABLE AS $$
  SELECT u, o, base + o
  FROM (SELECT greatest(requests - included, 0) AS u) a,
       LATERAL (SELECT div(a.u::numeric * per_1000 + 999, 1000)::bigint AS o) b
$$;

-- Closed periods.  A period is closed once; its lines never change after.
CREATE TABLE billing_periods (
  period    text PRIMARY KEY CHECK (tg_billing_start(period) IS NOT NULL),
  closed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One frozen line per key billed in a closed period.  key_id is not a
-- foreign key: billing records outlive the keys they bill.  A line of a
-- period not yet closed is the line of a key erased meanwhile, kept as it
-- stood (GDPR erasure): it shows as open and stays as it is at the close.
CREATE TABLE billing_lines (
  period                  text NOT NULL CHECK (tg_billing_start(period) IS NOT NULL),
  key_id                  text NOT NULL,
  owner_id                text NOT NULL,
  tier                    text NOT NULL,
  currency                text NOT NULL,
  requests                bigint NOT NULL,
  included                bigint NOT NULL,
  base_micros             bigint NOT NULL,
  overage_per_1000_micros bigint NOT NULL,
  overage_units           bigint NOT NULL,
  overage_micros          bigint NOT NULL,
  amount_micros           bigint NOT NULL,
  PRIMARY KEY (period, key_id)
);
CREATE INDEX billing_lines_owner ON billing_lines (owner_id, period);

-- The first month (UTC, as a timestamp) in which a key existed, not before
-- 1970-01; NULL when there is no key.  Reads one entry of keys_created.
CREATE FUNCTION tg_billing_first_month() RETURNS timestamp LANGUAGE sql STABLE AS $$
  SELECT greatest(date_trunc('month', k.created_at AT TIME ZONE 'UTC'), timestamp '1970-01-01')
  FROM keys k ORDER BY k.created_at LIMIT 1
$$;

-- The lines of period p as they stand now (of owner p_owner, or of every
-- owner when NULL): every key that existed and was not revoked at some
-- moment of p, priced by its current tier.  requests is the key's billable
-- units in p, read by (key_id, ts) on usage_minute's primary key, within
-- p's partition.
CREATE FUNCTION tg_billing_compute(p text, p_owner text)
RETURNS TABLE (key_id text, owner_id text, tier text, currency text, requests bigint,
               included bigint, base_micros bigint, overage_per_1000_micros bigint,
               overage_units bigint, overage_micros bigint, amount_micros bigint)
LANGUAGE sql STABLE AS $$
  SELECT k.id, k.owner_id, k.tier, coalesce(t.price ->> 'currency', 'USD'), u.requests,
         l.included, l.base, l.per_1000, x.overage_units, x.overage_micros, x.amount_micros
  FROM keys k
  JOIN tiers t ON t.name = k.tier
  CROSS JOIN LATERAL (
    SELECT coalesce(sum(m.allowed_cost), 0)::bigint AS requests FROM usage_minute m
    WHERE m.key_id = k.id AND m.ts >= tg_billing_start(p) AND m.ts < tg_billing_end(p)) u
  CROSS JOIN LATERAL (
    SELECT coalesce((t.quota ->> 'included')::bigint, 0) AS included,
           coalesce((t.price ->> 'base_micros')::bigint, 0) AS base,
           coalesce((t.price ->> 'overage_per_1000_micros')::bigint, 0) AS per_1000) l
  CROSS JOIN LATERAL tg_billing_price(u.requests, l.included, l.base, l.per_1000) x
  WHERE k.created_at < tg_billing_end(p)
    AND (k.revoked_at IS NULL OR k.revoked_at > tg_billing_start(p))
    AND (p_owner IS NULL OR k.owner_id = p_owner)
$$;

-- Billing records, one per (period, owner_id, currency), in that order
-- (owner_id by bytes), each with its lines by key_id: the stored lines
-- (billing_lines) and the open periods computed now.  Filters (NULL: none):
-- p_owner, p_period.  Open periods without a period filter: every unclosed
-- month from the oldest key's to the current one (a month without billable
-- keys yields no record); with one, p_period when it has begun and is not
-- closed.  Keyset: records after (c_period, c_owner, c_currency); at most
-- lim (NULL: all).  item_cursor is "<period>.<currency>.<owner_id>".
-- (plpgsql with jit off: the planner's estimates for a month series over
-- partitioned usage are large enough to trigger JIT compilation, which costs
-- seconds for a query that runs in milliseconds.)
CREATE FUNCTION tg_billing_records(p_owner text, p_period text, c_period text, c_owner text,
                                   c_currency text, lim bigint)
RETURNS TABLE (item jsonb, item_cursor text) LANGUAGE plpgsql STABLE SET jit = off AS $$
BEGIN
  RETURN QUERY WITH open_periods AS (
    SELECT g.p FROM (
      SELECT p_period AS p WHERE p_period IS NOT NULL AND tg_billing_start(p_period) <= now()
      UNION ALL
      SELECT to_char(m, 'YYYY-MM') FROM generate_series(
          tg_billing_first_month(),
          date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') m
      WHERE p_period IS NULL) g
    WHERE (c_period IS NULL OR g.p >= c_period)
      AND NOT EXISTS (SELECT 1 FROM billing_periods b WHERE b.period = g.p)),
  lines AS (
    SELECT l.period, l.owner_id, l.currency, l.key_id, l.tier, l.requests, l.included,
           l.overage_units, l.base_micros, l.overage_micros, l.amount_micros,
           CASE WHEN EXISTS (SELECT 1 FROM billing_periods b WHERE b.period = l.period)
                THEN 'closed' ELSE 'open' END AS status
    FROM billing_lines l
    WHERE (p_period IS NULL OR l.period = p_period) AND (p_owner IS NULL OR l.owner_id = p_owner)
      AND (c_period IS NULL OR l.period >= c_period)
    UNION ALL
    SELECT o.p, c.owner_id, c.currency, c.key_id, c.tier, c.requests, c.included,
           c.overage_units, c.base_micros, c.overage_micros, c.amount_micros, 'open'
    FROM open_periods o CROSS JOIN LATERAL tg_billing_compute(o.p, p_owner) c)
  SELECT jsonb_build_object('owner_id', owner_id, 'period', period, 'currency', currency,
           'requests', sum(requests), 'overage_units', sum(overage_units),
           'base_micros', sum(base_micros), 'overage_micros', sum(overage_micros),
           'amount_micros', sum(amount_micros), 'status', min(status),
           'lines', jsonb_agg(jsonb_build_object('key_id', key_id, 'tier', tier,
               'requests', requests, 'included', included, 'overage_units', overage_units,
               'base_micros', base_micros, 'overage_micros', overage_micros,
               'amount_micros', amount_micros) ORDER BY key_id COLLATE "C")),
         period || '.' || currency || '.' || owner_id
  FROM lines
  WHERE c_period IS NULL
     OR (period, owner_id COLLATE "C", currency) > (c_period, c_owner, c_currency)
  GROUP BY period, owner_id, currency
  ORDER BY period, owner_id COLLATE "C", currency
  LIMIT lim;
END $$;

-- The records of period p as one JSON array.
CREATE FUNCTION tg_billing_period_json(p text) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(r.item ORDER BY r.n), '[]')
  FROM tg_billing_records(NULL, p, NULL, NULL, NULL, NULL) WITH ORDINALITY AS r(item, c, n)
$$;

-- Freezes period p's lines unless it is already closed; the caller holds
-- p's advisory lock.  True when this call closed p.
CREATE FUNCTION tg_billing_freeze(p text) RETURNS boolean LANGUAGE plpgsql SET jit = off AS $$
BEGIN
  INSERT INTO billing_periods (period) VALUES (p) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO billing_lines (period, key_id, owner_id, tier, currency, requests, included,
                             base_micros, overage_per_1000_micros, overage_units,
                             overage_micros, amount_micros)
  SELECT p, c.key_id, c.owner_id, c.tier, c.currency, c.requests, c.included, c.base_micros,
         c.overage_per_1000_micros, c.overage_units, c.overage_micros, c.amount_micros
  FROM tg_billing_compute(p, NULL) c;
  RETURN true;
END $$;

-- Closes period p in the caller's transaction.  outcome: 'invalid' (not a
-- period), 'not_ended', 'closed' (this call closed it: the caller writes the
-- audit entry) or 'was_closed'; records: p's records when it is closed.
-- Idempotent: a second close returns the same records and inserts nothing.
CREATE FUNCTION tg_billing_close(p text, OUT outcome text, OUT records jsonb)
LANGUAGE plpgsql AS $$
BEGIN
  IF tg_billing_start(p) IS NULL THEN
    outcome := 'invalid';
  ELSIF tg_billing_end(p) > now() THEN
    outcome := 'not_ended';
  ELSE
    PERFORM pg_advisory_xact_lock(hashtext('tg_billing_close'), hashtext(p));
    outcome := CASE WHEN tg_billing_freeze(p) THEN 'closed' ELSE 'was_closed' END;
    records := tg_billing_period_json(p);
  END IF;
END $$;

-- Closes every unclosed month from the oldest key's to the previous one
-- whose end is older than grace, with an audit entry each; returns the
-- periods it closed.  Run by tollgate-billingd every minute: a concurrent
-- run, or a period another closer holds, is skipped rather than waited for
-- (so no closer waits on a period lock while holding the audit chain).
CREATE FUNCTION tg_billing_close_due(grace interval) RETURNS SETOF text LANGUAGE plpgsql
SET jit = off AS $$
DECLARE
  p text;
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtext('tg_billing_close_due')) THEN
    RETURN;
  END IF;
  FOR p IN
    SELECT to_char(m, 'YYYY-MM') FROM generate_series(
        tg_billing_first_month(),
        date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month', interval '1 month') m
    WHERE (m + interval '1 month') AT TIME ZONE 'UTC' < now() - grace
      AND NOT EXISTS (SELECT 1 FROM billing_periods b WHERE b.period = to_char(m, 'YYYY-MM'))
    ORDER BY m
  LOOP
    CONTINUE WHEN NOT pg_try_advisory_xact_lock(hashtext('tg_billing_close'), hashtext(p));
    IF tg_billing_freeze(p) THEN
      PERFORM tg_audit_append('tollgate-billingd', 'billing', 'billing.close', 'billing_period',
                              p, NULL, NULL, '{"status":{"from":"open","to":"closed"}}');
      RETURN NEXT p;
    END IF;
  END LOOP;
END $$;
