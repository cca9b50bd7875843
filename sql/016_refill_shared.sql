-- Credit refills: a key's remaining credits set back to an amount at the
-- start of every UTC day, or of every month on a day 1-28 (docs/api.md).
-- The check's script applies them in Redis; PostgreSQL records the use per
-- balance version and refill interval so that a lost Redis state is
-- rebuilt with the same rule (docs/usage.md).

-- {"amount":N,"interval":"day"} or {"amount":N,"interval":"month",
-- "day_of_month":D}, as the API validated it; NULL: no refill.
ALTER TABLE keys ADD COLUMN refill jsonb;
-- When the API last set the balance (remaining or refill): a refill interval
-- that starts later has refilled it.
ALTER TABLE keys ADD COLUMN remaining_at timestamptz;

-- The interval a balance's use belongs to: its start in epoch ms, 0 for a
-- balance without refill.
ALTER TABLE key_credit_use ADD COLUMN ri bigint NOT NULL DEFAULT 0;

-- Start (epoch ms) of the refill interval of r holding t; 0 without refill
-- or time.  The same arithmetic as src/check/refill.c and ratelimit.lua.
CREATE FUNCTION tg_refill_start(r jsonb, t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN r IS NULL OR t IS NULL THEN 0
    WHEN r->>'interval' = 'day'
      THEN (extract(epoch FROM date_trunc('day', t AT TIME ZONE 'UTC')) * 1000)::bigint
    ELSE (extract(epoch FROM date_trunc('month', (t AT TIME ZONE 'UTC')
            - ((r->>'day_of_month')::int - 1) * interval '1 day')
            + ((r->>'day_of_month')::int - 1) * interval '1 day') * 1000)::bigint
  END
$$;

-- The balance of the current interval: the refill amount once an interval
-- has started since the API set remaining.
CREATE FUNCTION tg_key_balance(k keys) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN k.refill IS NOT NULL
               AND tg_refill_start(k.refill, now()) > tg_refill_start(k.refill, k.remaining_at)
         THEN (k.refill->>'amount')::bigint ELSE k.remaining END
$$;

CREATE OR REPLACE FUNCTION tg_key_remaining(k keys) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN k.remaining IS NULL THEN NULL
    ELSE greatest(0, tg_key_balance(k) - coalesce((SELECT c.used FROM key_credit_use c
                                             WHERE c.key_id = k.id
                                               AND c.rv = k.remaining_version
                                               AND c.ri = tg_refill_start(k.refill, now())), 0)) END
$$;

CREATE OR REPLACE FUNCTION tg_key_json(k keys) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', k.id, 'owner_id', k.owner_id, 'name', k.name,
    'prefix', k.prefix, 'start', k.start, 'tier', k.tier, 'limits', k.limits,
    'status', k.status, 'expires_at', tg_ts(k.expires_at), 'remaining', k.remaining,
    'refill', k.refill,
    'meta', k.meta, 'created_at', tg_ts(k.created_at), 'updated_at', tg_ts(k.updated_at),
    'last_used_at', tg_ts(k.last_used_at))
$$;

CREATE OR REPLACE FUNCTION tg_key_record(h text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('v', k.version, 'id', k.id, 'owner_id', k.owner_id,
    'tier', k.tier, 'status', k.status, 'expires_ms', tg_ms(k.expires_at),
    'secret_expires_ms', tg_ms(s.expires_at), 'remaining', k.remaining,
    'rv', k.remaining_version, 'refill', k.refill, 'rat', tg_ms(k.remaining_at),
    'limits', k.limits)::text
  FROM key_secrets s JOIN keys k ON k.id = s.key_id WHERE s.hash = h
$$;
