-- A check enforces every window of a key's effective limits: the tier's limits
-- merged by name with the key's overrides.  One check carries at most 16
-- windows (RL_WINDOWS_MAX in src/check/rlconst.h), so the merged set is
-- bounded here, for every writer, when a key or a tier changes.  A violation
-- raises SQLSTATE TG001 with the offending column, which the API answers as
-- 400 invalid_argument naming that field.

CREATE FUNCTION tg_limits_merged_count(tier_limits jsonb, key_limits jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT count(DISTINCT l ->> 'name')::integer
  FROM (SELECT jsonb_array_elements(coalesce(tier_limits, '[]')) AS l
        UNION ALL
        SELECT jsonb_array_elements(coalesce(key_limits, '[]'))) s
$$;

-- The tier row is share-locked, so that a concurrent change of the tier's
-- limits waits for this key's transaction and then sees its overrides.
CREATE FUNCTION tg_keys_limits_bound() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  tl jsonb;
  n integer;
BEGIN
  SELECT limits INTO tl FROM tiers WHERE name = NEW.tier FOR SHARE;
  n := tg_limits_merged_count(tl, NEW.limits);
  IF n > 16 THEN
    RAISE EXCEPTION USING ERRCODE = 'TG001', COLUMN = 'limits',
      MESSAGE = format('limits merged with the limits of tier ''%s'' come to %s windows; at most 16 apply to a key.',
                       NEW.tier, n);
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER keys_limits_bound BEFORE INSERT OR UPDATE OF tier, limits ON keys
  FOR EACH ROW EXECUTE FUNCTION tg_keys_limits_bound();

CREATE FUNCTION tg_tiers_limits_bound() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kid text;
  n integer;
BEGIN
  SELECT k.id, tg_limits_merged_count(NEW.limits, k.limits) INTO kid, n
  FROM keys k
  WHERE k.tier = NEW.name AND k.status <> 'revoked' AND k.limits <> '[]'
    AND tg_limits_merged_count(NEW.limits, k.limits) > 16
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'TG001', COLUMN = 'limits',
      MESSAGE = format('limits merged with the overrides of key %s come to %s windows; at most 16 apply to a key.',
                       kid, n);
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER tiers_limits_bound AFTER UPDATE OF limits ON tiers
  FOR EACH ROW EXECUTE FUNCTION tg_tiers_limits_bound();
