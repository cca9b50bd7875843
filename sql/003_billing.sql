-- Billing: closed periods and their frozen lines (being written).

-- Closes every ended period whose end is older than grace; returns the
-- periods it closed.  (Placeholder until the billing tables exist.)
CREATE FUNCTION tg_billing_close_due(grace interval) RETURNS SETOF text LANGUAGE sql AS $$
  SELECT NULL::text WHERE false
$$;
