-- Alerts, continued (docs/alerts.md): the limit_near metric, and the
-- webhook's ts taken from the triggering check instead of the moment
-- billingd saw the condition.  The responders send, per usage bucket, the
-- peak use of the key's windows and when it was reached, the times of the
-- first and last rate-limited checks and of the last check (usagemsg.h);
-- messages from responders that predate them carry none, and then ts falls
-- back to the evaluation time as before.

-- A Unix time in milliseconds as a timestamp, exactly (NULL for 0 or NULL:
-- "unknown").
CREATE FUNCTION tg_ms_ts(p_ms bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_ms > 0 THEN to_timestamp(0) + p_ms * interval '1 millisecond' END
$$;

-- The time of the denial at which a minute's count reached p_threshold,
-- given the count before the batch (p_prev), the batch's count (p_count)
-- and its first and last denial times: exact when it is the batch's first
-- denial (or the count had reached the threshold before the batch: the
-- batch's first denial is then the first check at which it holds),
-- otherwise interpolated between the first and the last.
CREATE FUNCTION tg_alert_denial_ms(p_prev bigint, p_count bigint, p_threshold bigint,
                                   p_first bigint, p_last bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN p_first IS NULL OR p_first <= 0 THEN NULL
    WHEN greatest(1, p_threshold - p_prev) <= 1 OR p_count <= 1 OR p_last IS NULL
         OR p_last < p_first THEN p_first
    ELSE p_first + (p_last - p_first) * (least(p_count, p_threshold - p_prev) - 1) / (p_count - 1)
  END
$$;

-- tg_alert_fire with the time of the triggering check (p_ts; NULL: now)
-- as the body's ts.  The cooldown is still measured on the database's
-- clock: responders' clocks must not move it.
CREATE FUNCTION tg_alert_fire(p_rule alert_rules, p_key text, p_owner text, p_value bigint,
                              p_month integer, p_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  now_ts timestamptz := clock_timestamp();
  ev text := 'evt_' || replace(gen_random_uuid()::text, '-', '');
BEGIN
  INSERT INTO alert_state AS s (rule_id, key_id, last_fired_at, last_month)
  VALUES (p_rule.id, p_key, now_ts, p_month)
  ON CONFLICT (rule_id, key_id) DO UPDATE
    SET last_fired_at = EXCLUDED.last_fired_at, last_month = EXCLUDED.last_month
    WHERE (p_month IS NULL
           AND s.last_fired_at <= EXCLUDED.last_fired_at - make_interval(secs => p_rule.cooldown_s))
       OR (p_month IS NOT NULL AND s.last_month IS DISTINCT FROM p_month);
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  INSERT INTO alert_events (id, rule_id, key_id, body)
  VALUES (ev, p_rule.id, p_key,
          json_build_object('alert_id', p_rule.id, 'event_id', ev, 'metric', p_rule.metric,
                            'value', p_value, 'threshold', p_rule.threshold, 'key_id', p_key,
                            'owner_id', p_owner, 'ts', tg_ts(coalesce(p_ts, now_ts)))::text);
  RETURN 1;
END $$;

CREATE OR REPLACE FUNCTION tg_alert_fire(p_rule alert_rules, p_key text, p_owner text,
                                         p_value bigint, p_month integer)
RETURNS integer LANGUAGE sql AS $$
  SELECT tg_alert_fire(p_rule, p_key, p_owner, p_value, p_month, NULL::timestamptz)
$$;

-- As in 011, and each entry of p_quota may carry "ts", the time of the
-- key's latest check in the batches given (ms): the event's ts is the
-- latest of them for the key and month.
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
      JOIN alert_rules a ON a.deleted_at IS NULL AND a.metric = 'quota_used_pct'
                        AND (a.key_id = q.k OR a.owner_id = ky.owner_id)
     WHERE q.m = cur_month
       AND 100 * (coalesce(u.used, 0) + CASE WHEN p_add THEN q.c ELSE 0 END) >= a.threshold * (t.quota->>'included')::bigint
     ORDER BY a.id, q.k
  LOOP
    n := n + tg_alert_fire(r.rule, r.key_id, r.owner_id, r.value, cur_month, tg_ms_ts(r.ts));
  END LOOP;
  RETURN n;
END $$;

-- Evaluates the rules against one usage batch: p_denials is
-- [{"k":key,"t":minute_s,"c":denials,"f":first_ms,"l":last_ms}], p_quota
-- [{"k":key,"m":YYYYMM,"c":cost,"ts":last_ms}], p_peaks
-- [{"k":key,"p":peak_pct,"ts":peak_ms}] (times optional, 0 unknown).  A
-- batch id is evaluated once (a redelivered batch is skipped).  Returns the
-- number of events written.
CREATE FUNCTION tg_alert_eval(p_batch text, p_denials jsonb, p_quota jsonb, p_peaks jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer := 0;
  r record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM alert_rules WHERE deleted_at IS NULL) THEN
    RETURN 0;
  END IF;
  INSERT INTO alert_batches (id) VALUES (p_batch) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RETURN 0;
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
      JOIN alert_rules a ON a.deleted_at IS NULL AND a.metric = 'rate_limited'
                        AND (a.key_id = d.key_id OR a.owner_id = ky.owner_id)
     WHERE d.denials >= a.threshold
     ORDER BY a.id, d.key_id
  LOOP
    n := n + tg_alert_fire(r.rule, r.key_id, r.owner_id, r.value, NULL, tg_ms_ts(r.ts));
  END LOOP;
  -- limit_near: the key's highest peak in the batch, at the earliest check
  -- that reached it.
  FOR r IN
    SELECT a AS rule, p.k AS key_id, ky.owner_id, p.p AS value, p.ts
      FROM (SELECT DISTINCT ON (k) k, p, nullif(ts, 0) AS ts
              FROM jsonb_to_recordset(p_peaks) AS v(k text, p bigint, ts bigint)
             ORDER BY k, p DESC, nullif(ts, 0) ASC NULLS LAST) p
      JOIN keys ky ON ky.id = p.k
      JOIN alert_rules a ON a.deleted_at IS NULL AND a.metric = 'limit_near'
                        AND (a.key_id = p.k OR a.owner_id = ky.owner_id)
     WHERE p.p >= a.threshold
     ORDER BY a.id, p.k
  LOOP
    n := n + tg_alert_fire(r.rule, r.key_id, r.owner_id, r.value, NULL, tg_ms_ts(r.ts));
  END LOOP;
  RETURN n + tg_alert_eval_quota(p_quota, true);
END $$;

-- The 011 form, for a billingd that predates p_peaks.
CREATE OR REPLACE FUNCTION tg_alert_eval(p_batch text, p_denials jsonb, p_quota jsonb)
RETURNS integer LANGUAGE sql AS $$
  SELECT tg_alert_eval(p_batch, p_denials, p_quota, '[]'::jsonb)
$$;
