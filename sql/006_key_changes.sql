-- The change feed: every responder process reads the keys changed in the last
-- seconds once a second (keystore_follow_changes), so that a change reaches
-- every process even when its own publication to Redis failed.
CREATE INDEX keys_updated ON keys (updated_at, id);
