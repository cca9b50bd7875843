-- Which key-hashing secret ([security] hmac_secret_id) made each key secret and
-- admin token, so that the operator can see when a secret being rotated out
-- no longer verifies anything in use (tollgatectl secrets).  NULL: made before
-- secrets had ids.
ALTER TABLE key_secrets ADD COLUMN secret_id text;
ALTER TABLE admin_tokens ADD COLUMN secret_id text;
