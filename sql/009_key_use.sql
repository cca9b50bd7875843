-- The durable use of each key: what the rate-limit state in Redis holds,
-- recorded by tollgate-billingd in the transaction that writes the usage
-- rows of the same checks (exactly once, like them), so that a Redis state
-- lost to a restart, a flush, a failover or an eviction is rebuilt from
-- here before the next decision (docs/usage.md, docs/security.md).

-- Allowed cost per key and calendar month (UTC, month = YYYYMM): the period
-- quota's use.
CREATE TABLE key_quota_use (
  key_id text NOT NULL,
  month  integer NOT NULL,
  used   bigint NOT NULL,
  PRIMARY KEY (key_id, month)
);

-- Credits consumed since the API last set keys.remaining: only checks
-- charged against the balance of version rv count (a check from before a
-- PATCH that arrives after it is charged against the old balance, which is
-- gone).  A row whose rv is older than keys.remaining_version counts nothing.
CREATE TABLE key_credit_use (
  key_id text PRIMARY KEY,
  rv     bigint NOT NULL,
  used   bigint NOT NULL
);

-- Credits left as PostgreSQL knows them: remaining minus what billingd has
-- recorded against the current balance (checks still in the usage pipeline
-- are not in it yet); NULL for a key without credits.
CREATE FUNCTION tg_key_remaining(k keys) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN k.remaining IS NULL THEN NULL
    ELSE greatest(0, k.remaining - coalesce((SELECT c.used FROM key_credit_use c
                                             WHERE c.key_id = k.id
                                               AND c.rv = k.remaining_version), 0)) END
$$;

-- The API shows the credits left, not the balance last set (tg_key_json,
-- which the audit compares, keeps the latter).
CREATE OR REPLACE FUNCTION tg_key_view(k keys) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT tg_key_json(k) ||
         jsonb_build_object('tier_limits', (SELECT limits FROM tiers WHERE name = k.tier),
                            'remaining', tg_key_remaining(k))
$$;
