-- A keyed audit chain.  Each entry appended from now on is chained by an
-- HMAC under a key derived from [security] audit_secret or a key-hashing
-- secret (chain 2, link_secret_id naming which), computed by the application: the database never
-- holds the key, so whoever can write these tables cannot recompute the
-- chain after changing an entry.  Earlier entries keep their unkeyed
-- SHA-256 links (chain 1); the first keyed entry covers them, since it
-- hashes its predecessor's hash.  An append is two statements in one
-- transaction: tg_audit_begin locks the head and gives the new entry's
-- seq, time, predecessor and canonical text; tg_audit_commit stores it with
-- the hash the application computed.

ALTER TABLE audit_log ADD COLUMN chain smallint NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN link_secret_id text;

CREATE FUNCTION tg_audit_begin(p_actor text, p_role text, p_action text, p_type text,
                               p_resource text, p_request text, p_ip text, p_changes jsonb,
                               OUT seq bigint, OUT ts text, OUT prev text, OUT canonical text)
LANGUAGE plpgsql AS $$
DECLARE
  h audit_head;
  e audit_log;
BEGIN
  SELECT * INTO h FROM audit_head FOR UPDATE;
  e := ROW(h.seq + 1, 'aud_' || (h.seq + 1), clock_timestamp(), p_actor, p_role, p_action,
           p_type, p_resource, p_request, p_ip, coalesce(p_changes, '{}'), h.hash, '', 2, NULL);
  seq := e.seq;
  ts := (extract(epoch FROM e.ts) * 1000000)::bigint::text;
  prev := h.hash;
  canonical := tg_audit_canonical(e);
END $$;

CREATE FUNCTION tg_audit_commit(p_seq bigint, p_ts_us bigint, p_actor text, p_role text,
                                p_action text, p_type text, p_resource text, p_request text,
                                p_ip text, p_changes jsonb, p_prev text, p_hash text,
                                p_link_secret_id text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  h audit_head;
BEGIN
  SELECT * INTO h FROM audit_head FOR UPDATE;
  IF h.seq <> p_seq - 1 OR h.hash <> p_prev THEN
    RAISE EXCEPTION 'audit chain moved between begin and commit';
  END IF;
  INSERT INTO audit_log VALUES (p_seq, 'aud_' || p_seq,
    to_timestamp(0) + p_ts_us * interval '1 microsecond', p_actor, p_role, p_action, p_type,
    p_resource, p_request, p_ip, coalesce(p_changes, '{}'), p_prev, p_hash, 2, p_link_secret_id);
  UPDATE audit_head SET seq = p_seq, hash = p_hash;
END $$;

-- Nothing may append unkeyed entries any more, nor verify without the key.
DROP FUNCTION tg_audit_append(text, text, text, text, text, text, text, jsonb);
DROP FUNCTION tg_audit_verify();

-- Billing closes made by billingd are audited by billingd itself (keyed).
CREATE OR REPLACE FUNCTION tg_billing_close_due(grace interval) RETURNS SETOF text
LANGUAGE plpgsql SET jit = off AS $$
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
      RETURN NEXT p;
    END IF;
  END LOOP;
END $$;
