-- Alerts (docs/alerts.md): rules, the state that decides when a rule may
-- fire again, the events waiting for delivery (the outbox) and every
-- delivery attempt.  billingd evaluates the rules as usage batches arrive
-- (tg_alert_eval) and writes the events in the same transaction; its
-- delivery thread claims due events, posts them and records each attempt.

CREATE TABLE alert_rules (
  id          text PRIMARY KEY,
  key_id      text,
  owner_id    text,
  metric      text NOT NULL CHECK (metric IN ('quota_used_pct', 'rate_limited', 'limit_near')),
  threshold   bigint NOT NULL CHECK (threshold > 0),
  webhook_url text NOT NULL,
  -- The signing secret, sealed (AES-256-GCM) under a key derived from the
  -- configured hmac_secret named by its id: "<secret id>:<hex>" (sealbox.h).
  secret_enc  text NOT NULL,
  cooldown_s  integer NOT NULL CHECK (cooldown_s BETWEEN 60 AND 2592000),
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  deleted_at  timestamptz,
  CHECK (num_nonnulls(key_id, owner_id) = 1)
);
CREATE INDEX alert_rules_key ON alert_rules (key_id) WHERE deleted_at IS NULL;
CREATE INDEX alert_rules_owner ON alert_rules (owner_id) WHERE deleted_at IS NULL;

-- The API's view of a rule: never the secret.
CREATE FUNCTION tg_alert_json(a alert_rules) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_strip_nulls(jsonb_build_object(
    'id', a.id, 'key_id', a.key_id, 'owner_id', a.owner_id, 'metric', a.metric,
    'threshold', a.threshold, 'webhook_url', a.webhook_url, 'cooldown_s', a.cooldown_s,
    'created_at', tg_ts(a.created_at)))
$$;

-- When each (rule, key) last fired: the cooldown is decided here, under the
-- row's lock, so that competing billingd consumers cannot both fire.
-- last_month: the month (YYYYMM) a quota_used_pct rule last fired for.
CREATE TABLE alert_state (
  rule_id       text NOT NULL,
  key_id        text NOT NULL,
  last_fired_at timestamptz NOT NULL,
  last_month    integer,
  PRIMARY KEY (rule_id, key_id)
);

-- Denials per key and UTC minute, counted once per batch id.
CREATE TABLE alert_minute (
  key_id  text NOT NULL,
  minute  timestamptz NOT NULL,
  denials bigint NOT NULL,
  PRIMARY KEY (key_id, minute)
);
CREATE TABLE alert_batches (
  id      text PRIMARY KEY,
  seen_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The outbox.  body is the exact JSON posted (and signed), so that every
-- attempt sends the same bytes and the same event_id.
CREATE TABLE alert_events (
  id           text PRIMARY KEY,
  rule_id      text NOT NULL,
  key_id       text NOT NULL,
  body         text NOT NULL,
  state        text NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
  attempts     integer NOT NULL DEFAULT 0,
  next_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- A claim: another deliverer takes the event over once it has passed
  -- (a deliverer killed mid-delivery leaves it behind).
  locked_until timestamptz,
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  done_at      timestamptz
);
CREATE INDEX alert_events_due ON alert_events (next_at) WHERE state = 'pending';
CREATE INDEX alert_events_rule ON alert_events (rule_id, created_at);

CREATE TABLE alert_attempts (
  id         bigserial PRIMARY KEY,
  event_id   text NOT NULL,
  rule_id    text NOT NULL,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  status     integer,
  latency_ms integer NOT NULL,
  error      text
);
CREATE INDEX alert_attempts_rule ON alert_attempts (rule_id, id);

-- Fires rule for key when its cooldown (month NULL) or its month (for
-- quota_used_pct) allows: records the state and writes the event.
-- Returns 1 when an event was written, else 0.
CREATE FUNCTION tg_alert_fire(p_rule alert_rules, p_key text, p_owner text, p_value bigint,
                              p_month integer) RETURNS integer LANGUAGE plpgsql AS $$
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
                            'owner_id', p_owner, 'ts', tg_ts(now_ts))::text);
  RETURN 1;
END $$;

-- quota_used_pct for the keys of p_quota ([{"k":key,"m":YYYYMM,"c":cost}]):
-- the use PostgreSQL has recorded, plus the costs given when p_add (a batch
-- not yet ingested).  billingd calls it with p_add as a batch arrives and
-- without after the batch's usage is committed, so that use spread over
-- several batches is seen at the latest when it is recorded.
CREATE FUNCTION tg_alert_eval_quota(p_quota jsonb, p_add boolean)
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
    SELECT a AS rule, q.k AS key_id, ky.owner_id,
           ((100 * (coalesce(u.used, 0) + CASE WHEN p_add THEN q.c ELSE 0 END)) / (t.quota->>'included')::bigint)::bigint AS value
      FROM (SELECT k, m, sum(c)::bigint AS c FROM jsonb_to_recordset(p_quota) AS v(k text, m integer, c bigint)
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
    n := n + tg_alert_fire(r.rule, r.key_id, r.owner_id, r.value, cur_month);
  END LOOP;
  RETURN n;
END $$;

-- Evaluates the rules against one usage batch: p_denials is
-- [{"k":key,"t":minute_s,"c":denials}], p_quota [{"k":key,"m":YYYYMM,"c":cost}].
-- A batch id is evaluated once (a redelivered batch is skipped).  Returns
-- the number of events written.
CREATE FUNCTION tg_alert_eval(p_batch text, p_denials jsonb, p_quota jsonb)
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
    WITH d AS (
      INSERT INTO alert_minute AS m (key_id, minute, denials)
      SELECT k, to_timestamp(t), sum(c)
        FROM jsonb_to_recordset(p_denials) AS v(k text, t bigint, c bigint)
       GROUP BY k, t ORDER BY k, t
      ON CONFLICT (key_id, minute) DO UPDATE SET denials = m.denials + EXCLUDED.denials
      RETURNING key_id, denials)
    SELECT a AS rule, d.key_id, ky.owner_id, d.denials AS value
      FROM d JOIN keys ky ON ky.id = d.key_id
      JOIN alert_rules a ON a.deleted_at IS NULL AND a.metric = 'rate_limited'
                        AND (a.key_id = d.key_id OR a.owner_id = ky.owner_id)
     WHERE d.denials >= a.threshold
     ORDER BY a.id, d.key_id
  LOOP
    n := n + tg_alert_fire(r.rule, r.key_id, r.owner_id, r.value, NULL);
  END LOOP;
  RETURN n + tg_alert_eval_quota(p_quota, true);
END $$;
