-- Privacy (docs/privacy.md): an audit chain whose hashed content holds no
-- personal data, the erased keys that billingd must not count again, and
-- the erasure of an owner in one transaction.

-- (1) The audit chain, version 3.  An entry's personal fields -- the
-- owner it concerns, the client address and the members of changes listed
-- by tg_audit_personal_keys -- are kept apart in audit_personal.  The chain
-- hashes a commitment to them instead (personal_mac: an HMAC under a key
-- derived from the link's secret, over a random nonce and their canonical
-- text, computed by the application, which alone holds the secret).  An
-- erasure deletes the personal row; the hashed entry, and with it the
-- chain, stays whole.  Without the nonce, which goes with the row, the
-- commitment cannot even be tested against a guess.  Entries written before
-- this migration (chains 1 and 2) keep their content and their hashes.
ALTER TABLE audit_log ADD COLUMN personal_mac text;

CREATE TABLE audit_personal (
  seq      bigint PRIMARY KEY REFERENCES audit_log (seq),
  owner_id text,
  ip       text,
  changes  jsonb,
  nonce    text NOT NULL
);
CREATE INDEX audit_personal_owner ON audit_personal (owner_id) WHERE owner_id IS NOT NULL;

-- Personal rows are deleted (tg_audit_erase), never changed.
CREATE FUNCTION tg_audit_personal_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_personal rows are never changed';
END $$;
CREATE TRIGGER audit_personal_no_change BEFORE UPDATE ON audit_personal
  FOR EACH ROW EXECUTE FUNCTION tg_audit_personal_immutable();
CREATE TRIGGER audit_personal_no_truncate BEFORE TRUNCATE ON audit_personal
  FOR EACH STATEMENT EXECUTE FUNCTION tg_audit_personal_immutable();

-- The members of changes that are personal data.
CREATE FUNCTION tg_audit_personal_keys() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT ARRAY['owner_id', 'name', 'meta', 'webhook_url']
$$;

-- What the personal commitment covers.
CREATE FUNCTION tg_audit_personal_text(p_owner text, p_ip text, p_changes jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_array(p_owner, p_ip, p_changes)::text
$$;

-- Splits an entry: pub, the changes the chain hashes; per, the personal
-- members of changes (NULL: none); owner, the owner the entry concerns
-- (named by changes, or the owner of the key or alert it is about).
CREATE FUNCTION tg_audit_split(p_type text, p_resource text, p_changes jsonb,
                               OUT pub jsonb, OUT per jsonb, OUT owner text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  pub := coalesce(p_changes, '{}') - tg_audit_personal_keys();
  SELECT jsonb_object_agg(x.k, x.v) INTO per
    FROM jsonb_each(coalesce(p_changes, '{}')) AS x(k, v)
   WHERE x.k = ANY (tg_audit_personal_keys());
  owner := coalesce(p_changes -> 'owner_id' ->> 'to', p_changes -> 'owner_id' ->> 'from');
  IF owner IS NULL AND p_type = 'key' THEN
    SELECT k.owner_id INTO owner FROM keys k WHERE k.id = p_resource;
  ELSIF owner IS NULL AND p_type = 'alert' THEN
    SELECT coalesce(a.owner_id, k.owner_id) INTO owner
      FROM alert_rules a LEFT JOIN keys k ON k.id = a.key_id WHERE a.id = p_resource;
  END IF;
END $$;

-- As tg_audit_begin, for chain 3: canonical is the hashed content without
-- the personal fields (the application appends the commitment to it), and
-- personal the text the commitment covers (NULL when the entry has none).
CREATE FUNCTION tg_audit_begin3(p_actor text, p_role text, p_action text, p_type text,
                                p_resource text, p_request text, p_ip text, p_changes jsonb,
                                OUT seq bigint, OUT ts text, OUT prev text, OUT canonical text,
                                OUT personal text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h audit_head;
  e audit_log;
  s record;
BEGIN
  SELECT * INTO h FROM audit_head FOR UPDATE;
  s := tg_audit_split(p_type, p_resource, p_changes);
  e := ROW(h.seq + 1, 'aud_' || (h.seq + 1), clock_timestamp(), p_actor, p_role, p_action,
           p_type, p_resource, p_request, NULL, s.pub, h.hash, '', 3, NULL, NULL);
  seq := e.seq;
  ts := (extract(epoch FROM e.ts) * 1000000)::bigint::text;
  prev := h.hash;
  canonical := tg_audit_canonical(e);
  IF s.owner IS NOT NULL OR p_ip IS NOT NULL OR s.per IS NOT NULL THEN
    personal := tg_audit_personal_text(s.owner, p_ip, s.per);
  END IF;
END $$;

CREATE FUNCTION tg_audit_commit3(p_seq bigint, p_ts_us bigint, p_actor text, p_role text,
                                 p_action text, p_type text, p_resource text, p_request text,
                                 p_ip text, p_changes jsonb, p_prev text, p_hash text,
                                 p_link_secret_id text, p_nonce text, p_mac text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h audit_head;
  s record;
  has_personal boolean;
BEGIN
  SELECT * INTO h FROM audit_head FOR UPDATE;
  IF h.seq <> p_seq - 1 OR h.hash <> p_prev THEN
    RAISE EXCEPTION 'audit chain moved between begin and commit';
  END IF;
  s := tg_audit_split(p_type, p_resource, p_changes);
  has_personal := s.owner IS NOT NULL OR p_ip IS NOT NULL OR s.per IS NOT NULL;
  IF has_personal <> (p_mac IS NOT NULL) OR (p_mac IS NOT NULL AND p_nonce IS NULL) THEN
    RAISE EXCEPTION 'audit entry: personal commitment does not match its fields';
  END IF;
  INSERT INTO audit_log (seq, id, ts, actor, role, action, resource_type, resource_id,
                         request_id, ip, changes, prev_hash, hash, chain, link_secret_id,
                         personal_mac)
  VALUES (p_seq, 'aud_' || p_seq, to_timestamp(0) + p_ts_us * interval '1 microsecond',
          p_actor, p_role, p_action, p_type, p_resource, p_request, NULL, s.pub, p_prev, p_hash,
          3, p_link_secret_id, p_mac);
  IF has_personal THEN
    INSERT INTO audit_personal (seq, owner_id, ip, changes, nonce)
    VALUES (p_seq, s.owner, p_ip, s.per, p_nonce);
  END IF;
  UPDATE audit_head SET seq = p_seq, hash = p_hash;
END $$;

-- Deletes the personal fields of every entry about p_owner; returns how
-- many entries lost them.
CREATE FUNCTION tg_audit_erase(p_owner text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM audit_personal WHERE owner_id = p_owner;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

REVOKE ALL ON FUNCTION tg_audit_begin3(text, text, text, text, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tg_audit_commit3(bigint, bigint, text, text, text, text, text, text, text,
                                        jsonb, text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tg_audit_erase(text) FROM PUBLIC;

-- The API's view of an entry: its personal fields merged back while they
-- exist; "personal" says whether an entry that had some still has them.
CREATE OR REPLACE FUNCTION tg_audit_json(a audit_log) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', a.id, 'seq', a.seq, 'ts', tg_ts(a.ts), 'actor', a.actor,
    'role', a.role, 'action', a.action, 'resource_type', a.resource_type,
    'resource_id', a.resource_id, 'request_id', a.request_id, 'ip', coalesce(a.ip, p.ip),
    'changes', a.changes || coalesce(p.changes, '{}'), 'hash', a.hash)
    || CASE WHEN a.personal_mac IS NULL THEN '{}'::jsonb
            WHEN p.seq IS NULL THEN '{"personal":"erased"}'::jsonb
            ELSE '{"personal":"present"}'::jsonb END
  FROM (SELECT 1) one LEFT JOIN audit_personal p ON p.seq = a.seq
$$;

-- (2) Keys erased with their owner: random ids, no personal data.  billingd
-- drops usage of these keys still in flight (journals, the broker), and the
-- key change feed of every responder process drops their cached records
-- (keywatch.h): version is the key's last, hashes its secrets' hashes.
CREATE TABLE erased_keys (
  key_id    text PRIMARY KEY,
  version   bigint NOT NULL,
  hashes    text[] NOT NULL,
  erased_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX erased_keys_at ON erased_keys (erased_at, key_id);

-- An erasure holds this lock exclusively; billingd's usage transactions and
-- alert evaluations hold it shared, so that each either finishes before the
-- erasure or sees its erased_keys.
CREATE FUNCTION tg_erase_lock_id() RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT 7417060613500420133::bigint
$$;

-- Tokens bound to an owner (where admin_tokens has owner_id): with erase,
-- revoked and moved to the pseudonym; returns whether there are any.
CREATE FUNCTION tg_owner_tokens_erase(p_owner text, p_pseudonym text, erase boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  found_any boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                  WHERE table_schema = current_schema() AND table_name = 'admin_tokens'
                    AND column_name = 'owner_id') THEN
    RETURN false;
  END IF;
  EXECUTE 'SELECT EXISTS (SELECT 1 FROM admin_tokens WHERE owner_id = $1)'
    INTO found_any USING p_owner;
  IF erase AND found_any THEN
    EXECUTE 'UPDATE admin_tokens SET owner_id = $2,'
            ' revoked_at = coalesce(revoked_at, clock_timestamp()) WHERE owner_id = $1'
      USING p_owner, p_pseudonym;
  END IF;
  RETURN found_any;
END $$;

-- Whether anything is stored about p_owner (export and erasure answer 404
-- otherwise).
CREATE FUNCTION tg_owner_known(p_owner text) RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM keys WHERE owner_id = p_owner)
      OR EXISTS (SELECT 1 FROM alert_rules WHERE owner_id = p_owner)
      OR EXISTS (SELECT 1 FROM billing_lines WHERE owner_id = p_owner)
      OR EXISTS (SELECT 1 FROM audit_personal WHERE owner_id = p_owner)
      OR tg_owner_tokens_erase(p_owner, NULL, false)
$$;

-- (3) The erasure of owner p_owner, in the caller's transaction.  Billing
-- lines of closed periods and the lines of the open periods as they stand
-- are kept under p_pseudonym; everything else about the owner's keys goes.
-- counts: what was erased; erased: [[id, version, [hashes]], ...] for the
-- caches.  counts.found is false (and nothing changed) when nothing is
-- stored about the owner.
CREATE FUNCTION tg_owner_erase(p_owner text, p_pseudonym text, OUT counts jsonb, OUT erased jsonb)
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
  ids text[];
  rules text[];
  p text;
  n_lines bigint := 0;
  n bigint;
  n_usage bigint := 0;
BEGIN
  PERFORM pg_advisory_xact_lock(tg_erase_lock_id());
  SELECT coalesce(array_agg(k.id ORDER BY k.id), '{}') INTO ids
    FROM (SELECT id FROM keys WHERE owner_id = p_owner ORDER BY id FOR UPDATE) k;
  SELECT coalesce(array_agg(a.id), '{}') INTO rules
    FROM alert_rules a WHERE a.owner_id = p_owner OR a.key_id = ANY (ids);
  IF NOT tg_owner_known(p_owner) THEN
    counts := '{"found":false}';
    erased := '[]';
    RETURN;
  END IF;
  -- Open periods: their lines as they stand now, frozen under the
  -- pseudonym (a later close keeps them; billing_lines, sql/003).
  FOR p IN
    SELECT to_char(m, 'YYYY-MM') FROM generate_series(
        date_trunc('month', (SELECT min(created_at) FROM keys WHERE id = ANY (ids))
                            AT TIME ZONE 'UTC'),
        date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') m
    ORDER BY m
  LOOP
    PERFORM pg_advisory_xact_lock(hashtext('tg_billing_close'), hashtext(p));
    CONTINUE WHEN EXISTS (SELECT 1 FROM billing_periods b WHERE b.period = p);
    INSERT INTO billing_lines (period, key_id, owner_id, tier, currency, requests, included,
                               base_micros, overage_per_1000_micros, overage_units,
                               overage_micros, amount_micros)
    SELECT p, c.key_id, p_pseudonym, c.tier, c.currency, c.requests, c.included, c.base_micros,
           c.overage_per_1000_micros, c.overage_units, c.overage_micros, c.amount_micros
      FROM tg_billing_compute(p, p_owner) c
    ON CONFLICT (period, key_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    n_lines := n_lines + n;
  END LOOP;
  UPDATE billing_lines SET owner_id = p_pseudonym WHERE owner_id = p_owner;
  GET DIAGNOSTICS n = ROW_COUNT;
  n_lines := n_lines + n;

  INSERT INTO erased_keys (key_id, version, hashes)
  SELECT k.id, k.version,
         coalesce((SELECT array_agg(s.hash ORDER BY s.hash) FROM key_secrets s
                    WHERE s.key_id = k.id), '{}')
    FROM keys k WHERE k.id = ANY (ids)
  ON CONFLICT (key_id) DO NOTHING;
  SELECT coalesce(jsonb_agg(jsonb_build_array(e.key_id, e.version, to_jsonb(e.hashes))
                            ORDER BY e.key_id), '[]')
    INTO erased FROM erased_keys e WHERE e.key_id = ANY (ids);

  DELETE FROM usage_minute WHERE key_id = ANY (ids);
  GET DIAGNOSTICS n_usage = ROW_COUNT;
  DELETE FROM usage_hour WHERE key_id = ANY (ids);
  GET DIAGNOSTICS n = ROW_COUNT;
  n_usage := n_usage + n;
  -- (by time first: the table has no index on key_id, and no event of a
  -- key was received before the key existed)
  DELETE FROM usage_event_ids
   WHERE received_at >= (SELECT min(created_at) FROM keys WHERE id = ANY (ids))
     AND key_id = ANY (ids);
  DELETE FROM key_quota_use WHERE key_id = ANY (ids);
  DELETE FROM key_credit_use WHERE key_id = ANY (ids);
  DELETE FROM alert_minute WHERE key_id = ANY (ids);
  DELETE FROM alert_state WHERE rule_id = ANY (rules) OR key_id = ANY (ids);
  DELETE FROM alert_attempts WHERE rule_id = ANY (rules);
  DELETE FROM alert_events WHERE rule_id = ANY (rules) OR key_id = ANY (ids);
  DELETE FROM alert_rules WHERE id = ANY (rules);
  DELETE FROM keys WHERE id = ANY (ids);
  PERFORM tg_owner_tokens_erase(p_owner, p_pseudonym, true);

  counts := jsonb_build_object('found', true, 'keys', cardinality(ids),
                               'alert_rules', cardinality(rules), 'usage_rows', n_usage,
                               'billing_lines', n_lines);
END $$;

-- (4) Privileges: the daemons' role reads the personal audit rows (GET
-- /v1/audit) but writes and deletes them only through the functions above.
-- tg_grant_app keeps what earlier migrations made of it (renamed here to
-- tg_grant_app_before_privacy) and adds this; a later migration that
-- replaces tg_grant_app must keep calling it.
ALTER FUNCTION tg_grant_app(name) RENAME TO tg_grant_app_before_privacy;
CREATE FUNCTION tg_grant_app(app name) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM tg_grant_app_before_privacy(app);
  IF app = current_user THEN
    RETURN;
  END IF;
  EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_personal FROM %I', app);
  EXECUTE format('GRANT EXECUTE ON FUNCTION '
                 'tg_audit_begin3(text, text, text, text, text, text, text, jsonb), '
                 'tg_audit_commit3(bigint, bigint, text, text, text, text, text, text, text, jsonb, '
                 'text, text, text, text, text), tg_audit_erase(text) TO %I', app);
END $$;
REVOKE ALL ON FUNCTION tg_grant_app(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION tg_grant_app_before_privacy(name) FROM PUBLIC;
