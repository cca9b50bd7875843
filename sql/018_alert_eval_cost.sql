-- Alerts, continued: what evaluating the rules costs per batch.  Each
-- responder publishes a batch every [usage] flush_ms, so billingd runs
-- tg_alert_eval many times a second; it must cost little with many rules.
--  * A rule of a key or of its owner is found through the two partial
--    indexes (tg_alert_rules_for), never by an OR join that scans every
--    rule for every key of the batch.
--  * Peaks below the lowest limit_near threshold are dropped before any
--    join (an index gives that threshold), so keys far from their limits
--    cost nothing.
--  * Denials are counted (alert_minute, and the batch id recorded against
--    a redelivery) only while a rate_limited rule exists: a rule sees the
--    checks that arrive after it was created.
--  * quota_used_pct is evaluated once per billingd window, after the usage
--    is committed (tg_alert_eval_quota(..., false)), no longer per batch:
--    use only grows, so the window's evaluation sees every crossing, a few
--    seconds later at most ([usage] aggregate_ms).

CREATE INDEX alert_rules_metric ON alert_rules (metric, threshold) WHERE deleted_at IS NULL;

-- The live rules of one metric that watch a key: the key's own and its
-- owner's.
CREATE FUNCTION tg_alert_rules_for(p_metric text, p_key text, p_owner text)
RETURNS SETOF alert_rules LANGUAGE sql STABLE AS $$
  SELECT * FROM alert_rules WHERE deleted_at IS NULL AND metric = p_metric AND key_id = p_key
  UNION ALL
  SELECT * FROM alert_rules WHERE deleted_at IS NULL AND metric = p_metric AND owner_id = p_owner
$$;

CREATE OR REPLACE FUNCTION tg_alert_eval_quota(p_quota jsonb, p_add boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer := 0;
  r record;
  cur_month integer := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMM')::integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM alert_rules WHERE deleted_at IS NULL
                 AND metric = 'quota_used_pct') THEN
    RETURN 0;
  END IF;
  FOR r IN
    SELECT a AS rule, q.k AS key_id, ky.owner_id, q.ts,
           ((100 * (coalesce(u.used, 0) + CASE WHEN p_add THEN q.c ELSE 0 END)) / (t.quota->>'included')::bigint)::bigint AS value
      FROM (SELECT k, m, sum(c)::bigint AS c, max(nullif(ts, 0)) AS ts
              FROM jsonb_to_recordset(p_quota) AS v(k text, m integer, c bigint, ts bigint)
             GROUP BY k, m) q
      JOIN keys ky ON ky.id = q.k
      JOIN tiers t ON t.name = ky.tier AND (t.quota->>'included')::bigint > 0
      LEFT JOIN key_quota_use u ON u.key_id = q.k AND u.month = q.m
      CROSS JOIN LATERAL tg_alert_rules_for('quota_used_pct', q.k, ky.owner_id) a
     WHERE q.m = cur_month
       AND 100 * (coalesce(u.used, 0) + CASE WHEN p_add THEN q.c ELSE 0 END) >= a.threshold * (t.quota->>'included')::bigint
     ORDER BY a.id, q.k
  LOOP
    n := n + tg_alert_fire(r.rule, r.key_id, r.owner_id, r.value, cur_month, tg_ms_ts(r.ts));
  END LOOP;
  RETURN n;
END $$;

-- Same arguments as in 012; p_quota is no longer read (see above).
CREATE OR REPLACE FUNCTION tg_alert_eval(p_batch text, p_denials jsonb, p_quota jsonb, p_peaks jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer := 0;
  r record;
  near_min bigint;
BEGIN
  IF jsonb_array_length(p_denials) > 0
     AND EXISTS (SELECT 1 FROM alert_rules WHERE deleted_at IS NULL AND metric = 'rate_limited') THEN
    INSERT INTO alert_batches (id) VALUES (p_batch) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
      RETURN 0; -- a redelivered batch: its denials were counted and evaluated
    END IF;
    FOR r IN
      WITH b AS (
        SELECT k, t, sum(c)::bigint AS c, min(nullif(f, 0)) AS f, max(nullif(l, 0)) AS l
          FROM jsonb_to_recordset(p_denials) AS v(k text, t bigint, c bigint, f bigint, l bigint)
         GROUP BY k, t),
      d AS (
        INSERT INTO alert_minute AS m (key_id, minute, denials)
        SELECT k, to_timestamp(t), c FROM b ORDER BY k, t
        ON CONFLICT (key_id, minute) DO UPDATE SET denials = m.denials + EXCLUDED.denials
        RETURNING key_id, minute, denials)
      SELECT a AS rule, d.key_id, ky.owner_id, d.denials AS value,
             tg_alert_denial_ms(d.denials - b.c, b.c, a.threshold, b.f, b.l) AS ts
        FROM d JOIN b ON b.k = d.key_id AND to_timestamp(b.t) = d.minute
        JOIN keys ky ON ky.id = d.key_id
        CROSS JOIN LATERAL tg_alert_rules_for('rate_limited', d.key_id, ky.owner_id) a
       WHERE d.denials >= a.threshold
       ORDER BY a.id, d.key_id
    LOOP
      n := n + tg_alert_fire(r.rule, r.key_id, r.owner_id, r.value, NULL, tg_ms_ts(r.ts));
    END LOOP;
  END IF;
  IF jsonb_array_length(p_peaks) = 0 THEN
    RETURN n;
  END IF;
  SELECT min(threshold) INTO near_min FROM alert_rules
   WHERE deleted_at IS NULL AND metric = 'limit_near';
  IF near_min IS NULL THEN
    RETURN n;
  END IF;
  -- limit_near: the key's highest peak in the batch, at the earliest check
  -- that reached it.
  FOR r IN
    SELECT a AS rule, p.k AS key_id, ky.owner_id, p.p AS value, p.ts
      FROM (SELECT DISTINCT ON (k) k, p, nullif(ts, 0) AS ts
              FROM jsonb_to_recordset(p_peaks) AS v(k text, p bigint, ts bigint)
             WHERE p >= near_min
             ORDER BY k, p DESC, nullif(ts, 0) ASC NULLS LAST) p
      JOIN keys ky ON ky.id = p.k
      CROSS JOIN LATERAL tg_alert_rules_for('limit_near', p.k, ky.owner_id) a
     WHERE p.p >= a.threshold
     ORDER BY a.id, p.k
  LOOP
    n := n + tg_alert_fire(r.rule, r.key_id, r.owner_id, r.value, NULL, tg_ms_ts(r.ts));
  END LOOP;
  RETURN n;
END $$;
