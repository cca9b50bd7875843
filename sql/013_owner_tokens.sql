-- Owner tokens and token lifetimes.  An owner token serves one owner_id
-- (self-service): it is bound to that owner and to the tier its keys get.
-- Any token may carry expires_at; the responders refuse it from that
-- instant on (the check is made on every request, cached or not).

ALTER TABLE admin_tokens DROP CONSTRAINT admin_tokens_role_check;
ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_role_check
  CHECK (role IN ('admin', 'operator', 'billing', 'viewer', 'service', 'owner'));

ALTER TABLE admin_tokens
  ADD COLUMN owner_id   text,
  ADD COLUMN tier       text REFERENCES tiers (name),
  ADD COLUMN expires_at timestamptz;

-- The binding belongs to the owner role and to it only.
ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_owner_binding
  CHECK (CASE WHEN role = 'owner' THEN owner_id IS NOT NULL AND tier IS NOT NULL
              ELSE owner_id IS NULL AND tier IS NULL END);

CREATE INDEX admin_tokens_owner ON admin_tokens (owner_id) WHERE owner_id IS NOT NULL;

-- The API's view of a token (never its hash).  The audit entry of
-- token.create is tg_changes(NULL, this), so it records the role, the
-- binding and the lifetime.
CREATE OR REPLACE FUNCTION tg_token_json(t admin_tokens) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', t.id, 'role', t.role, 'name', t.name,
    'owner_id', t.owner_id, 'tier', t.tier, 'expires_at', tg_ts(t.expires_at),
    'created_at', tg_ts(t.created_at), 'revoked_at', tg_ts(t.revoked_at))
$$;
