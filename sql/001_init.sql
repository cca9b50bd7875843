-- Tollgate schema, version 1: tiers, keys and their secrets, admin tokens,
-- and the tamper-evident audit log.  Applied once by `tollgatectl migrate`.

-- RFC 3339 UTC with milliseconds, the one time format of the API.
CREATE FUNCTION tg_ts(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE FUNCTION tg_ms(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT floor(extract(epoch FROM t) * 1000)::bigint
$$;

-- Keyset pagination cursor: creation time in microseconds and id.
CREATE FUNCTION tg_cursor(t timestamptz, id text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT (extract(epoch FROM t) * 1000000)::bigint::text || '.' || id
$$;

CREATE FUNCTION tg_from_us(us bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
  SELECT 'epoch'::timestamptz + us * interval '1 microsecond'
$$;

CREATE TABLE tiers (
  name       text PRIMARY KEY,
  limits     jsonb NOT NULL DEFAULT '[]',
  quota      jsonb,
  price      jsonb,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION tg_tier_json(t tiers) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('name', t.name, 'limits', t.limits, 'quota', t.quota,
                            'price', t.price, 'created_at', tg_ts(t.created_at),
                            'updated_at', tg_ts(t.updated_at))
$$;

INSERT INTO tiers (name, limits, quota, price) VALUES
 ('free',
  '[{"name":"per_second","window_s":1,"limit":5},
    {"name":"per_minute","window_s":60,"limit":100}]',
  '{"period":"month","included":10000,"overage":"block"}',
  '{"currency":"USD","base_micros":0,"overage_per_1000_micros":0}'),
 ('pro',
  '[{"name":"per_second","window_s":1,"limit":50},
    {"name":"per_minute","window_s":60,"limit":2000},
    {"name":"per_hour","window_s":3600,"limit":50000}]',
  '{"period":"month","included":1000000,"overage":"bill"}',
  '{"currency":"USD","base_micros":49000000,"overage_per_1000_micros":500000}'),
 ('enterprise',
  '[{"name":"per_second","window_s":1,"limit":500},
    {"name":"per_minute","window_s":60,"limit":20000}]',
  '{"period":"month","included":50000000,"overage":"bill"}',
  '{"currency":"USD","base_micros":499000000,"overage_per_1000_micros":200000}');

CREATE TABLE keys (
  id           text PRIMARY KEY,
  owner_id     text NOT NULL,
  name         text,
  prefix       text NOT NULL,
  start        text NOT NULL,
  tier         text NOT NULL REFERENCES tiers (name),
  limits       jsonb NOT NULL DEFAULT '[]',   -- the key's own overrides
  status       text NOT NULL DEFAULT 'active'
               CHECK (status IN ('active', 'suspended', 'revoked')),
  expires_at   timestamptz,
  remaining    bigint,
  meta         jsonb NOT NULL DEFAULT '{}',
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_used_at timestamptz,
  -- Bumped by every change, so that a cached record never replaces a newer one.
  version      bigint NOT NULL DEFAULT 1,
  -- Bumped when the API sets remaining: Redis then restarts the credit count.
  remaining_version bigint NOT NULL DEFAULT 0
);
CREATE INDEX keys_owner ON keys (owner_id, created_at, id);
CREATE INDEX keys_created ON keys (created_at, id);

-- One row per secret a key has had: the current one (expires_at NULL) and
-- rotated ones with the end of their grace period.
CREATE TABLE key_secrets (
  hash       text PRIMARY KEY,            -- hex HMAC-SHA-256, never the key
  key_id     text NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at timestamptz
);
CREATE INDEX key_secrets_key ON key_secrets (key_id);

CREATE FUNCTION tg_key_json(k keys) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', k.id, 'owner_id', k.owner_id, 'name', k.name,
    'prefix', k.prefix, 'start', k.start, 'tier', k.tier, 'limits', k.limits,
    'status', k.status, 'expires_at', tg_ts(k.expires_at), 'remaining', k.remaining,
    'meta', k.meta, 'created_at', tg_ts(k.created_at), 'updated_at', tg_ts(k.updated_at),
    'last_used_at', tg_ts(k.last_used_at))
$$;

-- What the check path needs of a key, looked up by the hash of a secret.
CREATE FUNCTION tg_key_record(h text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('v', k.version, 'id', k.id, 'owner_id', k.owner_id,
    'tier', k.tier, 'status', k.status, 'expires_ms', tg_ms(k.expires_at),
    'secret_expires_ms', tg_ms(s.expires_at), 'remaining', k.remaining,
    'rv', k.remaining_version, 'limits', k.limits)::text
  FROM key_secrets s JOIN keys k ON k.id = s.key_id WHERE s.hash = h
$$;

CREATE TABLE admin_tokens (
  id         text PRIMARY KEY,
  hash       text NOT NULL UNIQUE,
  role       text NOT NULL
             CHECK (role IN ('admin', 'operator', 'billing', 'viewer', 'service')),
  name       text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  revoked_at timestamptz
);
CREATE INDEX admin_tokens_created ON admin_tokens (created_at, id);

CREATE FUNCTION tg_token_json(t admin_tokens) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', t.id, 'role', t.role, 'name', t.name,
    'created_at', tg_ts(t.created_at), 'revoked_at', tg_ts(t.revoked_at))
$$;

-- Field-by-field differences of two JSON objects, as {"f":{"from":..,"to":..}};
-- with no old object (a creation) only "to" is given.
CREATE FUNCTION tg_changes(old jsonb, new jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_object_agg(f,
           CASE WHEN old IS NULL THEN jsonb_build_object('to', new -> f)
                ELSE jsonb_build_object('from', old -> f, 'to', new -> f) END), '{}')
  FROM (SELECT jsonb_object_keys(coalesce(old, '{}') || coalesce(new, '{}')) AS f) keys
  WHERE f NOT IN ('created_at', 'updated_at', 'last_used_at')
    AND (old IS NULL OR (old -> f) IS DISTINCT FROM (new -> f))
$$;

CREATE TABLE audit_log (
  seq           bigint PRIMARY KEY,
  id            text NOT NULL UNIQUE,
  ts            timestamptz NOT NULL,
  actor         text NOT NULL,
  role          text NOT NULL,
  action        text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  request_id    text,
  ip            text,
  changes       jsonb NOT NULL,
  prev_hash     text NOT NULL,
  hash          text NOT NULL
);
CREATE INDEX audit_resource ON audit_log (resource_id, seq);
CREATE INDEX audit_actor ON audit_log (actor, seq);
CREATE INDEX audit_action ON audit_log (action, seq);
CREATE INDEX audit_ts ON audit_log (ts);

-- The chain's head: locking it serialises appends so seq has no gaps and
-- each entry hashes its predecessor.
CREATE TABLE audit_head (
  one  boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq  bigint NOT NULL,
  hash text NOT NULL
);
INSERT INTO audit_head VALUES (true, 0, repeat('0', 64));

CREATE FUNCTION tg_audit_canonical(a audit_log) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_array(a.seq, a.id, tg_ts(a.ts), a.actor, a.role, a.action,
    a.resource_type, a.resource_id, a.request_id, a.ip, a.changes)::text
$$;

CREATE FUNCTION tg_audit_append(p_actor text, p_role text, p_action text, p_type text,
                                p_resource text, p_request text, p_ip text, p_changes jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  h audit_head;
  e audit_log;
BEGIN
  SELECT * INTO h FROM audit_head FOR UPDATE;
  e := ROW(h.seq + 1, 'aud_' || (h.seq + 1), clock_timestamp(), p_actor, p_role, p_action,
           p_type, p_resource, p_request, p_ip, coalesce(p_changes, '{}'), h.hash, '');
  e.hash := encode(sha256(convert_to(h.hash || tg_audit_canonical(e), 'UTF8')), 'hex');
  INSERT INTO audit_log SELECT e.*;
  UPDATE audit_head SET seq = e.seq, hash = e.hash;
  RETURN e.seq;
END $$;

-- Recomputes the chain: (true, n, NULL) or (false, n, first bad seq).
CREATE FUNCTION tg_audit_verify(OUT ok boolean, OUT entries bigint, OUT bad_seq bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  a audit_log;
  prev text := repeat('0', 64);
  expect bigint := 1;
BEGIN
  ok := true; entries := 0; bad_seq := NULL;
  FOR a IN SELECT * FROM audit_log ORDER BY seq LOOP
    IF a.seq <> expect OR a.prev_hash <> prev OR
       a.hash <> encode(sha256(convert_to(prev || tg_audit_canonical(a), 'UTF8')), 'hex') THEN
      ok := false; bad_seq := a.seq; RETURN;
    END IF;
    prev := a.hash; expect := expect + 1; entries := entries + 1;
  END LOOP;
END $$;

CREATE FUNCTION tg_audit_json(a audit_log) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', a.id, 'seq', a.seq, 'ts', tg_ts(a.ts), 'actor', a.actor,
    'role', a.role, 'action', a.action, 'resource_type', a.resource_type,
    'resource_id', a.resource_id, 'request_id', a.request_id, 'ip', a.ip,
    'changes', a.changes, 'hash', a.hash)
$$;

-- Append-only at the database level: no UPDATE, DELETE or TRUNCATE.
CREATE FUNCTION tg_audit_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION tg_audit_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION tg_audit_immutable();

-- A key as the API shows it, with its tier's limits for the merge with the
-- key's own overrides (done by the responder, as on the check path).
CREATE FUNCTION tg_key_view(k keys) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT tg_key_json(k) ||
         jsonb_build_object('tier_limits', (SELECT limits FROM tiers WHERE name = k.tier))
$$;
