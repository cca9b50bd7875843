-- Billing events (docs/billing.md): webhook subscriptions, and the
-- billing.period_closed event that the transaction closing a period writes
-- into the outbox the alerts use (alert_events, sql/011_alerts.sql), so
-- that billingd's deliverer signs, posts, retries and records it like an
-- alert.  An event row names its subscription in rule_id and its period in
-- key_id.  Also the figures the CSV export of the records adds.

CREATE TABLE billing_webhooks (
  id          text PRIMARY KEY,
  webhook_url text NOT NULL,
  -- The signing secret, sealed like an alert rule's (sealbox.h).
  secret_enc  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  deleted_at  timestamptz
);

-- The API's view of a subscription: never the secret.
CREATE FUNCTION tg_billing_webhook_json(w billing_webhooks) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', w.id, 'webhook_url', w.webhook_url,
                            'events', jsonb_build_array('billing.period_closed'),
                            'created_at', tg_ts(w.created_at))
$$;

-- Digits of the currency's minor unit (ISO 4217): 0 and 3 for the
-- currencies listed, 2 for every other.
CREATE FUNCTION tg_currency_exponent(c text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN c IN ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX',
               'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF') THEN 0
    WHEN c IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 3
    ELSE 2 END
$$;

-- micros (never negative) in the currency's minor unit, rounded half up:
-- 1,234,500 micros of USD are 123 cents, 1,235,000 are 124.
CREATE FUNCTION tg_minor_units(micros numeric, c text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT div(micros + d / 2, d)::bigint
  FROM (SELECT (10::numeric ^ (6 - tg_currency_exponent(c)))::bigint::numeric AS d) x
$$;

-- The idempotency key of a record: hex SHA-256 of
-- "<period>\n<currency>\n<owner_id>" (an owner id holds no control
-- character, so the text names one record).  The same record has the same
-- key in every export, open or closed.
CREATE FUNCTION tg_billing_idempotency_key(p text, c text, owner text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(sha256(convert_to(p || E'\n' || c || E'\n' || owner, 'UTF8')), 'hex')
$$;

-- The rows of the CSV export: the records of tg_billing_records, figures
-- only (no lines), with the minor-unit amount and the idempotency key.
CREATE FUNCTION tg_billing_csv_rows(p_owner text, p_period text)
RETURNS TABLE (period text, owner_id text, currency text, requests bigint,
               overage_units bigint, base_micros bigint, overage_micros bigint,
               amount_micros bigint, amount_minor bigint, minor_exponent integer,
               lines integer, status text, idempotency_key text)
LANGUAGE sql STABLE AS $$
  SELECT r.item->>'period', r.item->>'owner_id', r.item->>'currency',
         (r.item->>'requests')::bigint, (r.item->>'overage_units')::bigint,
         (r.item->>'base_micros')::bigint, (r.item->>'overage_micros')::bigint,
         (r.item->>'amount_micros')::bigint,
         tg_minor_units((r.item->>'amount_micros')::numeric, r.item->>'currency'),
         tg_currency_exponent(r.item->>'currency'), jsonb_array_length(r.item->'lines'),
         r.item->>'status',
         tg_billing_idempotency_key(r.item->>'period', r.item->>'currency', r.item->>'owner_id')
  FROM tg_billing_records(p_owner, p_period, NULL, NULL, NULL, NULL) r
$$;

-- The body of the billing.period_closed event ev of closed period p: totals
-- per currency over its frozen lines (amount_minor is the sum of the
-- records' minor-unit amounts, as the CSV export gives them) and where to
-- read the records.
CREATE FUNCTION tg_billing_event_body(p text, ev text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'event_id', ev, 'type', 'billing.period_closed', 'period', p,
    'closed_at', (SELECT tg_ts(closed_at) FROM billing_periods WHERE period = p),
    'totals', coalesce((
      SELECT json_agg(json_build_object(
               'currency', t.currency, 'minor_exponent', tg_currency_exponent(t.currency),
               'records', t.records, 'lines', t.lines, 'requests', t.requests,
               'amount_micros', t.amount_micros, 'amount_minor', t.amount_minor)
             ORDER BY t.currency COLLATE "C")
      FROM (SELECT currency, count(*) AS records, sum(n) AS lines, sum(requests) AS requests,
                   sum(amount) AS amount_micros,
                   sum(tg_minor_units(amount, currency)) AS amount_minor
              FROM (SELECT owner_id, currency, count(*) AS n, sum(l.requests) AS requests,
                           sum(l.amount_micros) AS amount
                      FROM billing_lines l WHERE l.period = p GROUP BY owner_id, currency) r
             GROUP BY currency) t), '[]'),
    'records_url', '/v1/billing/records?period=' || p,
    'csv_url', '/v1/billing/records?period=' || p || '&format=csv')::text
$$;

-- Writes one billing.period_closed event of p per active subscription into
-- the outbox; called by tg_billing_freeze, so by the one transaction that
-- closes p.  Returns the number of events written.
CREATE FUNCTION tg_billing_event_closed(p text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer := 0;
  w text;
  ev text;
BEGIN
  FOR w IN SELECT id FROM billing_webhooks WHERE deleted_at IS NULL ORDER BY id LOOP
    ev := 'evt_' || replace(gen_random_uuid()::text, '-', '');
    INSERT INTO alert_events (id, rule_id, key_id, body)
    VALUES (ev, w, p, tg_billing_event_body(p, ev));
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;

-- As in sql/003_billing.sql, plus the event: every closer (the API,
-- tollgatectl, tg_billing_close_due) closes through here.
CREATE OR REPLACE FUNCTION tg_billing_freeze(p text) RETURNS boolean LANGUAGE plpgsql
SET jit = off AS $$
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
  PERFORM tg_billing_event_closed(p);
  RETURN true;
END $$;
